//! Model-checks the wait for mailbox space (`src/exec/space.rs`) with loom:
//! a sender that finds the mailbox full registers and retries, while a turn
//! frees the slot and wakes registered senders. In every interleaving the
//! sender either finds the slot in its retry or is woken (no lost wake-up).

mod sync {
    pub use loom::sync::Mutex;
    pub use loom::sync::atomic::{AtomicUsize, Ordering};
}

#[path = "../src/exec/space.rs"]
#[allow(dead_code)]
mod space;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use space::{Pending, SpaceWaiters};
use std::task::{Wake, Waker};

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

const CAPACITY: usize = 1;

#[test]
fn a_waiting_sender_either_finds_the_freed_slot_or_is_woken() {
    loom::model(|| {
        let waiters = Arc::new(SpaceWaiters::default());
        // The mailbox's count: full.
        let pending = Arc::new(Pending::default());
        for _ in 0..CAPACITY {
            pending.add_one();
        }

        let turn = {
            let (waiters, pending) = (waiters.clone(), pending.clone());
            thread::spawn(move || {
                if pending.take(1) {
                    waiters.wake(7, &pending);
                }
            })
        };

        // The sender: its send found the mailbox full; it registers, then
        // tries again.
        let flag = std::sync::Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        waiters.register(7, &pending, &waker);
        let retry_found_room = pending.get(Ordering::Relaxed) < CAPACITY;
        turn.join().unwrap();
        assert!(
            retry_found_room || flag.0.load(Ordering::SeqCst),
            "lost wake-up: the slot freed and the sender neither saw it nor was woken"
        );
    });
}

#[test]
fn a_close_wakes_every_registered_sender() {
    loom::model(|| {
        let waiters = Arc::new(SpaceWaiters::default());
        let pending = Arc::new(Pending::default());
        let flags: Vec<_> = (0..2)
            .map(|_| std::sync::Arc::new(Flag(AtomicBool::new(false))))
            .collect();
        let senders: Vec<_> = flags
            .iter()
            .map(|f| {
                let (waiters, pending, waker) =
                    (waiters.clone(), pending.clone(), Waker::from(f.clone()));
                thread::spawn(move || waiters.register(3, &pending, &waker))
            })
            .collect();
        for s in senders {
            s.join().unwrap();
        }
        // A close takes what was queued (nothing here) and sees the bit.
        assert!(pending.take(0));
        waiters.wake(3, &pending);
        assert!(flags.iter().all(|f| f.0.load(Ordering::SeqCst)));
        assert!(!pending.take(0), "the bit is cleared once they were woken");
    });
}
