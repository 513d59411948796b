//! One order's notifications posted to the sidecar's intake in every arrival order, a resend
//! among them, on fresh orders of one sidecar on real Redis: every permutation folds to the same
//! state, totals, transitions and times.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::{
    order_state::{post, reaches, redis_vars, start, unique_prefix},
    support,
};

use serde_json::{Value, json};
use support::*;
use trustly_sidecar::{
    pb,
    trustly::{canonical, sign::Backend, wire},
};

/// A notification of order `order_id` signed by Trustly's test key, at minute `minute`.
pub(crate) fn signed(order_id: &str, method: &str, notification_id: &str, minute: u32) -> Value {
    let signer = signer(Backend::RustCrypto, TRUSTLY_PRIVATE);
    let uuid = uuid::Uuid::new_v4().to_string();
    let data = json!({
        "orderid": order_id, "messageid": format!("m-{order_id}"),
        "notificationid": notification_id, "enduserid": "user-8", "amount": "30.00",
        "currency": "SEK", "timestamp": format!("2026-11-22 10:{minute:02}:00.000000+00"),
        "attributes": {}
    });
    let signature = signer
        .sign(canonical::plaintext(method, &uuid, &data).as_bytes())
        .unwrap();
    wire::notification(method, &uuid, &signature, data)
}

/// Every ordering of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut all = Vec::new();
    for shorter in permutations(n - 1) {
        for at in 0..=shorter.len() {
            let mut longer = shorter.clone();
            longer.insert(at, n - 1);
            all.push(longer);
        }
    }
    all
}

/// What must not depend on arrival order (the ids differ per order, by construction).
type Shape = (
    pb::OrderState,
    String,
    String,
    usize,
    Vec<(
        pb::OrderState,
        pb::OrderState,
        Option<prost_types::Timestamp>,
    )>,
    Vec<pb::OrderContradiction>,
    Option<prost_types::Timestamp>,
    Option<prost_types::Timestamp>,
);

fn shape(order: &pb::Order) -> Shape {
    (
        order.state(),
        order.credited_amount.clone(),
        order.debited_amount.clone(),
        order.notification_ids.len(),
        order
            .transitions
            .iter()
            .map(|t| (t.from_state(), t.to_state(), t.time))
            .collect(),
        order.contradictions.clone(),
        order.create_time,
        order.update_time,
    )
}

#[tokio::test]
async fn every_permutation_of_a_d1_sequence_with_a_resend_folds_to_the_same_order_on_redis() {
    let vars = redis_vars(&unique_prefix());
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (h, s) = start(&vars).await;
    let orders: Vec<(String, Vec<usize>)> = permutations(4)
        .into_iter()
        .enumerate()
        .map(|(i, order)| (format!("557{i:04}"), order))
        .collect();
    assert_eq!(orders.len(), 24);
    for (order_id, permutation) in &orders {
        // pending, credit, debit (D1), and the credit resent under a new uuid.
        let id = |k: u32| format!("{order_id}{k}");
        let sequence = [
            signed(order_id, "pending", &id(1), 1),
            signed(order_id, "credit", &id(2), 2),
            signed(order_id, "debit", &id(3), 3),
            signed(order_id, "credit", &id(2), 2),
        ];
        for &index in permutation {
            post(&s, &sequence[index]).await;
        }
    }
    let mut shapes = Vec::new();
    for (order_id, _) in &orders {
        let order = reaches(&h, &s, order_id, pb::OrderState::Debited).await;
        assert_eq!(order.message_id, format!("m-{order_id}"));
        shapes.push(shape(&order));
    }
    let first = &shapes[0];
    assert_eq!(
        (
            first.0,
            first.1.as_str(),
            first.2.as_str(),
            first.3,
            first.4.iter().map(|t| (t.0, t.1)).collect::<Vec<_>>(),
        ),
        (
            pb::OrderState::Debited,
            "30.00",
            "30.00",
            3,
            vec![
                (pb::OrderState::Created, pb::OrderState::Pending),
                (pb::OrderState::Pending, pb::OrderState::Credited),
                (pb::OrderState::Credited, pb::OrderState::Debited),
            ],
        )
    );
    assert!(first.5.is_empty());
    for (shape, (order_id, permutation)) in shapes.iter().zip(&orders) {
        assert_eq!(shape, first, "order {order_id}, arrival {permutation:?}");
    }
}
