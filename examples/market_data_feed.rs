//! A market-data feed handler: publishes Protocol V2 trade messages on the
//! `market_data` topic, each built by `MessageBuilder` straight into a slot
//! claimed in the shared-memory log (no intermediate buffer, no allocation,
//! no system call unless a subscriber sleeps on the futex), then one END
//! record (record type 0xFFFF, empty) so that subscribers know the stream is
//! over. It opens the bus of
//! the default namespace (`/dev/shm/shmbus-<uid>/default`, or `$SHMBUS_DIR/default`;
//! `--namespace` picks another) and creates the topic if it does not exist.
//! Under `--policy backpressure` (the default) the feed waits for the slowest
//! subscriber, including a durable one that is stopped (detached); under
//! `--policy overwrite` it never waits and slow subscribers are told what
//! they missed. Start the strategies first, with the same policy:
//!
//! ```text
//! cargo run --release --example strategy -- --name s1 &
//! cargo run --release --example market_data_feed -- --count 1000000
//! ```
//!
//! When the log is full the feed says which subscriber holds it back
//! (`Publisher::holding_back`). A durable subscriber that was stopped keeps
//! its place and holds every later feed back until it resumes; a feed
//! started with `--drop-durable NAME` first drops it (`Topic::drop_durable`:
//! refused while a live process holds the name).
//!
//! Options: `--count N` (1,000,000), `--rate MSGS_PER_SEC` (0, the default,
//! publishes as fast as subscribers allow), `--policy backpressure|overwrite`,
//! `--drop-durable NAME` (repeatable), `--namespace NS`. Topics are
//! long-lived: the feed leaves `market_data` in place for the next run
//! (`Bus::remove_namespace` removes a namespace no live process uses).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shmbus::record::{
    venue, Checksum, Fixed8, Instrument, MessageBuilder, RelayDomain, Side, SourceType, TlvPayload,
    TradeTlv,
};
use shmbus::segment::DEFAULT_NAMESPACE;
use shmbus::{Bus, ClaimError, Policy, Publisher, TopicConfig, WaitStrategy};

/// Record type of a market-data message (its relay domain, as the router
/// sets it) and of the end-of-stream record.
const MARKET_DATA: u16 = RelayDomain::MarketData as u16;
const END: u16 = 0xFFFF;
/// A message with one trade: header, 2-byte TLV header, 40-byte payload.
const TRADE_MESSAGE_LEN: usize = TradeTlv::MESSAGE_LEN;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "\
market_data_feed: publishes Protocol V2 trades on the market_data topic,
then an END record. Start the strategies first.

usage: cargo run --release --example market_data_feed -- [options]

  --count N                    trades to publish [1000000]
  --rate MSGS_PER_SEC          pace; 0 publishes as fast as subscribers allow [0]
  --policy backpressure|overwrite
                               the topic's policy, as the strategies' [backpressure]
  --drop-durable NAME          first drop the detached durable subscriber NAME,
                               which holds a backpressure feed back (repeatable)
  --namespace NS               namespace under $SHMBUS_DIR or /dev/shm/shmbus-<uid> [default]
  -h, --help                   print this help";

struct Options {
    namespace: String,
    count: u64,
    rate: u64,
    policy: Policy,
    drop_durable: Vec<String>,
}

fn options() -> Result<Options> {
    let mut o = Options {
        namespace: DEFAULT_NAMESPACE.to_owned(),
        count: 1_000_000,
        rate: 0,
        policy: Policy::Backpressure,
        drop_durable: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--namespace" => o.namespace = value()?,
            "--count" => o.count = value()?.parse()?,
            "--rate" => o.rate = value()?.parse()?,
            "--policy" => o.policy = policy(&value()?)?,
            "--drop-durable" => o.drop_durable.push(value()?),
            other => return Err(format!("unknown argument {other} (see --help)").into()),
        }
    }
    Ok(o)
}

fn policy(name: &str) -> Result<Policy> {
    match name {
        "backpressure" => Ok(Policy::Backpressure),
        "overwrite" => Ok(Policy::Overwrite),
        other => Err(format!("policy {other:?} is neither backpressure nor overwrite").into()),
    }
}

/// Wall-clock nanoseconds: the header timestamp, comparable across processes.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// How long a claim waits before the feed says it is being held back.
const PATIENCE: Duration = Duration::from_secs(2);

/// Says who holds the feed back, each time that changes (`last`: the
/// slot and cursor said last).
fn held_back(p: &Publisher, last: &mut Option<(usize, u64)>) {
    let Some(who) = p.holding_back() else {
        return;
    };
    if *last == Some((who.slot, who.cursor)) {
        return;
    }
    *last = Some((who.slot, who.cursor));
    eprintln!("waiting for {who}");
    if let (Some(name), false) = (&who.name, who.alive) {
        eprintln!(
            "  it left and keeps its place: start it again (strategy --name {name}) to resume, \
             or run the feed with --drop-durable {name} to drop it"
        );
    } else if !who.alive {
        eprintln!("  its process died: the feed frees its slot within milliseconds");
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("market_data_feed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let o = options()?;
    let bus = Bus::open(&o.namespace)?;
    let config = TopicConfig {
        policy: o.policy,
        ..TopicConfig::default()
    };
    let topic = bus.topic("market_data", &config)?;
    for name in &o.drop_durable {
        topic.drop_durable(name)?;
        println!("dropped durable subscriber \"{name}\" of market_data");
    }
    let mut p = topic.publisher()?;
    println!(
        "feed pid {}: {} topic market_data in {} ({:?}, {} slots)",
        std::process::id(),
        if topic.was_created() {
            "created"
        } else {
            "opened"
        },
        bus.namespace().path().display(),
        o.policy,
        config.slots,
    );

    let instruments = ["BTC", "ETH", "SOL"]
        .map(|t| Instrument::coin(venue::BINANCE, t).expect("short ascii ticker"));
    let mut prices = [65_000.0, 3_500.0, 150.0].map(|p| Fixed8::from_f64(p).expect("price"));
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut said = None;
    let started = Instant::now();
    for i in 0..o.count {
        // Pace to `--rate`: message `i` is due `i / rate` seconds in.
        if let Some(ns) = i.saturating_mul(1_000_000_000).checked_div(o.rate) {
            let due = started + Duration::from_nanos(ns);
            let now = Instant::now();
            if due > now + Duration::from_micros(200) {
                std::thread::sleep(due - now);
            }
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
        // A random walk of one basis point per trade.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let k = (rng % 3) as usize;
        let price = prices[k].raw();
        let step = price / 10_000 * (((rng >> 8) % 3) as i64 - 1);
        prices[k] = Fixed8::from_raw((price + step).max(1));
        let ts = now_ns();

        // Claim a slot (`p.claim_blocking(len, wait)` would wait without
        // bound; bounded waits let the feed say who holds it back), build
        // the message in it, commit.
        loop {
            let claimed = match p.claim_timeout(TRADE_MESSAGE_LEN, WaitStrategy::BACKOFF, PATIENCE)
            {
                Ok(mut slot) => {
                    let len = MessageBuilder::new(
                        &mut slot,
                        RelayDomain::MarketData,
                        SourceType::BinanceCollector,
                    )
                    .sequence(i)
                    .timestamp_ns(ts)
                    .typed_in_place(|t: &mut TradeTlv| {
                        t.set_instrument(instruments[k]);
                        t.set_price(prices[k]);
                        t.set_volume(Fixed8::from_raw(((rng >> 20) % 500_000_000) as i64 + 1));
                        t.set_side(if rng & 1 == 0 { Side::Buy } else { Side::Sell });
                        t.execution_timestamp_ns.set(ts);
                    })
                    // On error the claim is dropped: subscribers see a skip record.
                    .finish(Checksum::Zero)?;
                    debug_assert_eq!(len, TRADE_MESSAGE_LEN);
                    slot.set_record_type(MARKET_DATA);
                    slot.commit()?;
                    true
                }
                Err(ClaimError::TimedOut) => false,
                Err(e) => return Err(e.into()),
            };
            if claimed {
                break;
            }
            held_back(&p, &mut said);
        }
    }
    p.send_blocking(END, &[], WaitStrategy::BACKOFF)?;

    let secs = started.elapsed().as_secs_f64();
    println!(
        "published {} trades of {TRADE_MESSAGE_LEN} bytes in {secs:.3} s ({:.0} messages/s), then END",
        o.count,
        o.count as f64 / secs.max(1e-9)
    );
    Ok(())
}
