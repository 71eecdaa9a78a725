//! Router tests: semantics tables, the order rule, removal, cost bounds, and
//! property tests against the reference matcher.

use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;

fn pat(text: &str) -> Pattern {
    Pattern::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn prio(value: i32) -> Priority {
    Priority::new(value).unwrap()
}

/// Exponential but obviously right matcher, for small inputs only.
fn naive_match(p: &[&str], t: &[&str]) -> bool {
    match p.split_first() {
        None => t.is_empty(),
        Some((&"**", rest)) => (0..=t.len()).any(|k| naive_match(rest, &t[k..])),
        Some((&"*", rest)) => !t.is_empty() && naive_match(rest, &t[1..]),
        Some((exact, rest)) => t.first() == Some(exact) && naive_match(rest, &t[1..]),
    }
}

fn naive(pattern: &str, ty: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = ty.split('.').collect();
    naive_match(&p, &t)
}

/// Targets of the routes matching `ty`, in lookup order.
fn targets<'r>(router: &'r Router<&'static str>, ty: &str) -> Vec<&'r str> {
    router
        .matches(ty)
        .into_iter()
        .map(|r| *r.target())
        .collect()
}

/// Lookup work for `ty` as counted by the router.
fn steps(router: &Router<impl Sized>, ty: &str) -> (Vec<RouteSlot>, u64) {
    let mut out = Vec::new();
    let mut steps = 0;
    router.lookup_counted(ty, &mut out, &mut steps);
    (out, steps)
}

#[test]
fn wildcard_table() {
    let rows: &[(&str, &str, bool)] = &[
        // `**` at the end matches zero or more segments.
        ("a.**", "a", true),
        ("a.**", "a.b", true),
        ("a.**", "a.b.c", true),
        ("a.**", "b", false),
        ("a.**", "ab", false),
        ("a.**", "b.a", false),
        // `**` alone matches everything.
        ("**", "a", true),
        ("**", "a.b.c", true),
        ("**", "order.item.created", true),
        // `**` at the start and in the middle.
        ("**.created", "created", true),
        ("**.created", "order.created", true),
        ("**.created", "order.item.created", true),
        ("**.created", "order.created.x", false),
        ("a.**.z", "a.z", true),
        ("a.**.z", "a.b.z", true),
        ("a.**.z", "a.b.c.z", true),
        ("a.**.z", "a.b", false),
        ("a.**.z", "z", false),
        ("**.a.**", "a", true),
        ("**.a.**", "x.a.y", true),
        ("**.a.**", "x.b.y", false),
        ("a.**.b.**.c", "a.x.b.y.z.c", true),
        ("a.**.b.**.c", "a.c.b", false),
        // No implicit prefix matching.
        ("a", "a", true),
        ("a", "a.b", false),
        ("a.b", "a", false),
        ("order.item", "order.item.created", false),
        // `*` is exactly one segment, never zero.
        ("a.*", "a", false),
        ("a.*", "a.b", true),
        ("a.*", "a.b.c", false),
        ("*", "a", true),
        ("*", "a.b", false),
        ("a.*.c", "a.b.c", true),
        ("a.*.c", "a.c", false),
        ("*.**", "a", true),
        ("*.**", "a.b.c", true),
        ("**.*", "a", true),
        ("*.*", "a", false),
        // Case-sensitive.
        ("A", "a", false),
        ("a", "A", false),
        ("order.Item", "order.item", false),
        // Unvalidated types: segments are taken literally.
        ("**", "", true),
        ("*", "", true),
        ("a", "", false),
        ("a.*.b", "a..b", true),
        ("a.b", "a..b", false),
        ("a.**", "a.", true),
        ("a.*", "a.", true),
        ("*", "a b", true),
        ("**", "ä.ö", true),
        ("a.**", "a.*", true),
        ("a.*", "a.**", true),
    ];
    assert!(rows.len() >= 25);
    for &(pattern, ty, expected) in rows {
        let p = pat(pattern);
        assert_eq!(
            p.matches(ty),
            expected,
            "Pattern::matches({pattern:?}, {ty:?})"
        );
        assert_eq!(naive(pattern, ty), expected, "naive({pattern:?}, {ty:?})");
        let mut router = Router::new();
        let id = router.insert(p, Priority::DEFAULT, ());
        let got: Vec<RouteId> = router.matches(ty).iter().map(|r| r.id()).collect();
        let want = if expected { vec![id] } else { vec![] };
        assert_eq!(got, want, "router with {pattern:?} for {ty:?}");
    }
}

#[test]
fn ordering_table() {
    type Case = (
        &'static [(&'static str, i32, &'static str)],
        &'static str,
        &'static [&'static str],
    );
    let cases: &[Case] = &[
        // Specificity beats priority.
        (
            &[("a.*", 100, "star"), ("a.b", -100, "exact")],
            "a.b",
            &["exact", "star"],
        ),
        // The whole ladder, registered shuffled.
        (
            &[
                ("**", 0, "all"),
                ("a.**", 0, "a-any"),
                ("**.b", 0, "any-b"),
                ("a.b.**", 0, "ab-any"),
                ("*.b", 0, "star-b"),
                ("a.*", 0, "a-star"),
                ("a.b", 0, "ab"),
                ("a.c", 0, "not-matching"),
            ],
            "a.b",
            &["ab", "ab-any", "a-star", "a-any", "star-b", "any-b", "all"],
        ),
        // Ending beats continuing with `**`, whatever the priorities.
        (
            &[
                ("a.*.**", 100, "star-any"),
                ("a.*", -100, "star"),
                ("a.b.**", 0, "b-any"),
                ("a.b", -50, "b"),
            ],
            "a.b",
            &["b", "b-any", "star", "star-any"],
        ),
        // Equal specificity: higher priority first.
        (
            &[("a.*", -5, "low"), ("a.*", 50, "high"), ("a.*", 0, "mid")],
            "a.x",
            &["high", "mid", "low"],
        ),
        // Full ties: registration order.
        (
            &[
                ("a.*", 0, "first"),
                ("a.*", 0, "second"),
                ("a.*", 0, "third"),
            ],
            "a.x",
            &["first", "second", "third"],
        ),
        // Priority first, then registration order within a priority.
        (
            &[
                ("**", 0, "a"),
                ("**", 10, "b"),
                ("**", 0, "c"),
                ("**", 10, "d"),
                ("**", -10, "e"),
            ],
            "x.y",
            &["b", "d", "a", "c", "e"],
        ),
        // Same kinds, different texts: equally specific.
        (
            &[
                ("*.b", 0, "star-b"),
                ("a.*", 0, "a-star"),
                ("*.b", 1, "star-b-1"),
            ],
            "a.b",
            &["a-star", "star-b-1", "star-b"],
        ),
        // Globstars in the middle; a catch-all tail sorts after a specific one.
        (
            &[
                ("a.**.c", 0, "mid-any"),
                ("**.c", 0, "any-c"),
                ("a.*.c", 0, "mid-star"),
                ("a.**", 0, "a-any"),
                ("a.b.c", 0, "exact"),
            ],
            "a.b.c",
            &["exact", "mid-star", "mid-any", "a-any", "any-c"],
        ),
        // Only matching routes, no prefix matching.
        (
            &[
                ("**.created", 0, "any-created"),
                ("order.item", 100, "prefix-only"),
                ("*.*.*", 100, "three"),
                ("order.*", 100, "two"),
                ("order.**", -1, "order-any"),
                ("order.item.created", -1, "exact"),
            ],
            "order.item.created",
            &["exact", "order-any", "three", "any-created"],
        ),
        // `**.x` continues with an exact segment where `**` has ended: the
        // catch-all comes last, whatever the priorities.
        (
            &[("**", 100, "all"), ("**.x", -100, "any-x")],
            "x",
            &["any-x", "all"],
        ),
    ];
    assert!(cases.len() >= 8);
    for (routes, ty, expected) in cases {
        let mut router = Router::new();
        for &(p, pr, name) in *routes {
            router.insert(pat(p), prio(pr), name);
        }
        assert_eq!(targets(&router, ty), *expected, "type {ty:?}");
    }
}

#[test]
fn lookup_appends_and_sorts_only_its_own_part() {
    let mut router = Router::new();
    router.insert(pat("**"), prio(0), "all");
    router.insert(pat("a"), prio(0), "a");
    let mut out = Vec::new();
    router.lookup("a", &mut out);
    router.lookup("b", &mut out);
    let names: Vec<&str> = out
        .iter()
        .map(|&s| *router.slot(s).unwrap().target())
        .collect();
    assert_eq!(names, ["a", "all", "all"]);
}

#[test]
fn remove_semantics() {
    let mut router = Router::new();
    let a = router.insert(pat("a.*"), prio(0), "a");
    let b = router.insert(pat("a.*"), prio(0), "b");
    let c = router.insert(pat("a.*"), prio(0), "c");
    assert!(a < b && b < c);
    assert_eq!(targets(&router, "a.x"), ["a", "b", "c"]);

    assert_eq!(router.remove(b), Ok("b"));
    assert_eq!(router.len(), 2);
    assert!(router.get(b).is_none());
    assert_eq!(targets(&router, "a.x"), ["a", "c"]);
    assert_eq!(router.remove(b), Err(RouteError::UnknownRoute { id: b }));

    // Re-adding gets a fresh id that sorts after the older ties.
    let b2 = router.insert(pat("a.*"), prio(0), "b2");
    assert!(b2 > c);
    assert_ne!(b2, b);
    assert_eq!(targets(&router, "a.x"), ["a", "c", "b2"]);
    assert_eq!(router.get(b2).map(|r| *r.target()), Some("b2"));
    let order: Vec<RouteId> = router.iter().map(Route::id).collect();
    assert_eq!(order, [a, c, b2]);

    // Removing everything, compaction included, then reusing the router.
    for id in [a, c, b2] {
        router.remove(id).unwrap();
    }
    assert!(router.is_empty());
    assert!(router.matches("a.x").is_empty());
    let d = router.insert(pat("a.*"), prio(0), "d");
    assert!(d > b2);
    assert_eq!(targets(&router, "a.x"), ["d"]);
}

#[test]
fn remove_many_compacts_and_keeps_everything_consistent() {
    let mut router = Router::new();
    let ids: Vec<RouteId> = (0..200)
        .map(|i| router.insert(pat(&format!("k{}.**", i % 7)), prio(i % 3), i))
        .collect();
    for (i, &id) in ids.iter().enumerate() {
        if i % 5 != 0 {
            assert_eq!(router.remove(id), Ok(i as i32));
        }
    }
    assert_eq!(router.len(), 40);
    // Storage was compacted: no more slots than twice the live routes.
    assert!(router.routes.len() <= 2 * router.len() + 1);
    let live: Vec<i32> = router.iter().map(|r| *r.target()).collect();
    assert_eq!(live, (0..200).step_by(5).collect::<Vec<_>>());
    for (i, &id) in ids.iter().enumerate() {
        assert_eq!(router.get(id).is_some(), i % 5 == 0);
        if i % 5 != 0 {
            assert!(router.remove(id).is_err());
        }
    }
    for k in 0..7 {
        let got: Vec<i32> = router
            .matches(&format!("k{k}.x"))
            .iter()
            .map(|r| *r.target())
            .collect();
        let mut want: Vec<i32> = (0..200).step_by(5).filter(|i| i % 7 == k).collect();
        want.sort_by_key(|&i| (-(i % 3), i));
        assert_eq!(got, want, "k{k}");
    }
}

#[test]
fn clear_keeps_ids_increasing() {
    let mut router = Router::new();
    let a = router.insert(pat("a"), prio(0), 1);
    router.clear();
    assert!(router.is_empty());
    assert!(router.get(a).is_none());
    assert_eq!(router.remove(a), Err(RouteError::UnknownRoute { id: a }));
    assert!(router.matches("a").is_empty());
    let b = router.insert(pat("a"), prio(0), 2);
    assert!(b > a);
    assert_eq!(router.matches("a").len(), 1);
}

#[test]
fn priority_validation() {
    assert_eq!(Priority::new(-100).unwrap().get(), -100);
    assert_eq!(Priority::new(100).unwrap().get(), 100);
    assert_eq!(Priority::DEFAULT.get(), 0);
    assert_eq!(Priority::default(), Priority::DEFAULT);
    assert_eq!(
        Priority::new(101),
        Err(RouteError::PriorityOutOfRange { given: 101 })
    );
    assert_eq!(
        Priority::try_from(-101),
        Err(RouteError::PriorityOutOfRange { given: -101 })
    );
    assert_eq!(
        Priority::try_from(i32::MIN),
        Err(RouteError::PriorityOutOfRange { given: i32::MIN })
    );
    assert!(Priority::MIN < Priority::DEFAULT && Priority::DEFAULT < Priority::MAX);
    let msg = Priority::new(300).unwrap_err().to_string();
    assert!(msg.contains("300") && msg.contains("-100..=100"), "{msg}");
}

#[test]
fn route_error_conversions_and_messages() {
    let e: RouteError = Pattern::parse("a..b").unwrap_err().into();
    assert!(matches!(
        e,
        RouteError::Pattern(PatternError::EmptySegment { .. })
    ));
    assert!(e.to_string().starts_with("invalid route pattern \"a..b\""));
    let e = RouteError::UnknownRoute {
        id: RouteId { owner: 1, seq: 7 },
    };
    assert!(e.to_string().contains("id 7"), "{e}");
}

#[test]
fn accessors_debug_clone_default() {
    let mut router: Router<String> = Router::default();
    let id = router.insert(pat("a.*"), prio(5), "x".to_owned());
    let route = router.get(id).unwrap();
    assert_eq!(route.id(), id);
    assert_eq!(route.pattern().as_str(), "a.*");
    assert_eq!(route.priority().get(), 5);
    assert_eq!(route.target(), "x");

    let copy = router.clone();
    router.remove(id).unwrap();
    assert_eq!(copy.matches("a.b").len(), 1);
    assert!(router.matches("a.b").is_empty());

    let dbg = format!("{copy:?}");
    assert!(
        dbg.contains("Router") && dbg.contains("a.*") && dbg.contains("\"x\""),
        "{dbg}"
    );

    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Router<String>>();
    assert_send_sync::<RouteError>();
    assert_eq!(std::mem::size_of::<RouteSlot>(), 4);
}

#[test]
fn a_stale_slot_resolves_to_none() {
    let mut router = Router::new();
    let id = router.insert(pat("a"), prio(0), ());
    let mut out = Vec::new();
    router.lookup("a", &mut out);
    router.remove(id).unwrap();
    assert!(router.slot(out[0]).is_none());
}

#[test]
fn lookup_reuses_the_output_buffer() {
    let mut router = Router::new();
    for p in ["a.b.c", "a.*.c", "a.**", "**", "**.c", "*.*.*"] {
        router.insert(pat(p), prio(0), p);
    }
    let mut out = Vec::with_capacity(16);
    let (ptr, cap) = (out.as_ptr(), out.capacity());
    for _ in 0..100 {
        out.clear();
        router.lookup("a.b.c", &mut out);
        assert_eq!(out.len(), 6);
    }
    assert_eq!((out.as_ptr(), out.capacity()), (ptr, cap));
}

#[test]
fn weird_types_never_panic_and_follow_the_matcher() {
    let patterns = ["**", "*", "a", "a.**", "*.*", "**.a", "a.*.b", "*.**.*"];
    let mut router = Router::new();
    for p in patterns {
        router.insert(pat(p), prio(0), p);
    }
    let deep = |n: usize| vec!["a"; n].join(".");
    let mut types: Vec<String> = [
        "", ".", "..", "a.", ".a", "a..b", "a b", "ä", "a.*.b", "\0", "🎉.a",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Around the walk's internal buffer sizes and past the fast path.
    for n in [15, 16, 17, 64, 65, 126, 127, 128, 129, 500] {
        types.push(deep(n));
        types.push(format!("{}.b", deep(n - 1)));
    }
    types.push(".".repeat(300));
    for ty in &types {
        let got: Vec<&str> = router.matches(ty).iter().map(|r| *r.target()).collect();
        let mut want: Vec<&str> = patterns
            .iter()
            .copied()
            .filter(|p| pat(p).matches(ty))
            .collect();
        want.sort_by(|a, b| kind_cmp(a, b));
        assert_eq!(got, want, "type {ty:?}");
    }
}

#[test]
fn lookup_cost_does_not_depend_on_route_count() {
    let build = |n: usize| {
        let mut router = Router::new();
        for i in 0..n {
            router.insert(
                pat(&format!("svc{}.evt{}.created", i % 100, i / 100)),
                prio(0),
                i,
            );
        }
        // A few wildcard routes, the same in both routers.
        router.insert(pat("**.deleted"), prio(0), usize::MAX);
        router.insert(pat("svc7.*.updated"), prio(0), usize::MAX);
        router.insert(pat("other.**"), prio(0), usize::MAX);
        router
    };
    let small = build(10);
    let large = build(10_000);
    assert_eq!(large.len(), 10_003);
    let (hits_small, steps_small) = steps(&small, "svc7.evt0.created");
    let (hits_large, steps_large) = steps(&large, "svc7.evt0.created");
    assert_eq!(hits_small.len(), 1);
    assert_eq!(hits_large.len(), 1);
    assert_eq!(*large.slot(hits_large[0]).unwrap().target(), 7);
    assert_eq!(steps_small, steps_large);
    assert!(steps_large <= 16, "{steps_large}");

    // Without any wildcard route, an exact type visits one node per segment
    // plus the root.
    let mut exact = Router::new();
    for i in 0..10_000 {
        exact.insert(
            pat(&format!("svc{}.evt{}.created", i % 100, i / 100)),
            prio(0),
            i,
        );
    }
    assert_eq!(steps(&exact, "svc42.evt9.created").1, 4);
    assert_eq!(steps(&exact, "svc42.nope.created").1, 2);
}

#[test]
fn pathological_globstars_stay_polynomial() {
    // Alternating `**` with `*`/`a` up to 64 segments: a backtracking walk
    // explores exponentially many ways to split a 64-segment type among the
    // globstars; the position-set walk visits each trie node once.
    let mut texts = Vec::new();
    for k in 1..=32 {
        texts.push(vec!["**.*"; k].join("."));
        texts.push(vec!["*.**"; k].join("."));
        texts.push(vec!["**.a"; k].join("."));
        texts.push(vec!["a.**"; k].join("."));
        texts.push(format!("{}.b", vec!["**.*"; k].join(".")));
    }
    for k in 1..=21 {
        texts.push(vec!["**.*.a"; k].join("."));
        texts.push(vec!["**.a.*"; k].join("."));
    }
    let mut router = Router::new();
    for t in &texts {
        if let Ok(p) = Pattern::parse(t) {
            router.insert(p, prio(0), t.clone());
        }
    }
    let nodes = router.trie.node_count() as u64;
    let all_a = vec!["a"; 64].join(".");
    let ends_b = format!("{}.b", vec!["a"; 63].join("."));
    for ty in [all_a, ends_b] {
        let (slots, work) = steps(&router, &ty);
        // Each node is visited once; grouping equal segments costs at most
        // 65 * 64 / 2 comparisons per visited node.
        assert!(
            work <= nodes * (1 + 65 * 64 / 2),
            "{work} steps for {nodes} nodes"
        );
        assert!(work < 100_000, "{work}");
        let got: Vec<&String> = slots
            .iter()
            .map(|&s| router.slot(s).unwrap().target())
            .collect();
        let want: Vec<&String> = router
            .iter()
            .filter(|r| r.pattern().matches(&ty))
            .map(Route::target)
            .collect();
        assert_eq!(got.len(), want.len());
        for w in want {
            assert!(got.contains(&w));
        }
    }
}

/// Rank of a segment's kind, written independently of the router; a pattern
/// that has ended ranks between `*` and `**` (catch-alls last).
fn rank(seg: Option<&str>) -> u8 {
    match seg {
        Some("*") => 1,
        Some("**") => 3,
        Some(_) => 0,
        None => 2,
    }
}

/// Order rule part 1, compared segment by segment on the texts.
fn kind_cmp(a: &str, b: &str) -> Ordering {
    let (mut sa, mut sb) = (a.split('.'), b.split('.'));
    loop {
        match (sa.next(), sb.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => match rank(x).cmp(&rank(y)) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
}

/// The full order rule on (pattern, priority, registration index).
fn expected_cmp(a: &(String, i32, usize), b: &(String, i32, usize)) -> Ordering {
    kind_cmp(&a.0, &b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2))
}

fn arb_pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "*", "**"]), 1..=5)
        .prop_map(|segs| segs.join("."))
}

fn arb_type() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=6)
        .prop_map(|segs| segs.join("."))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn trie_agrees_with_reference_matcher(
        specs in prop::collection::vec((arb_pattern(), -3i32..=3, any::<bool>()), 0..20),
        types in prop::collection::vec(arb_type(), 1..8),
    ) {
        let mut router = Router::new();
        let mut live = Vec::new();
        let mut to_remove = Vec::new();
        for (index, (text, priority, remove)) in specs.into_iter().enumerate() {
            let Ok(pattern) = Pattern::parse(&text) else { continue };
            let id = router.insert(pattern, prio(priority), index);
            if remove {
                to_remove.push(id);
            } else {
                live.push((text, priority, index));
            }
        }
        for id in to_remove {
            prop_assert!(router.remove(id).is_ok());
        }
        prop_assert_eq!(router.len(), live.len());
        for ty in &types {
            let mut want: Vec<_> = live
                .iter()
                .filter(|(text, _, _)| naive(text, ty))
                .cloned()
                .collect();
            want.sort_by(expected_cmp);
            let want: Vec<usize> = want.into_iter().map(|(_, _, index)| index).collect();
            // Reference matcher agrees with the naive one on the live set.
            let oracle: Vec<usize> = router
                .iter()
                .filter(|r| r.pattern().matches(ty))
                .map(|r| *r.target())
                .collect();
            let mut sorted_want = want.clone();
            sorted_want.sort_unstable();
            prop_assert_eq!(&oracle, &sorted_want);
            let got: Vec<usize> = router.matches(ty).iter().map(|r| *r.target()).collect();
            prop_assert_eq!(got, want, "type {}", ty);
        }
    }

    #[test]
    fn reference_matcher_agrees_with_naive(pattern in arb_pattern(), ty in "[abc.]{0,10}") {
        if let Ok(p) = Pattern::parse(&pattern) {
            prop_assert_eq!(p.matches(&ty), naive(&pattern, &ty));
        }
    }

    #[test]
    fn any_type_string_is_routed_like_the_matcher(
        patterns in prop::collection::vec(arb_pattern(), 1..10),
        ty in any::<String>(),
        ty2 in "[ab.*]{0,12}",
    ) {
        let mut router = Router::new();
        for (i, text) in patterns.iter().enumerate() {
            if let Ok(p) = Pattern::parse(text) {
                router.insert(p, prio(0), i);
            }
        }
        for ty in [&ty, &ty2] {
            let got: Vec<usize> = router.matches(ty).iter().map(|r| *r.target()).collect();
            let mut want: Vec<usize> = router
                .iter()
                .filter(|r| r.pattern().matches(ty))
                .map(|r| *r.target())
                .collect();
            want.sort_by(|&a, &b| kind_cmp(&patterns[a], &patterns[b]).then(a.cmp(&b)));
            prop_assert_eq!(got, want);
        }
    }
}
