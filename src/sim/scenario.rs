//! What happens to orders after the API call: the end user completing or abandoning the
//! checkout, payouts executing or failing, test case D1, and the follow-ups a merchant's answer
//! triggers. Driven from the admin API; every step updates state first and then yields the
//! notifications Trustly would send, in order.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::state::{NotificationRecord, OrderKind, OrderStatus, State};

/// Why an admin action could not run.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no order {0}")]
    NotFound(String),
    #[error("order {order_id} is {status:?}; {action} needs {needs}")]
    WrongState {
        order_id: String,
        status: OrderStatus,
        action: &'static str,
        needs: &'static str,
    },
    #[error("{0}")]
    BadInput(String),
}

/// Options of the `complete` action.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Complete {
    /// The amount the end user chose ("12.00"), where the order did not fix it.
    pub amount: Option<String>,
    /// Bank details the end user picked (SelectAccount, or the Deposit `account` notification).
    pub account: Option<BankDetails>,
    /// Deposit: also send the optional `account` notification.
    #[serde(default)]
    pub send_account: bool,
    /// Deliver this step's notifications in reverse order (ordering is not guaranteed).
    #[serde(default)]
    pub reorder: bool,
    /// `fail`: send `payoutfailed` (with `errorcode`/`errormessage`) before the `credit` that
    /// returns the money. Only Trustly's 2024 schema has it and no released client handles it
    /// (spec §4.2 [U]), so it is opt-in.
    #[serde(default)]
    pub payoutfailed: bool,
}

/// The error a failed payout reports in `payoutfailed`. Trustly documents no values; these are
/// the simulator's own.
const PAYOUT_FAILED_CODE: &str = "ERROR_PAYOUT_FAILED";
const PAYOUT_FAILED_MESSAGE: &str = "The receiving bank rejected the payout";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankDetails {
    pub clearinghouse: String,
    pub bank_number: String,
    pub account_number: String,
}

/// The end user finishes the checkout (or a queued payout/charge executes).
pub fn complete(
    state: &mut State,
    order_id: &str,
    options: &Complete,
) -> Result<Vec<NotificationRecord>, ActionError> {
    let order = Target::find(state, order_id, "complete")?;
    let (kind, status) = (order.kind, order.status);
    let mut out = match kind {
        OrderKind::Deposit if status == OrderStatus::Initiated => {
            fix_amount(state, order_id, options.amount.as_deref())?;
            if state.orders.get(order_id).is_some_and(|o| o.request_kyc) {
                state.set_status(order_id, OrderStatus::AwaitingMerchant, None);
                notify(state, order_id, "kyc", kyc_fields(order_id))
            } else {
                credit_deposit(state, order_id, options)
            }
        }
        OrderKind::Withdraw if status == OrderStatus::Initiated => {
            fix_amount(state, order_id, options.amount.as_deref())?;
            state.set_status(order_id, OrderStatus::AwaitingMerchant, None);
            notify(state, order_id, "debit", Map::new())
        }
        OrderKind::SelectAccount if status == OrderStatus::Initiated => {
            let mandate = state
                .orders
                .get(order_id)
                .is_some_and(|o| o.request_mandate);
            let out = account_notification(state, order_id, options.account.as_ref(), mandate);
            state.set_status(order_id, OrderStatus::Executed, None);
            out
        }
        kind if kind.is_payout() && status == OrderStatus::Queued => {
            state.set_status(order_id, OrderStatus::Executed, Some("EXECUTED"));
            notify(state, order_id, "payoutconfirmation", Map::new())
        }
        OrderKind::Charge if status == OrderStatus::Queued => {
            state.credit_order(order_id, "Charge");
            state.set_status(order_id, OrderStatus::Credited, None);
            notify(state, order_id, "credit", Map::new())
        }
        OrderKind::Deposit | OrderKind::Withdraw | OrderKind::SelectAccount => {
            return Err(order.wrong("Initiated"));
        }
        OrderKind::AccountPayout | OrderKind::RegisterAccountPayout | OrderKind::Charge => {
            return Err(order.wrong("Queued"));
        }
        OrderKind::Refund | OrderKind::MerchantSettlement => {
            return Err(order.wrong("a checkout, payout or charge order"));
        }
    };
    if options.reorder {
        out.reverse();
    }
    Ok(out)
}

/// The end user abandons the checkout, or a queued charge is cancelled. A queued payout can be
/// cancelled too: the simulator's own scenario (Trustly documents no such step), modelled on
/// DenyWithdrawal's `cancel` + `credit` (spec §4.2): the money returns to the merchant balance.
pub fn cancel(state: &mut State, order_id: &str) -> Result<Vec<NotificationRecord>, ActionError> {
    let order = Target::find(state, order_id, "cancel")?;
    if !can_cancel(order.kind, order.status) {
        return Err(order.wrong("an unfinished checkout, a queued charge or a queued payout"));
    }
    if order.kind.is_payout() {
        state.credit_order(order_id, "Cancelled AccountPayout");
        state.set_status(order_id, OrderStatus::Cancelled, Some("FAILED"));
        let mut out = notify(state, order_id, "cancel", Map::new());
        out.extend(notify(state, order_id, "credit", Map::new()));
        return Ok(out);
    }
    state.set_status(order_id, OrderStatus::Cancelled, None);
    Ok(notify(state, order_id, "cancel", Map::new()))
}

/// The admin actions an order in this state allows, for the console's buttons.
pub fn actions(kind: OrderKind, status: OrderStatus) -> Vec<&'static str> {
    let mut actions = Vec::new();
    if can_complete(kind, status) {
        actions.push("complete");
    }
    if kind == OrderKind::Deposit && status == OrderStatus::Initiated {
        actions.push("credit-then-debit");
    }
    if can_fail(kind, status) {
        actions.push("fail");
    }
    if can_cancel(kind, status) {
        actions.push("cancel");
    }
    actions
}

fn can_complete(kind: OrderKind, status: OrderStatus) -> bool {
    match kind {
        OrderKind::Deposit | OrderKind::Withdraw | OrderKind::SelectAccount => {
            status == OrderStatus::Initiated
        }
        OrderKind::AccountPayout | OrderKind::RegisterAccountPayout | OrderKind::Charge => {
            status == OrderStatus::Queued
        }
        OrderKind::Refund | OrderKind::MerchantSettlement => false,
    }
}

fn can_cancel(kind: OrderKind, status: OrderStatus) -> bool {
    match kind {
        OrderKind::Deposit | OrderKind::Withdraw | OrderKind::SelectAccount => matches!(
            status,
            OrderStatus::Initiated | OrderStatus::AwaitingMerchant
        ),
        OrderKind::Charge | OrderKind::AccountPayout | OrderKind::RegisterAccountPayout => {
            status == OrderStatus::Queued
        }
        OrderKind::Refund | OrderKind::MerchantSettlement => false,
    }
}

fn can_fail(kind: OrderKind, status: OrderStatus) -> bool {
    kind.is_payout() && matches!(status, OrderStatus::Queued | OrderStatus::Executed)
}

/// A queued payout fails at the bank: the money returns to the merchant balance with `credit`,
/// after a `payoutfailed` when `options.payoutfailed` asks for one.
pub fn fail(
    state: &mut State,
    order_id: &str,
    options: &Complete,
) -> Result<Vec<NotificationRecord>, ActionError> {
    let order = Target::find(state, order_id, "fail")?;
    if !can_fail(order.kind, order.status) {
        return Err(order.wrong("a queued or executed payout"));
    }
    state.credit_order(order_id, "Failed AccountPayout");
    state.set_status(order_id, OrderStatus::Failed, Some("FAILED"));
    let mut out = Vec::new();
    if options.payoutfailed {
        let mut fields = Map::new();
        fields.insert("errorcode".into(), json!(PAYOUT_FAILED_CODE));
        fields.insert("errormessage".into(), json!(PAYOUT_FAILED_MESSAGE));
        out.extend(notify(state, order_id, "payoutfailed", fields));
    }
    out.extend(notify(state, order_id, "credit", Map::new()));
    Ok(out)
}

/// Test case D1: the deposit is credited and then debited because the funds did not settle.
pub fn credit_then_debit(
    state: &mut State,
    order_id: &str,
    options: &Complete,
) -> Result<Vec<NotificationRecord>, ActionError> {
    let order = Target::find(state, order_id, "credit-then-debit")?;
    if !(order.kind == OrderKind::Deposit && order.status == OrderStatus::Initiated) {
        return Err(order.wrong("an initiated Deposit"));
    }
    fix_amount(state, order_id, options.amount.as_deref())?;
    let mut out = credit_deposit(state, order_id, &Complete::default());
    state.reverse_order(order_id, "Deposit Reversal");
    state.set_status(order_id, OrderStatus::Debited, None);
    out.extend(notify(state, order_id, "debit", Map::new()));
    if options.reorder {
        out.reverse();
    }
    Ok(out)
}

/// Follow-ups of a merchant's answer: a Withdraw `debit` answered OK prepares the withdrawal and
/// FAILED cancels it; a `kyc` answered FINISH cancels the deposit, CONTINUE/OK lets it complete,
/// for at most the CONTINUE's `limit` when it gave one (our reading of the 2024 schema's `limit`:
/// the most the end user may deposit in this order).
pub fn after_answer(
    state: &mut State,
    notification_id: &str,
    status: &str,
    limit: Option<&str>,
) -> Vec<NotificationRecord> {
    let Some((order_id, method)) = state
        .notifications
        .get(notification_id)
        .map(|n| (n.order_id.clone(), n.method.clone()))
    else {
        return Vec::new();
    };
    let Some(order) = state.orders.get(&order_id) else {
        return Vec::new();
    };
    if order.status != OrderStatus::AwaitingMerchant {
        return Vec::new();
    }
    match (order.kind, method.as_str(), status) {
        (OrderKind::Withdraw, "debit", "OK") => {
            state.set_status(&order_id, OrderStatus::AwaitingApproval, Some("PREPARED"));
            Vec::new()
        }
        (OrderKind::Withdraw, "debit", _) | (OrderKind::Deposit, "kyc", "FINISH") => {
            state.set_status(&order_id, OrderStatus::Cancelled, None);
            notify(state, &order_id, "cancel", Map::new())
        }
        (OrderKind::Deposit, "kyc", _) => {
            let limit = limit.and_then(|l| l.parse::<crate::money::Amount>().ok());
            if let (Some(limit), Some(order)) = (limit, state.orders.get_mut(&order_id)) {
                order.amount = order.amount.map(|amount| amount.min(limit.value()));
            }
            credit_deposit(state, &order_id, &Complete::default())
        }
        _ => Vec::new(),
    }
}

fn credit_deposit(
    state: &mut State,
    order_id: &str,
    options: &Complete,
) -> Vec<NotificationRecord> {
    state.credit_order(order_id, "Deposit");
    state.set_status(order_id, OrderStatus::Credited, None);
    let mut out = notify(state, order_id, "pending", Map::new());
    out.extend(notify(state, order_id, "credit", Map::new()));
    if options.send_account || options.account.is_some() {
        out.extend(account_notification(
            state,
            order_id,
            options.account.as_ref(),
            false,
        ));
    }
    out
}

/// Registers the end user's account and builds the `account` notification.
fn account_notification(
    state: &mut State,
    order_id: &str,
    details: Option<&BankDetails>,
    mandate: bool,
) -> Vec<NotificationRecord> {
    let end_user = state
        .orders
        .get(order_id)
        .and_then(|o| o.end_user_id.clone())
        .unwrap_or_default();
    // Without explicit details, each end user gets one stable simulated Swedish account.
    let generated;
    let details = match details {
        Some(details) => details,
        None => {
            let digest = end_user
                .bytes()
                .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            generated = BankDetails {
                clearinghouse: "SWEDEN".into(),
                bank_number: "6112".into(),
                account_number: format!("{:08}", digest % 100_000_000),
            };
            &generated
        }
    };
    let mut account = state.register_account(
        &details.clearinghouse,
        &details.bank_number,
        &details.account_number,
    );
    if mandate && let Some(stored) = state.accounts_by_id.get_mut(&account.account_id) {
        stored.mandate = true;
        account.mandate = true;
    }
    if let Some(order) = state.orders.get_mut(order_id) {
        order.account_id = Some(account.account_id.clone());
    }
    let mut fields = Map::new();
    fields.insert("accountid".into(), json!(account.account_id));
    fields.insert("verified".into(), json!("1"));
    fields.insert(
        "attributes".into(),
        json!({
            "clearinghouse": account.clearinghouse,
            "bank": account.bank,
            "descriptor": account.descriptor,
            "lastdigits": account.last_digits,
            "directdebitmandate": u8::from(account.mandate),
        }),
    );
    notify(state, order_id, "account", fields)
}

/// A simulated identity: the simulator keeps no end-user personal data to echo back.
fn kyc_fields(order_id: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("kycentityid".into(), json!(format!("kyc-{order_id}")));
    fields.insert(
        "attributes".into(),
        json!({"firstname": "Test", "lastname": "Person", "dob": "1990-01-01", "country": "SE"}),
    );
    fields
}

/// The order an admin action works on, as it stands before the action changes it.
struct Target<'a> {
    order_id: &'a str,
    action: &'static str,
    kind: OrderKind,
    status: OrderStatus,
}

impl<'a> Target<'a> {
    fn find(state: &State, order_id: &'a str, action: &'static str) -> Result<Self, ActionError> {
        let order = state
            .orders
            .get(order_id)
            .ok_or_else(|| ActionError::NotFound(order_id.into()))?;
        Ok(Self {
            order_id,
            action,
            kind: order.kind,
            status: order.status,
        })
    }

    /// Why the action cannot run on this order: it `needs` another state.
    fn wrong(&self, needs: &'static str) -> ActionError {
        ActionError::WrongState {
            order_id: self.order_id.into(),
            status: self.status,
            action: self.action,
            needs,
        }
    }
}

fn notify(
    state: &mut State,
    order_id: &str,
    method: &str,
    fields: Map<String, Value>,
) -> Vec<NotificationRecord> {
    state
        .new_notification(order_id, method, fields)
        .into_iter()
        .collect()
}

/// Sets the amount chosen in the checkout, unless the order fixed one.
fn fix_amount(state: &mut State, order_id: &str, amount: Option<&str>) -> Result<(), ActionError> {
    let chosen = match amount {
        Some(text) => Some(
            text.parse::<crate::money::Amount>()
                .map_err(|e| ActionError::BadInput(format!("amount: {e}")))?
                .value(),
        ),
        None => None,
    };
    if let Some(order) = state.orders.get_mut(order_id) {
        order.amount = match (order.amount, chosen) {
            (Some(fixed), _) => Some(fixed),
            (None, Some(chosen)) => Some(chosen),
            // What a user most often types in the sandbox checkout.
            (None, None) => Some(Decimal::new(10_000, 2)),
        };
    }
    Ok(())
}
