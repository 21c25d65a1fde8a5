//! Protocol V2 messages from Python: `parse` into a small `Message` (its
//! header fields and its TLV items, Trade, Quote and OrderBook payloads
//! decoded), and `build` (into new bytes, or straight into a claim).
//! Both run the core crate's codec (`shmbus::record`), so they accept and
//! produce what it does, byte for byte.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use shmbus::record::{
    Checksum, Fixed8, Form, Instrument, MessageBuilder, MessageView, OrderBookTlv, OrderLevel,
    ParseOptions, QuoteTlv, RelayDomain, Side, SizePolicy, SourceType, TlvPayload, TlvType,
    TradeTlv, Verify, HEADER_LEN,
};

use crate::errors::ParseError;

fn verify(name: &str) -> PyResult<Verify> {
    match name {
        "strict" => Ok(Verify::Strict),
        "zero" => Ok(Verify::ZeroMeansUnchecked),
        "off" => Ok(Verify::Off),
        other => Err(PyValueError::new_err(format!(
            "verify {other:?} is none of 'strict', 'zero' (0 means not computed), 'off'"
        ))),
    }
}

fn sizes(name: &str) -> PyResult<SizePolicy> {
    match name {
        "registry" => Ok(SizePolicy::Registry),
        "legacy" => Ok(SizePolicy::LegacyStructs),
        other => Err(PyValueError::new_err(format!(
            "sizes {other:?} is neither 'registry' nor 'legacy'"
        ))),
    }
}

/// One TLV item of a parsed message.
#[pyclass(frozen, module = "shmbus._shmbus")]
pub struct Tlv {
    /// The type number (the inner type of an extended item).
    #[pyo3(get, name = "type")]
    tlv_type: u8,
    /// Framed with the 5-byte extended header.
    #[pyo3(get)]
    extended: bool,
    /// Offset of its first header byte in the message.
    #[pyo3(get)]
    offset: usize,
    /// The payload bytes (a copy).
    #[pyo3(get)]
    payload: Py<PyBytes>,
}

#[pymethods]
impl Tlv {
    /// The type's name in the registry (`"Trade"`, ...), if it has one.
    #[getter]
    fn name(&self) -> Option<&'static str> {
        TlvType::from_u8(self.tlv_type).map(TlvType::name)
    }

    /// The payload's fields as a dict, for the types decoded here (Trade,
    /// Quote, OrderBook): field names and raw values as the format
    /// defines them (prices and sizes in units of 1e-8); `None` otherwise.
    #[getter]
    fn decoded<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        decode(py, self.tlv_type, self.payload.bind(py).as_bytes())
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.payload.bind(py).as_bytes().len()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<shmbus.Tlv type {}{} {} bytes{}>",
            self.tlv_type,
            self.name().map(|n| format!(" ({n})")).unwrap_or_default(),
            self.payload.bind(py).as_bytes().len(),
            if self.extended { ", extended" } else { "" }
        )
    }
}

/// A parsed Protocol V2 message: header fields and TLV items (copies:
/// it outlives the bytes it was parsed from).
#[pyclass(frozen, module = "shmbus._shmbus")]
pub struct Message {
    /// Relay domain byte (1 market data, 2 signals, 3 execution, 4 system).
    #[pyo3(get)]
    relay_domain: u8,
    /// Protocol version byte.
    #[pyo3(get)]
    version: u8,
    /// Source service byte.
    #[pyo3(get)]
    source: u8,
    /// Header flags byte.
    #[pyo3(get)]
    flags: u8,
    /// The sender's sequence number.
    #[pyo3(get)]
    sequence: u64,
    /// The sender's timestamp, ns since the Unix epoch.
    #[pyo3(get)]
    timestamp_ns: u64,
    /// Length of the TLV region.
    #[pyo3(get)]
    payload_size: u32,
    /// Stored CRC-32 (0: not computed).
    #[pyo3(get)]
    checksum: u32,
    /// Every TLV item, in wire order.
    #[pyo3(get)]
    tlvs: Py<PyList>,
}

#[pymethods]
impl Message {
    /// The relay domain's name (`"MarketData"`, ...), if the byte is one.
    #[getter]
    fn domain(&self) -> Option<&'static str> {
        RelayDomain::from_u8(self.relay_domain).map(RelayDomain::name)
    }

    /// The source service's name, if the byte is a listed one.
    #[getter]
    fn source_name(&self) -> Option<&'static str> {
        SourceType::from_u8(self.source).map(SourceType::name)
    }

    /// The first item of type `tlv_type`, or `None`.
    fn first<'py>(&self, py: Python<'py>, tlv_type: u8) -> PyResult<Option<Bound<'py, Tlv>>> {
        for item in self.tlvs.bind(py).iter() {
            let tlv = item.downcast_into::<Tlv>()?;
            if tlv.get().tlv_type == tlv_type {
                return Ok(Some(tlv));
            }
        }
        Ok(None)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "<shmbus.Message {} from {}, seq {}, {} TLV item(s)>",
            self.domain().unwrap_or("?"),
            self.source_name().unwrap_or("?"),
            self.sequence,
            self.tlvs.bind(py).len()
        )
    }
}

/// Parses `bytes` as one whole message.
pub fn parse_message(py: Python<'_>, bytes: &[u8], verify: &str, sizes: &str) -> PyResult<Message> {
    let options = ParseOptions::new(self::verify(verify)?).with_size_policy(self::sizes(sizes)?);
    let msg = MessageView::parse(bytes, options).map_err(|e| ParseError::new_err(e.to_string()))?;
    let h = msg.header();
    let tlvs = PyList::empty(py);
    for t in msg.tlvs() {
        let tlv = Tlv {
            tlv_type: t.tlv_type,
            extended: t.form == Form::Extended,
            offset: t.offset,
            payload: PyBytes::new(py, t.payload).unbind(),
        };
        tlvs.append(Bound::new(py, tlv)?)?;
    }
    Ok(Message {
        relay_domain: h.relay_domain,
        version: h.version,
        source: h.source,
        flags: h.flags,
        sequence: h.sequence(),
        timestamp_ns: h.timestamp_ns(),
        payload_size: h.payload_size(),
        checksum: h.checksum(),
        tlvs: tlvs.unbind(),
    })
}

/// Parses `data` (bytes or any buffer: a record, a memoryview) as one
/// Protocol V2 message.
///
/// `verify`: `"zero"` (default: a stored checksum of 0 means not computed,
/// as hot-path producers leave it; any other must match), `"strict"` (must
/// match, as the reference parser), `"off"`. `sizes`: `"registry"`
/// (default) or `"legacy"` (also the reference's 56-byte Quote and
/// 170-byte ArbitrageSignal structs). Raises `ParseError` naming the first
/// check that failed.
#[pyfunction]
#[pyo3(signature = (data, *, verify = "zero", sizes = "registry"))]
pub fn parse(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    verify: &str,
    sizes: &str,
) -> PyResult<Message> {
    if let Ok(record) = data.downcast::<crate::lease::Record>() {
        return parse_message(py, record.borrow().bytes()?, verify, sizes);
    }
    if let Ok(bytes) = data.downcast::<PyBytes>() {
        return parse_message(py, bytes.as_bytes(), verify, sizes);
    }
    let buffer = pyo3::buffer::PyBuffer::<u8>::get(data)?;
    parse_message(py, &buffer.to_vec(py)?, verify, sizes)
}

/// A relay domain or source given as a number or a name.
fn code(
    value: &Bound<'_, PyAny>,
    name_of: fn(u8) -> Option<&'static str>,
    what: &str,
) -> PyResult<u8> {
    if let Ok(n) = value.extract::<u8>() {
        return Ok(n);
    }
    let name: String = value.extract()?;
    (0..=u8::MAX)
        .find(|&n| name_of(n) == Some(name.as_str()))
        .ok_or_else(|| PyValueError::new_err(format!("no {what} is called {name:?}")))
}

/// One item to build: a `Tlv`, or `(type, payload)` / `(type, payload,
/// extended)`.
fn item(value: &Bound<'_, PyAny>) -> PyResult<(u8, Vec<u8>, Option<bool>)> {
    if let Ok(tlv) = value.downcast::<Tlv>() {
        let t = tlv.get();
        return Ok((
            t.tlv_type,
            t.payload.bind(value.py()).as_bytes().to_vec(),
            Some(t.extended),
        ));
    }
    if let Ok((tlv_type, payload)) = value.extract::<(u8, Vec<u8>)>() {
        return Ok((tlv_type, payload, None));
    }
    let (tlv_type, payload, extended) = value.extract::<(u8, Vec<u8>, bool)>()?;
    Ok((tlv_type, payload, Some(extended)))
}

/// Builds a Protocol V2 message of `tlvs` (each a `Tlv`, `(type, payload)`
/// or `(type, payload, extended)`; the standard form up to 255 bytes
/// unless `extended` says otherwise).
///
/// `domain` and `source` are numbers or names (`"MarketData"`,
/// `"BinanceCollector"`). `checksum=True` computes the CRC-32, `False`
/// stores 0 (the hot path). With `into` (a claim, or any writable buffer)
/// the message is written there and its length returned; else it is
/// returned as bytes. Raises `ParseError` if it cannot be built (too
/// large, a fixed-size type of the wrong length, ...).
#[pyfunction]
#[pyo3(signature = (domain, source, tlvs = None, *, sequence = 0, timestamp_ns = 0, flags = 0,
                    version = None, checksum = true, sizes = "registry", into = None))]
#[allow(clippy::too_many_arguments)]
pub fn build(
    py: Python<'_>,
    domain: &Bound<'_, PyAny>,
    source: &Bound<'_, PyAny>,
    tlvs: Option<&Bound<'_, PyAny>>,
    sequence: u64,
    timestamp_ns: u64,
    flags: u8,
    version: Option<u8>,
    checksum: bool,
    sizes: &str,
    into: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyObject> {
    let domain = code(
        domain,
        |n| RelayDomain::from_u8(n).map(RelayDomain::name),
        "relay domain",
    )?;
    let source = code(
        source,
        |n| SourceType::from_u8(n).map(SourceType::name),
        "source",
    )?;
    let mut items = Vec::new();
    if let Some(tlvs) = tlvs {
        for value in tlvs.try_iter()? {
            items.push(item(&value?)?);
        }
    }
    let sizes = self::sizes(sizes)?;
    let write = |buf: &mut [u8]| -> PyResult<usize> {
        let mut b = MessageBuilder::new_raw(buf, domain, source)
            .sequence(sequence)
            .timestamp_ns(timestamp_ns)
            .flags(flags)
            .size_policy(sizes);
        if let Some(v) = version {
            b = b.version(v);
        }
        for (tlv_type, payload, extended) in &items {
            if let Some(extended) = extended {
                b = b.form(if *extended {
                    Form::Extended
                } else {
                    Form::Standard
                });
            }
            b = b.tlv(*tlv_type, payload);
        }
        b.finish(if checksum {
            Checksum::Compute
        } else {
            Checksum::Zero
        })
        .map_err(|e| ParseError::new_err(e.to_string()))
    };
    match into {
        Some(target) => {
            let buffer = pyo3::buffer::PyBuffer::<u8>::get(target)?;
            if buffer.readonly() || !buffer.is_c_contiguous() {
                return Err(PyValueError::new_err(
                    "into must be a writable contiguous buffer",
                ));
            }
            // SAFETY: `buffer` holds the exporter's buffer (a writable,
            // contiguous region of `len_bytes`) until it is dropped at the
            // end of this arm, and with the GIL held nothing else writes it.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(buffer.buf_ptr().cast::<u8>(), buffer.len_bytes())
            };
            let len = write(bytes)?;
            drop(buffer);
            Ok(len.into_pyobject(py)?.into_any().unbind())
        }
        None => {
            let needed = HEADER_LEN + items.iter().map(|(_, p, _)| p.len() + 5).sum::<usize>();
            let mut buf = vec![0u8; needed];
            let len = write(&mut buf)?;
            Ok(PyBytes::new(py, &buf[..len]).into_any().unbind())
        }
    }
}

fn fixed8(value: f64, what: &str) -> PyResult<Fixed8> {
    Fixed8::from_f64(value).ok_or_else(|| {
        PyValueError::new_err(format!("{what} {value} does not fit 8 decimals in an i64"))
    })
}

fn instrument(ticker: &str, venue: u16) -> PyResult<Instrument> {
    Instrument::coin(venue, ticker).ok_or_else(|| {
        PyValueError::new_err(format!(
            "ticker {ticker:?} is not 1 to 8 ASCII letters or digits"
        ))
    })
}

fn side(name: &str) -> PyResult<Side> {
    match name {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        other => Err(PyValueError::new_err(format!(
            "side {other:?} is neither 'buy' nor 'sell'"
        ))),
    }
}

/// A Trade item (type 1) for `build`: `(1, payload)`.
#[pyfunction]
#[pyo3(signature = (ticker, *, venue, price, volume, side, execution_timestamp_ns = 0))]
pub fn trade_tlv<'py>(
    py: Python<'py>,
    ticker: &str,
    venue: u16,
    price: f64,
    volume: f64,
    side: &str,
    execution_timestamp_ns: u64,
) -> PyResult<(u8, Bound<'py, PyBytes>)> {
    let trade = TradeTlv::new(
        instrument(ticker, venue)?,
        fixed8(price, "price")?,
        fixed8(volume, "volume")?,
        self::side(side)?,
        execution_timestamp_ns,
    );
    Ok((
        TradeTlv::TLV_TYPE.number(),
        PyBytes::new(py, zerocopy_bytes(&trade)),
    ))
}

/// A Quote item (type 2) for `build`: `(2, payload)`.
#[pyfunction]
#[pyo3(signature = (ticker, *, venue, bid_price, bid_size, ask_price, ask_size, quote_timestamp_ns = 0))]
#[allow(clippy::too_many_arguments)]
pub fn quote_tlv<'py>(
    py: Python<'py>,
    ticker: &str,
    venue: u16,
    bid_price: f64,
    bid_size: f64,
    ask_price: f64,
    ask_size: f64,
    quote_timestamp_ns: u64,
) -> PyResult<(u8, Bound<'py, PyBytes>)> {
    let quote = QuoteTlv::new(
        instrument(ticker, venue)?,
        fixed8(bid_price, "bid_price")?,
        fixed8(bid_size, "bid_size")?,
        fixed8(ask_price, "ask_price")?,
        fixed8(ask_size, "ask_size")?,
        quote_timestamp_ns,
    );
    Ok((
        QuoteTlv::TLV_TYPE.number(),
        PyBytes::new(py, zerocopy_bytes(&quote)),
    ))
}

fn zerocopy_bytes<T: TlvPayload>(payload: &T) -> &[u8] {
    payload.as_bytes()
}

/// The fields of a Trade, Quote or OrderBook payload.
fn decode<'py>(
    py: Python<'py>,
    tlv_type: u8,
    payload: &[u8],
) -> PyResult<Option<Bound<'py, PyDict>>> {
    let d = PyDict::new(py);
    if tlv_type == TradeTlv::TLV_TYPE.number() {
        let Some(t) = TradeTlv::view(payload) else {
            return Ok(None);
        };
        d.set_item("asset_id", t.asset_id.get())?;
        d.set_item("price", t.price.get())?;
        d.set_item("volume", t.volume.get())?;
        d.set_item("execution_timestamp_ns", t.execution_timestamp_ns.get())?;
        d.set_item("venue_id", t.venue_id.get())?;
        d.set_item("asset_type", t.asset_type)?;
        d.set_item("reserved", t.reserved)?;
        d.set_item("side", t.side)?;
        d.set_item(
            "ticker",
            t.instrument().ticker().map(|k| k.as_str().to_owned()),
        )?;
    } else if tlv_type == QuoteTlv::TLV_TYPE.number() {
        let Some(q) = QuoteTlv::view(payload) else {
            return Ok(None);
        };
        d.set_item("asset_id", q.asset_id.get())?;
        d.set_item("bid_price", q.bid_price.get())?;
        d.set_item("bid_size", q.bid_size.get())?;
        d.set_item("ask_price", q.ask_price.get())?;
        d.set_item("ask_size", q.ask_size.get())?;
        d.set_item("quote_timestamp_ns", q.quote_timestamp_ns.get())?;
        d.set_item("venue_id", q.venue_id.get())?;
        d.set_item("asset_type", q.asset_type)?;
        d.set_item("reserved", q.reserved)?;
        d.set_item(
            "ticker",
            q.instrument().ticker().map(|k| k.as_str().to_owned()),
        )?;
    } else if tlv_type == OrderBookTlv::TLV_TYPE.number() {
        let Some(b) = OrderBookTlv::view(payload) else {
            return Ok(None);
        };
        d.set_item("snapshot_timestamp_ns", b.snapshot_timestamp_ns.get())?;
        d.set_item("sequence", b.sequence.get())?;
        d.set_item("precision_factor", b.precision_factor.get())?;
        d.set_item("asset_id", b.asset_id.get())?;
        d.set_item("venue_id", b.venue_id.get())?;
        d.set_item("asset_type", b.asset_type)?;
        d.set_item("reserved", b.reserved)?;
        let levels = |side: &[OrderLevel]| -> Vec<(i64, i64, u32)> {
            side.iter()
                .map(|l| (l.price().raw(), l.size().raw(), l.order_count()))
                .collect()
        };
        d.set_item("bids", levels(b.bids()))?;
        d.set_item("asks", levels(b.asks()))?;
        d.set_item(
            "ticker",
            b.instrument().ticker().map(|k| k.as_str().to_owned()),
        )?;
    } else {
        return Ok(None);
    }
    Ok(Some(d))
}
