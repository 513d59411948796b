//! The fold: an order from the set of its facts. The state is a function of which notification
//! methods were seen (per kind), a Withdraw's decision of which decisions were recorded, the
//! totals are sums over distinct facts, and everything listed is sorted, so the result does not
//! depend on the order the facts arrived in.

use std::{
    collections::{BTreeMap, BTreeSet},
    str::FromStr,
};

use rust_decimal::Decimal;

use super::{
    Contradiction, DECISION_APPROVED, DECISION_REJECTED, Fact, Kind, Order, Source, State,
    Transition, WithdrawDecision,
};
use crate::money::Amount;

/// The notification methods seen so far: all the state machines read.
#[derive(Clone, Copy, Default)]
struct Seen {
    pending: bool,
    credit: bool,
    debit: bool,
    cancel: bool,
    confirmation: bool,
    failed: bool,
}

impl Seen {
    fn add(&mut self, method: &str) {
        match method {
            "pending" => self.pending = true,
            "credit" => self.credit = true,
            "debit" => self.debit = true,
            "cancel" => self.cancel = true,
            "payoutconfirmation" => self.confirmation = true,
            "payoutfailed" => self.failed = true,
            _ => {}
        }
    }
}

/// The state machine of each kind, as precedence over what was seen: a later stage outranks an
/// earlier one whatever order the notifications came in.
fn state_of(kind: Kind, seen: Seen) -> State {
    let payout_like = matches!(kind, Kind::AccountPayout | Kind::RegisterAccountPayout)
        || (kind == Kind::Unknown && (seen.confirmation || seen.failed));
    match kind {
        // A cancelled payout gets `cancel` + `credit` (the money back): cancelled, not returned.
        _ if payout_like => {
            if seen.failed {
                State::Failed
            } else if seen.cancel {
                State::Cancelled
            } else if seen.credit {
                State::Returned
            } else if seen.confirmation {
                State::Confirmed
            } else {
                State::Accepted
            }
        }
        // Deny gives `cancel` + `credit`; a failed payout `credit` + `cancel`.
        Kind::Withdraw => {
            if seen.cancel {
                State::Cancelled
            } else if seen.credit {
                State::Returned
            } else if seen.confirmation {
                State::Confirmed
            } else if seen.debit {
                State::Debited
            } else {
                State::Created
            }
        }
        Kind::Refund => State::Accepted,
        // Deposit, Charge and orders only notifications named.
        _ => {
            if seen.debit {
                State::Debited
            } else if seen.credit {
                State::Credited
            } else if seen.cancel {
                State::Cancelled
            } else if seen.pending {
                State::Pending
            } else {
                State::Created
            }
        }
    }
}

/// The order its facts tell (`None` without facts). Facts sharing an id count once.
pub fn fold(facts: impl IntoIterator<Item = Fact>) -> Option<Order> {
    let mut contradictions = BTreeSet::new();
    let facts = by_id(facts, &mut contradictions);
    let first = facts.first()?.clone();
    let kind = kind_of(&facts, &mut contradictions);
    let mut order = Order {
        order_id: first.order_id.clone(),
        message_id: String::new(),
        kind,
        state: state_of(kind, Seen::default()),
        currency: String::new(),
        end_user_id: String::new(),
        requested: None,
        credited: Decimal::ZERO,
        debited: Decimal::ZERO,
        refunded: Decimal::ZERO,
        paid_out: Decimal::ZERO,
        withdraw_decision: None,
        created_ms: first.at_ms,
        updated_ms: first.at_ms,
        notification_ids: Vec::new(),
        rpcs: Vec::new(),
        transitions: Vec::new(),
        contradictions: Vec::new(),
    };
    let mut seen = Seen::default();
    let mut confirmations = BTreeSet::new();
    for fact in &facts {
        apply(&mut order, fact, &mut contradictions, &mut confirmations);
        if fact.source == Source::Notification {
            seen.add(&fact.method);
        }
        let state = state_of(kind, seen);
        if state != order.state {
            order.transitions.push(Transition {
                from: order.state,
                to: state,
                at_ms: fact.at_ms,
                fact_id: fact.id.clone(),
            });
            order.state = state;
        }
    }
    order.message_id = facts
        .iter()
        .map(|f| &f.message_id)
        .find(|m| !m.is_empty())
        .cloned()
        .unwrap_or_default();
    order.withdraw_decision = withdraw_decision(kind, seen, &facts);
    if matches!(kind, Kind::Deposit | Kind::Charge | Kind::Unknown) && seen.cancel && seen.credit {
        contradictions.insert(Contradiction::CancelledAndCredited);
    }
    if confirmations.len() > 1 {
        contradictions.insert(Contradiction::PayoutAmount(
            confirmations.into_iter().collect(),
        ));
    }
    for (values, flag) in [
        (
            distinct(&facts, |f| &f.currency),
            Contradiction::Currency as fn(_) -> _,
        ),
        (distinct(&facts, |f| &f.end_user_id), Contradiction::EndUser),
    ] {
        if values.len() > 1 {
            contradictions.insert(flag(values));
        }
    }
    order.notification_ids.sort();
    order.rpcs.sort();
    order.contradictions = contradictions.into_iter().collect();
    Some(order)
}

/// A Withdraw's decision, from the set of decision facts: a rejection outranks an approval (one
/// FAILED aborts the withdrawal), a decision outranks its absence whatever came first, and a
/// Withdraw whose `debit` came without a decision awaits one.
fn withdraw_decision(kind: Kind, seen: Seen, facts: &[Fact]) -> Option<WithdrawDecision> {
    let decided = |method: &str| {
        facts
            .iter()
            .any(|f| f.source == Source::Decision && f.method == method)
    };
    if decided(DECISION_REJECTED) {
        Some(WithdrawDecision::Rejected)
    } else if decided(DECISION_APPROVED) {
        Some(WithdrawDecision::Approved)
    } else if kind == Kind::Withdraw && seen.debit {
        Some(WithdrawDecision::Awaited)
    } else {
        None
    }
}

/// The facts, one per id, in (time, id) order. Sorted first so that, of two facts sharing an id,
/// the smaller is kept whatever came first; the other is flagged.
fn by_id(
    facts: impl IntoIterator<Item = Fact>,
    contradictions: &mut BTreeSet<Contradiction>,
) -> Vec<Fact> {
    let mut all: Vec<Fact> = facts.into_iter().collect();
    all.sort();
    let mut kept: BTreeMap<String, Fact> = BTreeMap::new();
    for fact in all {
        match kept.get(&fact.id) {
            Some(first) if *first != fact => {
                contradictions.insert(Contradiction::Fact {
                    fact_id: fact.id.clone(),
                });
            }
            Some(_) => {}
            None => {
                kept.insert(fact.id.clone(), fact);
            }
        }
    }
    let mut facts: Vec<Fact> = kept.into_values().collect();
    facts.sort_by(|a, b| (a.at_ms, &a.id).cmp(&(b.at_ms, &b.id)));
    facts
}

/// Adds one fact's identifiers, money and time to the order.
fn apply(
    order: &mut Order,
    fact: &Fact,
    contradictions: &mut BTreeSet<Contradiction>,
    confirmations: &mut BTreeSet<String>,
) {
    order.updated_ms = order.updated_ms.max(fact.at_ms);
    if order.currency.is_empty() {
        order.currency.clone_from(&fact.currency);
    }
    if order.end_user_id.is_empty() {
        order.end_user_id.clone_from(&fact.end_user_id);
    }
    let amount = if fact.amount.is_empty() {
        None
    } else {
        let parsed = Amount::from_str(&fact.amount).ok().map(Amount::value);
        if parsed.is_none() {
            contradictions.insert(Contradiction::Amount {
                fact_id: fact.id.clone(),
            });
        }
        parsed
    };
    match fact.source {
        Source::Notification => {
            order
                .notification_ids
                .push(fact.id["n:".len()..].to_owned());
            let Some(amount) = amount else { return };
            match fact.method.as_str() {
                "credit" => order.credited += amount,
                "debit" => order.debited += amount,
                "payoutconfirmation" => {
                    order.paid_out += amount;
                    confirmations.insert(amount.to_string());
                }
                _ => {}
            }
        }
        // Read as a set by `withdraw_decision`; no money moves with it.
        Source::Decision => {}
        Source::Rpc => {
            order
                .rpcs
                .push(fact.id.strip_prefix("rpc:").unwrap_or(&fact.id).to_owned());
            match (fact.method.as_str(), amount) {
                ("Refund", Some(amount)) => order.refunded += amount,
                (_, Some(amount)) if order.requested.is_none() => order.requested = Some(amount),
                _ => {}
            }
        }
    }
}

/// The kind the creating RPCs name: a Refund only when nothing else created the order (a refund
/// is recorded on the order it refunds).
fn kind_of(facts: &[Fact], contradictions: &mut BTreeSet<Contradiction>) -> Kind {
    let kinds: BTreeSet<Kind> = facts
        .iter()
        .filter(|f| f.source == Source::Rpc)
        .filter_map(|f| Kind::of_method(&f.method))
        .collect();
    let creating: Vec<Kind> = kinds
        .iter()
        .copied()
        .filter(|k| *k != Kind::Refund)
        .collect();
    if creating.len() > 1 {
        contradictions.insert(Contradiction::Kind(
            creating.iter().map(|k| k.name().to_owned()).collect(),
        ));
    }
    match creating.first() {
        Some(kind) => *kind,
        // A refund of an order this sidecar only knows from notifications refunds *that* order.
        None if kinds.contains(&Kind::Refund) && facts.iter().all(|f| f.source == Source::Rpc) => {
            Kind::Refund
        }
        None => Kind::Unknown,
    }
}

/// The distinct non-empty values of a field, sorted.
fn distinct(facts: &[Fact], field: impl Fn(&Fact) -> &String) -> Vec<String> {
    facts
        .iter()
        .map(field)
        .filter(|v| !v.is_empty())
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}
