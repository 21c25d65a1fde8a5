"""Work queues and SPSC channels from Python: take / ack / give back,
redelivery, each record to one consumer, and the channel's claim and
read."""

import pytest

import shmbus


def test_take_ack_and_give_back(bus):
    execution = bus.queue("execution", slots=16, max_payload=64)
    strategy = execution.producer()
    gateway_a = execution.consumer()
    gateway_b = execution.consumer()
    assert strategy.send(b"BUY 100 BTC @ 65000", record_type=1, timeout=1) == 0
    assert strategy.try_send(b"SELL 5 ETH @ 3100", record_type=1) == 1

    # Gateway A takes the first order and gives it back.
    order = gateway_a.take(timeout=1)
    assert bytes(order) == b"BUY 100 BTC @ 65000" and not order.redelivered
    order.give_back()

    # Gateway B gets it, flagged, and acknowledges it at the end of the block.
    order = gateway_b.take(timeout=1)
    with order as view:
        assert order.redelivered and view == b"BUY 100 BTC @ 65000"
    assert gateway_b.acked == 1
    assert gateway_b.recv(timeout=1) == (1, b"SELL 5 ETH @ 3100")  # copy + ack
    assert gateway_a.try_take() is None


def test_a_block_that_raises_gives_the_record_back(bus):
    q = bus.queue("q", slots=4, max_payload=64)
    tx = q.producer()
    rx = q.consumer()
    tx.try_send(b"order")
    with pytest.raises(KeyError):
        with rx.try_take() as view:
            assert view == b"order"
            raise KeyError("venue down")
    again = rx.try_take()
    assert again.redelivered and bytes(again) == b"order"
    again.ack()
    assert rx.try_take() is None


def test_a_dropped_record_is_given_back(bus):
    q = bus.queue("q", slots=4, max_payload=64)
    tx = q.producer()
    rx = q.consumer()
    tx.try_send(b"x")
    rec = rx.try_take()
    del rec
    assert rx.try_take().redelivered


def test_each_record_goes_to_one_consumer(bus):
    q = bus.queue("q", slots=64, max_payload=64)
    tx = q.producer()
    consumers = [q.consumer() for _ in range(3)]
    for i in range(30):
        with tx.claim(4, record_type=3) as buf:
            buf[:] = i.to_bytes(4, "little")
    seen = []
    while True:
        progress = False
        for rx in consumers:
            got = rx.try_recv()
            if got is None:
                continue
            record_type, payload = got
            assert record_type == 3
            seen.append(int.from_bytes(payload, "little"))
            progress = True
        if not progress:
            break
    assert sorted(seen) == list(range(30))
    assert sum(rx.acked for rx in consumers) == 30


def test_queue_full(bus):
    q = bus.queue("q", slots=2, max_payload=64)
    tx = q.producer()
    tx.try_send(b"1")
    tx.try_send(b"2")
    with pytest.raises(shmbus.Full):
        tx.try_send(b"3")
    with pytest.raises(shmbus.Timeout):
        tx.send(b"3", timeout=0.05)


def test_channel_claim_read_and_recv(bus):
    ch = bus.spsc("fills", 4096, wakeups=True)
    assert ch.config == {"capacity": 4096, "max_payload": None, "wakeups": True}
    tx = ch.producer()
    rx = bus.open_spsc("fills").consumer()
    with tx.claim(8, record_type=7) as slot:
        slot[:] = (42).to_bytes(8, "little")
    rec = rx.read(timeout=1, wait="blocking")  # sleeps: the channel has wake-ups
    assert rec.record_type == 7 and rec.sequence is None
    with rec as view:
        assert int.from_bytes(view, "little") == 42
    assert tx.try_send(b"abc", record_type=1) is None
    assert rx.recv(timeout=1) == (1, b"abc")
    with pytest.raises(shmbus.Timeout):
        rx.read(timeout=0.02)
    tx.close()
    rx.close()
    ch.remove()
    assert bus.rings() == [("fills", "spsc")] or bus.rings() == []
