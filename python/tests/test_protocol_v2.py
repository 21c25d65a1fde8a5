"""Protocol V2 from Python against the golden vectors
(tests/vectors/protocol_v2/): every valid vector parses to its recorded
header and items and builds back byte for byte; every invalid one is
refused; Trade, Quote and OrderBook payloads decode to the recorded
fields."""

import json
from pathlib import Path

import pytest

import shmbus

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "protocol_v2"
MANIFEST = json.loads((VECTORS / "vectors.json").read_text())["vectors"]
VALID = [v for v in MANIFEST if v["valid"]]
INVALID = [v for v in MANIFEST if not v["valid"]]


def data(vector):
    return (VECTORS / vector["file"]).read_bytes()


def test_the_vectors_are_there():
    assert len(VALID) >= 10 and len(INVALID) >= 10


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_valid_vectors_parse_to_the_recorded_fields(vector):
    msg = shmbus.parse(data(vector), verify="strict")
    h = vector["header"]
    assert (msg.relay_domain, msg.version, msg.source, msg.flags) == (
        h["relay_domain"], h["version"], h["source"], h["flags"])
    assert (msg.sequence, msg.timestamp_ns, msg.payload_size, msg.checksum) == (
        h["sequence"], h["timestamp"], h["payload_size"], h["checksum"])
    assert msg.domain == h["relay_domain_name"]
    assert len(msg.tlvs) == len(vector["tlvs"])
    for tlv, recorded in zip(msg.tlvs, vector["tlvs"]):
        assert tlv.type == recorded["type"]
        assert tlv.extended == (recorded["format"] == "extended")
        assert tlv.offset == recorded["tlv_offset"]
        assert tlv.payload.hex() == recorded["payload_hex"]


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v["name"])
def test_valid_vectors_build_back_byte_for_byte(vector):
    original = data(vector)
    msg = shmbus.parse(original, verify="strict")
    rebuilt = shmbus.build(
        msg.relay_domain,
        msg.source,
        msg.tlvs,  # each with its own form
        sequence=msg.sequence,
        timestamp_ns=msg.timestamp_ns,
        flags=msg.flags,
        version=msg.version,
        checksum=msg.checksum != 0,
    )
    assert rebuilt == original
    # And straight into a buffer (as into a claim).
    buf = bytearray(len(original) + 16)
    n = shmbus.build(msg.relay_domain, msg.source, msg.tlvs, sequence=msg.sequence,
                     timestamp_ns=msg.timestamp_ns, flags=msg.flags, version=msg.version,
                     checksum=msg.checksum != 0, into=buf)
    assert bytes(buf[:n]) == original


@pytest.mark.parametrize("vector", INVALID, ids=lambda v: v["name"])
def test_invalid_vectors_are_refused(vector):
    with pytest.raises(shmbus.ParseError):
        shmbus.parse(data(vector), verify="strict")


def test_checksum_zero_is_accepted_only_when_asked():
    (vector,) = [v for v in MANIFEST if v["name"] == "checksum_zero_hotpath"]
    with pytest.raises(shmbus.ParseError, match="checksum"):
        shmbus.parse(data(vector), verify="strict")
    assert shmbus.parse(data(vector)).checksum == 0  # default: 0 means not computed
    assert shmbus.parse(data(vector), verify="off").tlvs[0].type == 1


def test_legacy_struct_sizes_are_accepted_when_asked():
    for name in ("quote_struct56", "arbitrage_signal_170"):
        (vector,) = [v for v in MANIFEST if v["name"] == name]
        with pytest.raises(shmbus.ParseError):
            shmbus.parse(data(vector), verify="strict")
        assert shmbus.parse(data(vector), verify="strict", sizes="legacy").tlvs


def recorded_fields(recorded):
    return {f["name"]: f["value"] for f in recorded["decoded"]["fields"]
            if isinstance(f["value"], int)}


def test_typed_payloads_decode_to_the_recorded_fields():
    checked = set()
    for vector in VALID:
        msg = shmbus.parse(data(vector), verify="strict")
        for tlv, recorded in zip(msg.tlvs, vector["tlvs"]):
            decoded = tlv.decoded
            if recorded.get("decoded") is None or decoded is None:
                continue
            for name, value in recorded_fields(recorded).items():
                assert decoded[name] == value, (vector["name"], name)
            checked.add(tlv.name)
    assert {"Trade", "Quote", "OrderBook"} <= checked


def test_trade_and_quote_helpers_match_the_vectors():
    (trade,) = [v for v in MANIFEST if v["name"] == "md_trade"]
    msg = shmbus.parse(data(trade))
    f = msg.tlvs[0].decoded
    rebuilt = shmbus.build(
        "MarketData", "BinanceCollector",
        [shmbus.trade_tlv(f["ticker"], venue=f["venue_id"], price=f["price"] / 1e8,
                          volume=f["volume"] / 1e8, side="buy",
                          execution_timestamp_ns=f["execution_timestamp_ns"])],
        sequence=msg.sequence, timestamp_ns=msg.timestamp_ns)
    assert rebuilt == data(trade)
    (quote,) = [v for v in MANIFEST if v["name"] == "md_quote"]
    msg = shmbus.parse(data(quote))
    q = msg.tlvs[0].decoded
    item = shmbus.quote_tlv(q["ticker"], venue=q["venue_id"], bid_price=q["bid_price"] / 1e8,
                            bid_size=q["bid_size"] / 1e8, ask_price=q["ask_price"] / 1e8,
                            ask_size=q["ask_size"] / 1e8,
                            quote_timestamp_ns=q["quote_timestamp_ns"])
    assert item == (2, msg.tlvs[0].payload)


def test_build_into_a_claim_and_parse_the_record(bus):
    md = bus.topic("md", slots=16, max_payload=128)
    sub = md.subscriber()
    pub = md.publisher()
    item = shmbus.trade_tlv("BTC", venue=100, price=65000.5, volume=0.25, side="sell")
    with pub.claim(74, record_type=1) as buf:
        assert shmbus.build("MarketData", "BinanceCollector", [item], sequence=9,
                            checksum=False, into=buf) == 74
    with sub.read(timeout=1) as view:
        msg = shmbus.parse(view)
    assert msg.sequence == 9 and msg.checksum == 0
    trade = msg.first(1).decoded
    assert (trade["ticker"], trade["price"], trade["side"]) == ("BTC", 6_500_050_000_000, 1)
    rec = (pub.try_send(shmbus.build(1, 1, [item])), sub.try_read())[1]
    assert rec.parse(verify="strict").tlvs[0].payload == item[1]
    rec.release()
