//! Routing as agents see it: which actions a signal runs, in which order, and
//! route changes at run time.

#![allow(clippy::type_complexity)] // test tables read best with their types inline

mod common;
use agentry::{AgentSpec, Instruction, RouteError, RouteSpec, SendErrorKind, SpawnError};
use common::*;

/// An agent whose actions append their own name, so the state is the order
/// in which the routes fired.
fn recorder(routes: &[(&'static str, &'static str, i32)]) -> AgentSpec<Vec<&'static str>> {
    let mut spec = AgentSpec::new(Vec::new());
    let mut names: Vec<&'static str> = routes.iter().map(|r| r.1).collect();
    names.sort();
    names.dedup();
    for name in names {
        spec = spec.action(
            name,
            move |log: &mut Vec<&'static str>, _: &mut Instruction| {
                log.push(name);
                Ok(())
            },
        );
    }
    for &(pattern, action, priority) in routes {
        spec = spec.route_spec(RouteSpec::new(pattern, action).priority(priority));
    }
    spec
}

#[test]
fn ordering_table() {
    // (routes as (pattern, action, priority), signal type, expected firing order)
    #[rustfmt::skip]
    let table: &[(&[(&str, &str, i32)], &str, &[&str])] = &[
        (&[("a.*", "star", 0), ("a.b", "exact", 0)], "a.b", &["exact", "star"]),
        (&[("a.**", "glob", 0), ("a.*", "star", 0), ("a.b", "exact", 0)], "a.b", &["exact", "star", "glob"]),
        // Specificity beats priority.
        (&[("a.*", "star", 100), ("a.b", "exact", -100)], "a.b", &["exact", "star"]),
        // Priority among equally specific routes.
        (&[("a.b", "low", -5), ("a.b", "high", 5), ("a.b", "mid", 0)], "a.b", &["high", "mid", "low"]),
        // Registration order breaks ties.
        (&[("a.b", "first", 0), ("a.b", "second", 0)], "a.b", &["first", "second"]),
        // Left-most difference decides: a.b.** (exact, exact, glob) beats a.*.c.
        (&[("a.*.c", "star_c", 0), ("a.b.**", "b_glob", 0)], "a.b.c", &["b_glob", "star_c"]),
        // A pattern that ends beats one that continues with **.
        (&[("a.b.**", "longer", 0), ("a.b", "ends", 0)], "a.b", &["ends", "longer"]),
        (&[("**", "all", 0), ("*.*", "two", 0)], "x.y", &["two", "all"]),
    ];
    for (name, strategy) in strategies() {
        for (routes, ty, expected) in table {
            let rt = deterministic(strategy).build().unwrap();
            let agent = rt.spawn(&recorder(routes)).unwrap();
            // Twice: the second send of a type may be served from the
            // fast-path route memo, which must keep the order.
            for round in 1..=2 {
                agent.send(sig_of(ty)).unwrap();
                rt.run_until_idle().unwrap();
                let fired = agent.state().unwrap();
                assert_eq!(
                    fired.get((round - 1) * expected.len()..),
                    Some(*expected),
                    "{name}, round {round}: routes {routes:?} for {ty}"
                );
            }
        }
    }
}

fn sig_of(ty: &str) -> agentry::Signal {
    agentry::Signal::new(ty.to_owned(), "/test", "").unwrap()
}

#[test]
fn wildcard_table() {
    #[rustfmt::skip]
    let table: &[(&str, &str, bool)] = &[
        ("a", "a", true), ("a", "a.b", false), ("a", "b", false),
        ("a.*", "a.b", true), ("a.*", "a", false), ("a.*", "a.b.c", false),
        ("a.**", "a", true), ("a.**", "a.b", true), ("a.**", "a.b.c", true), ("a.**", "b", false),
        ("**", "a", true), ("**", "a.b.c.d", true),
        ("**.c", "c", true), ("**.c", "a.b.c", true), ("**.c", "a.c.b", false),
        ("a.**.z", "a.z", true), ("a.**.z", "a.b.c.z", true), ("a.**.z", "a.b", false),
        ("*.b.*", "a.b.c", true), ("*.b.*", "b.c", false),
        ("A-b_9.c", "A-b_9.c", true), ("a.b", "A.b", false),
    ];
    for &(pattern, ty, matches) in table {
        for (name, strategy) in strategies() {
            let rt = deterministic(strategy).build().unwrap();
            let agent = rt.spawn(&recorder(&[(pattern, "hit", 0)])).unwrap();
            let result = agent.send(sig_of(ty));
            if matches {
                result.unwrap();
            } else {
                assert_eq!(
                    result.unwrap_err().kind(),
                    &SendErrorKind::NoRoute,
                    "{name}: {pattern} vs {ty}"
                );
            }
        }
    }
}

#[test]
fn routes_can_be_added_and_removed_while_running() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let agent = rt
            .spawn(&recorder(&[("x", "x", 0), ("y.*", "y", 0)]))
            .unwrap();
        assert_eq!(
            agent.send(sig_of("y.q")).map_err(|e| e.kind().clone()),
            Ok(())
        );
        // Warm the memo for "z.q", then add a route for it: the memo must not hide it.
        assert!(agent.send(sig_of("z.q")).is_err());
        let id = agent.add_route(RouteSpec::new("z.*", "x")).unwrap();
        agent.send(sig_of("z.q")).unwrap();
        agent.remove_route(id).unwrap();
        assert_eq!(
            agent.send(sig_of("z.q")).unwrap_err().kind(),
            &SendErrorKind::NoRoute,
            "{name}"
        );
        assert!(matches!(
            agent.remove_route(id),
            Err(RouteError::UnknownRoute { .. })
        ));
        assert!(matches!(
            agent.add_route(RouteSpec::new("q", "missing")),
            Err(RouteError::UnknownAction { .. })
        ));
        assert!(matches!(
            agent.add_route(RouteSpec::new("q..r", "x")),
            Err(RouteError::Pattern(_))
        ));
        assert!(matches!(
            agent.add_route(RouteSpec::new("q", "x").priority(101)),
            Err(RouteError::PriorityOutOfRange { given: 101 })
        ));
        rt.run_until_idle().unwrap();
        assert_eq!(*agent.state().unwrap(), ["y", "x"], "{name}");
        assert_eq!(agent.routes().len(), 2);
        if strategy.fast_path {
            let stats = agent.memo_stats();
            assert!(stats.misses > 0, "{name}: {stats:?}");
        }
    }
}

#[test]
fn predicate_routes_fire_only_for_accepted_signals() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let spec = recorder(&[("order", "any", 0)])
            .action("big", |log: &mut Vec<&'static str>, _: &mut Instruction| {
                log.push("big");
                Ok(())
            })
            .route_spec(
                RouteSpec::new("order", "big")
                    .priority(10)
                    .when(|s| s.data().len() > 3),
            )
            .route_spec(
                RouteSpec::new("boom", "big").when(|_| panic!("deliberate predicate panic")),
            );
        let agent = rt.spawn(&spec).unwrap();
        agent.send(sig("order", "12")).unwrap();
        agent.send(sig("order", "12345")).unwrap();
        let e = agent.send(sig("boom", "")).unwrap_err();
        assert!(
            matches!(e.kind(), SendErrorKind::PredicatePanicked { message, .. } if message.contains("deliberate")),
            "{name}"
        );
        rt.run_until_idle().unwrap();
        assert_eq!(*agent.state().unwrap(), ["any", "big", "any"], "{name}");
    }
}

#[test]
fn invalid_specs_are_refused_at_spawn_with_the_reason() {
    let rt = deterministic(Default::default()).build().unwrap();
    let noop = |_: &mut u8, _: &mut Instruction| Ok(());
    let cases: Vec<(AgentSpec<u8>, fn(&SpawnError) -> bool)> = vec![
        (
            AgentSpec::new(0).action("a", noop).route("a..b", "a"),
            |e| matches!(e, SpawnError::Route(RouteError::Pattern(_))),
        ),
        (AgentSpec::new(0).route("a", "nope"), |e| {
            matches!(e, SpawnError::Route(RouteError::UnknownAction { .. }))
        }),
        (AgentSpec::new(0).action("a", noop).action("a", noop), |e| {
            matches!(e, SpawnError::DuplicateAction { .. })
        }),
        (
            AgentSpec::new(0)
                .action("a", noop)
                .route_spec(RouteSpec::new("a", "a").priority(-101)),
            |e| {
                matches!(
                    e,
                    SpawnError::Route(RouteError::PriorityOutOfRange { given: -101 })
                )
            },
        ),
        (AgentSpec::new(0).on("a", noop).mailbox_capacity(0), |e| {
            matches!(e, SpawnError::ZeroCapacity)
        }),
    ];
    for (spec, expected) in cases {
        let err = rt.spawn(&spec).unwrap_err();
        assert!(expected(&err), "{spec:?}: {err}");
        assert!(!err.to_string().is_empty());
    }
}

/// Ids carry their owner: a route id of one agent, or a subscription id of
/// one runtime's bus, is refused by another with a typed error, and nothing
/// of the other's is removed.
#[test]
fn a_foreign_route_or_subscription_id_is_refused_and_removes_nothing() {
    for (name, strategy) in strategies() {
        let rt1 = deterministic(strategy).build().unwrap();
        let rt2 = deterministic(strategy).build().unwrap();
        let id1 = rt1.bus().subscribe("a.b", |_| {}).unwrap();
        let _id2 = rt2.bus().subscribe("a.b", |_| {}).unwrap();
        match rt2.bus().unsubscribe(id1) {
            Err(RouteError::ForeignRoute { .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(rt2.bus().subscriptions(), 1, "{name}");
        rt1.bus().unsubscribe(id1).unwrap();
        assert!(matches!(
            rt1.bus().unsubscribe(id1),
            Err(RouteError::UnknownRoute { .. })
        ));

        let a = rt1.spawn(&counter_spec()).unwrap();
        let b = rt1.spawn(&counter_spec()).unwrap();
        let added = a.add_route(RouteSpec::new("more", "add")).unwrap();
        let b_routes = b.routes().len();
        match b.remove_route(added) {
            Err(RouteError::ForeignRoute { .. }) => {}
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(b.routes().len(), b_routes, "{name}");
        a.remove_route(added).unwrap();
        let _ = (rt1.shutdown(), rt2.shutdown());
    }
}

#[test]
fn the_route_memo_hits_on_a_repeated_type_and_starts_again_after_a_route_change() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let agent = rt
            .spawn(&recorder(&[("a.*", "star", 0), ("a.b", "exact", 0)]))
            .unwrap();
        let stats = |agent: &agentry::AgentRef<Vec<&'static str>>| {
            let s = agent.memo_stats();
            (s.hits, s.misses)
        };
        for ty in ["a.b", "a.b", "a.c", "a.b", "a.c"] {
            agent.send(sig_of(ty)).unwrap();
        }
        let expected = |hits, misses| {
            if strategy.fast_path {
                (hits, misses)
            } else {
                (0, 0)
            }
        };
        assert_eq!(stats(&agent), expected(3, 2), "{name}");
        // A route change starts a new memo: the next send of each type misses.
        let id = agent.add_route(RouteSpec::new("a.c", "exact")).unwrap();
        agent.send(sig_of("a.c")).unwrap();
        agent.send(sig_of("a.c")).unwrap();
        assert_eq!(stats(&agent), expected(4, 3), "{name}");
        agent.remove_route(id).unwrap();
        agent.send(sig_of("a.c")).unwrap();
        assert_eq!(stats(&agent), expected(4, 4), "{name}");
        rt.run_until_idle().unwrap();
        // The memo answers exactly what the trie does.
        assert_eq!(
            *agent.state().unwrap(),
            [
                "exact", "star", "exact", "star", "star", "exact", "star", "star", "exact", "star",
                "exact", "star", "star"
            ],
            "{name}"
        );
    }
}
