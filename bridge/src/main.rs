//! `shmbus-bridge`: bridges chosen topics of a namespace to other hosts
//! over Zenoh, until SIGINT or SIGTERM.
//!
//! ```text
//! shmbus-bridge --namespace prod --listen tcp/0.0.0.0:7447 --allow market_data --allow 'signals*'
//! shmbus-bridge --namespace prod --connect tcp/10.0.0.1:7447 --allow market_data
//! shmbus-bridge --config bridge.toml
//! shmbus-bridge --namespace prod --stats
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;
use shmbus::bridge_counters;
use shmbus_bridge::{Bridge, Config};

/// The command line; flags add to (lists) or override (values) the file.
#[derive(Debug, Parser)]
#[command(
    name = "shmbus-bridge",
    version,
    about = "Bridges chosen shmbus topics between hosts over Zenoh"
)]
struct Cli {
    /// TOML configuration file (keys as the long flags, with underscores)
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// the local namespace (also the namespace part of the Zenoh keys)
    #[arg(short, long, value_name = "NS")]
    namespace: Option<String>,
    /// base directory [default: $SHMBUS_DIR, else /dev/shm/shmbus-<uid>]
    #[arg(long, value_name = "BASE")]
    dir: Option<PathBuf>,
    /// Zenoh endpoint to listen on, e.g. tcp/0.0.0.0:7447 (repeatable)
    #[arg(short, long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// Zenoh endpoint of a peer to connect to (repeatable)
    #[arg(short = 'e', long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// find peers by UDP multicast scouting (off by default)
    #[arg(long)]
    multicast_scouting: bool,
    /// topic to bridge, a name or a glob with * and ? (repeatable)
    #[arg(short, long, value_name = "PATTERN")]
    allow: Vec<String>,
    /// topic to send express, unbatched: lower latency, less throughput
    #[arg(long, value_name = "PATTERN")]
    express: Vec<String>,
    /// Zenoh's lease: a peer silent this long is taken for gone [default: 10000]
    #[arg(long, value_name = "MS")]
    lease_ms: Option<u64>,
    /// how long a Backpressure topic's exporter holds its publishers back
    /// waiting for a lost importer to return (0: never) [default: 5000]
    #[arg(long, value_name = "MS")]
    reconnect_hold_ms: Option<u64>,
    /// print the bridge counters of the namespace as JSON and exit
    #[arg(long)]
    stats: bool,
}

fn config(cli: Cli) -> Result<(Config, bool), String> {
    let mut cfg = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Config::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Config::default(),
    };
    if cli.namespace.is_some() {
        cfg.namespace = cli.namespace;
    }
    if cli.dir.is_some() {
        cfg.dir = cli.dir;
    }
    cfg.listen.extend(cli.listen);
    cfg.connect.extend(cli.connect);
    cfg.multicast_scouting |= cli.multicast_scouting;
    cfg.allow.extend(cli.allow);
    cfg.express.extend(cli.express);
    if cli.lease_ms.is_some() {
        cfg.lease_ms = cli.lease_ms;
    }
    if cli.reconnect_hold_ms.is_some() {
        cfg.reconnect_hold_ms = cli.reconnect_hold_ms;
    }
    Ok((cfg, cli.stats))
}

fn print_stats(cfg: &Config) -> Result<(), String> {
    let ns = cfg.namespace.as_deref().ok_or("no namespace given")?;
    let bus = match &cfg.dir {
        Some(dir) => shmbus::Bus::at(dir, ns),
        None => shmbus::Bus::open(ns),
    }
    .map_err(|e| e.to_string())?;
    let topics: Vec<serde_json::Value> = bridge_counters::read_all(bus.namespace())
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(topic, counters)| match counters {
            Ok(c) => serde_json::json!({
                "topic": topic,
                "running": c.bridged,
                "pid": c.pid,
                "exported": c.exported,
                "exported_bytes": c.exported_bytes,
                "export_missed": c.export_missed,
                "echo_skipped": c.echo_skipped,
                "imported": c.imported,
                "imported_bytes": c.imported_bytes,
                "gaps": c.gaps,
                "rejected": c.rejected,
                "origins": c.origins.iter().map(|p| serde_json::json!({
                    "origin": format!("{:016x}", p.origin),
                    "last_seq": p.last_seq,
                })).collect::<Vec<_>>(),
            }),
            Err(e) => serde_json::json!({ "topic": topic, "error": e.to_string() }),
        })
        .collect();
    let json = serde_json::json!({ "namespace": ns, "topics": topics });
    println!("{json:#}");
    Ok(())
}

fn main() -> ExitCode {
    let (cfg, stats) = match config(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shmbus-bridge: {e}");
            return ExitCode::from(2);
        }
    };
    if stats {
        return match print_stats(&cfg) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("shmbus-bridge: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("shmbus-bridge: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let bridge = match Bridge::start(cfg) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("shmbus-bridge: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("shmbus-bridge: running (origin {:016x})", bridge.origin());
    match bridge.run(&stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmbus-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}
