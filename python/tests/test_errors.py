"""Every error a caller can provoke arrives as its own subclass of
shmbus.Error, mapped from the Rust ClaimError, RecvError and BusError."""

import time

import pytest

import shmbus

ERRORS = [
    shmbus.Full, shmbus.Empty, shmbus.Timeout, shmbus.TooLarge, shmbus.CannotSleep,
    shmbus.Reclaimed, shmbus.Lapped, shmbus.Corrupt, shmbus.Closed, shmbus.ConfigError,
    shmbus.NotFound, shmbus.InUse, shmbus.ParseError,
]


def test_every_error_is_a_shmbus_error():
    for error in ERRORS:
        assert issubclass(error, shmbus.Error) and issubclass(shmbus.Error, Exception)
    assert len(set(ERRORS)) == len(ERRORS)


def test_full_and_claim_timeout(bus):
    md = bus.topic("md", slots=4, max_payload=64, policy="backpressure")
    sub = md.subscriber()
    pub = md.publisher()
    for _ in range(4):
        pub.try_send(b"x")
    with pytest.raises(shmbus.Full, match="full"):
        pub.try_send(b"x")
    with pytest.raises(shmbus.Full):
        pub.try_claim(1)
    with pytest.raises(shmbus.Timeout):
        pub.send(b"x", timeout=0.05)
    with pytest.raises(shmbus.Timeout):
        pub.claim(1, timeout=0.05, wait="yield")
    sub.try_recv()
    pub.try_send(b"x")  # room again


def test_empty_and_read_timeout(bus):
    """A `try_` read of an empty ring answers None (no exception on the
    polling path); skipping where there is nothing raises Empty."""
    sub = bus.topic("md", slots=4, max_payload=64).subscriber()
    assert sub.try_read() is None
    assert sub.try_recv() is None
    with pytest.raises(shmbus.Empty):
        sub.skip()
    for wait in ("spin", "yield", "backoff", "blocking"):
        with pytest.raises(shmbus.Timeout):
            sub.read(timeout=0.02, wait=wait)
    with pytest.raises(ValueError):
        sub.read(timeout=-1)
    with pytest.raises(ValueError):
        sub.read(timeout=0.01, wait="sometimes")


def test_too_large(bus):
    pub = bus.topic("md", slots=4, max_payload=64).publisher()
    with pytest.raises(shmbus.TooLarge, match="exceeds"):
        pub.try_claim(65)
    with pytest.raises(shmbus.TooLarge):
        pub.try_send(bytes(65))


def test_cannot_sleep(bus):
    pub = bus.topic("md", slots=4, max_payload=64).publisher()
    with pytest.raises(shmbus.CannotSleep):
        pub.claim(1, wait="blocking", timeout=1)
    ch = bus.spsc("fills", 4096)  # without wake-ups
    rx = ch.consumer()
    with pytest.raises(shmbus.CannotSleep):
        rx.read(wait="blocking", timeout=1)


def test_lapped_reports_the_missed_count(bus):
    md = bus.topic("md", slots=4, max_payload=64, policy="overwrite")
    sub = md.subscriber()
    pub = md.publisher()
    for i in range(10):
        pub.try_send(bytes([i]))
    with pytest.raises(shmbus.Lapped) as lapped:
        sub.try_read()
    assert lapped.value.missed == 6
    assert sub.missed == 6
    assert sub.try_recv() == (0, bytes([6]))  # the oldest still intact


def test_reclaimed(bus):
    md = bus.topic("md", slots=4, max_payload=64, reclaim_after=0.05)
    sub = md.subscriber()
    pub = md.publisher()
    claim = pub.try_claim(4)
    claim.view[:] = b"late"
    # The reader waits past reclaim_after, reclaims the stalled claim and
    # passes it (counted missed), then times out.
    with pytest.raises(shmbus.Timeout):
        sub.read(timeout=0.5, wait="backoff")
    assert sub.missed == 1
    with pytest.raises(shmbus.Reclaimed) as reclaimed:
        claim.commit()
    assert reclaimed.value.sequence == 0


def test_config_errors(bus):
    bus.topic("md", slots=64, max_payload=64)
    with pytest.raises(shmbus.ConfigError, match="exists with"):
        bus.topic("md", slots=128, max_payload=64)  # another configuration
    with pytest.raises(shmbus.ConfigError):
        bus.queue("md")  # another kind
    with pytest.raises(shmbus.ConfigError, match="power of two"):
        bus.topic("other", slots=3)
    with pytest.raises(shmbus.ConfigError):
        bus.spsc("ch", 1000)
    with pytest.raises(shmbus.ConfigError):
        bus.topic("../escape")
    with pytest.raises(ValueError):
        bus.topic("x", policy="sometimes")


def test_not_found(bus):
    with pytest.raises(shmbus.NotFound):
        bus.open_topic("nothing")
    with pytest.raises(shmbus.NotFound):
        bus.open_queue("nothing", timeout=0.05)  # waited, then not found


def test_in_use(bus):
    ch = bus.spsc("fills", 4096)
    tx = ch.producer()
    with pytest.raises(shmbus.InUse):
        ch.producer()  # one producer per channel
    tx.close()
    ch.producer().close()  # free again
    md = bus.topic("md", slots=4, max_payload=64, max_publishers=1)
    only = md.publisher()
    with pytest.raises(shmbus.InUse):
        md.publisher()
    only.close()


def test_closed_after_removal(bus):
    md = bus.topic("md", slots=4, max_payload=64)
    sub = md.subscriber()
    pub = md.publisher()
    md.remove()
    with pytest.raises(shmbus.Closed, match="removed"):
        for _ in range(8):  # noticed at the next full, empty or wait round
            pub.try_send(b"x")
            time.sleep(0.001)
    with pytest.raises(shmbus.Closed):
        for _ in range(8):  # what was published before the removal, then Closed
            sub.read(timeout=1).release()
    bus.close()
    with pytest.raises(shmbus.Closed):
        bus.topic("again")


def test_corrupt(bus):
    """A record header no build writes (committed, with a flag bit this
    build does not know), put at the start of an SPSC channel's data region
    (byte 768 of its segment), is reported, not followed."""
    ch = bus.spsc("h", 4096)
    rx = ch.consumer()
    header = 8 | (0xC000 << 48)  # length 8, type 0, flags committed | unknown
    with open(ch.path, "r+b") as segment:
        segment.seek(768)
        segment.write(header.to_bytes(8, "little"))
    with pytest.raises(shmbus.Corrupt, match="unknown flags"):
        rx.try_read()


def test_parse_error():
    with pytest.raises(shmbus.ParseError):
        shmbus.parse(b"\x00" * 8)
    with pytest.raises(shmbus.ParseError):
        shmbus.build("MarketData", "BinanceCollector", [(1, b"short")])  # a Trade is 40 bytes
