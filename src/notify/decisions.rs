//! Waiting for a subscriber's decision: which notifications need one (decided once, at intake),
//! the decision's stored form, and intake's bounded wait for it.
//!
//! Knows nothing of gRPC or HTTP; the decisions themselves are kept by [`store::Decisions`].

use std::time::Duration;

use serde_json::{Value, json};

use crate::{money::Amount, store};

/// How often intake looks for a subscriber's decision while decisions recorded on other replicas
/// cannot wake it (their wake-up subscription is down); otherwise a recorded decision wakes it.
const DECISION_POLL: Duration = Duration::from_millis(50);

/// Whether a notification's answer waits for a subscriber's decision: every `kyc`, and a `debit`
/// of an order that came from Withdraw (`from_withdraw`). The one place this rule is written.
pub fn required(method: &str, from_withdraw: bool) -> bool {
    match method {
        "kyc" => true,
        "debit" => from_withdraw,
        _ => false,
    }
}

/// Waits up to `deadline` for the decision on `notification_id`; `None` when none came.
pub async fn wait(
    decisions: &store::Decisions,
    notification_id: &str,
    deadline: Duration,
) -> Result<Option<Decision>, store::Error> {
    let deadline = tokio::time::Instant::now() + deadline;
    // Before the first look: a decision recorded between a look and the wait still wakes it.
    let mut decided = decisions.watch();
    loop {
        if let Some(decision) = decisions.get(notification_id).await? {
            return Ok(Some(Decision::decode(&decision)));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let look_again = now + decisions.poll_every(DECISION_POLL);
        decided
            .wait(notification_id, deadline.min(look_again))
            .await;
    }
}

/// Records a subscriber's decision for intake to answer with.
pub async fn record(
    decisions: &store::Decisions,
    notification_id: &str,
    decision: &Decision,
) -> Result<(), store::Error> {
    decisions.set(notification_id, &decision.encode()).await
}

/// A merchant's decision on a notification that needs one, as stored for intake to answer with:
/// the status, and for a `kyc` CONTINUE an optional `limit` (spec §4.2: an optional string beside
/// CONTINUE in Trustly's 2024 schema; its meaning is unconfirmed, we send it as the most the end
/// user may deposit in the order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub status: String,
    pub limit: Option<Amount>,
}

impl Decision {
    pub fn new(status: &str, limit: Option<Amount>) -> Self {
        Self {
            status: status.to_owned(),
            limit,
        }
    }

    /// The stored form: `STATUS` or `STATUS limit=AMOUNT` (statuses never contain a space).
    pub fn encode(&self) -> String {
        match &self.limit {
            Some(limit) => format!("{} limit={limit}", self.status),
            None => self.status.clone(),
        }
    }

    /// Reads the stored form; a limit that does not parse is dropped rather than signed.
    pub fn decode(stored: &str) -> Self {
        match stored.split_once(" limit=") {
            Some((status, limit)) => Self::new(status, limit.parse().ok()),
            None => Self::new(stored, None),
        }
    }

    /// The answer given when no decision came in time and the fallback is to answer: a `kyc`
    /// continues, anything else is OK.
    pub fn fallback(method: &str) -> Self {
        Self::new(if method == "kyc" { "CONTINUE" } else { "OK" }, None)
    }

    /// The signed answer's `data`: `{"status": ...}`, plus `limit` when there is one.
    pub fn data(&self) -> Value {
        match &self.limit {
            Some(limit) => json!({ "status": self.status, "limit": limit.to_string() }),
            None => json!({ "status": self.status }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kyc_and_withdraw_debits_need_a_decision() {
        assert!(required("kyc", false));
        assert!(required("debit", true));
        assert!(!required("debit", false));
        assert!(!required("credit", true));
        assert_eq!(Decision::fallback("kyc"), Decision::new("CONTINUE", None));
        assert_eq!(Decision::fallback("debit"), Decision::new("OK", None));
    }

    #[test]
    fn decisions_round_trip_through_their_stored_form() {
        let limit: Amount = "250.00".parse().expect("amount");
        for decision in [
            Decision::new("OK", None),
            Decision::new("FAILED", None),
            Decision::new("CONTINUE", Some(limit)),
            Decision::new("FINISH", None),
        ] {
            assert_eq!(Decision::decode(&decision.encode()), decision);
        }
        assert_eq!(
            Decision::new("CONTINUE", Some(limit)).encode(),
            "CONTINUE limit=250.00"
        );
        assert_eq!(
            Decision::new("CONTINUE", Some(limit)).data(),
            json!({"status": "CONTINUE", "limit": "250.00"})
        );
    }
}

/// What intake does when no decision arrives in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecisionFallback {
    /// Answer 503 without a body so Trustly resends (and intake asks again).
    Withhold,
    /// Answer the accepting status: `debit` OK, `kyc` CONTINUE.
    Answer,
}
