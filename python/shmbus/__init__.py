"""shmbus from Python: lock-free shared-memory topics, SPSC channels and
work queues between processes on one host, with zero-copy reads, and the
Protocol V2 codec.

    import shmbus

    with shmbus.Bus("prod") as bus:
        md = bus.topic("market_data")
        sub = md.subscriber()
        pub = md.publisher()
        with pub.claim(16, record_type=1) as buf:   # write in place
            buf[:] = b"BTC 42000.5 1.25"
        with sub.read(timeout=1.0) as view:         # borrow in place
            assert view == b"BTC 42000.5 1.25"

The verbs are the Rust API's: ``claim`` / ``commit`` / ``abort``, ``send``,
``read`` / ``release``, ``recv``, a work queue's ``take`` / ``ack``; each as
``try_…`` (never waits; a ``try_`` read of an empty ring answers ``None``)
and a waiting form with ``timeout`` (seconds, ``None``: without end) that
releases the GIL and is interrupted by Ctrl-C. Every error is a
``shmbus.Error``.
"""

from ._shmbus import (
    WAIT_SLICE,
    Bus,
    CannotSleep,
    Channel,
    Claim,
    Closed,
    ConfigError,
    Consumer,
    Corrupt,
    Empty,
    Error,
    Full,
    InUse,
    Lapped,
    Message,
    NotFound,
    ParseError,
    Producer,
    Publisher,
    Queue,
    QueueConsumer,
    QueueProducer,
    Reclaimed,
    Record,
    Subscriber,
    Timeout,
    Tlv,
    TooLarge,
    Topic,
    build,
    parse,
    quote_tlv,
    trade_tlv,
)

__all__ = [
    "WAIT_SLICE",
    "Bus",
    "CannotSleep",
    "Channel",
    "Claim",
    "Closed",
    "ConfigError",
    "Consumer",
    "Corrupt",
    "Empty",
    "Error",
    "Full",
    "InUse",
    "Lapped",
    "Message",
    "NotFound",
    "ParseError",
    "Producer",
    "Publisher",
    "Queue",
    "QueueConsumer",
    "QueueProducer",
    "Reclaimed",
    "Record",
    "Subscriber",
    "Timeout",
    "Tlv",
    "TooLarge",
    "Topic",
    "build",
    "parse",
    "quote_tlv",
    "trade_tlv",
]
