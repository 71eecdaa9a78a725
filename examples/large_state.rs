//! Large states (README, "Large states"): an order book of 100,000 resting
//! orders kept atomic with a persistent map, and a cache of 100,000 entries
//! kept in place. Run: `cargo run --release --features full --example large_state`.

use agentry::{ActionError, AgentSpec, Atomicity, Instruction, Runtime, Signal};
use std::time::{Duration, Instant};

/// Resting orders by id. `imbl::HashMap` clones in O(1), so the copy the
/// runtime takes before every action (for rollback) costs nothing, and a
/// change copies one path of the map.
#[derive(Clone, Default)]
struct Book {
    orders: imbl::HashMap<u64, u64>,
}

/// Cached values. A std map, in place: no copy per action, so the action
/// checks before it changes anything.
#[derive(Clone, Default)]
struct Cache {
    entries: std::collections::HashMap<u64, u64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::builder().deterministic().build()?;
    let book = AgentSpec::<Book, u64>::new(Book {
        orders: (0..100_000).map(|id| (id, 10)).collect(),
    })
    .on("order.fill", |b: &mut Book, ins: &mut Instruction| {
        let id: u64 = ins.json()?;
        let left = b.orders.get(&id).copied().unwrap_or(0);
        // Changed first, refused after: atomicity undoes the change.
        b.orders.insert(id, left.saturating_sub(1));
        if left == 0 {
            return Err(ActionError::rejected("order already filled"));
        }
        Ok(left - 1)
    });
    let cache = AgentSpec::<Cache, u64>::new(Cache {
        entries: (0..100_000).map(|k| (k, 0)).collect(),
    })
    .atomicity(Atomicity::InPlace)
    .on("cache.bump", |c: &mut Cache, ins: &mut Instruction| {
        let key: u64 = ins.json()?;
        // Checked before anything changes: an error leaves nothing behind.
        let value = c
            .entries
            .get_mut(&key)
            .ok_or_else(|| ActionError::rejected("no such key"))?;
        *value += 1;
        Ok(*value)
    });
    let (book, cache) = (rt.spawn(&book)?, rt.spawn(&cache)?);
    let started = Instant::now();
    for i in 0..10_000u64 {
        book.send(Signal::json("order.fill", "/example", &(i % 1_000))?)?;
        cache.send(Signal::json("cache.bump", "/example", &(i % 1_000))?)?;
        if i % 500 == 499 {
            rt.run_until_idle()?;
        }
    }
    rt.run_until_idle()?;
    println!(
        "20,000 signals to two agents of 100,000 entries each in {:?}",
        started.elapsed()
    );
    // A refused fill changed nothing: order 5 has 10 - 10 = 0 left, and an
    // eleventh fill is refused with the order still at 0.
    let again = Signal::json("order.fill", "/example", &5u64)?;
    let refused = book.call(again, Duration::from_secs(1));
    println!("eleventh fill of order 5: {refused:?}");
    assert_eq!(book.state()?.orders.get(&5), Some(&0));
    let missing = Signal::json("cache.bump", "/example", &u64::MAX)?;
    println!(
        "bump of a missing key: {:?}",
        cache.call(missing, Duration::from_secs(1))
    );
    assert_eq!(cache.state()?.entries.len(), 100_000);
    Ok(())
}
