//! Two processes exchanging orders through NATS JetStream with the
//! `agentry::nats` bridge: durable export and import, effectively-once
//! agents, and `call` across processes.
//!
//! ```sh
//! cargo run --release --features nats --example nats_orders                  # 20,000 orders
//! cargo run --release --features nats --example nats_orders -- --orders 50000
//! cargo run --release --features nats --example nats_orders -- --url nats://127.0.0.1:4222
//! cargo run --release --features nats --example nats_orders -- --export-buffer 64  # backpressure
//! ```
//!
//! Without `--url` the launcher starts a `nats-server` with JetStream
//! (`apt-get install nats-server`, or set `NATS_SERVER`). It runs itself
//! twice, as `--role shop` and `--role billing`, and fails if either fails.
//!
//! * **shop** publishes `order.placed` on its bus; an export stores each in
//!   JetStream (deduplicated by signal id). Its `ledger` agent imports
//!   `order.billed`. Each time a quarter of the orders is back it asks
//!   billing for its totals with `RemoteAgent::call` (NATS request/reply);
//!   when all are back it publishes `shop.done` (exported too).
//! * **billing** imports `order.placed` into its `billing` agent (durable
//!   consumer: a message is acknowledged only after its action committed),
//!   emits `order.billed` (exported) for each, serves `billing.total` to
//!   remote callers, and stops on `shop.done`.
//!
//! With a small `--export-buffer`, the shop's publishes are refused while
//! the buffer is full (it waits and publishes again), and billing's bills
//! are required emits (`emit_or_fail`): when there is no room for a bill,
//! the action is undone and the import hands the order back for
//! redelivery, so no order is acknowledged without its bill.
//!
//! Delivery is at least once; both agents apply each order once by keeping
//! the signal ids they applied in their state (`SeenIds`). At the end each
//! process stops its imports (waiting for every acknowledgement), flushes
//! its exports, shuts down, and exits 0 only if every count matches.

#[path = "../tests/common/nats_server.rs"]
mod nats_server;

use agentry::nats::{Bridge, ExportOptions, ImportOptions, ImportTarget, SeenIds, async_nats};
use agentry::{ActionError, AgentSpec, Instruction, Runtime, Signal, SignalId};
use clap::Parser;
use serde::{Deserialize, Serialize};
use std::sync::mpsc;
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

#[derive(Parser)]
struct Args {
    /// Run one side only: `shop` or `billing` (the launcher runs both).
    #[arg(long, value_parser = ["shop", "billing"], requires = "url")]
    role: Option<String>,
    /// A NATS server with JetStream (default: start one).
    #[arg(long)]
    url: Option<String>,
    /// Orders to place.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    orders: u64,
    /// Signals each export buffers for JetStream; a small one shows
    /// backpressure: refused publishes retried by the shop, bills whose
    /// room is not there undone and redelivered by billing's import.
    #[arg(long, default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(1..))]
    export_buffer: u64,
    /// This run's subject prefix `orders.<run>` and stream `ORDERS-<run>`.
    #[arg(long, default_value = "demo")]
    run: String,
}

#[derive(Serialize, Deserialize)]
struct Order {
    order: u64,
    cents: u64,
}

/// Order number `order`, priced from its number.
fn order(order: u64) -> Order {
    let cents = 100 + order * 7_919 % 10_000;
    Order { order, cents }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Totals {
    orders: u64,
    cents: u64,
}

/// The totals of orders `0..n`.
fn expected(n: u64) -> Totals {
    let cents = (0..n).map(|i| order(i).cents).sum();
    Totals { orders: n, cents }
}

/// An agent's state: the orders it applied, each once.
#[derive(Clone)]
struct Book {
    /// The last signal ids applied: more than the import's 8,192 unacknowledged.
    seen: SeenIds,
    totals: Totals,
    /// Bit `i` is set once order `i` is applied.
    orders: Vec<u64>,
    redelivered: u64,
}

impl Book {
    fn new(n: u64) -> Book {
        let orders = vec![0; n.div_ceil(64) as usize];
        let (seen, totals) = (SeenIds::new(16_384), Totals::default());
        Book {
            seen,
            totals,
            orders,
            redelivered: 0,
        }
    }

    /// Applies `order`, carried by signal `id`, unless that signal was
    /// applied before; `true` if applied. The agents keep the default
    /// `Atomicity::Rollback`: an action that fails leaves no trace, not even
    /// the id in `seen` (its copy is O(1): `SeenIds` is persistent).
    fn apply(&mut self, id: &SignalId, order: &Order) -> Result<bool, ActionError> {
        let (word, bit) = ((order.order / 64) as usize, 1 << (order.order % 64));
        if word >= self.orders.len() {
            return Err(ActionError::rejected("no such order"));
        }
        if !self.seen.first_time(id) {
            self.redelivered += 1;
            return Ok(false);
        }
        self.orders[word] |= bit;
        self.totals.orders += 1;
        self.totals.cents += order.cents;
        Ok(true)
    }

    /// Whether orders `0..n`, and only they, were each applied once.
    fn once_each(&self, n: u64) -> bool {
        let distinct: u32 = self.orders.iter().map(|w| w.count_ones()).sum();
        self.totals == expected(n) && u64::from(distinct) == n
    }
}

fn main() -> Result<(), Error> {
    let args = Args::parse();
    let (Some(role), Some(url)) = (&args.role, &args.url) else {
        return match &args.url {
            Some(url) => launch(&args, url),
            None => {
                let server = nats_server::NatsServer::start().ok_or("no nats-server")?;
                launch(&args, &server.url())
            }
        };
    };
    let io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let bridge = io
        .block_on(Bridge::connect(url))?
        .prefix(&format!("orders.{}", args.run))?
        .stream(&format!("ORDERS-{}", args.run))?;
    match role.as_str() {
        "shop" => shop(&io, &bridge, args.orders, export_options(&args)),
        _ => billing(&io, &bridge, args.orders, export_options(&args)),
    }
}

fn check(ok: bool, what: &str) -> Result<(), Error> {
    if ok { Ok(()) } else { Err(what.into()) }
}

/// Runs this executable as shop and as billing against `url`.
fn launch(args: &Args, url: &str) -> Result<(), Error> {
    let (run, orders) = (format!("r{}", std::process::id()), args.orders.to_string());
    let buffer = args.export_buffer.to_string();
    println!("launcher: {orders} orders through {url}, stream ORDERS-{run}");
    let started = Instant::now();
    let child = |role| {
        let options = [
            "--url",
            url,
            "--orders",
            &orders,
            "--run",
            &run,
            "--export-buffer",
            &buffer,
        ];
        std::process::Command::new(std::env::current_exe()?)
            .args(["--role", role].iter().chain(&options))
            .spawn()
    };
    let (mut shop, mut billing) = (child("shop")?, child("billing")?);
    let shop_status = shop.wait()?;
    if !shop_status.success() {
        billing.kill()?; // it would wait for a `shop.done` that never comes
    }
    let billing_status = billing.wait()?;
    let took = started.elapsed();
    println!("launcher: shop {shop_status}, billing {billing_status}, {took:.2?} in all");
    if args.url.is_some() {
        // Not our server: remove this run's stream.
        let io = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        io.block_on(async {
            let js = async_nats::jetstream::new(async_nats::connect(url).await?);
            js.delete_stream(format!("ORDERS-{run}")).await?;
            Ok::<_, Error>(())
        })?;
    }
    check(shop_status.success(), "the shop failed")?;
    check(billing_status.success(), "billing failed")
}

/// The exports' options, with the buffer asked for.
fn export_options(args: &Args) -> ExportOptions {
    ExportOptions {
        buffer: usize::try_from(args.export_buffer).unwrap_or(usize::MAX),
        ..ExportOptions::default()
    }
}

fn shop(
    io: &tokio::runtime::Runtime,
    bridge: &Bridge,
    n: u64,
    options: ExportOptions,
) -> Result<(), Error> {
    let rt = Runtime::builder().workers(2).build()?;
    let bus = rt.bus();
    let (progress_tx, progress) = mpsc::channel();
    let quarter = (n / 4).max(1);
    let ledger = rt.spawn(
        &AgentSpec::<Book>::new(Book::new(n))
            // Above the import's 8,192 unacknowledged: never full.
            .mailbox_capacity(16_384)
            .on_send(
                "order.billed",
                move |l: &mut Book, ins: &mut Instruction| {
                    let new = l.apply(ins.signal_id(), &ins.json()?)?;
                    let count = l.totals.orders;
                    if new && (count.is_multiple_of(quarter) || count == n) {
                        let _ = progress_tx.send((count, Instant::now()));
                    }
                    Ok(())
                },
            ),
    )?;
    let ledger_in = ImportOptions::new("ledger", "order.billed");
    let billed_in = io.block_on(bridge.import(ledger_in, ImportTarget::Agent(ledger.addr())))?;
    let export = |pattern| io.block_on(bridge.export(&bus, pattern, options.clone()));
    let (mut placed_out, done_out) = (export("order.placed")?, export("shop.done")?);

    let room = placed_out.room();
    let (started, mut waits) = (Instant::now(), 0);
    for i in 0..n {
        let placed = Signal::json("order.placed", "/shop", &order(i))?;
        // The export (the only subscriber) refuses when its buffer is full,
        // as a full mailbox would: wait until JetStream has taken a quarter
        // of it, publish again.
        while !bus.publish(placed.clone())?.is_complete() {
            waits += 1;
            room.wait(room.capacity() / 4, Duration::from_secs(30))
                .map_err(|e| format!("shop: the export keeps refusing: {e}"))?;
        }
    }
    let published = started.elapsed();
    io.block_on(placed_out.flush());
    println!(
        "shop: {n} orders published in {published:.2?} ({:.0}/s), stored in JetStream after {:.2?} ({waits} waits for the export)",
        n as f64 / published.as_secs_f64(),
        started.elapsed()
    );

    let remote = bridge.remote::<Totals>("billing")?;
    let (mut back, mut finished) = (0, started);
    while back < n {
        (back, finished) = progress
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| format!("shop: nothing billed for 30 s ({back} of {n} back)"))?;
        let asked = Instant::now();
        let total = io.block_on(remote.call(Signal::new("billing.total", "/shop", "")?, None))?;
        println!(
            "shop: ledger has {back} back; remote billing.total answered in {:.2?}: {total:?}",
            asked.elapsed()
        );
        check(total.orders >= back, "shop: billing is behind the ledger")?;
        check(back < n || total == expected(n), "shop: wrong remote total")?;
    }
    let round_trip = finished - started;
    println!(
        "shop: all {n} orders placed, billed and back in {round_trip:.2?} ({:.0} orders/s, each through JetStream twice)",
        n as f64 / round_trip.as_secs_f64()
    );

    let done = bus.publish(Signal::new("shop.done", "/shop", "")?)?;
    let imported = io.block_on(billed_in.stop());
    let placed = io.block_on(placed_out.stop());
    let done_stored = io.block_on(done_out.stop()).stored;
    let l = ledger.state()?;
    rt.shutdown();
    println!("shop: export order.placed {placed:?}; shop.done stored {done_stored}");
    println!("shop: import order.billed {imported:?}");
    println!(
        "shop: ledger {:?}, {} redeliveries skipped",
        l.totals, l.redelivered
    );
    check(l.once_each(n), "shop: ledger lacks or repeats orders")?;
    check(done.is_complete() && done_stored == 1, "shop: no shop.done")?;
    check(placed.stored == n, "shop: orders not all stored")?;
    check(imported.dead_lettered == 0, "shop: bills dead-lettered")
}

fn billing(
    io: &tokio::runtime::Runtime,
    bridge: &Bridge,
    n: u64,
    options: ExportOptions,
) -> Result<(), Error> {
    let rt = Runtime::builder().workers(2).build()?;
    let (done_tx, done) = mpsc::channel();
    let billing = rt.spawn(
        &AgentSpec::<Book, Totals>::new(Book::new(n))
            .mailbox_capacity(16_384)
            .on_send("order.placed", |b: &mut Book, ins: &mut Instruction| {
                let order: Order = ins.json()?;
                let bill = Signal::json("order.billed", "/billing", &order)?;
                if b.apply(ins.signal_id(), &order)? {
                    // Required: room in the export's buffer is held before
                    // the commit. Should it be full, the action is undone
                    // and the import hands the order back for redelivery,
                    // so no order is acknowledged without its bill.
                    ins.emit_or_fail(bill);
                }
                Ok(())
            })
            .on("billing.total", |b: &mut Book, _: &mut Instruction| {
                Ok(b.totals)
            })
            .on_send("shop.done", move |_: &mut Book, _: &mut Instruction| {
                let _ = done_tx.send(());
                Ok(())
            }),
    )?;
    let export = options;
    let billed_out = io.block_on(bridge.export(&rt.bus(), "order.billed", export))?;
    let service = io.block_on(bridge.serve(&billing, "billing"))?;
    let import = |consumer, pattern| {
        let target = ImportTarget::Agent(billing.addr());
        io.block_on(bridge.import(ImportOptions::new(consumer, pattern), target))
    };
    let orders_in = import("billing", "order.placed")?;
    let done_in = import("billing-done", "shop.done")?;

    done.recv_timeout(Duration::from_secs(300))
        .map_err(|_| "billing: no shop.done within 5 min")?;
    let imported = io.block_on(orders_in.stop());
    io.block_on(done_in.stop());
    let exported = io.block_on(billed_out.stop());
    service.stop();
    let b = billing.state()?;
    rt.shutdown();
    println!("billing: import order.placed {imported:?}");
    println!("billing: export order.billed {exported:?}");
    println!(
        "billing: {:?}, {} redeliveries skipped",
        b.totals, b.redelivered
    );
    check(b.once_each(n), "billing: orders missing or billed twice")?;
    check(exported.stored == n, "billing: not every bill stored")?;
    check(imported.dead_lettered == 0, "billing: orders dead-lettered")
}
