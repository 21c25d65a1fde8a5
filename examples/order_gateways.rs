//! Order gateways: a strategy process sends Protocol V2 orders to the work
//! queue `execution` and a pool of order-gateway processes drains it, each
//! order to exactly one gateway: take it, handle it, acknowledge it. Each
//! gateway sends an execution report for every order it handles, before
//! acknowledging it, on an SPSC channel of its own (`execution_reports.gN`)
//! that this process reads, as a risk process would. With `--kill-one`,
//! gateway 2 stops mid-stream holding an order it has handled but not
//! acknowledged, and this process SIGKILLs it: the queue gives that order
//! back and another gateway takes it, flagged `redelivered` (at-least-once,
//! so that order is handled twice). This process knows how many orders
//! there are: once every one has been reported (and the order the killed
//! gateway held reported again), it sends one end marker per live gateway.
//! Then it prints what was sent, what each gateway handled, whether every
//! order was handled at least once (the exit status is nonzero if not), the
//! duplicates and the redelivered orders. It runs on the default namespace (`/dev/shm/shmbus-<uid>/default`,
//! or `$SHMBUS_DIR/default`; `--namespace` picks another), and removes the
//! queue and the channels when the run ends, fails or is interrupted
//! (Ctrl-C, SIGTERM).
//!
//! Run: `cargo run --release --example order_gateways -- --kill-one`
//! (`-- --help` for the options).

use std::process::{Child, Command, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shmbus::record::{
    Checksum, Fixed8, MessageBuilder, MessageView, OrderRequestTlv, ParseOptions, RelayDomain,
    Side, SourceType, TlvType, Verify,
};
use shmbus::segment::DEFAULT_NAMESPACE;
use shmbus::{Bus, Channel, Consumer, Queue, QueueConfig, RecvError, SpscConfig, WaitStrategy};

/// The work queue the strategy sends its orders to.
const QUEUE: &str = "execution";
/// Record type of orders and execution reports (their relay domain, as the
/// router sets it) and of the end marker, one per gateway, that tells a
/// gateway to leave.
const EXECUTION: u16 = RelayDomain::Execution as u16;
const END: u16 = 0xFFFF;
/// An order: the 32-byte header, a 2-byte TLV header, the 32-byte order.
const ORDER_LEN: usize = 32 + 2 + 32;
/// An execution report: the header, a 2-byte TLV header, 48 bytes.
const REPORT_PAYLOAD_LEN: usize = 48;
const REPORT_LEN: usize = 32 + 2 + REPORT_PAYLOAD_LEN;
/// Report flag: the order came to this gateway redelivered.
const REDELIVERED: u8 = 1;
const MAX_GATEWAYS: usize = 8;
/// The gateway `--kill-one` stops and kills.
const VICTIM: usize = 2;
/// How many redelivered orders the summary lists one by one.
const LISTED: usize = 5;
/// Reports the parent reads from one gateway before it looks at the next
/// (and at the processes).
const REPORTS_PER_LOOK: usize = 4096;
/// The run fails if no report arrives for this long before the end.
const STUCK_AFTER: Duration = Duration::from_secs(10);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "\
order_gateways: a strategy process sends orders to the work queue execution,
order-gateway processes drain it (each order to one gateway) and report each
order they handle; prints who handled what, duplicates and redeliveries.

usage: cargo run --release --example order_gateways -- [options]

  --orders N         orders the strategy sends [200000]
  --gateways N       order-gateway processes, 1..=8 [3]
  --kill-one         gateway 2 stops at an order it has handled but not
                     acknowledged, and is SIGKILLed: the queue redelivers it
  --kill-at ID       gateway 2 stops at the first order it takes numbered ID
                     or above [orders / 2]
  --namespace NS     namespace under $SHMBUS_DIR or /dev/shm/shmbus-<uid> [default]
  -h, --help         print this help

The queue (execution) and the report channels (execution_reports.gN) are
removed when the run ends, fails or is interrupted; a second run while one is
going is refused.";

/// Which process this is.
#[derive(Clone, Copy)]
enum Role {
    /// Starts the others, reads the reports, prints the summary, cleans up.
    Parent,
    Strategy,
    /// Gateway number `n`, 1-based.
    Gateway(usize),
}

struct Options {
    namespace: String,
    orders: u64,
    gateways: usize,
    kill_one: bool,
    kill_at: Option<u64>,
    role: Role,
    /// The core a child pins itself to.
    core: Option<usize>,
    /// A gateway that stops, without acknowledging it, at the first order
    /// it takes numbered `hold_from` or above.
    hold_from: Option<u64>,
}

fn options() -> Result<Options> {
    let mut o = Options {
        namespace: DEFAULT_NAMESPACE.to_owned(),
        orders: 200_000,
        gateways: 3,
        kill_one: false,
        kill_at: None,
        role: Role::Parent,
        core: None,
        hold_from: None,
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
            "--orders" => o.orders = value()?.parse()?,
            "--gateways" => o.gateways = value()?.parse()?,
            "--kill-one" => o.kill_one = true,
            "--kill-at" => o.kill_at = Some(value()?.parse()?),
            // The children's arguments.
            "--strategy" => o.role = Role::Strategy,
            "--gateway" => o.role = Role::Gateway(value()?.parse()?),
            "--core" => o.core = Some(value()?.parse()?),
            "--hold-from" => o.hold_from = Some(value()?.parse()?),
            other => return Err(format!("unknown argument {other} (see --help)").into()),
        }
    }
    if o.orders == 0 {
        return Err("--orders must be at least 1".into());
    }
    if !(1..=MAX_GATEWAYS).contains(&o.gateways) {
        return Err(format!("--gateways must be 1..={MAX_GATEWAYS}").into());
    }
    if o.kill_one && o.gateways < VICTIM {
        return Err(
            "--kill-one needs at least 2 gateways: one to kill, one to redeliver to".into(),
        );
    }
    if o.kill_at.is_some_and(|id| id >= o.orders) {
        return Err("--kill-at must be below --orders".into());
    }
    Ok(o)
}

/// The channel gateway `n` sends its execution reports on.
fn report_channel(n: usize) -> String {
    format!("execution_reports.g{n}")
}

fn report_config() -> SpscConfig {
    SpscConfig::with_capacity(1 << 22)
}

/// Wall-clock nanoseconds: the header timestamp, comparable across processes.
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Pins this thread to `core` by id (not through `get_core_ids()` here: a
/// child is offered only its parent's affinity mask).
fn pin(core: Option<usize>) {
    if let Some(core) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
            eprintln!("could not pin to core {core}; running unpinned");
        }
    }
}

/// Set by SIGINT / SIGTERM: the parent stops, and the rings are removed.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Turns SIGINT and SIGTERM into [`INTERRUPTED`] for this process.
fn catch_interrupts() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` only stores to an atomic, which is
        // async-signal-safe; the handler lives as long as the process.
        unsafe {
            libc::signal(
                signal,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}

fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        return Err("interrupted; the queue and the report channels are removed".into());
    }
    Ok(())
}

/// A child's set-up: Ctrl-C reaches the whole process group, and the
/// parent reports it and cleans up; a child dies with its parent.
fn child_setup() {
    // SAFETY: ignoring a signal installs no handler code.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and changes
    // nothing but this process's parent-death signal.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("order_gateways: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let o = options()?;
    let bus = Bus::open(&o.namespace)?;
    match o.role {
        Role::Parent => parent(&bus, &o),
        Role::Strategy => {
            child_setup();
            pin(o.core);
            strategy(&bus, &o)
        }
        Role::Gateway(n) => {
            child_setup();
            pin(o.core);
            gateway(&bus, &o, n)
        }
    }
}

// ---------------------------------------------------------------- strategy

/// The order inside an OrderRequest TLV (the reference gives the type its
/// 32 bytes but no field layout): order id, limit price and quantity
/// (Fixed8, little-endian), side, then zeroes.
fn write_order(order: &mut OrderRequestTlv, id: u64, price: Fixed8, quantity: Fixed8, side: Side) {
    order.bytes[..8].copy_from_slice(&id.to_le_bytes());
    order.bytes[8..16].copy_from_slice(&price.raw().to_le_bytes());
    order.bytes[16..24].copy_from_slice(&quantity.raw().to_le_bytes());
    order.bytes[24] = side as u8;
}

/// Sends orders `0 .. --orders`, each built in the slot it claims in the
/// queue, then leaves (the parent sends the end markers once every order
/// is accounted for).
fn strategy(bus: &Bus, o: &Options) -> Result<()> {
    let mut orders = bus.open_queue(QUEUE)?.producer()?;
    let mut price = Fixed8::from_f64(65_000.0).ok_or("price")?;
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for id in 0..o.orders {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let step = price.raw() / 10_000 * ((rng % 3) as i64 - 1);
        price = Fixed8::from_raw((price.raw() + step).max(1));
        let quantity = Fixed8::from_raw(((rng >> 8) % 100_000_000) as i64 + 1);
        let side = if rng >> 63 == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        // Waits (and gives back a dead gateway's orders) while every slot
        // holds an order not yet acknowledged.
        let mut claim = orders.claim_blocking(ORDER_LEN, WaitStrategy::BACKOFF)?;
        let len = MessageBuilder::new(
            &mut claim,
            RelayDomain::Execution,
            SourceType::ArbitrageStrategy,
        )
        .sequence(id)
        .timestamp_ns(now_ns())
        .typed_in_place(|order: &mut OrderRequestTlv| write_order(order, id, price, quantity, side))
        .finish(Checksum::Zero)?;
        debug_assert_eq!(len, ORDER_LEN);
        claim.set_record_type(EXECUTION);
        claim.commit()?;
    }
    Ok(())
}

// ----------------------------------------------------------------- gateway

/// The order id of an order message, checked.
fn order_id(bytes: &[u8]) -> Result<u64> {
    // The strategy stores no checksum (the in-host hot path): accept 0.
    let msg = MessageView::parse(bytes, ParseOptions::new(Verify::ZeroMeansUnchecked))?;
    if msg.header().relay_domain != RelayDomain::Execution as u8 {
        return Err("an order outside the execution domain".into());
    }
    let order = msg.first::<OrderRequestTlv>().ok_or("not an order")?;
    let id = u64::from_le_bytes(order.bytes[..8].try_into()?);
    if id != msg.header().sequence() {
        return Err(format!(
            "order {id} in a message of sequence {}",
            msg.header().sequence()
        )
        .into());
    }
    Ok(id)
}

/// The report inside an ExecutionReport TLV (48 bytes, no field layout in
/// the reference): order id, the queue sequence it was taken at, the
/// gateway's number, flags ([`REDELIVERED`]), then zeroes.
fn write_report(report: &mut [u8], id: u64, sequence: u64, gateway: usize, redelivered: bool) {
    report[..8].copy_from_slice(&id.to_le_bytes());
    report[8..16].copy_from_slice(&sequence.to_le_bytes());
    report[16] = gateway as u8;
    report[17] = if redelivered { REDELIVERED } else { 0 };
}

/// Takes orders until its end marker: checks each, reports it, then
/// acknowledges it. With `--hold-from ID` it stops at the first order it
/// takes numbered ID or above, handled and reported but never
/// acknowledged, and waits to be killed.
fn gateway(bus: &Bus, o: &Options, n: usize) -> Result<()> {
    let mut orders = bus.open_queue(QUEUE)?.consumer()?;
    let mut reports = bus.open_spsc(&report_channel(n))?.producer()?;
    let mut handled = 0u64;
    loop {
        // Sleeps on the queue's futex while it is empty, and gives back the
        // orders of a gateway that died holding them.
        let order = orders.take_blocking(WaitStrategy::BLOCKING)?;
        if order.record_type() == END {
            order.ack()?;
            return Ok(());
        }
        let id = order_id(&order)?;
        // Handling the order: here, reporting it. The report is out before
        // the acknowledgement, so a gateway killed between the two leaves a
        // reported order that the queue redelivers: a duplicate.
        let mut slot = reports.claim_blocking(REPORT_LEN, WaitStrategy::BACKOFF)?;
        let (sequence, redelivered) = (order.sequence(), order.redelivered());
        let len = MessageBuilder::new(
            &mut slot,
            RelayDomain::Execution,
            SourceType::ExecutionEngine,
        )
        .sequence(handled)
        .timestamp_ns(now_ns())
        .tlv_with(TlvType::ExecutionReport, REPORT_PAYLOAD_LEN, |report| {
            write_report(report, id, sequence, n, redelivered)
        })
        .finish(Checksum::Zero)?;
        debug_assert_eq!(len, REPORT_LEN);
        slot.set_record_type(EXECUTION);
        slot.commit();
        handled += 1;
        if o.hold_from.is_some_and(|from| id >= from) {
            // The order stays taken by this process until it dies.
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        order.ack()?;
    }
}

// ------------------------------------------------------------------ parent

/// One execution report as the parent reads it.
struct Report {
    order: u64,
    sequence: u64,
    gateway: usize,
    redelivered: bool,
}

fn parse_report(bytes: &[u8]) -> Result<Report> {
    let msg = MessageView::parse(bytes, ParseOptions::new(Verify::ZeroMeansUnchecked))?;
    let tlv = msg
        .find(TlvType::ExecutionReport)
        .filter(|t| t.payload.len() == REPORT_PAYLOAD_LEN)
        .ok_or("not an execution report")?;
    let r = tlv.payload;
    Ok(Report {
        order: u64::from_le_bytes(r[..8].try_into()?),
        sequence: u64::from_le_bytes(r[8..16].try_into()?),
        gateway: usize::from(r[16]),
        redelivered: r[17] & REDELIVERED != 0,
    })
}

/// The rings of a run, removed when it ends whatever the reason (after the
/// children are gone: they are dropped first).
#[derive(Default)]
struct Rings {
    queue: Option<Queue>,
    channels: Vec<Channel>,
}

impl Drop for Rings {
    fn drop(&mut self) {
        if let Some(queue) = &self.queue {
            let _ = queue.remove();
        }
        for channel in &self.channels {
            let _ = channel.remove();
        }
    }
}

/// A child process, killed if the parent leaves early.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        // A no-op once it has been waited for.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A gateway process and what the parent knows of it.
struct Gateway {
    n: usize,
    process: Process,
    reports: Consumer,
    handled: u64,
    /// The order of its last report.
    last_order: Option<u64>,
    /// Set once it exited (killed or after its end marker).
    status: Option<ExitStatus>,
    killed: bool,
}

/// What the reports say so far.
struct Tally {
    /// Reports per order id (saturating).
    seen: Vec<u8>,
    unique: u64,
    reports: u64,
    /// Redelivered orders: (order id, queue sequence, gateway).
    redelivered: Vec<(u64, u64, usize)>,
    /// The order the killed gateway held, and whether another gateway has
    /// handled it since.
    held: Option<(u64, bool)>,
    last_report: Instant,
}

impl Tally {
    fn add(&mut self, from: usize, report: &Report) -> Result<()> {
        let count = usize::try_from(report.order)
            .ok()
            .and_then(|i| self.seen.get_mut(i))
            .ok_or_else(|| format!("gateway {from} reported unknown order {}", report.order))?;
        if report.gateway != from {
            return Err(
                format!("gateway {from} sent a report of gateway {}", report.gateway).into(),
            );
        }
        if *count == 0 {
            self.unique += 1;
        }
        *count = count.saturating_add(1);
        self.reports += 1;
        if report.redelivered {
            self.redelivered
                .push((report.order, report.sequence, report.gateway));
        }
        if let Some((held, again)) = &mut self.held {
            *again |= *held == report.order;
        }
        self.last_report = Instant::now();
        Ok(())
    }
}

/// Reads the reports waiting on each gateway's channel, at most
/// [`REPORTS_PER_LOOK`] from each. Returns whether there were any.
fn read_reports(gateways: &mut [Gateway], tally: &mut Tally) -> Result<bool> {
    let mut any = false;
    for g in gateways {
        for _ in 0..REPORTS_PER_LOOK {
            let report = match g.reports.try_read() {
                Ok(rec) => parse_report(&rec)?,
                Err(RecvError::Empty) => break,
                Err(e) => return Err(e.into()),
            };
            tally.add(g.n, &report)?;
            g.handled += 1;
            g.last_order = Some(report.order);
            any = true;
        }
    }
    Ok(any)
}

fn spawn(o: &Options, args: &[String]) -> Result<Process> {
    Ok(Process(
        Command::new(std::env::current_exe()?)
            .args(["--namespace", &o.namespace])
            .args(args)
            .spawn()?,
    ))
}

/// Waits until every gateway has attached (its report channel's producer,
/// which it attaches after the queue's consumer), so that the orders go to
/// all of them from the first one on.
fn wait_attached(gateways: &mut [Gateway]) -> Result<()> {
    const ATTACH_WAIT: Duration = Duration::from_secs(10);
    let deadline = Instant::now() + ATTACH_WAIT;
    for g in gateways.iter_mut() {
        while g.reports.producer_alive() != Some(true) {
            if let Some(status) = g.process.0.try_wait()? {
                return Err(format!("gateway {} exited before it attached: {status}", g.n).into());
            }
            if Instant::now() > deadline {
                return Err(
                    format!("gateway {} did not attach within {ATTACH_WAIT:?}", g.n).into(),
                );
            }
            interrupted()?;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

/// Waits up to `timeout` for `process` to exit.
fn wait_exit(process: &mut Process, timeout: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = process.0.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        interrupted()?;
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn parent(bus: &Bus, o: &Options) -> Result<()> {
    catch_interrupts();
    let mut rings = Rings::default();
    // Holding the consumer role of every report channel is what makes this
    // run the only one in the namespace; from then on the rings are this
    // run's, and they are removed when it ends.
    let mut readers = Vec::new();
    for n in 1..=o.gateways {
        let channel = bus.spsc(&report_channel(n), &report_config())?;
        let mut rx = channel
            .consumer()
            .map_err(|e| format!("is another order_gateways running? {e}"))?;
        rings.channels.push(channel);
        // Reports left by an earlier run that was killed.
        while rx.try_read().is_ok() {}
        readers.push(rx);
    }
    let config = QueueConfig::default();
    let mut queue = bus.queue(QUEUE, &config)?;
    if !queue.was_created() {
        eprintln!("work queue {QUEUE} was left by an earlier run: removing it and making it again");
        queue.remove()?;
        queue = bus.queue(QUEUE, &config)?;
    }
    let mut ends = queue.producer()?;
    println!(
        "order_gateways pid {}: work queue {QUEUE} in {} ({} slots), {} orders, {} gateways",
        std::process::id(),
        bus.namespace().path().display(),
        config.slots,
        o.orders,
        o.gateways
    );
    rings.queue = Some(queue);

    // The strategy (process 0) on a core of its own, the gateways (1 ..)
    // spread over the others.
    let cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let core_args = |process: usize| {
        let i = match (process, cores.len()) {
            (0, _) | (_, 0 | 1) => 0,
            (gateway, n) => 1 + (gateway - 1) % (n - 1),
        };
        match cores.get(i) {
            Some(core) => vec!["--core".to_owned(), core.to_string()],
            None => Vec::new(),
        }
    };
    let kill_at = o.kill_at.unwrap_or(o.orders / 2);
    let mut gateways = Vec::new();
    for (i, reports) in readers.into_iter().enumerate() {
        let n = i + 1;
        let mut args = vec!["--gateway".to_owned(), n.to_string()];
        args.extend(core_args(n));
        if o.kill_one && n == VICTIM {
            args.extend(["--hold-from".to_owned(), kill_at.to_string()]);
        }
        gateways.push(Gateway {
            n,
            process: spawn(o, &args)?,
            reports,
            handled: 0,
            last_order: None,
            status: None,
            killed: false,
        });
    }
    wait_attached(&mut gateways)?;
    let started = Instant::now();
    let mut strategy_args = vec!["--strategy".to_owned(), "--orders".to_owned()];
    strategy_args.push(o.orders.to_string());
    strategy_args.extend(core_args(0));
    let mut strategy = spawn(o, &strategy_args)?;
    let pids: Vec<String> = gateways
        .iter()
        .map(|g| format!("gateway {} pid {}", g.n, g.process.0.id()))
        .collect();
    println!("strategy pid {}, {}", strategy.0.id(), pids.join(", "));

    let mut tally = Tally {
        seen: vec![0; usize::try_from(o.orders)?],
        unique: 0,
        reports: 0,
        redelivered: Vec::new(),
        held: None,
        last_report: Instant::now(),
    };
    let mut strategy_status = None;
    // Until every order is handled, and the order the killed gateway held
    // has been handled again (redelivered) by another gateway.
    while tally.unique < o.orders || tally.held.is_some_and(|(_, again)| !again) {
        interrupted()?;
        let any = read_reports(&mut gateways, &mut tally)?;
        if o.kill_one && tally.held.is_none() {
            if let Some(victim) = gateways.iter_mut().find(|g| g.n == VICTIM) {
                if victim.last_order.is_some_and(|id| id >= kill_at) {
                    // It holds its last order now, handled and reported but
                    // not acknowledged.
                    victim.process.0.kill()?;
                    victim.status = Some(victim.process.0.wait()?);
                    victim.killed = true;
                    let order = victim.last_order.ok_or("gateway reported nothing")?;
                    tally.held = Some((order, false));
                    println!(
                        "killed gateway {} (pid {}, SIGKILL) after it handled {} orders, holding order {order} unacknowledged",
                        victim.n,
                        victim.process.0.id(),
                        victim.handled
                    );
                }
            }
        }
        if strategy_status.is_none() {
            strategy_status = strategy.0.try_wait()?;
            if let Some(status) = strategy_status.filter(|s| !s.success()) {
                return Err(format!("the strategy failed: {status}").into());
            }
        }
        for g in gateways.iter_mut().filter(|g| g.status.is_none()) {
            if let Some(status) = g.process.0.try_wait()? {
                return Err(format!("gateway {} left before the end: {status}", g.n).into());
            }
        }
        if !any {
            if tally.last_report.elapsed() > STUCK_AFTER {
                summary(&gateways, &tally, ends.counters().tail, None);
                return Err(format!("no execution report for {STUCK_AFTER:?}").into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let handled_at = started.elapsed();

    // Every order is accounted for: one end marker per live gateway.
    let live = gateways.iter().filter(|g| !g.killed).count();
    for _ in 0..live {
        ends.send_blocking(END, &[], WaitStrategy::BACKOFF)?;
    }
    for g in gateways.iter_mut().filter(|g| !g.killed) {
        let status = wait_exit(&mut g.process, Duration::from_secs(10))?
            .ok_or(format!("gateway {} did not take its end marker", g.n))?;
        if !status.success() {
            return Err(format!("gateway {} failed: {status}", g.n).into());
        }
        g.status = Some(status);
    }
    let status = match strategy_status {
        Some(status) => status,
        None => wait_exit(&mut strategy, Duration::from_secs(10))?
            .ok_or("the strategy did not leave")?,
    };
    if !status.success() {
        return Err(format!("the strategy failed: {status}").into());
    }
    // Reports sent after the last one counted (duplicates, if any).
    while read_reports(&mut gateways, &mut tally)? {}
    let counted = ends.counters().redelivered;
    summary(&gateways, &tally, o.orders, Some((handled_at, counted)));

    if tally.unique < o.orders {
        return Err(format!("{} orders were never handled", o.orders - tally.unique).into());
    }
    if o.kill_one && tally.held.is_none() {
        return Err(format!(
            "gateway {VICTIM} took no order numbered {kill_at} or above, so it was never killed \
             (try a smaller --kill-at)"
        )
        .into());
    }
    Ok(())
}

/// Prints what was sent and handled. `end` is when the last order was
/// handled and the queue's own count of redeliveries, for a run that got
/// that far.
fn summary(gateways: &[Gateway], tally: &Tally, sent: u64, end: Option<(Duration, u64)>) {
    let orders = tally.seen.len() as u64;
    println!("orders sent:              {sent}");
    for g in gateways {
        let note = if g.killed { " (killed)" } else { "" };
        println!("handled by gateway {}:     {}{note}", g.n, g.handled);
    }
    if tally.unique == orders {
        println!(
            "unique orders handled:    {} of {orders}: every order handled at least once",
            tally.unique
        );
    } else {
        let missing: Vec<String> = (0..orders)
            .filter(|&id| tally.seen.get(id as usize) == Some(&0))
            .take(LISTED)
            .map(|id| id.to_string())
            .collect();
        println!(
            "unique orders handled:    {} of {orders}: {} orders NOT handled (first: {})",
            tally.unique,
            orders - tally.unique,
            missing.join(", ")
        );
    }
    println!("duplicates:               {}", tally.reports - tally.unique);
    let counted = end.map_or(String::new(), |(_, c)| format!(" (the queue counted {c})"));
    println!(
        "redelivered:              {}{counted}",
        tally.redelivered.len()
    );
    for (order, sequence, gateway) in tally.redelivered.iter().take(LISTED) {
        println!(
            "  order {order} (queue sequence {sequence}) redelivered, handled by gateway {gateway}"
        );
    }
    if tally.redelivered.len() > LISTED {
        println!("  ... and {} more", tally.redelivered.len() - LISTED);
    }
    if let Some((took, _)) = end {
        println!(
            "took {:.3} s: {:.0} orders/s sent, handled and reported",
            took.as_secs_f64(),
            orders as f64 / took.as_secs_f64().max(1e-9)
        );
    }
}
