//! Keyed agents: `spawn_keyed`, `lookup` (typed), `lookup_addr`
//! (untyped), `keyed_agents`; a key is held by one running agent at a time
//! and released when it stops.

mod common;
use agentry::{AgentRef, LookupError, SpawnError};
use common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn not_found(result: Result<AgentRef<i64, i64>, LookupError>, key: &str) -> bool {
    matches!(result, Err(LookupError::NotFound { key: ref k }) if k == key)
}

#[test]
fn a_keyed_agent_is_found_again_as_a_typed_handle() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = counter_spec();
        let agent = rt.spawn_keyed(&spec, "user-17").unwrap();
        assert_eq!(agent.key(), Some("user-17"), "{name}");
        assert_eq!(rt.keyed_agents(), 1, "{name}");

        let found = rt.lookup::<i64, i64>("user-17").unwrap();
        assert_eq!(found.id(), agent.id(), "{name}");
        assert_eq!(found.key(), Some("user-17"), "{name}");
        // The same agent: what one handle does, the other sees.
        assert_eq!(found.call(sig("add", "5"), LONG).unwrap(), 5, "{name}");
        assert_eq!(*agent.state().unwrap(), 5, "{name}");
        let addr = rt.lookup_addr("user-17").unwrap();
        assert_eq!(addr.id(), agent.id(), "{name}");

        // With a state of its own, and a `String` key.
        let other = rt
            .spawn_keyed_with_state(&spec, String::from("user-18"), 40)
            .unwrap();
        assert_eq!(other.key(), Some("user-18"), "{name}");
        let found = rt.lookup::<i64, i64>("user-18").unwrap();
        assert_eq!(found.call(sig("add", "2"), LONG).unwrap(), 42, "{name}");
        assert_eq!(rt.keyed_agents(), 2, "{name}");

        // Unkeyed agents hold no key and are not counted.
        let plain = rt.spawn(&spec).unwrap();
        assert_eq!(plain.key(), None, "{name}");
        assert_eq!(rt.keyed_agents(), 2, "{name}");
        assert_eq!(rt.metrics().spawned, 3, "{name}");
    }
}

#[test]
fn keys_are_compared_exactly() {
    let rt = deterministic(strategies()[0].1).build().unwrap();
    rt.spawn_keyed(&counter_spec(), "Key").unwrap();
    for other in ["key", "KEY", "Key ", " Key", "Ke", ""] {
        assert!(not_found(rt.lookup(other), other), "{other:?}");
        assert!(rt.lookup_addr(other).is_none(), "{other:?}");
    }
    // The empty key and a key with any characters are keys like the others.
    rt.spawn_keyed(&counter_spec(), "").unwrap();
    rt.spawn_keyed(&counter_spec(), "ü/ñ 🦀\0").unwrap();
    assert!(rt.lookup::<i64, i64>("").is_ok());
    assert!(rt.lookup::<i64, i64>("ü/ñ 🦀\0").is_ok());
    assert_eq!(rt.keyed_agents(), 3);
}

#[test]
fn a_lookup_with_other_types_is_wrong_type() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let agent = rt.spawn_keyed(&counter_spec(), "counter").unwrap();
        // Another state type.
        let err = rt.lookup::<String, i64>("counter").unwrap_err();
        match &err {
            LookupError::WrongType { key, expected } => {
                assert_eq!(key, "counter", "{name}");
                assert!(expected.contains("AgentRef"), "{name}: {expected}");
                assert!(expected.contains("String"), "{name}: {expected}");
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(err.to_string().contains("counter"), "{name}: {err}");
        // The same state type with another reply type.
        assert!(
            matches!(
                rt.lookup::<i64, ()>("counter"),
                Err(LookupError::WrongType { .. })
            ),
            "{name}"
        );
        // The untyped address works whatever the types, and the agent is
        // still there and still keyed.
        assert!(
            rt.lookup_addr("counter")
                .unwrap()
                .send(sig("add", "3"))
                .is_ok()
        );
        rt.run_until_idle().unwrap();
        assert_eq!(*agent.state().unwrap(), 3, "{name}");
        assert_eq!(rt.lookup::<i64, i64>("counter").unwrap().id(), agent.id());
    }
}

#[test]
fn a_lookup_of_an_unknown_key_is_not_found() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        assert!(not_found(rt.lookup("nobody"), "nobody"), "{name}");
        assert!(rt.lookup_addr("nobody").is_none(), "{name}");
        let err = rt.lookup::<i64, i64>("nobody").unwrap_err();
        assert!(err.to_string().contains("nobody"), "{name}: {err}");
        assert_eq!(rt.keyed_agents(), 0, "{name}");
    }
}

#[test]
fn a_key_held_by_a_running_agent_is_refused_with_its_holder() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let holder = rt.spawn_keyed(&counter_spec(), "order-1").unwrap();
        let err = rt.spawn_keyed(&counter_spec(), "order-1").unwrap_err();
        assert_eq!(
            err,
            SpawnError::KeyTaken {
                key: "order-1".into(),
                holder: holder.id(),
            },
            "{name}"
        );
        assert!(err.to_string().contains("order-1"), "{name}: {err}");
        // Also with another spec type, and with a state of its own.
        let err = rt.spawn_keyed(&log_spec(), "order-1").unwrap_err();
        assert!(
            matches!(err, SpawnError::KeyTaken { holder: h, .. } if h == holder.id()),
            "{name}"
        );
        let err = rt
            .spawn_keyed_with_state(&counter_spec(), "order-1", 9)
            .unwrap_err();
        assert!(matches!(err, SpawnError::KeyTaken { .. }), "{name}");
        // The holder is untouched.
        assert_eq!(rt.keyed_agents(), 1, "{name}");
        assert_eq!(
            rt.lookup::<i64, i64>("order-1").unwrap().id(),
            holder.id(),
            "{name}"
        );
        assert_eq!(holder.call(sig("add", "1"), LONG).unwrap(), 1, "{name}");
        assert_eq!(rt.metrics().spawned, 1, "{name}");
        assert_eq!(rt.metrics().live_agents, 1, "{name}");
    }
}

#[test]
fn a_stopped_agent_frees_its_key_for_a_new_one() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let first = rt.spawn_keyed(&counter_spec(), "k").unwrap();
        first.send(sig("add", "1")).unwrap();
        assert_eq!(first.stop().dead_letters.len(), 1, "{name}");
        assert!(not_found(rt.lookup("k"), "k"), "{name}");
        assert!(rt.lookup_addr("k").is_none(), "{name}");
        assert_eq!(rt.keyed_agents(), 0, "{name}");
        // The stopped handle keeps its key as a name.
        assert_eq!(first.key(), Some("k"), "{name}");

        // Spawned again, with another type even.
        let second = rt.spawn_keyed(&log_spec(), "k").unwrap();
        assert_ne!(second.id(), first.id(), "{name}");
        assert_eq!(rt.keyed_agents(), 1, "{name}");
        // Stopping the first one again must not release the second's key.
        assert!(first.stop().dead_letters.is_empty(), "{name}");
        let found = rt.lookup::<Vec<String>, usize>("k").unwrap();
        assert_eq!(found.id(), second.id(), "{name}");
        assert_eq!(rt.keyed_agents(), 1, "{name}");
        assert!(rt.spawn_keyed(&counter_spec(), "k").is_err(), "{name}");

        second.stop();
        let third = rt.spawn_keyed(&counter_spec(), "k").unwrap();
        assert_eq!(
            rt.lookup::<i64, i64>("k").unwrap().id(),
            third.id(),
            "{name}"
        );
        let m = rt.shutdown().metrics;
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}");
    }
}

#[test]
fn a_hundred_thousand_keyed_agents_are_all_found() {
    const N: usize = 100_000;
    let rt = deterministic(agentry::imp::Strategy::from_features())
        .build()
        .unwrap();
    let spec = counter_spec();
    let mut ids = Vec::with_capacity(N);
    for i in 0..N {
        ids.push(rt.spawn_keyed(&spec, format!("user-{i}")).unwrap().id());
    }
    assert_eq!(rt.keyed_agents(), N);
    let mut key = String::new();
    for (i, id) in ids.iter().enumerate() {
        key.clear();
        use std::fmt::Write;
        write!(key, "user-{i}").unwrap();
        let found = rt.lookup::<i64, i64>(&key).unwrap();
        assert_eq!(found.id(), *id, "{key}");
        assert_eq!(found.key(), Some(key.as_str()));
    }
    assert!(not_found(
        rt.lookup(&format!("user-{N}")),
        &format!("user-{N}")
    ));
    // One of them still works as an agent.
    let last = rt.lookup::<i64, i64>(&format!("user-{}", N - 1)).unwrap();
    assert_eq!(last.call(sig("add", "7"), LONG).unwrap(), 7);
    let report = rt.shutdown();
    assert_eq!(report.metrics.spawned, N as u64);
}

/// Several threads spawn the same key at once, round after round (the key
/// freed between rounds): each round exactly one spawn wins, and every
/// other is refused naming the winner.
#[test]
fn concurrent_spawns_of_one_key_have_exactly_one_winner() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 200;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let spec = counter_spec();
        let start = Barrier::new(THREADS + 1);
        let done = Barrier::new(THREADS + 1);
        let results = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                let (rt, spec, start, done, results) = (&rt, &spec, &start, &done, &results);
                scope.spawn(move || {
                    for _ in 0..ROUNDS {
                        start.wait();
                        let r = rt.spawn_keyed(spec, "contended");
                        results.lock().unwrap().push(r);
                        done.wait();
                    }
                });
            }
            for round in 0..ROUNDS {
                start.wait();
                done.wait();
                let round_results = std::mem::take(&mut *results.lock().unwrap());
                assert_eq!(round_results.len(), THREADS);
                let winners: Vec<_> = round_results
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .collect();
                assert_eq!(winners.len(), 1, "{name} round {round}: {round_results:?}");
                let winner = winners[0].clone();
                for r in &round_results {
                    match r {
                        Ok(a) => assert_eq!(a.id(), winner.id()),
                        Err(SpawnError::KeyTaken { key, holder }) => {
                            assert_eq!(key, "contended");
                            assert_eq!(*holder, winner.id(), "{name} round {round}");
                        }
                        Err(e) => panic!("{name} round {round}: {e:?}"),
                    }
                }
                assert_eq!(rt.keyed_agents(), 1, "{name} round {round}");
                assert_eq!(
                    rt.lookup::<i64, i64>("contended").unwrap().id(),
                    winner.id(),
                    "{name} round {round}"
                );
                winner.stop();
                assert_eq!(rt.keyed_agents(), 0, "{name} round {round}");
            }
        });
        let report = rt.shutdown();
        assert_eq!(report.metrics.spawned, ROUNDS as u64, "{name}");
    }
}

/// Threads look keys up while the main thread stops their agents one by
/// one. A lookup finds the right agent or nothing; once `stop` returned,
/// the key is gone for every thread, and it never comes back.
#[test]
fn lookups_from_threads_while_agents_stop() {
    const AGENTS: usize = 2_000;
    const LOOKERS: usize = 4;
    for (name, strategy) in strategies() {
        let rt = threaded(strategy).build().unwrap();
        let spec = counter_spec();
        let agents: Vec<_> = (0..AGENTS)
            .map(|i| rt.spawn_keyed(&spec, format!("a-{i}")).unwrap())
            .collect();
        let keys: Vec<String> = (0..AGENTS).map(|i| format!("a-{i}")).collect();
        // Agents 0..stopped have returned from `stop`.
        let stopped = AtomicUsize::new(0);
        let finished = AtomicBool::new(false);
        // The lookers have found every agent once; the stops begin.
        let ready = Barrier::new(LOOKERS + 1);
        std::thread::scope(|scope| {
            for t in 0..LOOKERS {
                let (rt, agents, keys) = (&rt, &agents, &keys);
                let (stopped, finished, ready) = (&stopped, &finished, &ready);
                scope.spawn(move || {
                    for (key, agent) in keys.iter().zip(agents) {
                        assert_eq!(rt.lookup::<i64, i64>(key).unwrap().id(), agent.id());
                    }
                    ready.wait();
                    // Per key: whether this thread has seen it gone.
                    let mut gone = vec![false; AGENTS];
                    let mut i = t;
                    loop {
                        let last_pass = finished.load(Ordering::Acquire);
                        for _ in 0..AGENTS {
                            i = (i + 7) % AGENTS;
                            let before = stopped.load(Ordering::Acquire);
                            match rt.lookup::<i64, i64>(&keys[i]) {
                                Ok(found) => {
                                    assert!(i >= before, "{name}: a-{i} found after its stop");
                                    assert!(!gone[i], "{name}: a-{i} came back");
                                    assert_eq!(found.id(), agents[i].id());
                                    assert_eq!(found.key(), Some(keys[i].as_str()));
                                }
                                Err(LookupError::NotFound { key }) => {
                                    assert_eq!(key, keys[i]);
                                    gone[i] = true;
                                }
                                Err(e) => panic!("{name}: {e:?}"),
                            }
                            match rt.lookup_addr(&keys[i]) {
                                Some(addr) => {
                                    assert!(i >= before, "{name}: a-{i} found after its stop");
                                    assert!(!gone[i], "{name}: a-{i} came back");
                                    assert_eq!(addr.id(), agents[i].id());
                                }
                                None => gone[i] = true,
                            }
                        }
                        if last_pass {
                            break;
                        }
                    }
                    assert!(gone.iter().all(|g| *g), "{name}: a key outlived its stop");
                });
            }
            ready.wait();
            for (i, agent) in agents.iter().enumerate() {
                // Keep the agent busy, so some stops meet a running turn.
                let _ = agent.send(sig("add", "1"));
                agent.stop();
                assert!(rt.lookup_addr(&keys[i]).is_none(), "{name}");
                stopped.store(i + 1, Ordering::Release);
            }
            finished.store(true, Ordering::Release);
        });
        assert_eq!(rt.keyed_agents(), 0, "{name}");
        let m = rt.shutdown().metrics;
        assert_eq!(m.accepted, m.processed + m.dead_lettered, "{name}");
    }
}
