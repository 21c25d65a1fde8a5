//! A strategy process: subscribes to the `market_data` topic that
//! `market_data_feed` publishes, parses each Protocol V2 message where it
//! lies in shared memory (`MessageView`, no copy under backpressure), and
//! prints a summary every `--every` messages and when the feed's END record
//! arrives: trades seen, last trade, volume, records missed, and the age of
//! the last message (its header timestamp against this host's clock). With
//! `--name NAME` it is a durable subscriber: stopped (or killed), it keeps
//! its place, and started again under the same name it resumes exactly
//! there; under backpressure it holds the feed back while it is away.
//! `--oldest` starts a new subscriber at the oldest record still in the log
//! instead of the next one published. It uses the default namespace
//! (`/dev/shm/shmbus-<uid>/default`, or `$SHMBUS_DIR/default`), like the feed:
//!
//! ```text
//! cargo run --release --example strategy -- --name s1 &
//! cargo run --release --example market_data_feed -- --count 1000000
//! ```
//!
//! Options: `--name NAME`, `--oldest`, `--every N` (100,000),
//! `--policy backpressure|overwrite` (as the feed's), `--idle-exit SECS`
//! (leave after that long without a record; 0, the default, waits forever),
//! `--namespace NS`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shmbus::record::{Fixed8, MessageView, ParseOptions, Side, TradeTlv, Verify};
use shmbus::segment::DEFAULT_NAMESPACE;
use shmbus::{Bus, Policy, RecvError, StartAt, TopicConfig, WaitStrategy};

/// The feed's end-of-stream record type.
const END: u16 = 0xFFFF;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "\
strategy: reads the market_data topic, parses each trade in place, and
prints a summary every --every messages and at the feed's END record.

usage: cargo run --release --example strategy -- [options]

  --name NAME                  a durable subscriber: resumes where NAME stopped
  --oldest                     start at the oldest record still in the log
  --every N                    messages between summaries [100000]
  --policy backpressure|overwrite
                               the topic's policy, as the feed's [backpressure]
  --idle-exit SECS             leave after SECS without a record; 0 waits forever [0]
  --namespace NS               namespace under $SHMBUS_DIR or /dev/shm/shmbus-<uid> [default]
  -h, --help                   print this help";

struct Options {
    namespace: String,
    name: Option<String>,
    oldest: bool,
    every: u64,
    policy: Policy,
    idle_exit: Option<Duration>,
}

fn options() -> Result<Options> {
    let mut o = Options {
        namespace: DEFAULT_NAMESPACE.to_owned(),
        name: None,
        oldest: false,
        every: 100_000,
        policy: Policy::Backpressure,
        idle_exit: None,
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
            "--name" => o.name = Some(value()?),
            "--oldest" => o.oldest = true,
            "--every" => o.every = value()?.parse::<u64>()?.max(1),
            "--policy" => {
                o.policy = match value()?.as_str() {
                    "backpressure" => Policy::Backpressure,
                    "overwrite" => Policy::Overwrite,
                    other => return Err(format!("unknown policy {other:?}").into()),
                }
            }
            "--idle-exit" => {
                let secs: u64 = value()?.parse()?;
                o.idle_exit = (secs > 0).then(|| Duration::from_secs(secs));
            }
            other => return Err(format!("unknown argument {other} (see --help)").into()),
        }
    }
    Ok(o)
}

/// What the strategy has seen so far.
#[derive(Default)]
struct Stats {
    trades: u64,
    other: u64,
    invalid: u64,
    missed: u64,
    buys: u64,
    volume: i128,
    last: Option<(String, Fixed8, Option<Side>)>,
    last_age_ns: i64,
}

impl Stats {
    /// Takes one message; false if it was the END record.
    fn on_record(&mut self, record_type: u16, bytes: &[u8]) -> bool {
        if record_type == END {
            return false;
        }
        // The feed stores no checksum (the in-host hot path): accept 0.
        let Ok(msg) = MessageView::parse(bytes, ParseOptions::new(Verify::ZeroMeansUnchecked))
        else {
            self.invalid += 1;
            return true;
        };
        let Some(trade) = msg.first::<TradeTlv>() else {
            self.other += 1;
            return true;
        };
        self.trades += 1;
        self.buys += u64::from(trade.side() == Some(Side::Buy));
        self.volume += i128::from(trade.volume().raw());
        let ticker = trade
            .instrument()
            .ticker()
            .map_or_else(|| "?".to_owned(), |t| t.to_string());
        self.last = Some((ticker, trade.price(), trade.side()));
        self.last_age_ns = now_ns() as i64 - msg.header().timestamp_ns() as i64;
        true
    }

    fn print(&self, position: u64, elapsed: Duration) {
        let last = match &self.last {
            Some((ticker, price, side)) => {
                let side = match side {
                    Some(Side::Buy) => "buy",
                    Some(Side::Sell) => "sell",
                    None => "side?",
                };
                format!("last {ticker} {side} at {price}")
            }
            None => "no trade yet".to_owned(),
        };
        println!(
            "{:>10} trades ({} buys, volume {:.2}), {last}, age {:.1} us, missed {}, invalid {}, other {}, at record {position}, {:.1} s",
            self.trades,
            self.buys,
            self.volume as f64 / Fixed8::SCALE as f64,
            self.last_age_ns as f64 / 1e3,
            self.missed,
            self.invalid,
            self.other,
            elapsed.as_secs_f64()
        );
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strategy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let o = options()?;
    let bus = Bus::open(&o.namespace)?;
    // Create-or-open with the feed's configuration: whoever starts first
    // creates the topic.
    let config = TopicConfig {
        policy: o.policy,
        ..TopicConfig::default()
    };
    let topic = bus.topic("market_data", &config)?;
    let start = if o.oldest {
        StartAt::Oldest
    } else {
        StartAt::Tail
    };
    let mut sub = match &o.name {
        Some(name) => topic.durable_subscriber(name, start)?,
        None => topic.subscriber(start)?,
    };
    println!(
        "strategy pid {}: subscribed to market_data in {} at record {}{}",
        std::process::id(),
        bus.namespace().path().display(),
        sub.position(),
        o.name
            .as_ref()
            .map_or(String::new(), |n| format!(" as durable \"{n}\""))
    );

    let mut stats = Stats::default();
    let mut buf = vec![0u8; topic.config().max_payload as usize];
    let started = Instant::now();
    let mut last_record = Instant::now();
    // Sleep on the topic's futex when idle: no CPU until the feed publishes.
    let wait = WaitStrategy::BLOCKING;
    let poll = Duration::from_secs(1);
    loop {
        // Under backpressure a record cannot change while it is read: parse
        // it in place. Under overwrite, copy it out (the copy is validated,
        // never torn).
        let more = match sub.policy() {
            Policy::Backpressure => match sub.read_timeout(wait, poll) {
                Ok(rec) => Ok(stats.on_record(rec.record_type(), &rec)),
                Err(e) => Err(e),
            },
            Policy::Overwrite => match sub.recv_timeout(&mut buf, wait, poll) {
                Ok((record_type, len)) => Ok(stats.on_record(record_type, &buf[..len])),
                Err(e) => Err(e),
            },
        };
        match more {
            Ok(true) => {
                last_record = Instant::now();
                let seen = stats.trades + stats.other + stats.invalid;
                if seen % o.every == 0 {
                    stats.print(sub.position(), started.elapsed());
                }
            }
            Ok(false) => {
                println!("end of stream");
                break;
            }
            Err(RecvError::Lapped { missed }) => {
                if stats.missed == 0 {
                    eprintln!(
                        "lapped by the feed: {missed} records missed (losses are counted in the summaries)"
                    );
                }
                stats.missed += missed;
            }
            Err(RecvError::TimedOut) => {
                if o.idle_exit
                    .is_some_and(|idle| last_record.elapsed() >= idle)
                {
                    println!(
                        "no record for {:?}, leaving",
                        o.idle_exit.unwrap_or_default()
                    );
                    break;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    stats.print(sub.position(), started.elapsed());
    if let Some(name) = &o.name {
        println!(
            "durable subscriber \"{name}\" keeps its place at record {} (under backpressure it holds the feed back meanwhile): start it again with --name {name} to resume, or drop it (market_data_feed --drop-durable {name})",
            sub.position()
        );
    }
    Ok(())
}
