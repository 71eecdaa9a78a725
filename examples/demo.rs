//! A small order-processing system on agentry.
//!
//! * `inventory` holds stock per SKU; the shop `call`s it to reserve units
//!   (a reservation beyond stock is rejected and rolled back).
//! * reserved orders are published on the bus as `order.placed`;
//! * `orders` records them and emits `order.accepted`;
//! * `billing` charges each accepted order and emits `payment.captured`
//!   (cards of one customer are declined: those actions fail, are rolled
//!   back, counted and reported to the failure hook);
//! * `shipping` ships what was paid;
//! * an audit callback counts every signal type on the bus.
//!
//! The shop places orders faster than two workers can carry them through
//! four agents, so the `orders` mailbox fills up now and then: the bus hands
//! the refused copy back and the shop retries it (backpressure; nothing is
//! dropped).
//!
//! Run: `cargo run --release --example demo`

use agentry::{ActionError, AgentSpec, DeliveryFailure, Instruction, Runtime, Signal};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ORDERS: u32 = 2_000;
const SKUS: [&str; 4] = ["apple", "pear", "plum", "fig"];
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Default)]
struct Inventory {
    units: BTreeMap<String, u32>,
}

#[derive(Clone, Debug, Default)]
struct Ledger {
    orders: u32,
    cents: u64,
}

#[derive(Clone, Debug, Default)]
struct Shipping {
    parcels: u32,
}

/// An order line, carried as JSON data.
#[derive(serde::Serialize, serde::Deserialize)]
struct Line {
    sku: String,
    qty: u32,
    customer: u32,
}

impl Line {
    fn new(sku: &str, qty: u32, customer: u32) -> Line {
        let sku = sku.to_owned();
        Line { sku, qty, customer }
    }
}

/// The order line of a signal; bad data is an `invalid_input` error.
fn parse_line(ins: &Instruction) -> Result<(String, u32, u32), ActionError> {
    let Line { sku, qty, customer } = ins.json()?;
    Ok((sku, qty, customer))
}

/// A follow-up signal carrying the same order line.
fn follow_up(
    ty: &'static str,
    source: &'static str,
    ins: &Instruction,
) -> Result<Signal, ActionError> {
    Signal::builder(ty, source)
        .extension("correlationid", ins.correlation_id())
        .data(ins.data().clone())
        .build()
        .map_err(ActionError::failed)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let failures = Arc::new(Mutex::new(BTreeMap::<String, u32>::new()));
    let hook_failures = failures.clone();
    let rt = Runtime::builder()
        .workers(2)
        .on_failure(move |f| {
            let mut map = hook_failures.lock().unwrap();
            *map.entry(format!("{} on {}", f.error.text(), f.signal.ty()))
                .or_default() += 1;
        })
        .build()?;
    println!(
        "agentry demo: {} orders, 2 workers, features [{}]",
        ORDERS,
        agentry::enabled_features().join(", ")
    );

    let inventory = rt.spawn(
        &AgentSpec::<Inventory, u32>::new(Inventory::default())
            .name("inventory")
            .on(
                "stock.restocked",
                |inv: &mut Inventory, ins: &mut Instruction| {
                    let (sku, qty, _) = parse_line(ins)?;
                    let units = inv.units.entry(sku).or_default();
                    *units += qty;
                    Ok(*units)
                },
            )
            .on(
                "stock.reserve",
                |inv: &mut Inventory, ins: &mut Instruction| {
                    let (sku, qty, _) = parse_line(ins)?;
                    let units = inv.units.entry(sku.clone()).or_default();
                    *units = units
                        .checked_sub(qty)
                        .ok_or_else(|| ActionError::rejected(format!("only {units} {sku} left")))?;
                    Ok(*units)
                },
            ),
    )?;

    let orders = rt.spawn(
        &AgentSpec::<Ledger, u32>::new(Ledger::default())
            .name("orders")
            .on("order.placed", |l: &mut Ledger, ins: &mut Instruction| {
                l.orders += 1;
                ins.emit(follow_up("order.accepted", "/orders", ins)?);
                Ok(l.orders)
            })
            .query("orders.count", |l: &Ledger, _: &Signal| Ok(l.orders)),
    )?;

    let billing = rt.spawn(
        &AgentSpec::<Ledger, u32>::new(Ledger::default())
            .name("billing")
            .on("order.accepted", |l: &mut Ledger, ins: &mut Instruction| {
                let (_, qty, customer) = parse_line(ins)?;
                l.orders += 1;
                l.cents += u64::from(qty) * 250;
                if customer == 13 {
                    // Fails after mutating: the runtime rolls the mutation back.
                    return Err(ActionError::rejected("card declined"));
                }
                ins.emit(follow_up("payment.captured", "/billing", ins)?);
                Ok(l.orders)
            }),
    )?;

    let shipping = rt.spawn(
        &AgentSpec::<Shipping>::new(Shipping::default())
            .name("shipping")
            .on(
                "payment.captured",
                |s: &mut Shipping, _: &mut Instruction| {
                    s.parcels += 1;
                    Ok(())
                },
            ),
    )?;

    let bus = rt.bus();
    bus.subscribe_agent("order.placed", &orders.addr())?;
    bus.subscribe_agent("order.accepted", &billing.addr())?;
    bus.subscribe_agent("payment.*", &shipping.addr())?;
    let audit: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let audit_in = audit.clone();
    bus.subscribe("**", move |s: &Signal| {
        *audit_in
            .lock()
            .unwrap()
            .entry(s.ty().to_owned())
            .or_default() += 1;
    })?;

    for sku in SKUS {
        let line = Line::new(sku, 600, 0);
        inventory.send(Signal::json("stock.restocked", "/warehouse", &line)?)?;
    }

    let started = Instant::now();
    let (mut reserved, mut rejected, mut pushed_back) = (0u32, 0u32, 0u32);
    let call_nanos = AtomicU64::new(0);
    for i in 0..ORDERS {
        let line = Line::new(SKUS[i as usize % SKUS.len()], 1 + i % 3, i % 50);
        let t = Instant::now();
        let reply = inventory.call(Signal::json("stock.reserve", "/shop", &line)?, TIMEOUT);
        call_nanos.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        match reply {
            Ok(_) => {
                reserved += 1;
                let report = bus.publish(Signal::json("order.placed", "/shop", &line)?)?;
                for failure in report.failures {
                    // A full mailbox hands the signal back: retry until
                    // the orders agent has room. Anything else is a bug.
                    let DeliveryFailure::Refused(mut refused) = failure else {
                        return Err(failure.to_string().into());
                    };
                    loop {
                        if !refused.is_full() || refused.agent() != orders.id() {
                            return Err(refused.into());
                        }
                        pushed_back += 1;
                        std::thread::yield_now();
                        match orders.send(refused.into_signal()) {
                            Ok(()) => break,
                            Err(again) => refused = again,
                        }
                    }
                }
            }
            Err(_) => rejected += 1,
        }
    }
    let idle = rt.wait_idle(Duration::from_secs(30));
    let elapsed = started.elapsed();

    let count = orders.query(Signal::new("orders.count", "/ops", "")?)?;
    println!(
        "\norders: {ORDERS} placed by the shop, {reserved} reserved, {rejected} rejected for stock"
    );
    println!(
        "backpressure: the orders mailbox refused {pushed_back} deliveries as full; the shop retried each"
    );
    println!("inventory left: {:?}", inventory.state()?.units);
    println!(
        "orders agent recorded {count} (query answered from {})",
        if agentry::enabled_features().contains(&"fast-path") {
            "a snapshot"
        } else {
            "the mailbox"
        }
    );
    let b = billing.state()?;
    println!(
        "billing charged {} orders, {} cents (declined ones rolled back)",
        b.orders, b.cents
    );
    println!("shipping sent {} parcels", shipping.state()?.parcels);
    println!("audit callback saw: {:?}", audit.lock().unwrap());
    println!(
        "failures reported to the hook: {:?}",
        failures.lock().unwrap()
    );
    println!(
        "mean call round trip {:.1} µs; whole run {:.1} ms; idle reached: {idle}",
        call_nanos.load(Ordering::Relaxed) as f64 / f64::from(ORDERS) / 1e3,
        elapsed.as_secs_f64() * 1e3
    );

    // Stop one agent with work still queued: its signals come back.
    let before = shipping.state()?.parcels;
    for i in 0..1_000 {
        shipping.send(Signal::json(
            "payment.captured",
            "/demo",
            &Line::new("late", i, 0),
        )?)?;
    }
    let stopped = shipping.stop();
    let after = shipping.state()?.parcels;
    println!(
        "\nsent 1000 more to shipping and stopped it at once: {} processed, {} handed back as dead letters",
        after - before,
        stopped.dead_letters.len()
    );

    let report = rt.shutdown();
    let m = report.metrics;
    println!(
        "shutdown: accepted {} = processed {} + dead-lettered {}; failed actions {}; undelivered emits {}; dead letters at shutdown {}",
        m.accepted,
        m.processed,
        m.dead_lettered,
        m.failed_actions,
        m.undelivered,
        report.dead_letters.len()
    );
    assert_eq!(m.accepted, m.processed + m.dead_lettered);
    Ok(())
}
