"""Per-record cost of publishing and reading shmbus records from Python,
as a ratio to the same loop in Rust, measured in one process and one run.

Each round times, one after the other and in alternating order:

* ``python view``: a Python loop that publishes a 64-byte record
  (``pub.try_send``) and reads it back in place (``with sub.try_read() as
  view``, one byte touched, released at the end of the block);
* ``python read``: the same, borrowing the record without asking for a
  view (``sub.try_read().release()``): what the record object costs;
* ``python recv``: the same loop reading by copy (``sub.try_recv()``);
* ``rust``: the same publish-and-read loop in Rust
  (``shmbus._shmbus._bench_rust_loop``), on the same publisher and
  subscriber, so both sides use the same ring.

It prints the median per-record nanoseconds of each, and the median (and
range) of the per-round ratios Python / Rust. The process is pinned to one
CPU (``--cpu``).

    python python/bench/bench.py                 # 15 rounds of 200,000 records
    python python/bench/bench.py --smoke         # a few rounds of 2,000 (the tests run this)

``--profile LOOP`` runs one loop once, unpinned and untimed, for a
profiler: instructions per record under callgrind are the difference
between ``--records N`` and ``--records 0``, divided by N (they repeat
from run to run, where times on a shared machine do not):

    valgrind --tool=callgrind python python/bench/bench.py --profile "python view" --records 20000
"""

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time

import shmbus
from shmbus._shmbus import _bench_rust_loop

PAYLOAD = bytes(range(64))


def python_view_loop(pub, sub, count):
    payload = PAYLOAD
    start = time.perf_counter_ns()
    for _ in range(count):
        pub.try_send(payload)
        with sub.try_read() as view:
            view[0]
    return time.perf_counter_ns() - start


def python_read_loop(pub, sub, count):
    payload = PAYLOAD
    start = time.perf_counter_ns()
    for _ in range(count):
        pub.try_send(payload)
        sub.try_read().release()
    return time.perf_counter_ns() - start


def python_recv_loop(pub, sub, count):
    payload = PAYLOAD
    start = time.perf_counter_ns()
    for _ in range(count):
        pub.try_send(payload)
        sub.try_recv()
    return time.perf_counter_ns() - start


def python_poll_empty_loop(pub, sub, count):
    start = time.perf_counter_ns()
    for _ in range(count):
        if sub.try_read() is not None:
            raise AssertionError("the ring was to be empty")
    return time.perf_counter_ns() - start


def rust_loop(pub, sub, count):
    return _bench_rust_loop(pub, sub, PAYLOAD, count)


SIDES = {
    "python view": python_view_loop,
    "python read": python_read_loop,
    "python recv": python_recv_loop,
    "rust": rust_loop,
}


# Loops only `--profile` runs (no Rust counterpart to compare with).
PROFILE_ONLY = {
    "python empty poll": python_poll_empty_loop,
}


def base_root():
    for candidate in (os.environ.get("SHMBUS_DIR"), "/dev/shm"):
        if candidate and os.path.isdir(candidate):
            return candidate
    return tempfile.gettempdir()


@contextlib.contextmanager
def bench_topic():
    """A publisher and a subscriber of a topic in a private base
    directory, removed with everything in it at the end."""
    base = tempfile.mkdtemp(prefix=f"shmbus-bench-py-{os.getpid()}-", dir=base_root())
    try:
        with shmbus.Bus("bench", base=base) as bus:
            topic = bus.topic("bench", slots=4096, max_payload=64)
            sub = topic.subscriber()
            pub = topic.publisher()
            yield pub, sub
            pub.close()
            sub.close()
            topic.remove()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin to (-1: none)")
    parser.add_argument("--smoke", action="store_true", help="3 rounds of 2,000 records")
    parser.add_argument("--profile", choices=[*SIDES, *PROFILE_ONLY],
                        help="run this loop once, for a profiler")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.records = 3, 2_000
    if args.profile:
        return profile({**SIDES, **PROFILE_ONLY}[args.profile], args.records)
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})

    with bench_topic() as (pub, sub):
        for side in SIDES.values():  # warm-up
            side(pub, sub, min(args.records, 10_000))
        per_record = {name: [] for name in SIDES}
        names = list(SIDES)
        for round_ in range(args.rounds):
            order = names if round_ % 2 == 0 else names[::-1]
            for name in order:
                ns = SIDES[name](pub, sub, args.records)
                per_record[name].append(ns / args.records)

    rust = per_record["rust"]
    print(f"{args.rounds} rounds of {args.records} records of {len(PAYLOAD)} bytes, "
          f"publish + read on one thread (CPU {args.cpu}), Python {sys.version.split()[0]}")
    print(f"{'loop':<14}{'median ns/rec':>14}{'min..max ns/rec':>20}{'ratio to rust':>15}{'ratio min..max':>17}")
    for name in SIDES:
        values = per_record[name]
        ratios = [v / r for v, r in zip(values, rust)]
        print(f"{name:<14}{statistics.median(values):>14.1f}"
              f"{f'{min(values):.1f}..{max(values):.1f}':>20}"
              f"{f'{statistics.median(ratios):.2f}x':>15}"
              f"{f'{min(ratios):.2f}..{max(ratios):.2f}':>17}")
    return 0


def profile(loop, records):
    with bench_topic() as (pub, sub):
        loop(pub, sub, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
