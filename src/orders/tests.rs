use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::*;

fn note(id: u32, method: &str, amount: &str, at_ms: u64) -> Fact {
    Fact {
        id: format!("n:{id}"),
        source: Source::Notification,
        method: method.into(),
        order_id: "42".into(),
        message_id: "m-1".into(),
        end_user_id: "user-1".into(),
        amount: amount.into(),
        currency: if method == "cancel" { "" } else { "EUR" }.into(),
        at_ms,
    }
}

fn rpc(method: &str, amount: &str) -> Fact {
    Fact {
        id: format!("rpc:{method}:u-1"),
        source: Source::Rpc,
        method: method.into(),
        order_id: "42".into(),
        message_id: "m-1".into(),
        end_user_id: "user-1".into(),
        amount: amount.into(),
        currency: "EUR".into(),
        at_ms: 1,
    }
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

#[test]
fn a_deposit_goes_created_pending_credited_then_debited_in_d1() {
    let facts = vec![
        rpc("Deposit", ""),
        note(1, "pending", "10.00", 10),
        note(2, "credit", "10.00", 20),
    ];
    let order = fold(facts.clone()).unwrap();
    assert_eq!((order.kind, order.state), (Kind::Deposit, State::Credited));
    assert_eq!(order.credited, dec("10.00"));
    let states: Vec<_> = order.transitions.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        states,
        [
            (State::Created, State::Pending),
            (State::Pending, State::Credited)
        ]
    );
    let mut d1 = facts;
    d1.push(note(3, "debit", "10.00", 30));
    let order = fold(d1).unwrap();
    assert_eq!(order.state, State::Debited);
    assert_eq!(
        (order.credited, order.debited),
        (dec("10.00"), dec("10.00"))
    );
    assert_eq!(order.notification_ids, ["1", "2", "3"]);
    assert_eq!(order.rpcs, ["Deposit:u-1"]);
    assert!(order.contradictions.is_empty());
}

#[test]
fn a_credit_before_pending_is_still_credited() {
    let order = fold(vec![
        note(2, "credit", "5.00", 20),
        note(1, "pending", "5.00", 10),
    ])
    .unwrap();
    assert_eq!((order.kind, order.state), (Kind::Unknown, State::Credited));
}

#[test]
fn a_payout_confirms_then_returns_on_a_credit_or_fails() {
    let confirmed = vec![
        rpc("AccountPayout", "7.50"),
        note(1, "payoutconfirmation", "7.50", 10),
    ];
    let order = fold(confirmed.clone()).unwrap();
    assert_eq!(order.state, State::Confirmed);
    assert_eq!(
        (order.paid_out, order.requested),
        (dec("7.50"), Some(dec("7.50")))
    );
    let mut returned = confirmed.clone();
    returned.push(note(2, "credit", "7.50", 20));
    assert_eq!(fold(returned).unwrap().state, State::Returned);
    let mut failed = confirmed;
    failed.push(note(3, "payoutfailed", "7.50", 20));
    assert_eq!(fold(failed).unwrap().state, State::Failed);
    // Cancelled while queued: `cancel` + `credit` in either order.
    let cancelled = fold(vec![
        rpc("AccountPayout", "7.50"),
        note(5, "credit", "7.50", 10),
        note(4, "cancel", "", 11),
    ])
    .unwrap();
    assert_eq!(
        (cancelled.state, cancelled.credited),
        (State::Cancelled, dec("7.50"))
    );
    let register = fold(vec![rpc("RegisterAccountPayout", "1.00")]).unwrap();
    assert_eq!(
        (register.kind, register.state),
        (Kind::RegisterAccountPayout, State::Accepted)
    );
}

#[test]
fn a_withdraw_is_debited_then_confirmed_or_cancelled_on_deny() {
    let debited = vec![rpc("Withdraw", ""), note(1, "debit", "3.00", 10)];
    assert_eq!(fold(debited.clone()).unwrap().state, State::Debited);
    let mut denied = debited;
    denied.push(note(2, "cancel", "", 20));
    denied.push(note(3, "credit", "3.00", 20));
    let order = fold(denied).unwrap();
    assert_eq!(order.state, State::Cancelled);
    assert!(order.contradictions.is_empty());
}

fn decision(notification_id: u32, status: &str, at_ms: u64) -> Fact {
    Fact::decision(&notification_id.to_string(), "42", "m-1", status, at_ms).unwrap()
}

#[test]
fn a_withdraw_decision_is_awaited_then_approved_or_rejected_in_any_arrival_order() {
    let debited = vec![rpc("Withdraw", ""), note(1, "debit", "3.00", 10)];
    let order = fold(debited.clone()).unwrap();
    assert_eq!(order.withdraw_decision, Some(WithdrawDecision::Awaited));
    let created = fold(vec![rpc("Withdraw", "")]).unwrap();
    assert_eq!(created.withdraw_decision, None);
    let mut approved = debited.clone();
    approved.push(decision(1, "OK", 12));
    let order = fold(approved.clone()).unwrap();
    assert_eq!(
        (order.state, order.withdraw_decision, order.debited),
        (
            State::Debited,
            Some(WithdrawDecision::Approved),
            dec("3.00")
        )
    );
    // The decision is no notification and no RPC, and changes no state.
    assert_eq!((order.notification_ids.len(), order.rpcs.len()), (1, 1));
    assert_eq!(order.transitions.len(), 1);
    // The decision recorded before the debit (an earlier clock on another replica, or the debit's
    // fact written late by a resend): the same order.
    let mut early = approved.clone();
    early[2].at_ms = 5;
    early.reverse();
    let reordered = fold(early).unwrap();
    assert_eq!(
        (reordered.state, reordered.withdraw_decision),
        (order.state, order.withdraw_decision)
    );
    let mut rejected = debited;
    rejected.push(decision(1, "FAILED", 12));
    rejected.push(note(2, "cancel", "", 20));
    let order = fold(rejected).unwrap();
    assert_eq!(
        (order.state, order.withdraw_decision),
        (State::Cancelled, Some(WithdrawDecision::Rejected))
    );
    let deposit = fold(vec![rpc("Deposit", ""), note(1, "debit", "1.00", 1)]).unwrap();
    assert_eq!(deposit.withdraw_decision, None);
}

#[test]
fn facts_stored_before_decisions_existed_still_read() {
    let stored = r#"{"id":"n:1","source":"Notification","method":"debit","order_id":"42","message_id":"m-1","end_user_id":"user-1","amount":"3.00","currency":"EUR","at_ms":10}"#;
    let fact: Fact = serde_json::from_str(stored).unwrap();
    assert_eq!(fact, note(1, "debit", "3.00", 10));
    assert_eq!(serde_json::to_string(&fact).unwrap(), stored);
    let decided = decision(1, "OK", 12);
    assert_eq!(
        (decided.id.as_str(), decided.method.as_str()),
        ("d:1", DECISION_APPROVED)
    );
    let text = serde_json::to_string(&decided).unwrap();
    assert_eq!(serde_json::from_str::<Fact>(&text).unwrap(), decided);
    assert_eq!(decision(1, "FAILED", 1).method, DECISION_REJECTED);
    assert!(Fact::decision("1", "", "m", "OK", 1).is_none());
}

#[test]
fn refunds_add_up_on_the_refunded_order() {
    let mut first = rpc("Refund", "2.00");
    first.id = "rpc:Refund:a".into();
    let mut second = rpc("Refund", "1.50");
    second.id = "rpc:Refund:b".into();
    let order = fold(vec![first.clone(), second.clone(), first.clone()]).unwrap();
    assert_eq!(
        (order.kind, order.state, order.refunded),
        (Kind::Refund, State::Accepted, dec("3.50"))
    );
    let deposit = fold(vec![
        rpc("Deposit", ""),
        note(1, "credit", "9.00", 5),
        first,
        second,
    ])
    .unwrap();
    assert_eq!(
        (deposit.kind, deposit.state, deposit.refunded),
        (Kind::Deposit, State::Credited, dec("3.50"))
    );
}

#[test]
fn contradictions_are_flagged_not_overwritten() {
    let mut other_currency = note(3, "credit", "1.00", 30);
    other_currency.currency = "SEK".into();
    let mut conflicting = note(1, "payoutconfirmation", "8.00", 10);
    conflicting.at_ms = 11;
    let order = fold(vec![
        rpc("AccountPayout", "7.50"),
        note(1, "payoutconfirmation", "7.50", 10),
        note(2, "payoutconfirmation", "8.00", 20),
        conflicting,
        other_currency,
    ])
    .unwrap();
    let codes: Vec<_> = order.contradictions.iter().map(|c| c.code()).collect();
    assert_eq!(
        codes,
        [
            "currency_mismatch",
            "payout_amount_mismatch",
            "conflicting_fact"
        ]
    );
    assert_eq!(order.currency, "EUR");
    let cancelled_and_credited =
        fold(vec![note(1, "cancel", "", 1), note(2, "credit", "1.00", 2)]).unwrap();
    assert_eq!(
        cancelled_and_credited.contradictions,
        [Contradiction::CancelledAndCredited]
    );
}

#[test]
fn facts_are_read_from_notifications_and_rpc_answers() {
    let data = json!({"orderid": 42, "amount": "10.00", "currency": "EUR", "enduserid": "u",
        "timestamp": "2026-12-01 10:00:00.5+00"});
    let fact = Fact::notification("credit", "99", "m-1", &data, 7).unwrap();
    assert_eq!(
        (fact.id.as_str(), fact.order_id.as_str(), fact.at_ms),
        ("n:99", "42", 1_796_119_200_500)
    );
    assert!(Fact::notification("account", "98", "m", &data, 7).is_none());
    let mut request = Map::new();
    request.insert("MessageID".into(), Value::from("m-1"));
    request.insert("Amount".into(), Value::from("5.00"));
    let deposit = OrderRequest::of("Deposit", &request).unwrap();
    let fact = Fact::rpc(&deposit, "u", &json!({"orderid": "42"}), 3).unwrap();
    assert_eq!(
        (fact.order_id.as_str(), fact.amount.as_str()),
        ("42", "5.00")
    );
    assert!(OrderRequest::of("Balance", &request).is_none());
}

fn notifications() -> impl Strategy<Value = Vec<Fact>> {
    let method = prop::sample::select(vec![
        "pending",
        "credit",
        "debit",
        "cancel",
        "payoutconfirmation",
        "payoutfailed",
    ]);
    let amount = prop::sample::select(vec!["1.00", "2.50", "10.00"]);
    prop::collection::vec((method, amount, 0u64..5), 0..8).prop_map(|drawn| {
        drawn
            .into_iter()
            .enumerate()
            .map(|(i, (method, amount, at))| note(i as u32, method, amount, at))
            .collect()
    })
}

proptest! {
    /// The final order is a function of the set of facts: shuffled and duplicated arrivals agree.
    #[test]
    fn the_fold_ignores_arrival_order_and_duplicates(
        facts in notifications(),
        creator in prop::sample::select(vec!["", "Deposit", "Withdraw", "AccountPayout", "Charge"]),
        seed in any::<u64>(),
        duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        decisions in prop::collection::vec((any::<bool>(), 0u64..5), 0..3),
    ) {
        let mut facts = facts;
        for (i, (ok, at)) in decisions.into_iter().enumerate() {
            facts.push(decision(i as u32, if ok { "OK" } else { "FAILED" }, at));
        }
        if !creator.is_empty() {
            facts.push(rpc(creator, "1.00"));
        }
        let mut arrived = facts.clone();
        for index in &duplicates {
            if !facts.is_empty() {
                arrived.push(index.get(&facts).clone());
            }
        }
        // A deterministic shuffle from the seed (proptest shrinks the seed, not the order).
        let mut state = seed | 1;
        for i in (1..arrived.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            arrived.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(fold(facts), fold(arrived));
    }
}

#[tokio::test]
async fn list_pages_through_the_matching_orders_oldest_first() {
    let book = OrderBook::new(crate::store::Store::memory().order_states);
    for i in 0..7u32 {
        let mut fact = note(
            i,
            if i % 2 == 0 { "credit" } else { "pending" },
            "1.00",
            100 - u64::from(i),
        );
        fact.order_id = format!("order-{i}");
        fact.end_user_id = if i == 3 { "other" } else { "user-1" }.into();
        book.record(&fact).await.unwrap();
        book.record(&fact).await.unwrap();
    }
    let mut query = Query {
        end_user_id: "user-1".into(),
        page_size: 2,
        ..Query::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = book.list(&query).await.unwrap();
        assert!(page.orders.len() <= 2);
        seen.extend(page.orders.into_iter().map(|o| o.order_id));
        if page.next_page_token.is_empty() {
            break;
        }
        query.page_token = page.next_page_token;
    }
    // Oldest first: order-6 has the earliest fact; order-3 is another user's.
    assert_eq!(
        seen,
        [
            "order-6", "order-5", "order-4", "order-2", "order-1", "order-0"
        ]
    );
    let credited = book
        .list(&Query {
            state: Some(State::Credited),
            from_ms: 95,
            to_ms: Some(100),
            ..Query::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = credited
        .orders
        .iter()
        .map(|o| o.order_id.as_str())
        .collect();
    assert_eq!(ids, ["order-4", "order-2"]);
    let bad = book
        .list(&Query {
            page_token: "not a token".into(),
            ..Query::default()
        })
        .await;
    assert!(matches!(bad, Err(Error::PageToken)));
}
