//! # Lifecycle: keys, required emits, supervision, monitors, graceful drain
//!
//! What a service with many agents needs beyond send and call, and how each
//! piece is built. The user-facing summary is README.md, "Building a
//! service"; `examples/service.rs` uses every piece.
//!
//! ## Keyed agents (`src/exec/context.rs`, `Runtime::spawn_keyed`)
//! A `RwLock<HashMap<Text, Arc<dyn AgentTask>>>` beside the registry. The
//! key is taken under the registry lock, together with the registration,
//! so two spawns of one key cannot both win (`SpawnError::KeyTaken` names
//! the holder). A lookup is one read lock and one hash probe; the typed
//! handle comes back by `Arc<dyn Any>` downcast of the agent, so a wrong
//! `S`/`R` is a typed `LookupError::WrongType`, never a panic. The agent
//! keeps its own key (`AgentCell::key`), and every way an agent stops
//! (`stop`, a restart policy giving up) releases it with the
//! deregistration, only if the map still points at that agent. Shutdown
//! clears the map. A sharded map (dashmap) was not needed: lookups take a
//! read lock, and `benches/keyed.rs` puts a lookup at 30 ns with 100 keys
//! and 50 ns with 100,000 (cache misses, as for the hand-kept `HashMap`
//! beside it: 19 and 47 ns).
//!
//! ## Required emits (`src/exec/reserve.rs`)
//! An emit is delivered after its action commits, so a receiver's refusal
//! then cannot undo the action; that is recorded (counter, list,
//! `on_undelivered` hook). For an emit that must arrive, the check moves
//! before the commit: when the action returns `Ok`, each receiver
//! *reserves* a mailbox slot (`Inbox::reserved`, counted against the
//! capacity under the mailbox lock together with `pending`, so the rule
//! "a full mailbox refuses" is exactly the same for reserved and queued
//! slots), and a refusal turns the action's outcome into an
//! `Undeliverable` error before the rollback decision, which then undoes
//! the state like any failure. The reservations ride in the instruction's
//! outbound list as `Outbound::Reserved`; truncating the list (the failure
//! path) drops them, and a dropped reservation releases its slot (and
//! wakes senders waiting for space). After the commit, delivery uses the
//! slot without a capacity check. The fast path pays one flag test per
//! action: nothing is reserved unless the action asked
//! (`Instruction::must_deliver`) or its type did
//! (`Undeliverable::FailAction`).
//!
//! ## Restart policies (`src/agent/supervision.rs`)
//! A panic already undoes the action (rollback) or restarts the state from
//! the initial value (`InPlace`); a policy can also ask for the initial
//! state under rollback. A limit counts panics on the runtime clock in a
//! `PanicLog` allocated at an agent's first panic (an idle agent pays one
//! pointer); the panic past the limit marks the agent, and the turn stops
//! it right after that instruction finished (its caller has the panic as
//! its error). Stopping inside the agent's own turn is the same stop as
//! `AgentRef::stop` from an action: the mailbox closes and hands back the
//! rest, including the rest of the batch, so batching never changes what
//! comes back. The report waits in `Runtime::take_stopped`.
//!
//! ## Monitors (`src/exec/monitors.rs`)
//! Watchers per watched agent in one map. Exactly-once telling: a stop
//! marks the agent closed, then takes its watchers; a new monitor is added,
//! then, if the agent is closed already, removes its own entry and tells
//! only if that removal found it. The map's lock lets only one side find
//! the entry, and the order (close before take; add before the check)
//! means one side always does. `tests/loom_monitors.rs` model-checks both
//! races and fails if the monitor side tells without the removal.
//!
//! ## Graceful drain (`Runtime::shutdown_graceful`)
//! Intake has three states (`Context::intake`): open, draining, closed. The
//! send path reads it with the same single load that used to read the
//! shutdown flag; only when it is not open does the sender look at who it
//! is (`agent::admission::refuses_now`): inside an agent's turn, on the
//! timer thread, or delivering async work's result (`exec::internal`) it
//! is let in while draining; anyone else is refused with the signal
//! handed back. The drain waits for "nothing in flight and no async work
//! pending", then holds the timers (`Timers::hold`: a firing in progress
//! finishes, nothing else fires, later schedules are kept) and waits
//! again for what that last firing delivered, so no timer races the
//! shutdown and every scheduled signal ends processed or in
//! `pending_timers`. Async work is forgotten by the work set only after its
//! result was accepted, so the drain cannot see "no work" between the two.
