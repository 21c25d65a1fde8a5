"""The type stubs describe the module as it is, and every public class,
method and function has a docstring."""

import ast
import inspect
from pathlib import Path

import shmbus

STUB = Path(shmbus.__file__).with_name("_shmbus.pyi")


def stub_classes():
    tree = ast.parse(STUB.read_text())
    classes = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
            members = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            members |= {n.target.id for n in node.body
                        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
            classes[node.name] = (bases, members)
    for name, (bases, members) in classes.items():
        for base in bases:
            members |= classes.get(base, ([], set()))[1]
    return {n: m for n, (b, m) in classes.items() if not n.startswith("_")}


def test_every_exported_name_is_in_the_stub():
    text = STUB.read_text()
    for name in shmbus.__all__:
        assert f"class {name}" in text or f"def {name}(" in text or f"{name}:" in text, name


def test_stub_members_exist_at_run_time():
    for name, members in stub_classes().items():
        cls = getattr(shmbus, name)
        if issubclass(cls, BaseException):
            continue  # their attributes (`missed`, ...) are set on each instance
        for member in members:
            if member in ("__buffer__",):  # the buffer protocol, from C
                continue
            assert hasattr(cls, member), f"{name}.{member}"


def test_public_classes_methods_and_functions_have_docstrings():
    for name in shmbus.__all__:
        obj = getattr(shmbus, name)
        if not (inspect.isclass(obj) or callable(obj)):
            continue
        assert obj.__doc__, name
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for member, value in vars(obj).items():
                if member.startswith("_") or not callable(value) and not isinstance(value, property) \
                        and type(value).__name__ != "getset_descriptor":
                    continue
                assert value.__doc__, f"{name}.{member}"
