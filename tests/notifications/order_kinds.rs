//! Every order kind through its happy path and its failures, end to end: orders created through
//! the sidecar against the simulator, driven by its admin API (and, for a Withdraw, by a
//! subscriber's decision), read back with OrderService. Memory and real Redis (a random key
//! prefix per test); every arrival order of one sequence is in `order_permutations`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::{
    notifications::{ack, next, subscribe},
    order_permutations::signed,
    order_state::{
        deposit, get, payout, post, reaches, redis_vars, registered_account, start, unique_prefix,
    },
    support,
};

use serde_json::json;
use support::{app, requests::valid, sim::*};
use tonic::Streaming;
use trustly_sidecar::{pb, trustly::wire};

/// The order once `done` holds for it.
async fn settles(
    h: &SimHarness,
    sidecar: &app::Sidecar,
    order_id: &str,
    what: &str,
    done: impl Fn(&pb::Order) -> bool,
) -> pb::Order {
    h.eventually(&format!("order {order_id}: {what}"), || async {
        get(sidecar, order_id).await.filter(&done)
    })
    .await
}

/// The order's transitions as (from, to).
fn steps(order: &pb::Order) -> Vec<(pb::OrderState, pb::OrderState)> {
    order
        .transitions
        .iter()
        .map(|t| (t.from_state(), t.to_state()))
        .collect()
}

/// Its totals: (credited, debited, paid out, refunded).
fn totals(order: &pb::Order) -> (&str, &str, &str, &str) {
    (
        order.credited_amount.as_str(),
        order.debited_amount.as_str(),
        order.paid_out_amount.as_str(),
        order.refunded_amount.as_str(),
    )
}

#[tokio::test]
async fn a_deposit_the_end_user_abandons_is_cancelled_with_nothing_credited() {
    let (h, s) = start(&[]).await;
    let order_id = deposit(&s, "m-kinds-abandoned").await;
    h.act(&order_id, "cancel", json!({})).await;
    let order = reaches(&h, &s, &order_id, pb::OrderState::Cancelled).await;
    assert_eq!(totals(&order), ("0.00", "0.00", "0.00", "0.00"));
    assert_eq!(
        steps(&order),
        [(pb::OrderState::Created, pb::OrderState::Cancelled)]
    );
    assert_eq!(
        (order.notification_ids.len(), order.rpcs.len()),
        (1, 1),
        "{order:?}"
    );
    assert_eq!(order.withdraw_decision(), pb::WithdrawDecision::Unspecified);
}

#[tokio::test]
async fn payouts_are_confirmed_failed_returned_or_cancelled() {
    let (h, s) = start(&[]).await;
    let account_id = registered_account(&s).await;
    let failed = payout(&s, "m-kinds-failed", &account_id, "10.00").await;
    let returned = payout(&s, "m-kinds-returned", &account_id, "11.00").await;
    let cancelled = payout(&s, "m-kinds-cancelled", &account_id, "12.00").await;
    // The bank rejects it while queued: `payoutfailed`, then the money back with `credit`.
    h.act(&failed, "fail", json!({"payoutfailed": true})).await;
    // Sent, then it came back: `payoutconfirmation`, then `credit`.
    h.act(&returned, "complete", json!({})).await;
    reaches(&h, &s, &returned, pb::OrderState::Confirmed).await;
    h.act(&returned, "fail", json!({})).await;
    // Cancelled while queued (the simulator's own scenario): `cancel` + `credit`.
    h.act(&cancelled, "cancel", json!({})).await;

    let order = settles(&h, &s, &failed, "failed, money back", |o| {
        o.state() == pb::OrderState::Failed && o.credited_amount != "0.00"
    })
    .await;
    assert_eq!(totals(&order), ("10.00", "0.00", "0.00", "0.00"));
    assert_eq!(order.requested_amount, "10.00");
    assert_eq!(order.notification_ids.len(), 2);
    let order = reaches(&h, &s, &returned, pb::OrderState::Returned).await;
    assert_eq!(totals(&order), ("11.00", "0.00", "11.00", "0.00"));
    assert_eq!(
        steps(&order),
        [
            (pb::OrderState::Accepted, pb::OrderState::Confirmed),
            (pb::OrderState::Confirmed, pb::OrderState::Returned),
        ]
    );
    let order = settles(&h, &s, &cancelled, "cancelled, money back", |o| {
        o.state() == pb::OrderState::Cancelled && o.credited_amount != "0.00"
    })
    .await;
    assert_eq!(totals(&order), ("12.00", "0.00", "0.00", "0.00"));
    assert!(order.contradictions.is_empty(), "{order:?}");

    let registered = s
        .client
        .clone()
        .register_account_payout(valid::register_account_payout(
            "",
            "m-kinds-rap",
            "69706212",
            "13.50",
        ))
        .await
        .expect("register account payout")
        .into_inner()
        .order_id;
    let accepted = get(&s, &registered).await.expect("known from the answer");
    assert_eq!(
        (accepted.kind(), accepted.state()),
        (
            pb::OrderKind::RegisterAccountPayout,
            pb::OrderState::Accepted
        )
    );
    h.act(&registered, "complete", json!({})).await;
    let order = reaches(&h, &s, &registered, pb::OrderState::Confirmed).await;
    assert_eq!(totals(&order), ("0.00", "0.00", "13.50", "0.00"));
    assert_eq!(order.requested_amount, "13.50");
}

/// A Withdraw the end user completes for its suggested 50.00 EUR; its order id, once its `debit` is on `stream`.
async fn withdraw_debited(
    h: &SimHarness,
    sidecar: &app::Sidecar,
    stream: &mut Streaming<pb::StreamNotificationsResponse>,
    message_id: &str,
) -> (String, pb::Notification) {
    let order_id = sidecar
        .client
        .clone()
        .withdraw(valid::withdraw("", message_id))
        .await
        .expect("withdraw")
        .into_inner()
        .order_id;
    let created = get(sidecar, &order_id)
        .await
        .expect("known from the answer");
    assert_eq!(
        (created.kind(), created.state(), created.withdraw_decision()),
        (
            pb::OrderKind::Withdraw,
            pb::OrderState::Created,
            pb::WithdrawDecision::Unspecified
        )
    );
    h.act(&order_id, "complete", json!({})).await;
    loop {
        let debit = next(stream).await;
        if debit.method == "debit" && debit.order_id == order_id {
            assert!(debit.decision_required);
            // Stored and in the order before intake waits for the decision.
            let order = reaches(h, sidecar, &order_id, pb::OrderState::Debited).await;
            assert_eq!(
                (order.withdraw_decision(), order.debited_amount.as_str()),
                (pb::WithdrawDecision::Awaited, "50.00")
            );
            return (order_id, debit);
        }
    }
}

#[tokio::test]
async fn a_withdraw_approved_by_the_subscriber_is_confirmed_or_denied() {
    let (h, s) = start(&[]).await;
    let mut stream = subscribe(&s, "app", pb::StartPosition::Group).await;
    for (message_id, approve) in [("m-kinds-approved", true), ("m-kinds-denied", false)] {
        let (order_id, debit) = withdraw_debited(&h, &s, &mut stream, message_id).await;
        assert!(ack(&s, "app", &debit, pb::Decision::Ok).await);
        settles(&h, &s, &order_id, "approved", |o| {
            o.withdraw_decision() == pb::WithdrawDecision::Approved
        })
        .await;
        h.eventually("the simulator's withdrawal prepared", || async {
            (h.order(&order_id).await["order"]["status"] == "AwaitingApproval").then_some(())
        })
        .await;
        let mut client = s.client.clone();
        if approve {
            client
                .approve_withdrawal(pb::ApproveWithdrawalRequest {
                    request_id: format!("approve-{order_id}"),
                    order_id: order_id.clone(),
                    ..Default::default()
                })
                .await
                .expect("approve");
            let order = reaches(&h, &s, &order_id, pb::OrderState::Confirmed).await;
            assert_eq!(totals(&order), ("0.00", "50.00", "50.00", "0.00"));
            assert_eq!(
                steps(&order),
                [
                    (pb::OrderState::Created, pb::OrderState::Debited),
                    (pb::OrderState::Debited, pb::OrderState::Confirmed),
                ]
            );
            assert_eq!(order.withdraw_decision(), pb::WithdrawDecision::Approved);
        } else {
            client
                .deny_withdrawal(pb::DenyWithdrawalRequest {
                    request_id: format!("deny-{order_id}"),
                    order_id: order_id.clone(),
                    ..Default::default()
                })
                .await
                .expect("deny");
            // Deny gives `cancel` + `credit`: the deducted amount goes back to the end user.
            let order = settles(&h, &s, &order_id, "denied, credited back", |o| {
                o.state() == pb::OrderState::Cancelled && o.credited_amount != "0.00"
            })
            .await;
            assert_eq!(totals(&order), ("50.00", "50.00", "0.00", "0.00"));
            assert_eq!(order.withdraw_decision(), pb::WithdrawDecision::Approved);
            assert_eq!(order.notification_ids.len(), 3);
        }
    }
}

#[tokio::test]
async fn a_withdraw_rejected_by_the_subscriber_is_cancelled_on_redis() {
    let vars = redis_vars(&unique_prefix());
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (h, s) = start(&vars).await;
    let mut stream = subscribe(&s, "app", pb::StartPosition::Group).await;
    let (order_id, debit) = withdraw_debited(&h, &s, &mut stream, "m-kinds-rejected").await;
    assert!(ack(&s, "app", &debit, pb::Decision::Failed).await);
    // Trustly hears FAILED, aborts the withdrawal and sends `cancel`.
    let order = settles(&h, &s, &order_id, "rejected and cancelled", |o| {
        o.state() == pb::OrderState::Cancelled
            && o.withdraw_decision() == pb::WithdrawDecision::Rejected
    })
    .await;
    assert_eq!(totals(&order), ("0.00", "50.00", "0.00", "0.00"));
    assert_eq!(
        steps(&order),
        [
            (pb::OrderState::Created, pb::OrderState::Debited),
            (pb::OrderState::Debited, pb::OrderState::Cancelled),
        ]
    );
    let cancel = next(&mut stream).await;
    assert_eq!(cancel.method, "cancel");
    let mut contributing = vec![debit.notification_id, cancel.notification_id];
    contributing.sort();
    assert_eq!(order.notification_ids, contributing);
    assert_eq!(h.order(&order_id).await["order"]["status"], "Cancelled");
}

#[tokio::test]
async fn a_withdraw_without_a_decision_in_time_is_approved_by_the_fallback() {
    let (h, s) = start(&[
        ("TRUSTLY_SIDECAR_DECISION_DEADLINE", "100ms"),
        ("TRUSTLY_SIDECAR_DECISION_FALLBACK", "answer"),
    ])
    .await;
    // No subscriber: intake answers OK once the deadline passes, and that answer is the decision.
    let order_id = s
        .client
        .clone()
        .withdraw(valid::withdraw("", "m-kinds-fallback"))
        .await
        .expect("withdraw")
        .into_inner()
        .order_id;
    h.act(&order_id, "complete", json!({})).await;
    let order = settles(&h, &s, &order_id, "approved by the fallback", |o| {
        o.withdraw_decision() == pb::WithdrawDecision::Approved
    })
    .await;
    assert_eq!(
        (order.state(), order.debited_amount.as_str()),
        (pb::OrderState::Debited, "50.00")
    );
    assert_eq!(
        h.order(&order_id).await["order"]["status"],
        "AwaitingApproval"
    );
}

#[tokio::test]
async fn refunds_add_up_on_the_refunded_deposit_and_a_refused_one_adds_nothing() {
    let (h, s) = start(&[]).await;
    let order_id = deposit(&s, "m-kinds-refunded").await;
    h.act(&order_id, "complete", json!({})).await;
    reaches(&h, &s, &order_id, pb::OrderState::Credited).await;
    let mut client = s.client.clone();
    for (request_id, amount) in [("refund-a", "30.00"), ("refund-b", "20.50")] {
        client
            .refund(valid::refund(request_id, &order_id, amount))
            .await
            .expect("refund");
    }
    // More than what is left (100.00 - 50.50): Trustly refuses it.
    client
        .refund(valid::refund("refund-c", &order_id, "49.51"))
        .await
        .expect_err("more than the deposit");
    let order = get(&s, &order_id).await.expect("the order");
    assert_eq!(
        (order.kind(), order.state()),
        (pb::OrderKind::Deposit, pb::OrderState::Credited)
    );
    assert_eq!(totals(&order), ("100.00", "0.00", "0.00", "50.50"));
    let refunds = order
        .rpcs
        .iter()
        .filter(|r| r.starts_with("Refund:"))
        .count();
    assert_eq!((order.rpcs.len(), refunds), (3, 2), "{:?}", order.rpcs);
}

#[tokio::test]
async fn a_charge_is_credited_or_cancelled() {
    let (h, s) = start(&[]).await;
    let select = s
        .client
        .clone()
        .select_account(valid::select_account("", "m-kinds-select", "user-dd", true))
        .await
        .expect("select account")
        .into_inner()
        .order_id;
    h.act(&select, "complete", json!({})).await;
    let account_id = h
        .eventually("the mandated account", || async {
            let accounts = h.admin_get("accounts").await;
            accounts.as_array()?.iter().find_map(|a| {
                (a["mandate"] == true).then(|| a["account_id"].as_str().unwrap().to_owned())
            })
        })
        .await;
    let mut client = s.client.clone();
    let charged = client
        .charge(valid::charge("", "m-kinds-charged", &account_id, "20.00"))
        .await
        .expect("charge")
        .into_inner()
        .order_id;
    let mut later = valid::charge("", "m-kinds-cancelled-charge", &account_id, "21.00");
    later.payment_date = "2099-01-01".into();
    let cancelled = client
        .charge(later)
        .await
        .expect("charge")
        .into_inner()
        .order_id;
    let created = get(&s, &charged).await.expect("known from the answer");
    assert_eq!(
        (created.kind(), created.state()),
        (pb::OrderKind::Charge, pb::OrderState::Created)
    );
    h.act(&charged, "complete", json!({})).await;
    client
        .cancel_charge(pb::CancelChargeRequest {
            request_id: "cancel-charge-1".into(),
            order_id: cancelled.clone(),
            ..Default::default()
        })
        .await
        .expect("cancel charge");
    let order = reaches(&h, &s, &charged, pb::OrderState::Credited).await;
    assert_eq!(totals(&order), ("20.00", "0.00", "0.00", "0.00"));
    assert_eq!(order.requested_amount, "20.00");
    let order = reaches(&h, &s, &cancelled, pb::OrderState::Cancelled).await;
    assert_eq!(totals(&order), ("0.00", "0.00", "0.00", "0.00"));
    assert_eq!(
        steps(&order),
        [(pb::OrderState::Created, pb::OrderState::Cancelled)]
    );
}

#[tokio::test]
async fn a_resent_withdraw_debit_fills_in_a_decision_its_first_answer_did_not_record_on_redis() {
    // A replica answered a Withdraw's debit FAILED and stopped before recording the decision: the
    // log holds the debit and its answer, the order state no decision.
    let prefix = unique_prefix();
    let store = trustly_sidecar::store::Store::connect(
        &support::requests::redis_url(),
        None,
        &prefix,
        std::time::Duration::from_secs(3600),
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("redis");
    store
        .orders
        .remember_withdraw("5580001")
        .await
        .expect("withdraw");
    let debit = signed("5580001", "debit", "8300001", 4);
    let uuid = debit["params"]["uuid"].as_str().unwrap();
    let answer = wire::notification_response("debit", uuid, "sig", json!({"status": "FAILED"}));
    let event = trustly_sidecar::store::NewEvent {
        notification: trustly_sidecar::store::log::Notification {
            notification_id: "8300001".into(),
            method: "debit".into(),
            order_id: "5580001".into(),
            message_id: "m-5580001".into(),
            received_ms: trustly_sidecar::store::now_ms(),
            body: debit.to_string().into(),
        },
        decision_required: true,
    };
    let answer = bytes::Bytes::from(answer.to_string());
    store
        .log
        .record(&event, Some(&answer))
        .await
        .expect("logged");
    // Trustly resends it: the first answer is repeated, and the decision it carried recorded.
    let vars = redis_vars(&prefix);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (h, s) = start(&vars).await;
    post(&s, &debit).await;
    let order = settles(&h, &s, "5580001", "rejected", |o| {
        o.withdraw_decision() == pb::WithdrawDecision::Rejected
    })
    .await;
    assert_eq!(
        (order.state(), order.debited_amount.as_str()),
        (pb::OrderState::Debited, "30.00")
    );
}
