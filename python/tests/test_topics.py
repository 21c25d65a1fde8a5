"""Topics from Python: claims written in place and records read in place,
the memoryview lifetime, waits that release the GIL and stop on signals,
and a Rust publisher process read by a Python subscriber."""

import os
import signal
import subprocess
import threading

import pytest

import shmbus


def small_topic(bus, name="md", **config):
    config.setdefault("slots", 64)
    config.setdefault("max_payload", 128)
    return bus.topic(name, **config)


def test_claim_commit_then_read_in_place(bus):
    md = small_topic(bus)
    assert md.was_created and md.config["slots"] == 64
    sub = md.subscriber()
    pub = md.publisher()
    with pub.claim(16, record_type=7) as buf:
        assert isinstance(buf, memoryview) and not buf.readonly and len(buf) == 16
        buf[:] = b"BTC 42000.5 1.25"
    rec = sub.read(timeout=5)
    assert (rec.record_type, rec.sequence, len(rec)) == (7, 0, 16)
    with rec as view:
        assert view.readonly
        assert view == b"BTC 42000.5 1.25"
    assert not rec.live
    assert pub.published == 1


def test_claim_methods_and_sequences(bus):
    md = small_topic(bus)
    sub = md.subscriber()
    pub = md.publisher()
    claim = pub.try_claim(3)
    claim.record_type = 9
    claim.view[:] = b"abc"
    assert claim.commit() == 0
    assert pub.try_send(b"def", record_type=2) == 1
    assert pub.send(bytearray(b"ghi"), timeout=1) == 2
    assert sub.try_recv() == (9, b"abc")
    assert sub.recv(timeout=1) == (2, b"def")
    rec = sub.try_read()
    assert bytes(rec) == b"ghi" and rec.tobytes() == b"ghi"
    rec.release()
    rec.release()  # releasing twice is no error
    assert sub.position == 3


def test_a_block_that_raises_aborts_the_claim(bus):
    md = small_topic(bus)
    sub = md.subscriber()
    pub = md.publisher()
    with pytest.raises(RuntimeError):
        with pub.claim(4) as buf:
            buf[:] = b"half"
            raise RuntimeError("failed mid-write")
    # The aborted slot is passed over: the next record is the next read.
    pub.try_send(b"next")
    assert sub.try_recv() == (0, b"next")
    assert sub.try_read() is None


def test_dropped_claims_abort_and_dropped_records_release(bus):
    md = small_topic(bus)
    sub = md.subscriber()
    pub = md.publisher()
    claim = pub.try_claim(8)
    del claim  # aborted
    pub.try_send(b"one")
    pub.try_send(b"two")
    rec = sub.try_read()
    assert bytes(rec) == b"one"
    del rec  # released: the subscriber moves on
    assert sub.try_recv() == (0, b"two")


def test_the_view_is_released_with_the_record(bus):
    md = small_topic(bus)
    sub = md.subscriber()
    pub = md.publisher()
    pub.try_send(b"payload")
    with sub.read(timeout=1) as view:
        assert view[0] == ord("p")
    with pytest.raises(ValueError, match="released memoryview"):
        view[0]
    with pytest.raises(ValueError, match="released memoryview"):
        bytes(view)

    pub.try_send(b"second")
    rec = sub.try_read()
    view = rec.view
    assert rec.view is view  # one view per record
    rec.release()
    with pytest.raises(ValueError, match="released memoryview"):
        view.tobytes()
    with pytest.raises(ValueError):
        rec.view  # no new view of a released record
    with pytest.raises(BufferError):
        memoryview(rec)


def test_release_is_refused_while_other_buffers_use_the_bytes(bus):
    md = small_topic(bus)
    sub = md.subscriber()
    pub = md.publisher()
    pub.try_send(b"abcdef")
    rec = sub.try_read()
    part = rec.view[2:4]  # a slice keeps the bytes exported
    mine = memoryview(rec)
    with pytest.raises(BufferError, match="2 exported"):
        rec.release()
    assert rec.live and part == b"cd" and mine == b"abcdef"
    part.release()
    mine.release()
    rec.release()
    assert not rec.live
    with pytest.raises(ValueError):
        part[0]


def test_a_record_or_claim_still_referred_to_is_never_lent_again(bus):
    """A handle lends its last record (or claim) object again only when
    nothing else refers to it: one Python still holds stays ended."""
    md = small_topic(bus)
    sub = md.subscriber()
    pub = md.publisher()
    pub.try_send(b"one")
    pub.try_send(b"two")
    first = sub.try_read()
    view = first.view
    first.release()
    second = sub.try_read()
    assert second is not first and not first.live and second.live
    assert bytes(second) == b"two"
    with pytest.raises(ValueError):
        first.view
    with pytest.raises(ValueError, match="released memoryview"):
        view[0]
    second.release()
    claim = pub.try_claim(2)
    claim.commit()
    again = pub.try_claim(2)
    assert again is not claim and not claim.live and again.live
    again.abort()
    with pytest.raises(ValueError):
        claim.commit()


def test_with_blocks_in_a_loop_read_every_record(bus):
    """The `with` form, record after record (each the same object lent
    again once the last block let go of it): each view shows its own
    record and is released at the end of its block."""
    md = small_topic(bus)
    sub = md.subscriber()
    pub = md.publisher()
    views = []
    for i in range(100):
        with pub.claim(4, record_type=i) as buf:
            buf[:] = i.to_bytes(4, "little")
        rec = sub.try_read()
        assert rec.record_type == i and rec.sequence == i
        with rec as view:
            assert int.from_bytes(view, "little") == i
        views.append(view)
        del rec
    assert sub.try_read() is None
    for view in views:
        with pytest.raises(ValueError, match="released memoryview"):
            view[0]


def test_claim_view_is_released_at_commit(bus):
    md = small_topic(bus)
    pub = md.publisher()
    claim = pub.try_claim(4)
    view = claim.view
    view[:] = b"wxyz"
    claim.commit()
    with pytest.raises(ValueError, match="released memoryview"):
        view[0] = 1
    with pytest.raises(ValueError):
        claim.commit()


def test_records_are_read_only(bus):
    md = small_topic(bus)
    sub = md.subscriber()
    md.publisher().try_send(b"ro")
    with sub.try_read() as view:
        with pytest.raises(TypeError):
            view[0] = 1


def test_one_lease_at_a_time(bus):
    md = small_topic(bus)
    sub = md.subscriber()
    pub = md.publisher()
    claim = pub.try_claim(1)
    with pytest.raises(shmbus.InUse):
        pub.try_send(b"x")
    with pytest.raises(shmbus.InUse):
        pub.close()
    claim.abort()
    pub.try_send(b"x")
    pub.try_send(b"y")
    rec = sub.try_read()
    with pytest.raises(shmbus.InUse):
        sub.try_read()
    with pytest.raises(shmbus.InUse):
        sub.missed
    rec.release()
    assert sub.try_recv() == (0, b"y")
    sub.close()
    with pytest.raises(shmbus.Closed):
        sub.try_read()


def test_a_blocking_read_releases_the_gil(base):
    """A reader thread blocks in read() while this thread publishes: it can
    only publish if the reader let the GIL go."""
    ready = threading.Event()
    got = []

    def reader():
        with shmbus.Bus("t", base=base) as bus:
            sub = bus.topic("md", slots=64, max_payload=128).subscriber()
            ready.set()
            try:
                got.append(sub.recv(timeout=10))
            except shmbus.Error as e:
                got.append(e)

    thread = threading.Thread(target=reader)
    thread.start()
    assert ready.wait(10)
    with shmbus.Bus("t", base=base) as bus:
        pub = bus.topic("md", slots=64, max_payload=128).publisher()
        pub.send(b"wake", record_type=5, timeout=5)
        thread.join(15)
        pub.close()
    assert got == [(5, b"wake")]


def test_a_wait_without_end_is_interrupted_by_signals(bus):
    class Interrupted(Exception):
        pass

    def on_alarm(signum, frame):
        raise Interrupted

    sub = small_topic(bus).subscriber()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            sub.read()  # no timeout: only the signal ends it
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # The subscriber is usable afterwards.
    with pytest.raises(shmbus.Timeout):
        sub.read(timeout=0.01)


def test_durable_subscriber_resumes(bus):
    md = small_topic(bus)
    pub = md.publisher()
    audit = md.durable_subscriber("audit")
    pub.try_send(b"1")
    assert audit.try_recv() == (0, b"1")
    audit.close()
    pub.try_send(b"2")
    audit = md.durable_subscriber("audit")
    assert audit.try_recv() == (0, b"2")


def test_rust_publisher_process_to_python_subscriber(base, feed_bin):
    """examples/market_data_feed (Rust, another process) publishes Protocol
    V2 trades on market_data, then an END record; Python reads every one
    in order, in place, and parses it."""
    count = 20000
    with shmbus.Bus("xproc", base=base) as bus:
        # The feed's configuration (the Rust defaults), created first so
        # that the subscriber is there before the first record.
        md = bus.topic("market_data")
        sub = md.subscriber()
        env = dict(os.environ, SHMBUS_DIR=base)
        feed = subprocess.Popen(
            [feed_bin, "--namespace", "xproc", "--count", str(count)],
            env=env,
            stdout=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        try:
            for expected in range(count):
                with sub.read(timeout=30) as view:
                    msg = shmbus.parse(view)  # parsed in place
                assert msg.sequence == expected, "records out of order"
                assert msg.domain == "MarketData"
                trade = msg.first(1)
                assert trade.decoded["ticker"] in ("BTC", "ETH", "SOL")
            end = sub.read(timeout=30)
            assert end.record_type == 0xFFFF and len(end) == 0
            end.release()
            assert feed.wait(timeout=30) == 0
        finally:
            if feed.poll() is None:
                feed.kill()
                feed.wait()
        assert sub.missed == 0
        sub.close()
        md.remove()


def test_a_record_keeps_its_subscriber_alive(bus):
    md = small_topic(bus)
    pub = md.publisher()
    sub = md.subscriber()
    pub.try_send(b"kept")
    rec = sub.try_read()
    del sub  # the record holds its subscriber: the borrow stays valid
    md.remove()
    bus.close()
    assert rec.view == b"kept"
    rec.release()
    with pytest.raises(ValueError):
        rec.view


def test_handles_stay_on_their_thread(bus):
    sub = small_topic(bus).subscriber()
    errors = []

    def use():
        try:
            sub.try_read()
        except BaseException as e:  # pyo3 refuses an unsendable object on another thread
            errors.append(e)

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()
    assert len(errors) == 1  # refused: a read there would have answered None
    assert sub.try_read() is None


def test_records_and_claims_stay_on_their_thread(bus):
    """A record or claim handed to another thread is refused there (its
    bytes, its view, its end) and still works on its own thread."""
    md = small_topic(bus)
    sub = md.subscriber()
    pub = md.publisher()
    pub.try_send(b"mine")
    rec = sub.try_read()
    claim = pub.try_claim(4)
    errors = []

    def use():
        for attempt in (lambda: rec.view, lambda: bytes(rec), rec.release,
                        lambda: claim.view, claim.commit, lambda: len(rec)):
            try:
                attempt()
            except RuntimeError as e:
                errors.append(e)

    thread = threading.Thread(target=use)
    thread.start()
    thread.join()
    assert len(errors) == 6 and all("another thread" in str(e) for e in errors)
    assert rec.live and bytes(rec) == b"mine"
    rec.release()
    claim.view[:] = b"ours"
    claim.commit()
    assert sub.try_recv() == (0, b"ours")


def test_a_view_survives_its_segment_being_truncated(bus):
    """The ring file shortened under a held view (as another process may):
    the view reads zeros (the core's SIGBUS handler maps them over the lost
    pages), and the ring then reports itself closed."""
    ch = bus.spsc("h", 1 << 16)
    tx, rx = ch.producer(), ch.consumer()
    tx.try_send(b"A" * 100)
    rec = rx.try_read()
    view = rec.view
    assert view[:4] == b"AAAA"
    os.truncate(ch.path, 0)
    assert view[:4] == bytes(4)
    rec.release()
    with pytest.raises(shmbus.Closed, match="truncated"):
        rx.try_read()
