//! Publish/subscribe: fan-out order, refusals reported with their copies.

mod common;
use agentry::{DeliveryFailure, PublishError, SendErrorKind, Signal};
use common::*;
use std::sync::{Arc, Mutex};

#[test]
fn fan_out_reaches_agents_and_callbacks_in_route_order() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let bus = rt.bus();
        let order = Arc::new(Mutex::new(Vec::new()));
        let sub = |label: &'static str| {
            let order = order.clone();
            move |s: &Signal| order.lock().unwrap().push(format!("{label}:{}", s.ty()))
        };
        bus.subscribe("order.**", sub("globstar")).unwrap();
        bus.subscribe("order.*.created", sub("star")).unwrap();
        bus.subscribe("order.item.created", sub("exact")).unwrap();
        bus.subscribe("order.item.deleted", sub("other")).unwrap();
        let agent = rt.spawn(&log_spec()).unwrap();
        bus.subscribe_agent("order.item.*", &agent.addr()).unwrap();
        let report = bus.publish(sig("order.item.created", "x")).unwrap();
        assert_eq!(
            (report.delivered, report.is_complete()),
            (4, true),
            "{name}"
        );
        assert_eq!(
            *order.lock().unwrap(),
            [
                "exact:order.item.created",
                "star:order.item.created",
                "globstar:order.item.created"
            ],
            "{name}"
        );
        rt.run_until_idle().unwrap();
        assert_eq!(*agent.state().unwrap(), ["order.item.created:x"], "{name}");
    }
}

#[test]
fn a_full_subscriber_is_reported_with_its_copy_and_others_still_get_theirs() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).mailbox_capacity(1).build().unwrap();
        let bus = rt.bus();
        let full = rt.spawn(&log_spec()).unwrap();
        let free = rt.spawn(&log_spec()).unwrap();
        bus.subscribe_agent("e", &full.addr()).unwrap();
        bus.subscribe_agent("e", &free.addr()).unwrap();
        full.send(sig("fill", "")).unwrap();
        let published = sig("e", vec![7u8; 64 * 1024]);
        let report = bus.publish(published.clone()).unwrap();
        assert_eq!(report.delivered, 1, "{name}");
        match &report.failures[..] {
            [DeliveryFailure::Refused(e)] => {
                assert_eq!(e.kind(), &SendErrorKind::MailboxFull { capacity: 1 });
                assert_eq!(e.agent(), full.id());
                assert_eq!(e.signal(), &published, "{name}: the refused copy differs");
            }
            other => panic!("{name}: {other:?}"),
        }
        rt.run_until_idle().unwrap();
        assert_eq!(free.state().unwrap().len(), 1);
    }
}

#[test]
fn unsubscribe_stops_delivery_and_nobody_listening_hands_the_signal_back() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let bus = rt.bus();
        let hits = Arc::new(Mutex::new(0));
        let h = hits.clone();
        let id = bus
            .subscribe("a.*", move |_: &Signal| *h.lock().unwrap() += 1)
            .unwrap();
        let _ = bus.publish(sig("a.b", "")).unwrap();
        bus.unsubscribe(id).unwrap();
        assert!(bus.unsubscribe(id).is_err(), "{name}: unsubscribed twice");
        let s = sig("a.b", "payload");
        match bus.publish(s.clone()) {
            Err(e @ PublishError::NoSubscribers(_)) => {
                assert!(e.to_string().contains("no subscription matches"));
                assert_eq!(e.into_signal(), s);
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(*hits.lock().unwrap(), 1, "{name}");
        assert_eq!(bus.subscriptions(), 0);
    }
}

#[test]
fn a_panicking_callback_is_reported_and_the_others_still_run() {
    quiet_panics();
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let bus = rt.bus();
        let seen = Arc::new(Mutex::new(0));
        let s = seen.clone();
        let bad = bus
            .subscribe("x", |_: &Signal| panic!("deliberate callback panic"))
            .unwrap();
        bus.subscribe("x", move |_: &Signal| *s.lock().unwrap() += 1)
            .unwrap();
        let report = bus.publish(sig("x", "")).unwrap();
        assert_eq!(report.delivered, 1, "{name}");
        assert!(matches!(&report.failures[..],
            [DeliveryFailure::CallbackPanicked { subscription, message }] if *subscription == bad && message.contains("deliberate")));
        assert_eq!(*seen.lock().unwrap(), 1);
    }
}

#[test]
fn an_agent_subscribed_without_a_matching_route_reports_no_route() {
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let counter = rt.spawn(&counter_spec()).unwrap();
        rt.bus().subscribe_agent("**", &counter.addr()).unwrap();
        let report = rt.bus().publish(sig("unrelated", "")).unwrap();
        assert!(
            matches!(&report.failures[..], [DeliveryFailure::Refused(e)] if e.kind() == &SendErrorKind::NoRoute),
            "{name}: {report:?}"
        );
    }
}

/// A callback that publishes to its own subscription: the cascade stops at
/// `MAX_PUBLISH_DEPTH` with a typed error that hands the signal back,
/// instead of overflowing the stack (3,000 levels used to abort the process).
#[test]
fn a_publishing_callback_cascade_stops_at_the_depth_limit() {
    use agentry::{MAX_PUBLISH_DEPTH, PublishError};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    for (name, strategy) in strategies() {
        let rt = deterministic(strategy).build().unwrap();
        let bus = rt.bus();
        let calls = Arc::new(AtomicUsize::new(0));
        let refused: Arc<Mutex<Option<(usize, String)>>> = Arc::default();
        {
            let (inner, calls, refused) = (bus.clone(), calls.clone(), refused.clone());
            bus.subscribe("cascade.deeper", move |s| {
                calls.fetch_add(1, Ordering::SeqCst);
                if let Err(PublishError::TooDeep { limit, signal }) = inner.publish(s.clone()) {
                    *refused.lock().unwrap() = Some((limit, signal.ty().to_owned()));
                }
            })
            .unwrap();
        }
        let report = bus.publish(sig("cascade.deeper", "")).unwrap();
        assert_eq!(report.delivered, 1, "{name}");
        assert_eq!(calls.load(Ordering::SeqCst), MAX_PUBLISH_DEPTH, "{name}");
        assert_eq!(
            refused.lock().unwrap().clone(),
            Some((MAX_PUBLISH_DEPTH, "cascade.deeper".to_owned())),
            "{name}"
        );
        // The depth is per thread and unwinds: a fresh publish cascades again.
        let _ = bus.publish(sig("cascade.deeper", "")).unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2 * MAX_PUBLISH_DEPTH,
            "{name}"
        );
        let _ = rt.shutdown();
    }
}
