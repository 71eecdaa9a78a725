//! Async work started by actions (`Instruction::start`): the result comes
//! back as a signal; a deadline sends the timeout signal instead and drops
//! the future; a failed action starts nothing; a shutdown cancels and
//! reports; a panic is recorded. Deterministic runs use the virtual clock;
//! threaded runs use a tokio spawner.

mod common;

use agentry::{
    ActionError, AgentSpec, DeliveryFailure, Instruction, Runtime, Signal, UndeliveredFrom,
};
use common::sig;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll};
use std::time::Duration;

const SEC: Duration = Duration::from_secs(1);

/// A future that never finishes and records when it is dropped.
struct Forever(Arc<AtomicBool>);

impl Future for Forever {
    type Output = Signal;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Signal> {
        Poll::Pending
    }
}

impl Drop for Forever {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn reply(ty: &'static str, text: String) -> Signal {
    Signal::new(ty, "/work", text).unwrap()
}

/// Logs what comes back; "fetch" starts work that answers with its input
/// doubled; "hang" starts work that never ends, with a 5 s deadline;
/// "fail" starts work and then fails.
fn spec(dropped: Arc<AtomicBool>) -> AgentSpec<Vec<String>> {
    AgentSpec::new(Vec::new())
        .on("fetch", |_: &mut Vec<String>, ins: &mut Instruction| {
            let n: u64 = ins.json()?;
            ins.start(async move { reply("fetched", format!("{}", n * 2)) })
        })
        .on("hang", move |_: &mut Vec<String>, ins: &mut Instruction| {
            let on_timeout = Signal::new("timed-out", "/work", "").map_err(ActionError::failed)?;
            ins.start_with_timeout(Forever(dropped.clone()), 5 * SEC, on_timeout)
        })
        .on("fail", |_: &mut Vec<String>, ins: &mut Instruction| {
            ins.start(async { reply("fetched", "never".into()) })?;
            Err(ActionError::rejected("changed my mind"))
        })
        .on("boom", |_: &mut Vec<String>, ins: &mut Instruction| {
            ins.start(async { panic!("deliberate: work panics") })
        })
        .on("fetched", |log: &mut Vec<String>, ins: &mut Instruction| {
            log.push(format!("fetched {}", ins.text()?));
            Ok(())
        })
        .on("timed-out", |log: &mut Vec<String>, _: &mut Instruction| {
            log.push("timed out".into());
            Ok(())
        })
}

#[test]
fn deterministic_work_returns_as_a_signal_and_deadlines_use_the_virtual_clock() {
    common::quiet_panics();
    let dropped = Arc::new(AtomicBool::new(false));
    let rt = Runtime::builder().deterministic().build().unwrap();
    let agent = rt.spawn(&spec(dropped.clone())).unwrap();
    agent
        .send(Signal::json("fetch", "/t", &21).unwrap())
        .unwrap();
    agent.send(sig("fail", "")).unwrap();
    agent.send(sig("hang", "")).unwrap();
    rt.run_until_idle().unwrap();
    assert_eq!(*agent.state().unwrap(), ["fetched 42"]);
    assert_eq!(
        rt.pending_work(),
        1,
        "the hanging one; the failed action started nothing"
    );
    rt.advance(Duration::from_millis(4_999)).unwrap();
    assert!(!dropped.load(Ordering::SeqCst));
    rt.advance(Duration::from_millis(1)).unwrap();
    assert_eq!(*agent.state().unwrap(), ["fetched 42", "timed out"]);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the timed-out future was dropped"
    );
    assert_eq!((rt.pending_work(), rt.timer_queue_len()), (0, 0));

    agent.send(sig("boom", "")).unwrap();
    rt.run_until_idle().unwrap();
    let undelivered = rt.take_undelivered();
    assert_eq!(undelivered.len(), 1);
    assert_eq!(undelivered[0].from, UndeliveredFrom::Work(agent.id()));
    assert!(matches!(
        &undelivered[0].failure,
        DeliveryFailure::WorkPanicked { message } if message.contains("work panics")
    ));
    let report = rt.shutdown();
    assert!(report.cancelled_work.is_empty());
}

#[test]
fn shutdown_cancels_work_in_flight_and_reports_it() {
    let dropped = Arc::new(AtomicBool::new(false));
    let rt = Runtime::builder().deterministic().build().unwrap();
    let agent = rt.spawn(&spec(dropped.clone())).unwrap();
    let hang = sig("hang", "");
    let id = hang.id().clone();
    agent.send(hang).unwrap();
    rt.run_until_idle().unwrap();
    let report = rt.shutdown();
    assert_eq!(report.cancelled_work.len(), 1);
    assert_eq!(report.cancelled_work[0].agent, agent.id());
    assert_eq!(report.cancelled_work[0].started_by, id);
    assert!(dropped.load(Ordering::SeqCst));
    assert!(
        report.pending_timers.is_empty(),
        "a deadline is not a signal timer"
    );
}

#[test]
fn threaded_work_runs_on_the_applications_executor() {
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    let handle = tokio_rt.handle().clone();
    let rt = Runtime::builder()
        .workers(2)
        .spawner(move |work| {
            handle.spawn(work);
        })
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let tx = std::sync::Mutex::new(tx);
    let dropped = Arc::new(AtomicBool::new(false));
    // The "service" answers when the test says so: the work waits on a
    // tokio channel, on tokio's threads, while the agent's worker is free.
    let (answer, answered) = tokio::sync::oneshot::channel::<&'static str>();
    let answered = std::sync::Mutex::new(Some(answered));
    let spec = AgentSpec::<()>::new(())
        .on("fetch", move |_: &mut (), ins: &mut Instruction| {
            let Some(answered) = answered.lock().unwrap().take() else {
                return Err(ActionError::rejected("one fetch only"));
            };
            ins.start(async move {
                let text = answered.await.unwrap_or("dropped");
                reply("fetched", text.into())
            })
        })
        .on("hang", {
            let dropped = dropped.clone();
            move |_: &mut (), ins: &mut Instruction| {
                let on_timeout =
                    Signal::new("timed-out", "/work", "").map_err(ActionError::failed)?;
                ins.start_with_timeout(
                    Forever(dropped.clone()),
                    Duration::from_millis(10),
                    on_timeout,
                )
            }
        })
        .on("fetched", {
            move |_: &mut (), ins: &mut Instruction| {
                let _ = tx
                    .lock()
                    .unwrap()
                    .send(format!("{} {}", ins.ty(), ins.text()?));
                Ok(())
            }
        })
        .on("timed-out", |_: &mut (), ins: &mut Instruction| {
            ins.emit(Signal::new("done", "/t", "").map_err(ActionError::failed)?);
            Ok(())
        });
    let agent = rt.spawn(&spec).unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let done_tx = std::sync::Mutex::new(done_tx);
    let _sub = rt
        .bus()
        .subscribe("done", move |_: &Signal| {
            let _ = done_tx.lock().unwrap().send(());
        })
        .unwrap();
    // The reply comes once the action committed: its work is in flight,
    // and the agent serves other signals while it waits.
    agent.call(sig("fetch", ""), 10 * SEC).unwrap();
    assert_eq!(rt.pending_work(), 1);
    agent.send(sig("hang", "")).unwrap();
    answer.send("slow").unwrap();
    assert_eq!(rx.recv_timeout(10 * SEC).unwrap(), "fetched slow");
    done_rx.recv_timeout(10 * SEC).unwrap();
    // The executor drops the timed-out future at its next poll (it was woken).
    tokio_rt.block_on(async {
        while !dropped.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
    });
    // The timer thread forgets the work only after it delivered the
    // timeout signal (so a drain never sees "no work" in between): it may
    // still be between the two when "done" arrives.
    let deadline = std::time::Instant::now() + 10 * SEC;
    while rt.pending_work() != 0 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(rt.pending_work(), 0);
    let report = rt.shutdown();
    assert_eq!(
        report.metrics.accepted,
        report.metrics.processed + report.metrics.dead_lettered
    );
}

#[test]
fn without_a_spawner_a_threaded_runtime_fails_the_action_with_a_clear_message() {
    let rt = Runtime::builder().workers(1).build().unwrap();
    let agent = rt
        .spawn(
            &AgentSpec::<(), ()>::new(()).on("go", |_: &mut (), ins: &mut Instruction| {
                ins.start(async { reply("x", String::new()) })
            }),
        )
        .unwrap();
    let err = agent.call(sig("go", ""), 10 * SEC).unwrap_err();
    assert!(err.to_string().contains("RuntimeBuilder::spawner"), "{err}");
}

#[test]
fn a_panicking_spawner_is_recorded_and_the_agent_keeps_serving() {
    common::quiet_panics();
    let rt = Runtime::builder()
        .workers(1)
        .spawner(|_work| panic!("deliberate: no executor here"))
        .build()
        .unwrap();
    let agent = rt
        .spawn(
            &AgentSpec::<u32, u32>::new(0).on("go", |n: &mut u32, ins: &mut Instruction| {
                *n += 1;
                ins.start(async { reply("x", String::new()) })?;
                Ok(*n)
            }),
        )
        .unwrap();
    assert_eq!(agent.call(sig("go", ""), 10 * SEC).unwrap(), 1);
    assert_eq!(agent.call(sig("go", ""), 10 * SEC).unwrap(), 2);
    let undelivered = rt.take_undelivered();
    assert_eq!(undelivered.len(), 2);
    assert!(matches!(
        &undelivered[0].failure,
        DeliveryFailure::WorkPanicked { message } if message.contains("spawner panicked")
    ));
    assert_eq!(rt.pending_work(), 0);
    let report = rt.shutdown();
    assert!(report.cancelled_work.is_empty());
}
