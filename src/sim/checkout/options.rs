//! "Set order options": the test cases the end user may pick in the checkout, Trustly's and ours.
//!
//! Trustly's built-in test cases are listed by Trustly at https://docs.trustly.com/api/test-cases
//! (also https://eu.developers.trustly.com/doc/reference/test-cases): Deposit D1–D5 (D2
//! deprecated), Withdraw W1, General G1–G3, picked in the checkout after choosing a bank by
//! ticking "Set order options". Only D1 is described publicly; the others are listed here as
//! Trustly's but not simulated, so nobody mistakes an invented behaviour for Trustly's. The
//! simulator's own scenarios are labelled as ours.

use std::time::Duration;

use serde::Serialize;

use crate::sim::state::OrderKind;

/// How long the delayed-credit scenario keeps the order in `pending` before `credit`: long
/// enough to watch the merchant show "pending", short enough to wait for by hand.
pub const DELAYED_CREDIT_AFTER: Duration = Duration::from_secs(10);

/// Who defines an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Trustly,
    Ours,
}

/// What an option does when the end user confirms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Trustly's D1: `credit`, then shortly a `debit` because the funds did not settle.
    CreditThenDebit,
    /// Ours: the `account` notification is sent too, and the step's notifications go out in
    /// reverse order (account, credit, pending).
    OutOfOrder,
    /// Ours: the step's last notification is delivered a second time, unchanged.
    Duplicate,
    /// Ours: `pending` at once, `credit` after [`DELAYED_CREDIT_AFTER`].
    DelayedCredit,
}

/// One entry of the "Set order options" list.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct OrderOption {
    pub id: &'static str,
    pub title: &'static str,
    pub origin: Origin,
    /// What the option does; `None`: listed, not simulated.
    #[serde(skip)]
    pub effect: Option<Effect>,
    /// Why it is unavailable, or what to expect.
    pub note: &'static str,
    #[serde(skip)]
    kinds: &'static [OrderKind],
}

impl OrderOption {
    pub fn available(&self) -> bool {
        self.effect.is_some()
    }
}

const DEPOSIT: &[OrderKind] = &[OrderKind::Deposit];
const WITHDRAW: &[OrderKind] = &[OrderKind::Withdraw];
const CHECKOUTS: &[OrderKind] = &[
    OrderKind::Deposit,
    OrderKind::Withdraw,
    OrderKind::SelectAccount,
];

/// Trustly lists it; no public source says what it does.
const UNDESCRIBED: &str = "not simulated: no public source describes it";

const fn listed(id: &'static str, kinds: &'static [OrderKind]) -> OrderOption {
    OrderOption {
        id,
        title: "Trustly's test case",
        origin: Origin::Trustly,
        effect: None,
        note: UNDESCRIBED,
        kinds,
    }
}

/// Every option, in the order the checkout lists them.
pub const OPTIONS: &[OrderOption] = &[
    OrderOption {
        id: "D1",
        // Trustly's title and behaviour, https://docs.trustly.com/api/test-cases.
        title: "Complete order but fail and debit immediately after crediting",
        origin: Origin::Trustly,
        effect: Some(Effect::CreditThenDebit),
        note: "credit, then shortly after a debit: the funds did not settle",
        kinds: DEPOSIT,
    },
    OrderOption {
        id: "D2",
        title: "Trustly's test case",
        origin: Origin::Trustly,
        effect: None,
        note: "deprecated by Trustly",
        kinds: DEPOSIT,
    },
    listed("D3", DEPOSIT),
    listed("D4", DEPOSIT),
    listed("D5", DEPOSIT),
    listed("W1", WITHDRAW),
    listed("G1", CHECKOUTS),
    listed("G2", CHECKOUTS),
    listed("G3", CHECKOUTS),
    OrderOption {
        id: "out-of-order",
        title: "Notifications out of order",
        origin: Origin::Ours,
        effect: Some(Effect::OutOfOrder),
        note: "account, credit and pending, in that order: do not rely on the order of arrival",
        kinds: DEPOSIT,
    },
    OrderOption {
        id: "duplicate",
        title: "Duplicate notification",
        origin: Origin::Ours,
        effect: Some(Effect::Duplicate),
        note: "the last notification is sent twice with the same notificationid",
        kinds: CHECKOUTS,
    },
    OrderOption {
        id: "delayed-credit",
        title: "Delayed credit",
        origin: Origin::Ours,
        effect: Some(Effect::DelayedCredit),
        note: "pending at once, credit 10 seconds later",
        kinds: DEPOSIT,
    },
];

/// The options an order of `kind` offers.
pub fn for_kind(kind: OrderKind) -> Vec<OrderOption> {
    OPTIONS
        .iter()
        .filter(|option| option.kinds.contains(&kind))
        .copied()
        .collect()
}

/// The option `id` if an order of `kind` offers it.
pub fn find(kind: OrderKind, id: &str) -> Option<OrderOption> {
    for_kind(kind).into_iter().find(|option| option.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_d1_of_trustlys_cases_runs_and_every_kind_offers_something_of_ours() {
        let running: Vec<&str> = OPTIONS
            .iter()
            .filter(|o| o.origin == Origin::Trustly && o.available())
            .map(|o| o.id)
            .collect();
        assert_eq!(running, ["D1"]);
        for kind in CHECKOUTS {
            assert!(
                for_kind(*kind)
                    .iter()
                    .any(|o| o.origin == Origin::Ours && o.available())
            );
        }
        assert!(find(OrderKind::Withdraw, "D1").is_none());
        assert_eq!(
            DELAYED_CREDIT_AFTER,
            Duration::from_secs(10),
            "the note says 10 s"
        );
    }
}
