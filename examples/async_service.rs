//! An agent that calls a slow async service with a timeout and retries on a
//! schedule, driven from a tokio application.
//!
//! ```sh
//! cargo run --release --example async_service
//! ```
//!
//! * A `quotes` agent owns the latest price per symbol. On
//!   `quote.requested` it starts the fetch as async work on tokio
//!   (`Instruction::start_with_timeout`): the worker thread is not held
//!   while the service answers; the answer comes back as a signal.
//! * The service here hangs on its first two calls per symbol (past the
//!   80 ms deadline), then answers in about 10 ms: the deadline sends
//!   `quote.timed_out`, whose action schedules a retry with a doubling
//!   backoff (`Instruction::send_self_after`); after 4 attempts it gives up.
//! * The application awaits `call_async` and `send_async` from tokio tasks
//!   and hears about finished quotes on the bus; an interval
//!   (`send_interval`) asks the agent for a summary every 100 ms.

use agentry::{ActionError, AgentSpec, Instruction, Runtime, Signal};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_millis(80);
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_ATTEMPTS: u32 = 4;

#[derive(Clone, Debug, Default)]
struct Quotes {
    prices: HashMap<String, u64>,
    attempts: HashMap<String, u32>,
    gave_up: Vec<String>,
}

/// The slow service: hangs on the first two calls per symbol (the deadline
/// cancels those), then answers after about 10 ms.
#[derive(Default)]
struct PriceService {
    calls: std::sync::Mutex<HashMap<String, u32>>,
    total: AtomicU32,
}

impl PriceService {
    async fn price(&self, symbol: &str) -> u64 {
        self.total.fetch_add(1, Ordering::Relaxed);
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(symbol.to_owned()).or_default();
            *n += 1;
            *n
        };
        if n <= 2 {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        symbol.bytes().map(u64::from).sum::<u64>() * 10
    }
}

fn signal(ty: &'static str, data: &str) -> Result<Signal, ActionError> {
    Signal::new(ty, "/quotes", data.to_owned()).map_err(ActionError::failed)
}

fn quotes_spec(service: Arc<PriceService>) -> AgentSpec<Quotes, String> {
    AgentSpec::new(Quotes::default())
        .name("quotes")
        .on(
            "quote.requested",
            move |q: &mut Quotes, ins: &mut Instruction| {
                let symbol = ins.text()?.to_owned();
                *q.attempts.entry(symbol.clone()).or_default() += 1;
                let service = service.clone();
                let sym = symbol.clone();
                let fetch = async move {
                    let price = service.price(&sym).await;
                    Signal::new("quote.received", "/quotes", format!("{sym}={price}"))
                        .expect("a valid signal")
                };
                ins.start_with_timeout(fetch, DEADLINE, signal("quote.timed_out", &symbol)?)?;
                Ok(format!("fetching {symbol}"))
            },
        )
        .on("quote.received", |q: &mut Quotes, ins: &mut Instruction| {
            let (symbol, price) = ins
                .text()?
                .split_once('=')
                .ok_or_else(|| ActionError::invalid_input("expected SYMBOL=PRICE"))?;
            let price: u64 = price.parse().map_err(ActionError::failed)?;
            q.prices.insert(symbol.to_owned(), price);
            let attempts = q.attempts.get(symbol).copied().unwrap_or(0);
            ins.emit(signal(
                "quote.ready",
                &format!("{symbol} {price} after {attempts} attempts"),
            )?);
            Ok(String::new())
        })
        .on(
            "quote.timed_out",
            |q: &mut Quotes, ins: &mut Instruction| {
                let symbol = ins.text()?.to_owned();
                let attempts = q.attempts.get(&symbol).copied().unwrap_or(0);
                if attempts >= MAX_ATTEMPTS {
                    q.gave_up.push(symbol.clone());
                    ins.emit(signal("quote.ready", &format!("{symbol} gave up"))?);
                } else {
                    let backoff = FIRST_BACKOFF * 2u32.pow(attempts - 1);
                    ins.send_self_after(signal("quote.requested", &symbol)?, backoff);
                }
                Ok(String::new())
            },
        )
        .on("stats.tick", |q: &mut Quotes, ins: &mut Instruction| {
            let line = format!("{} priced, {} gave up", q.prices.len(), q.gave_up.len());
            ins.emit(signal("stats.summary", &line)?);
            Ok(line)
        })
}

async fn run(rt: &Runtime, service: Arc<PriceService>) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let quotes = rt.spawn(&quotes_spec(service.clone()))?;
    let (ready_tx, mut ready) = tokio::sync::mpsc::unbounded_channel::<String>();
    let bus = rt.bus();
    let tx = ready_tx.clone();
    let _ready = bus.subscribe("quote.ready", move |s: &Signal| {
        let _ = tx.send(std::str::from_utf8(s.data()).unwrap_or("").to_owned());
    })?;
    let _summary = bus.subscribe("stats.summary", move |s: &Signal| {
        println!(
            "  [summary] {}",
            std::str::from_utf8(s.data()).unwrap_or("")
        );
    })?;
    let ticker = quotes.send_interval(
        Signal::new("stats.tick", "/app", "")?,
        Duration::from_millis(100),
    )?;

    let symbols = ["ACME", "GLOBEX", "INITECH"];
    for symbol in symbols {
        // The reply comes when the action committed: the fetch has started.
        let reply = quotes
            .call_async(
                Signal::new("quote.requested", "/app", symbol)?,
                Duration::from_secs(1),
            )
            .await?;
        println!("{:>6.1} ms  {reply}", started.elapsed().as_secs_f64() * 1e3);
    }
    for _ in symbols {
        let line = tokio::time::timeout(Duration::from_secs(5), ready.recv())
            .await?
            .ok_or("bus closed")?;
        println!("{:>6.1} ms  {line}", started.elapsed().as_secs_f64() * 1e3);
    }
    // One more tick of the interval, then stop it.
    quotes
        .send_async(Signal::new("stats.tick", "/app", "")?)
        .await?;
    ticker.cancel();
    // Let what was accepted finish before the shutdown (the graceful path).
    rt.wait_idle(Duration::from_secs(5));
    let state = quotes.state()?;
    println!(
        "state: {:?}; service called {} times",
        state.prices,
        service.total.load(Ordering::Relaxed)
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let handle = tokio_rt.handle().clone();
    let rt = Runtime::builder()
        .workers(2)
        .spawner(move |work| {
            handle.spawn(work);
        })
        .build()?;
    let service = Arc::new(PriceService::default());
    tokio_rt.block_on(run(&rt, service))?;
    let report = rt.shutdown();
    println!(
        "shutdown: accepted {} = processed {} + dead-lettered {}; {} undelivered; {} timers and {} async works were still pending",
        report.metrics.accepted,
        report.metrics.processed,
        report.metrics.dead_lettered,
        report.metrics.undelivered,
        report.pending_timers.len(),
        report.cancelled_work.len()
    );
    let m = report.metrics;
    if m.accepted != m.processed + m.dead_lettered {
        return Err("accounting does not add up".into());
    }
    Ok(())
}
