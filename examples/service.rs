//! A rate-limiting service: one agent per user, found by key; JSON requests
//! answered by `call`; denials that must reach the audit log; per-user
//! window resets on a timer; supervision; a graceful drain at the end.
//! The shape to copy for a service with per-user or per-order agents.
//!
//! ```sh
//! cargo run --release --example service
//! ```
//!
//! * **Keyed agents.** A limiter per user, spawned under the key
//!   `user-<n>` the first time the user shows up and found again with
//!   `Runtime::lookup` (one hash lookup; no map kept beside the runtime).
//! * **Replies per route.** `limit.request` is called and answers a typed
//!   `Decision`; the window reset is a send-only route (`on_send`), so no
//!   placeholder reply exists and no call site needs an `unreachable!()`.
//! * **Emits that must arrive.** A denial goes to the audit log with
//!   `emit_or_fail`: if the log's mailbox is full, the request fails and
//!   is undone (the client sees the error and retries) instead of the
//!   denial being dropped. Every other undeliverable signal would reach the
//!   `on_undelivered` hook; the run checks there were none.
//! * **Timers.** The first request of a window schedules that user's reset
//!   with `send_self_after`.
//! * **Supervision.** A limiter whose action panics restarts from its
//!   initial state, at most 3 times a minute, then stops; an ops agent
//!   monitors the audit log and hears if it ever stops.
//! * **Graceful shutdown.** `shutdown_graceful` stops intake from outside,
//!   lets queued requests and their denials finish, and reports what was
//!   left (the reset timers not yet due).

use agentry::{
    ActionErrorKind, AgentSpec, AgentStopped, CallError, Instruction, RestartPolicy, Runtime,
    SendErrorKind, Signal, SpawnError,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const USERS: u64 = 10_000;
const CLIENTS: u64 = 4;
const REQUESTS_PER_CLIENT: u64 = 25_000;
/// Requests a user may make per window.
const QUOTA: u32 = 3;
const WINDOW: Duration = Duration::from_millis(200);

#[derive(Deserialize)]
struct Request {
    user: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Decision {
    allowed: bool,
    remaining: u32,
}

#[derive(Clone, Default)]
struct Limiter {
    used: u32,
    window_open: bool,
    resets: u32,
}

fn limiter_spec() -> AgentSpec<Limiter, Decision> {
    AgentSpec::new(Limiter::default())
        .name("limiter")
        .on("limit.request", |l: &mut Limiter, ins: &mut Instruction| {
            let request: Request = ins.json()?;
            if !l.window_open {
                l.window_open = true;
                ins.send_self_after(Signal::new("limit.reset", "/limiter", "")?, WINDOW);
            }
            if l.used >= QUOTA {
                let denial = Signal::builder("audit.denied", "/limiter")
                    .subject(request.user)
                    .build()?;
                ins.emit_or_fail(denial);
                return Ok(Decision {
                    allowed: false,
                    remaining: 0,
                });
            }
            l.used += 1;
            Ok(Decision {
                allowed: true,
                remaining: QUOTA - l.used,
            })
        })
        .on_send("limit.reset", |l: &mut Limiter, _: &mut Instruction| {
            l.used = 0;
            l.window_open = false;
            l.resets += 1;
            Ok(())
        })
        .restart(RestartPolicy::from_initial().at_most(3, Duration::from_secs(60)))
}

/// The limiter of `user`, spawned on first use. Two clients may race to
/// spawn it: the loser finds the winner's by key.
fn limiter_of(
    rt: &Runtime,
    spec: &AgentSpec<Limiter, Decision>,
    user: &str,
) -> Result<agentry::AgentRef<Limiter, Decision>, Box<dyn std::error::Error>> {
    let key = format!("user-{user}");
    if let Ok(limiter) = rt.lookup(&key) {
        return Ok(limiter);
    }
    match rt.spawn_keyed(spec, key.clone()) {
        Ok(limiter) => Ok(limiter),
        Err(SpawnError::KeyTaken { .. }) => Ok(rt.lookup(&key)?),
        Err(e) => Err(e.into()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lost = Arc::new(AtomicU64::new(0));
    let rt = {
        let lost = lost.clone();
        Runtime::builder()
            .workers(2)
            .default_timeout(Duration::from_secs(5))
            .on_undelivered(move |u| {
                eprintln!("undelivered: {}", u.failure);
                lost.fetch_add(1, Ordering::Relaxed);
            })
            .build()?
    };
    println!(
        "agentry service example: {USERS} users, {CLIENTS} clients x {REQUESTS_PER_CLIENT} requests, quota {QUOTA} per {WINDOW:?}, features [{}]",
        agentry::enabled_features().join(", ")
    );

    // The audit log: every denial, by user. A small mailbox, so that a
    // burst of denials meets backpressure.
    let audit = rt.spawn_keyed(
        &AgentSpec::<u64>::new(0)
            .name("audit")
            .mailbox_capacity(256)
            .on("audit.denied", |n: &mut u64, _: &mut Instruction| {
                *n += 1;
                Ok(())
            }),
        "audit",
    )?;
    rt.bus().subscribe_agent("audit.**", &audit.addr())?;
    // Ops hears when the audit log stops (a monitor).
    let ops = rt.spawn(&AgentSpec::<Vec<AgentStopped>>::new(Vec::new()).on(
        AgentStopped::TYPE,
        |seen: &mut Vec<AgentStopped>, ins: &mut Instruction| {
            seen.push(ins.json()?);
            Ok(())
        },
    ))?;
    audit.monitor(&ops);

    let spec = limiter_spec();
    let allowed = AtomicU64::new(0);
    let denied = AtomicU64::new(0);
    let retried = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(
        |s| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let mut clients = Vec::new();
            for c in 0..CLIENTS {
                let (rt, spec) = (&rt, &spec);
                let (allowed, denied, retried) = (&allowed, &denied, &retried);
                clients.push(s.spawn(move || -> Result<(), String> {
                    // Users drawn with a skew (a quarter of the requests come
                    // from 100 heavy users), so some exceed their quota.
                    let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ c;
                    for _ in 0..REQUESTS_PER_CLIENT {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let user = if x.is_multiple_of(4) {
                            x % 100
                        } else {
                            x % USERS
                        }
                        .to_string();
                        let limiter = limiter_of(rt, spec, &user).map_err(|e| e.to_string())?;
                        let body = serde_json::json!({ "user": user });
                        loop {
                            let request = Signal::json("limit.request", "/api", &body)
                                .map_err(|e| e.to_string())?;
                            match limiter.call(request, None) {
                                Ok(d) if d.allowed => allowed.fetch_add(1, Ordering::Relaxed),
                                Ok(_) => denied.fetch_add(1, Ordering::Relaxed),
                                // The audit log was full: the request was undone;
                                // try again (its denial must be logged).
                                Err(CallError::Action(e))
                                    if e.kind() == ActionErrorKind::Undeliverable =>
                                {
                                    retried.fetch_add(1, Ordering::Relaxed);
                                    std::thread::yield_now();
                                    continue;
                                }
                                // The limiter's own mailbox was full: back off.
                                Err(CallError::Send(e))
                                    if matches!(e.kind(), SendErrorKind::MailboxFull { .. }) =>
                                {
                                    retried.fetch_add(1, Ordering::Relaxed);
                                    std::thread::yield_now();
                                    continue;
                                }
                                Err(e) => return Err(e.to_string()),
                            };
                            break;
                        }
                    }
                    Ok(())
                }));
            }
            for client in clients {
                client
                    .join()
                    .map_err(|_| "a client thread panicked")?
                    .map_err(|e| format!("a client failed: {e}"))?;
            }
            Ok(())
        },
    )
    .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    let total = CLIENTS * REQUESTS_PER_CLIENT;
    let (allowed, denied, retried) = (
        allowed.load(Ordering::Relaxed),
        denied.load(Ordering::Relaxed),
        retried.load(Ordering::Relaxed),
    );
    println!(
        "{total} requests in {:.2?} ({:.0} calls/s): {allowed} allowed, {denied} denied, {retried} retried after backpressure",
        took,
        total as f64 / took.as_secs_f64()
    );
    println!(
        "{} limiters spawned on demand, found by key",
        rt.keyed_agents() - 1
    );

    // One user's limiter, looked up by key, typed.
    let sample = rt.lookup::<Limiter, Decision>("user-0")?;
    println!(
        "user-0: {} requests used in the current window, {} windows reset so far",
        sample.state()?.used,
        sample.state()?.resets
    );

    // Graceful shutdown: intake closes, queued work and its denials finish.
    let report = rt.shutdown_graceful(Duration::from_secs(10));
    let drain = report
        .drain
        .ok_or("a graceful shutdown reports its drain")?;
    let audited = *audit.state()?;
    println!(
        "graceful shutdown: idle after {:.2?} = {}; {} dead letters; {} reset timers not yet due handed back",
        drain.took,
        drain.idle,
        report.dead_letters.len(),
        report.pending_timers.len()
    );
    println!(
        "audit log: {audited} denials recorded for {denied} denied requests; undelivered signals: {}",
        lost.load(Ordering::Relaxed)
    );
    println!(
        "accounting: accepted {} = processed {} + dead-lettered {}",
        report.metrics.accepted, report.metrics.processed, report.metrics.dead_lettered
    );
    println!("ops heard of {} stopped agents", ops.state()?.len());
    if audited != denied {
        return Err(
            format!("the audit log has {audited} denials for {denied} denied requests").into(),
        );
    }
    if lost.load(Ordering::Relaxed) != 0 || !drain.idle || !report.dead_letters.is_empty() {
        return Err("a graceful drain of this load must lose nothing".into());
    }
    if report.metrics.accepted != report.metrics.processed + report.metrics.dead_lettered {
        return Err("accounting does not add up".into());
    }
    Ok(())
}
