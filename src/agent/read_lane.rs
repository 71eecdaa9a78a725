//! Reads: `state()` and read-only queries.
//!
//! With `fast-path` they are answered on the caller's thread from the
//! snapshot when it shows the latest commit. Otherwise (or while the
//! snapshot is behind: nobody had read, or a copy panicked) a read is a
//! message in a lane of its own, served before
//! the next instruction starts, so it sees every instruction that completed
//! and none that is half done. A reader whose agent nobody runs claims it and
//! serves the lane itself: a read never needs a worker to wake up.

use super::cell::{AgentCell, ReadJob, lock};
use super::on_thread;
use crate::action::guarded;
use crate::agent::error::QueryError;
use crate::exec::reply::pool as reply_pool;
use crate::exec::reply::{ReplySlot, deadline_after};
use crate::signal::Signal;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl<S, R> AgentCell<S, R>
where
    S: Clone + Send + Sync + 'static,
    R: Send + 'static,
{
    pub(crate) fn state(self: &Arc<Self>) -> Result<Arc<S>, QueryError> {
        if on_thread::is_running(self.id) {
            return Err(QueryError::Reentrant { agent: self.id });
        }
        if let Some(snapshot) = self.view.load() {
            return Ok(snapshot);
        }
        let pool_kind = self.rt.config.strategy.pool;
        let slot = reply_pool::lease::<Result<Arc<S>, QueryError>>(pool_kind);
        let ticket = slot.arm();
        self.push_read(ReadJob::State(slot.clone(), ticket));
        let result = self.await_read(&slot, ticket);
        reply_pool::release(pool_kind, slot);
        result
    }

    pub(crate) fn query(self: &Arc<Self>, signal: Signal) -> Result<R, QueryError> {
        if on_thread::is_running(self.id) {
            return Err(QueryError::Reentrant { agent: self.id });
        }
        let mut slots = Vec::new();
        self.kind
            .query_routes
            .candidates(signal.type_text(), &mut slots);
        let index = slots.first().and_then(|&first| {
            self.kind
                .query_routes
                .router
                .slot(first)
                .map(|r| *r.target())
        });
        let Some(index) = index else {
            return Err(QueryError::NoRoute {
                agent: self.id,
                ty: signal.type_text().clone(),
            });
        };
        // A query answered from the snapshot runs on this thread as if in a
        // turn of the agent, so that a query which reads, queries or calls
        // its own agent gets `Reentrant`, as it does when the read lane
        // serves it: the outcome never depends on `fast-path`.
        let answered = {
            let _turn = on_thread::enter(self.id);
            self.view
                .with(|state| self.run_query(index, state, &signal))
        };
        if let Some(answer) = answered {
            return answer;
        }
        let pool_kind = self.rt.config.strategy.pool;
        let slot = reply_pool::lease::<Result<R, QueryError>>(pool_kind);
        let ticket = slot.arm();
        self.push_read(ReadJob::Query {
            index,
            signal,
            slot: slot.clone(),
            ticket,
        });
        let result = self.await_read(&slot, ticket);
        reply_pool::release(pool_kind, slot);
        result
    }

    /// Queues a read. Nobody is scheduled for it: the reader claims the
    /// agent whenever it is idle (see `await_read`), and a runner serves
    /// the lane before each batch and requeues itself for reads it finds at
    /// release.
    fn push_read(&self, job: ReadJob<S, R>) {
        lock(&self.reads).push(job);
        self.has_reads.store(true, Ordering::Release);
    }

    /// Waits for a read, serving the lane itself whenever nobody runs the
    /// agent.
    fn await_read<T: Send>(
        self: &Arc<Self>,
        slot: &ReplySlot<Result<T, QueryError>>,
        ticket: u64,
    ) -> Result<T, QueryError> {
        let timeout = self.rt.config.default_timeout;
        let help = || {
            if !self.claim_inline() {
                return false;
            }
            let served = {
                let mut core = lock(&self.core);
                let _turn = on_thread::enter(self.id);
                self.serve_reads(&mut core)
            };
            self.release_inline(|| self.clone());
            served > 0
        };
        slot.wait(ticket, deadline_after(timeout), help)
            .unwrap_or(Err(QueryError::Timeout { after: timeout }))
    }

    /// Serves every read waiting in the lane; returns how many.
    pub(super) fn serve_reads(&self, core: &mut super::cell::Core<S>) -> usize {
        if !self.has_reads.load(Ordering::Acquire) {
            return 0;
        }
        let jobs = {
            let mut reads = lock(&self.reads);
            self.has_reads.store(false, Ordering::Release);
            std::mem::take(&mut *reads)
        };
        let n = jobs.len();
        // With `fast-path` these readers found the snapshot behind the live
        // state: one copy answers them and refreshes it for the next ones.
        let fresh = if self.view.is_behind() {
            guarded(|| Ok(Arc::new(core.state.clone())))
                .ok()
                .inspect(|copy| self.view.refresh(copy.clone()))
        } else {
            None
        };
        for job in jobs {
            match job {
                ReadJob::State(slot, ticket) => {
                    // The state's `Clone` is user code: a panic is the read's error.
                    let copy = match &fresh {
                        Some(copy) => Ok(copy.clone()),
                        None => guarded(|| Ok(Arc::new(core.state.clone()))),
                    };
                    slot.fulfil(ticket, copy.map_err(QueryError::Action));
                }
                ReadJob::Query {
                    index,
                    signal,
                    slot,
                    ticket,
                } => {
                    slot.fulfil(ticket, self.run_query(index, &core.state, &signal));
                }
            }
        }
        n
    }

    fn run_query(&self, index: u32, state: &S, signal: &Signal) -> Result<R, QueryError> {
        match self.kind.queries.get(index as usize) {
            Some(q) => guarded(|| q.query(state, signal)).map_err(QueryError::Action),
            None => Err(QueryError::NoRoute {
                agent: self.id,
                ty: signal.type_text().clone(),
            }),
        }
    }
}
