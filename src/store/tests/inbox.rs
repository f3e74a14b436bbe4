//! The event inbox's store side, on each backend.

use super::*;
use crate::events::{EventHub, EventQuery, ReceivedEvent};

fn event(topic: &str, id: &str, order: &str, tracking: &str) -> ReceivedEvent {
    let body = serde_json::json!({
        "id": id,
        "topic": topic,
        "data": {"order_id": order, "shipment": {"tracking_code": tracking, "status": "failure"}},
    });
    ReceivedEvent::from_delivery(None, Some("wh"), body.to_string().as_bytes()).unwrap()
}

fn query(account: &str) -> EventQuery {
    EventQuery {
        account_id: account.to_owned(),
        limit: 100,
        ..EventQuery::default()
    }
}

fn seqs(events: &[crate::events::StoredEvent]) -> Vec<i64> {
    events.iter().map(|e| e.seq).collect()
}

on_each_backend! {
    fn an_inbox_opens_with_its_token_until_rotated(db) {
        let (store, acct) = open_with_account(&db);
        assert!(store.inbox_delivery(&acct).unwrap().is_none());
        assert!(store.inbox_info(&acct).unwrap().is_none());
        let first = store.rotate_inbox(&acct).unwrap();
        assert!(!format!("{first:?}").contains(&first.token));
        let delivery = store.inbox_delivery(&acct).unwrap().unwrap();
        assert_eq!(delivery.token, first.token);
        assert!(!format!("{delivery:?}").contains(&delivery.secret));
        let resolved = store.resolve_inbox(&first.token).unwrap().unwrap();
        assert_eq!((resolved.account_id.as_str(), resolved.secret.as_str()),
                   (acct.as_str(), delivery.secret.as_str()));
        assert!(store.inbox_info(&acct).unwrap().is_some());

        // Another node (another handle) sees the same inbox.
        let other = db.open();
        assert_eq!(other.inbox_delivery(&acct).unwrap().unwrap(), delivery);

        let second = store.rotate_inbox(&acct).unwrap();
        assert!(store.resolve_inbox(&first.token).unwrap().is_none(), "the old token is dead");
        let rotated = store.inbox_delivery(&acct).unwrap().unwrap();
        assert_eq!(rotated.token, second.token);
        assert_ne!(rotated.secret, delivery.secret, "rotation changes the secret too");
        assert!(store.resolve_inbox("").unwrap().is_none());
        assert!(store.resolve_inbox(&"x".repeat(300)).unwrap().is_none());
        assert!(matches!(store.rotate_inbox("nope"), Err(StoreError::AccountNotFound(_))));
    }

    fn redeliveries_are_stored_once(db) {
        let (store, acct) = open_with_account(&db);
        let e = event("shipment.exception", "ev1", "o1", "FA1");
        let EventOutcome::Stored(seq) = store.store_event(&acct, &e).unwrap() else {
            panic!("first delivery not stored");
        };
        assert_eq!(store.store_event(&acct, &e).unwrap(), EventOutcome::Duplicate);
        assert_eq!(db.count("events"), 1);
        let listed = store.list_events(&query(&acct)).unwrap();
        assert_eq!(seqs(&listed), [seq]);
        let stored = &listed[0];
        assert_eq!(stored.topic, "shipment.exception");
        assert_eq!(stored.order_id.as_deref(), Some("o1"));
        assert_eq!(stored.tracking_code.as_deref(), Some("FA1"));
        assert_eq!(stored.status.as_deref(), Some("failure"));
        assert_eq!(stored.payload["id"], "ev1");
        assert!(stored.received_at.ends_with('Z'), "{}", stored.received_at);
        // The same event id of another account is that account's own event.
        let other = store.create_account("b", "sk_test_0123456789", "http://127.0.0.1:1").unwrap();
        assert!(matches!(store.store_event(&other.id, &e).unwrap(), EventOutcome::Stored(_)));
        assert!(matches!(store.store_event("gone", &e), Err(StoreError::AccountNotFound(_))));
    }

    fn events_list_newest_first_filtered_and_paged(db) {
        let (store, acct) = open_with_account(&db);
        let mut stored = Vec::new();
        for (i, topic) in ["shipment.updated", "shipment.exception", "shipment.updated",
                           "shipment.exception", "order.created"].iter().enumerate() {
            let e = event(topic, &format!("ev{i}"), &format!("o{}", i % 2), &format!("T{i}"));
            let EventOutcome::Stored(seq) = store.store_event(&acct, &e).unwrap() else {
                panic!("not stored");
            };
            stored.push(seq);
        }
        assert!(stored.windows(2).all(|w| w[0] < w[1]), "seq increases: {stored:?}");
        let all = store.list_events(&query(&acct)).unwrap();
        assert_eq!(seqs(&all), stored.iter().rev().copied().collect::<Vec<_>>());

        let exceptions = store.list_events(&EventQuery {
            topic: Some("shipment.exception".into()),
            ..query(&acct)
        }).unwrap();
        assert_eq!(seqs(&exceptions), [stored[3], stored[1]]);
        let by_order = store.list_events(&EventQuery { order_id: Some("o0".into()), ..query(&acct) }).unwrap();
        assert_eq!(seqs(&by_order), [stored[4], stored[2], stored[0]]);
        let by_code = store.list_events(&EventQuery { tracking_code: Some("T2".into()), ..query(&acct) }).unwrap();
        assert_eq!(seqs(&by_code), [stored[2]]);

        let page1 = store.list_events(&EventQuery { limit: 2, ..query(&acct) }).unwrap();
        assert_eq!(seqs(&page1), [stored[4], stored[3]]);
        let page2 = store.list_events(&EventQuery {
            limit: 2,
            before_seq: Some(page1[1].seq),
            ..query(&acct)
        }).unwrap();
        assert_eq!(seqs(&page2), [stored[2], stored[1]]);
        assert!(store.list_events(&EventQuery { limit: 0, ..query(&acct) }).unwrap().is_empty());

        let today = store.list_events(&EventQuery { since: Some("2000-01-01".into()), ..query(&acct) }).unwrap();
        assert_eq!(today.len(), 5);
        let future = store.list_events(&EventQuery {
            since: Some("2999-01-01T00:00:00Z".into()),
            ..query(&acct)
        }).unwrap();
        assert!(future.is_empty());
        let err = store.list_events(&EventQuery { since: Some("today".into()), ..query(&acct) }).unwrap_err();
        assert!(err.to_string().starts_with("since:"), "{err}");
        assert!(store.list_events(&query("another")).unwrap().is_empty());
    }

    fn retention_keeps_the_newest_per_account_and_drops_old_ones(db) {
        let (store, acct) = open_with_account(&db);
        let other = store.create_account("b", "sk_test_0123456789", "http://127.0.0.1:1").unwrap().id;
        for i in 0..5 {
            store.store_event(&acct, &event("t", &format!("a{i}"), "o", "c")).unwrap();
            store.store_event(&other, &event("t", &format!("b{i}"), "o", "c")).unwrap();
        }
        let keep_three = EventRetention { max_per_account: 3, max_age: Duration::from_secs(3600) };
        assert_eq!(store.sweep_events(&keep_three).unwrap(), 4);
        let left = store.list_events(&query(&acct)).unwrap();
        assert_eq!(left.iter().map(|e| e.payload["id"].as_str().unwrap()).collect::<Vec<_>>(),
                   ["a4", "a3", "a2"]);
        assert_eq!(store.list_events(&query(&other)).unwrap().len(), 3);
        // Age: an event received two hours ago goes, the others stay.
        db.execute(&format!(
            "UPDATE events SET received_at = received_at - 7200000 WHERE seq = {}",
            left[2].seq
        ));
        assert_eq!(store.sweep_events(&keep_three).unwrap(), 1);
        assert_eq!(store.list_events(&query(&acct)).unwrap().len(), 2);
        // A sweep never makes a seq come back: new events still go after.
        let EventOutcome::Stored(seq) = store.store_event(&acct, &event("t", "a5", "o", "c")).unwrap() else {
            panic!("not stored");
        };
        assert!(seq > left[0].seq);
    }

    fn concurrent_deliveries_each_get_their_own_outcome(db) {
        let (store, acct) = open_with_account(&db);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (store, acct) = (store.clone(), acct.clone());
                std::thread::spawn(move || {
                    let mut outcomes = Vec::new();
                    for i in 0..15 {
                        outcomes.push(store.store_event(&acct, &event("t", &format!("{t}-{i}"), "o", "c")).unwrap());
                        // The same event, delivered by every thread at once.
                        outcomes.push(store.store_event(&acct, &event("t", "shared", "o", "c")).unwrap());
                    }
                    outcomes
                })
            })
            .collect();
        let outcomes: Vec<EventOutcome> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let mut seqs: Vec<i64> = outcomes
            .iter()
            .filter_map(|o| match o {
                EventOutcome::Stored(seq) => Some(*seq),
                EventOutcome::Duplicate => None,
            })
            .collect();
        assert_eq!(seqs.len(), 8 * 15 + 1, "every new event once, the shared one once");
        seqs.sort();
        seqs.dedup();
        assert_eq!(seqs.len(), 8 * 15 + 1, "no two deliveries share a seq");
        assert_eq!(db.count("events"), 8 * 15 + 1);
    }

    fn deleting_an_account_deletes_its_inbox_and_events(db) {
        let (store, acct) = open_with_account(&db);
        let inbox = store.rotate_inbox(&acct).unwrap();
        store.store_event(&acct, &event("t", "e", "o", "c")).unwrap();
        store.delete_account(&acct).unwrap();
        assert!(store.resolve_inbox(&inbox.token).unwrap().is_none());
        assert_eq!(db.count("events"), 0);
        assert_eq!(db.count("event_inboxes"), 0);
    }

    fn other_nodes_hear_of_stored_events(db) {
        if !matches!(db, Db::Postgres(_)) {
            return; // SQLite has one node.
        }
        let (a, acct) = open_with_account(&db);
        let b = db.open();
        let (hub_a, hub_b) = (EventHub::new(), EventHub::new());
        a.forward_remote_events(hub_a.clone());
        b.forward_remote_events(hub_b.clone());
        let (mut rx_a, mut rx_b) = (hub_a.subscribe(), hub_b.subscribe());
        let EventOutcome::Stored(from_a) = a.store_event(&acct, &event("shipment.exception", "x", "o", "c")).unwrap() else {
            panic!("not stored");
        };
        let EventOutcome::Stored(from_b) = b.store_event(&acct, &event("shipment.delivered", "y", "o", "c")).unwrap() else {
            panic!("not stored");
        };
        let seen = |rx: &mut tokio::sync::broadcast::Receiver<crate::events::EventNotice>| {
            let deadline = std::time::Instant::now() + Duration::from_secs(1);
            loop {
                match rx.try_recv() {
                    Ok(n) => return n,
                    Err(_) => {
                        assert!(std::time::Instant::now() < deadline, "no notice within 1 s");
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
        };
        // Each node hears of the other's event, and not of its own (it
        // publishes those itself, once).
        let on_b = seen(&mut rx_b);
        assert_eq!((on_b.seq, on_b.topic.as_str(), on_b.account_id.as_str()),
                   (from_a, "shipment.exception", acct.as_str()));
        assert_eq!(seen(&mut rx_a).seq, from_b);
        std::thread::sleep(Duration::from_millis(100));
        assert!(rx_a.try_recv().is_err() && rx_b.try_recv().is_err(), "no echo of a node's own event");
    }
}

#[test]
fn the_sqlite_file_never_holds_an_inbox_token_or_secret_in_plain_text() {
    let db = Db::Sqlite(tempfile::tempdir().unwrap());
    let (store, acct) = open_with_account(&db);
    let created = store.rotate_inbox(&acct).unwrap();
    let delivery = store.inbox_delivery(&acct).unwrap().unwrap();
    assert_eq!(created.token, delivery.token);
    drop(store);
    let mut bytes = Vec::new();
    for name in ["t.db", "t.db-wal"] {
        if let Ok(b) = std::fs::read(db.location().with_file_name(name)) {
            bytes.extend(b);
        }
    }
    assert!(!bytes.is_empty());
    for secret in [&delivery.token, &delivery.secret] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "found in the database files"
        );
    }
}
