//! Typed `Data` and `Attributes` for every non-legacy Trustly method (spec §5), and typed
//! response data.
//!
//! Requests are serialized into a JSON tree exactly once; that tree is what is signed and sent.
//! Absent optional fields are omitted, as every official client does (spec §2.1). Every
//! `Attributes` (or, for methods without one, the `Data`) has an `extra` map so a field Trustly adds
//! later passes through without a release. Responses are read from the *verified* tree; unknown
//! fields land in `extra`, so nothing Trustly sent is lost.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::money::{Amount, Currency};

mod settlement_csv;

pub use settlement_csv::{SettlementRow, settlement_rows};

/// Fields passed through untouched: unknown attributes going out, unknown fields coming back.
pub type Extra = BTreeMap<String, Value>;

/// A Trustly API method: its name, its `Data` (without Username/Password, which the client adds)
/// and its typed response.
pub trait Method: Serialize + Send + Sync {
    /// The JSON-RPC method name, exactly as Trustly spells it.
    const NAME: &'static str;
    type Response: FromData;

    /// The `Data` tree, without credentials. Absent optional fields are dropped.
    fn data(&self) -> Result<Map<String, Value>, serde_json::Error> {
        let mut map = self.typed_tree()?;
        drop_nulls(&mut map);
        Ok(map)
    }

    /// The tree with every typed field present, absent ones as `null`: the set of keys this
    /// method types, so pass-through attributes can be kept from replacing any of them.
    fn typed_tree(&self) -> Result<Map<String, Value>, serde_json::Error> {
        match serde_json::to_value(self)? {
            Value::Object(map) => Ok(map),
            _ => Err(serde::ser::Error::custom("method data must be an object")),
        }
    }
}

/// True for a real calendar date written `YYYY-MM-DD` (Trustly's date format).
pub fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let number = |range: std::ops::Range<usize>| {
        text.get(range)
            .filter(|part| part.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|part| part.parse::<u32>().ok())
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

/// Removes `null` object members recursively (the Python/PHP clients' "vacuum"), so optional
/// fields that are `None` are omitted rather than sent as null. Arrays keep their elements.
pub fn drop_nulls(map: &mut Map<String, Value>) {
    drop_null_members(map);
    // An `Attributes` left empty is omitted too, as the official clients do for Refund and
    // RegisterAccount (the docs allow null; the recorded Trustly answers show omission works).
    if map
        .get("Attributes")
        .is_some_and(|a| a.as_object().is_some_and(Map::is_empty))
    {
        map.remove("Attributes");
    }
}

fn drop_null_members(map: &mut Map<String, Value>) {
    map.retain(|_, value| !value.is_null());
    for value in map.values_mut() {
        match value {
            Value::Object(inner) => drop_null_members(inner),
            Value::Array(items) => items.iter_mut().for_each(|item| {
                if let Value::Object(inner) = item {
                    drop_null_members(inner);
                }
            }),
            _ => {}
        }
    }
}

/// Serializes `Some(true)`/`Some(false)` as the strings "1"/"0" (spec §3.6: never booleans).
fn flag_string<S: Serializer>(flag: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
    match flag {
        Some(true) => s.serialize_str("1"),
        Some(false) => s.serialize_str("0"),
        None => s.serialize_none(),
    }
}

/// Serializes a flag as the integer 1/0 where Trustly types it as a number
/// (SelectAccount `RequestDirectDebitMandate`, Deposit `QuickDeposit`).
fn flag_number<S: Serializer>(flag: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
    match flag {
        Some(flag) => s.serialize_u8(u8::from(*flag)),
        None => s.serialize_none(),
    }
}

/// A Trustly OrderID ("1371798227"): the one order-id type of the sidecar, used by every method
/// that names an order (Refund, ApproveWithdrawal, DenyWithdrawal, CancelCharge, GetWithdrawals)
/// and by the simulator's validation.
///
/// Trustly's 2024 schema and the Java/.NET clients type `OrderID` as a `long` (spec §3.5), so a
/// valid id is what a signed 64-bit integer holds: ASCII digits, at most `i64::MAX`
/// (9223372036854775807). A leading zero is refused: Trustly's ids never have one, and the same id
/// must not have two spellings, since the number form (`0123` -> `123`) would silently rewrite it
/// while the string form would not. Such an id is therefore sent unchanged in either form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrderId {
    text: String,
    value: i64,
}

impl OrderId {
    /// What every refusal of [`OrderId::parse`] tells the caller.
    pub const FORMAT: &'static str =
        "must be a Trustly OrderID: digits without a leading zero, at most 9223372036854775807";

    /// Accepts digits only, no leading zero, at most `i64::MAX` (see the type's comment).
    pub fn parse(s: &str) -> Option<Self> {
        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits || s.starts_with('0') {
            return None;
        }
        let value = s.parse::<i64>().ok()?;
        Some(Self {
            text: s.to_owned(),
            value,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The id as the `long` of Trustly's schema.
    pub fn value(&self) -> i64 {
        self.value
    }
}

impl std::fmt::Display for OrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The default wire form: a JSON string. Used where Trustly documents no JSON type or shows a
/// string: Refund and CancelCharge (the docs' and the Python/PHP/JS clients' string form; the 2024
/// schema is silent on these two, and a string is what Trustly answers with in `orderid`).
impl Serialize for OrderId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Serializes an order id as a JSON number, as the 2024 schema (and the Java/.NET clients) type
/// `OrderID` for ApproveWithdrawal, DenyWithdrawal and GetWithdrawals (spec §3.5, §5.6, §5.13). The
/// signature is the same either way; only the JSON type differs. Exact: a parsed id has no leading
/// zero and fits an `i64`, so the number's text is the id's text.
fn order_id_number<S: Serializer>(id: &OrderId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(id.value())
}

/// `RecipientInformation` / `SenderInformation` (spec §5.2).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PartyInformation {
    /// `PERSON` or `ORGANISATION`.
    #[serde(rename = "Partytype")]
    pub party_type: String,
    #[serde(rename = "Firstname")]
    pub firstname: String,
    #[serde(rename = "Lastname")]
    pub lastname: String,
    #[serde(rename = "CountryCode")]
    pub country_code: String,
    #[serde(rename = "CustomerID")]
    pub customer_id: Option<String>,
    #[serde(rename = "Address")]
    pub address: Option<String>,
    #[serde(rename = "DateOfBirth")]
    pub date_of_birth: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Attributes that identify a payment service provider's merchant (EMO partners, e-wallets).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PspAttributes {
    #[serde(rename = "PSPMerchant")]
    pub psp_merchant: Option<String>,
    #[serde(rename = "PSPMerchantURL")]
    pub psp_merchant_url: Option<String>,
    #[serde(rename = "MerchantCategoryCode")]
    pub merchant_category_code: Option<String>,
}

/// Attributes shared by the checkout flows (Deposit, Withdraw, SelectAccount).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckoutAttributes {
    pub firstname: String,
    pub lastname: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// `ll_CC`, e.g. `sv_SE`.
    pub locale: String,
    #[serde(rename = "SuccessURL")]
    pub success_url: String,
    #[serde(rename = "FailURL")]
    pub fail_url: String,
    pub email: Option<String>,
    pub mobile_phone: Option<String>,
    #[serde(rename = "IP")]
    pub ip: Option<String>,
    #[serde(rename = "TemplateURL")]
    pub template_url: Option<String>,
    #[serde(rename = "URLTarget")]
    pub url_target: Option<String>,
    pub national_identification_number: Option<String>,
    #[serde(serialize_with = "flag_string")]
    pub unchangeable_national_identification_number: Option<bool>,
    #[serde(rename = "URLScheme")]
    pub url_scheme: Option<String>,
    #[serde(rename = "ReturnToAppURL")]
    pub return_to_app_url: Option<String>,
    #[serde(flatten)]
    pub psp: PspAttributes,
}

// === Deposit ===

/// `Deposit`: a pay-in; returns the checkout URL (spec §5.3).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Deposit {
    #[serde(rename = "NotificationURL")]
    pub notification_url: String,
    #[serde(rename = "EndUserID")]
    pub end_user_id: String,
    #[serde(rename = "MessageID")]
    pub message_id: String,
    #[serde(rename = "Attributes")]
    pub attributes: DepositAttributes,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DepositAttributes {
    pub currency: Currency,
    #[serde(flatten)]
    pub checkout: CheckoutAttributes,
    pub shopper_statement: Option<String>,
    pub amount: Option<Amount>,
    pub suggested_min_amount: Option<Amount>,
    pub suggested_max_amount: Option<Amount>,
    /// Only `deposit.bank.netherlands.ideal` today.
    pub method: Option<String>,
    pub shipping_address_country: Option<String>,
    pub shipping_address_postal_code: Option<String>,
    pub shipping_address_city: Option<String>,
    pub shipping_address_line1: Option<String>,
    pub shipping_address_line2: Option<String>,
    pub shipping_address: Option<String>,
    #[serde(serialize_with = "flag_string")]
    pub request_direct_debit_mandate: Option<bool>,
    #[serde(rename = "ChargeAccountID")]
    pub charge_account_id: Option<String>,
    #[serde(serialize_with = "flag_number")]
    pub quick_deposit: Option<bool>,
    pub external_reference: Option<String>,
    #[serde(rename = "AccountID")]
    pub account_id: Option<String>,
    pub recipient_information: Option<PartyInformation>,
    #[serde(rename = "RequestKYC", serialize_with = "flag_string")]
    pub request_kyc: Option<bool>,
    /// Test environment only: hold notifications for manual delivery.
    #[serde(serialize_with = "flag_string")]
    pub hold_notifications: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for Deposit {
    const NAME: &'static str = "Deposit";
    type Response = OrderWithUrl;
}

// === Withdraw ===

/// `Withdraw`: a user-driven payout through the checkout (spec §5.4).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Withdraw {
    #[serde(rename = "NotificationURL")]
    pub notification_url: String,
    #[serde(rename = "EndUserID")]
    pub end_user_id: String,
    #[serde(rename = "MessageID")]
    pub message_id: String,
    #[serde(rename = "Currency")]
    pub currency: Currency,
    #[serde(rename = "Attributes")]
    pub attributes: WithdrawAttributes,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WithdrawAttributes {
    #[serde(flatten)]
    pub checkout: CheckoutAttributes,
    pub shopper_statement: Option<String>,
    pub suggested_min_amount: Option<Amount>,
    pub suggested_max_amount: Option<Amount>,
    /// A fixed amount the user cannot change.
    pub suggested_amount: Option<Amount>,
    pub date_of_birth: Option<String>,
    pub address_country: Option<String>,
    pub address_postal_code: Option<String>,
    pub address_city: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub address: Option<String>,
    pub external_reference: Option<String>,
    pub sender_information: Option<PartyInformation>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for Withdraw {
    const NAME: &'static str = "Withdraw";
    type Response = OrderWithUrl;
}

// === SelectAccount ===

/// `SelectAccount`: the end user picks and verifies a bank account; the result arrives as an
/// `account` notification (spec §5.7).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SelectAccount {
    #[serde(rename = "NotificationURL")]
    pub notification_url: String,
    #[serde(rename = "EndUserID")]
    pub end_user_id: String,
    #[serde(rename = "MessageID")]
    pub message_id: String,
    #[serde(rename = "Attributes")]
    pub attributes: SelectAccountAttributes,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SelectAccountAttributes {
    #[serde(flatten)]
    pub checkout: CheckoutAttributes,
    pub shopper_statement: Option<String>,
    /// A **number** 0/1 for this method (spec §5.7).
    #[serde(serialize_with = "flag_number")]
    pub request_direct_debit_mandate: Option<bool>,
    pub date_of_birth: Option<String>,
    #[serde(serialize_with = "flag_string")]
    pub hold_notifications: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for SelectAccount {
    const NAME: &'static str = "SelectAccount";
    type Response = OrderWithUrl;
}

// === Refund ===

/// `Refund` of a Deposit or Charge, in full or in part (spec §5.5). It has no MessageID, so only
/// an identical replay (same UUID) is safe to retry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Refund {
    #[serde(rename = "OrderID")]
    pub order_id: OrderId,
    #[serde(rename = "Amount")]
    pub amount: Amount,
    #[serde(rename = "Currency")]
    pub currency: Currency,
    #[serde(rename = "Attributes")]
    pub attributes: RefundAttributes,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RefundAttributes {
    pub external_reference: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for Refund {
    const NAME: &'static str = "Refund";
    type Response = OrderResult;
}

// === ApproveWithdrawal / DenyWithdrawal ===

/// `ApproveWithdrawal` of a prepared withdrawal (spec §5.6).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApproveWithdrawal {
    #[serde(rename = "OrderID", serialize_with = "order_id_number")]
    pub order_id: OrderId,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for ApproveWithdrawal {
    const NAME: &'static str = "ApproveWithdrawal";
    type Response = OrderResult;
}

/// `DenyWithdrawal` of a prepared withdrawal (spec §5.6).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DenyWithdrawal {
    #[serde(rename = "OrderID", serialize_with = "order_id_number")]
    pub order_id: OrderId,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for DenyWithdrawal {
    const NAME: &'static str = "DenyWithdrawal";
    type Response = OrderResult;
}

// === RegisterAccount / CreateAccount ===

/// `RegisterAccount`: register known bank details and get an `accountid` (spec §5.8). The same
/// details always give the same accountid.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterAccount {
    #[serde(rename = "EndUserID")]
    pub end_user_id: String,
    #[serde(flatten)]
    pub account: BankAccount,
    pub attributes: RegisterAccountAttributes,
}

/// Bank details as RegisterAccount and RegisterAccountPayout take them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BankAccount {
    /// Country name in uppercase (`SWEDEN`, `GERMANY`), or `IBAN`.
    pub clearing_house: String,
    /// `""` for IBAN accounts.
    pub bank_number: String,
    pub account_number: String,
    pub firstname: String,
    pub lastname: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterAccountAttributes {
    pub date_of_birth: Option<String>,
    pub mobile_phone: Option<String>,
    pub national_identification_number: Option<String>,
    pub address_country: Option<String>,
    pub address_postal_code: Option<String>,
    pub address_city: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub address: Option<String>,
    pub email: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for RegisterAccount {
    const NAME: &'static str = "RegisterAccount";
    type Response = AccountRegistration;
}

/// `CreateAccount`: the same fields and answer as RegisterAccount (spec §5.1).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct CreateAccount(pub RegisterAccount);

impl Method for CreateAccount {
    const NAME: &'static str = "CreateAccount";
    type Response = AccountRegistration;
}

// === AccountPayout / RegisterAccountPayout ===

/// `AccountPayout` to a known accountid (spec §5.9).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccountPayout {
    #[serde(rename = "NotificationURL")]
    pub notification_url: String,
    #[serde(rename = "AccountID")]
    pub account_id: String,
    #[serde(rename = "EndUserID")]
    pub end_user_id: String,
    #[serde(rename = "MessageID")]
    pub message_id: String,
    #[serde(rename = "Amount")]
    pub amount: Amount,
    #[serde(rename = "Currency")]
    pub currency: Currency,
    #[serde(rename = "Attributes")]
    pub attributes: PayoutAttributes,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PayoutAttributes {
    pub shopper_statement: String,
    pub external_reference: Option<String>,
    #[serde(flatten)]
    pub psp: PspAttributes,
    pub sender_information: Option<PartyInformation>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for AccountPayout {
    const NAME: &'static str = "AccountPayout";
    type Response = OrderResult;
}

/// `RegisterAccountPayout`: register an account and pay out to it in one call (spec §5.10).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegisterAccountPayout {
    #[serde(rename = "EndUserID")]
    pub end_user_id: String,
    #[serde(flatten)]
    pub account: BankAccount,
    #[serde(rename = "NotificationURL")]
    pub notification_url: String,
    #[serde(rename = "MessageID")]
    pub message_id: String,
    #[serde(rename = "Amount")]
    pub amount: Amount,
    #[serde(rename = "Currency")]
    pub currency: Currency,
    #[serde(rename = "Attributes")]
    pub attributes: RegisterAccountPayoutAttributes,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RegisterAccountPayoutAttributes {
    #[serde(flatten)]
    pub payout: PayoutAttributes,
    #[serde(flatten)]
    pub account: RegisterAccountAttributes,
}

impl Method for RegisterAccountPayout {
    const NAME: &'static str = "RegisterAccountPayout";
    type Response = OrderResult;
}

// === Charge / CancelCharge ===

/// `Charge`: a direct debit of a mandated account (spec §5.11). Business rejections come back in
/// a success envelope, in `rejected`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Charge {
    #[serde(rename = "AccountID")]
    pub account_id: String,
    #[serde(rename = "NotificationURL")]
    pub notification_url: String,
    #[serde(rename = "EndUserID")]
    pub end_user_id: String,
    #[serde(rename = "MessageID")]
    pub message_id: String,
    #[serde(rename = "Amount")]
    pub amount: Amount,
    #[serde(rename = "Currency")]
    pub currency: Currency,
    #[serde(rename = "Attributes")]
    pub attributes: ChargeAttributes,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChargeAttributes {
    pub shopper_statement: String,
    pub email: String,
    /// `YYYY-MM-DD`; as soon as possible when absent.
    pub payment_date: Option<String>,
    pub external_reference: Option<String>,
    #[serde(flatten)]
    pub psp: PspAttributes,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for Charge {
    const NAME: &'static str = "Charge";
    type Response = ChargeResult;
}

/// `CancelCharge` of a future-dated Charge (spec §5.12).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CancelCharge {
    #[serde(rename = "OrderID")]
    pub order_id: OrderId,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for CancelCharge {
    const NAME: &'static str = "CancelCharge";
    type Response = ChargeResult;
}

// === GetWithdrawals / Balance / AccountLedger / settlement ===

/// `GetWithdrawals`: the transfer state of a payout (spec §5.13). Trustly allows it at most once
/// per 15 minutes per payout.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GetWithdrawals {
    #[serde(rename = "OrderID", serialize_with = "order_id_number")]
    pub order_id: OrderId,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for GetWithdrawals {
    const NAME: &'static str = "GetWithdrawals";
    type Response = Vec<Withdrawal>;
}

/// `Balance`: the merchant's balances (spec §5.14). At most once per 15 minutes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Balance {
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for Balance {
    const NAME: &'static str = "Balance";
    type Response = Vec<CurrencyBalance>;
}

/// `AccountLedger`: settled ledger rows for a period (spec §5.15).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AccountLedger {
    /// `YYYY-MM-DD`.
    #[serde(rename = "FromDate")]
    pub from_date: String,
    /// `YYYY-MM-DD`.
    #[serde(rename = "ToDate")]
    pub to_date: String,
    #[serde(rename = "Currency")]
    pub currency: Option<Currency>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for AccountLedger {
    const NAME: &'static str = "AccountLedger";
    type Response = Vec<LedgerEntry>;
}

/// `ViewAutomaticSettlementDetailsCSV`, the settlement report (spec §5.16).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ViewAutomaticSettlementDetailsCsv {
    /// `YYYY-MM-DD`.
    #[serde(rename = "SettlementDate")]
    pub settlement_date: String,
    #[serde(rename = "Currency")]
    pub currency: Option<Currency>,
    #[serde(rename = "Attributes")]
    pub attributes: SettlementReportAttributes,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SettlementReportAttributes {
    /// The CSV layout version; "1.2" is the one whose columns are documented.
    #[serde(rename = "APIVersion")]
    pub api_version: String,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Default for SettlementReportAttributes {
    fn default() -> Self {
        Self {
            api_version: "1.2".to_owned(),
            extra: Extra::new(),
        }
    }
}

impl Method for ViewAutomaticSettlementDetailsCsv {
    const NAME: &'static str = "ViewAutomaticSettlementDetailsCSV";
    type Response = SettlementReportCsv;
}

/// `MerchantSettlement`: move funds to the merchant's own bank account (spec §5.17).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MerchantSettlement {
    #[serde(rename = "MessageID")]
    pub message_id: String,
    #[serde(rename = "Amount")]
    pub amount: Amount,
    #[serde(rename = "Currency")]
    pub currency: Currency,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Method for MerchantSettlement {
    const NAME: &'static str = "MerchantSettlement";
    type Response = SettlementReference;
}

// === Responses ===

/// A verified response `data` that does not have the shape its method promises.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("response field {field}: {problem}")]
pub struct DataError {
    pub field: String,
    pub problem: &'static str,
}

/// Typed view of a verified response `data` tree.
pub trait FromData: Sized {
    fn from_data(data: Value) -> Result<Self, DataError>;
}

impl<T: FromData> FromData for Vec<T> {
    fn from_data(data: Value) -> Result<Self, DataError> {
        match data {
            Value::Array(items) => items.into_iter().map(T::from_data).collect(),
            _ => Err(DataError {
                field: "data".to_owned(),
                problem: "expected an array",
            }),
        }
    }
}

/// Takes typed fields out of an object; what is left over is `extra`.
struct Fields(Map<String, Value>);

impl Fields {
    fn new(data: Value) -> Result<Self, DataError> {
        match data {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(problem("data", "expected an object")),
        }
    }

    /// A required string; numbers are accepted as their lexeme (spec §2.2).
    fn text(&mut self, field: &str) -> Result<String, DataError> {
        self.optional_text(field)?
            .ok_or_else(|| problem(field, "missing"))
    }

    fn optional_text(&mut self, field: &str) -> Result<Option<String>, DataError> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(problem(field, "expected a string")),
        }
    }

    /// "1" → true, "0" → false (numbers too).
    fn flag(&mut self, field: &str) -> Result<bool, DataError> {
        match self.text(field)?.as_str() {
            "1" => Ok(true),
            "0" => Ok(false),
            _ => Err(problem(field, "expected \"1\" or \"0\"")),
        }
    }

    /// An exact decimal amount (any scale: ledger amounts carry 20 decimals).
    fn decimal(&mut self, field: &str) -> Result<Decimal, DataError> {
        let text = self.text(field)?;
        text.parse::<Decimal>()
            .map_err(|_| problem(field, "expected a decimal amount"))
    }

    fn extra(self) -> Extra {
        self.0.into_iter().collect()
    }
}

fn problem(field: &str, problem: &'static str) -> DataError {
    DataError {
        field: field.to_owned(),
        problem,
    }
}

/// `{orderid, url}`: Deposit, Withdraw, SelectAccount.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderWithUrl {
    pub order_id: String,
    pub url: String,
    pub extra: Extra,
}

impl FromData for OrderWithUrl {
    fn from_data(data: Value) -> Result<Self, DataError> {
        let mut f = Fields::new(data)?;
        Ok(Self {
            order_id: f.text("orderid")?,
            url: f.text("url")?,
            extra: f.extra(),
        })
    }
}

/// `{orderid, result}`: Refund, Approve/DenyWithdrawal, AccountPayout, RegisterAccountPayout.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderResult {
    pub order_id: String,
    /// Trustly's `result`: "1" accepted, "0" not.
    pub accepted: bool,
    pub extra: Extra,
}

impl FromData for OrderResult {
    fn from_data(data: Value) -> Result<Self, DataError> {
        let mut f = Fields::new(data)?;
        Ok(Self {
            order_id: f.text("orderid")?,
            accepted: f.flag("result")?,
            extra: f.extra(),
        })
    }
}

/// `{accountid, clearinghouse, bank, descriptor}`: RegisterAccount, CreateAccount.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountRegistration {
    pub account_id: String,
    pub clearinghouse: String,
    pub bank: String,
    pub descriptor: String,
    pub extra: Extra,
}

impl FromData for AccountRegistration {
    fn from_data(data: Value) -> Result<Self, DataError> {
        let mut f = Fields::new(data)?;
        Ok(Self {
            account_id: f.text("accountid")?,
            clearinghouse: f.optional_text("clearinghouse")?.unwrap_or_default(),
            bank: f.optional_text("bank")?.unwrap_or_default(),
            descriptor: f.optional_text("descriptor")?.unwrap_or_default(),
            extra: f.extra(),
        })
    }
}

/// `{result, orderid, rejected}`: Charge and CancelCharge. A rejection is a business answer
/// inside a success envelope (spec §2.4).
#[derive(Clone, Debug, PartialEq)]
pub struct ChargeResult {
    pub accepted: bool,
    pub order_id: Option<String>,
    /// `null` on success; `ERROR_MANDATE_NOT_FOUND` or free text otherwise.
    pub rejected: Option<String>,
    pub extra: Extra,
}

impl FromData for ChargeResult {
    fn from_data(data: Value) -> Result<Self, DataError> {
        let mut f = Fields::new(data)?;
        Ok(Self {
            accepted: f.flag("result")?,
            order_id: f.optional_text("orderid")?,
            rejected: f.optional_text("rejected")?,
            extra: f.extra(),
        })
    }
}

/// One GetWithdrawals entry (spec §5.13). `transferstate` is kept as text: the set can change.
#[derive(Clone, Debug, PartialEq)]
pub struct Withdrawal {
    pub reference: Option<String>,
    pub modification_date: Option<String>,
    pub order_id: String,
    pub datestamp: Option<String>,
    pub transfer_state: String,
    pub amount: Decimal,
    pub account_id: Option<String>,
    pub currency: String,
    pub eta: Option<String>,
    pub extra: Extra,
}

impl FromData for Withdrawal {
    fn from_data(data: Value) -> Result<Self, DataError> {
        let mut f = Fields::new(data)?;
        Ok(Self {
            reference: f.optional_text("reference")?,
            modification_date: f.optional_text("modificationdate")?,
            order_id: f.text("orderid")?,
            datestamp: f.optional_text("datestamp")?,
            transfer_state: f.text("transferstate")?,
            amount: f.decimal("amount")?,
            account_id: f.optional_text("accountid")?,
            currency: f.text("currency")?,
            eta: f.optional_text("eta")?,
            extra: f.extra(),
        })
    }
}

/// One Balance entry.
#[derive(Clone, Debug, PartialEq)]
pub struct CurrencyBalance {
    pub currency: String,
    pub balance: Decimal,
    pub extra: Extra,
}

impl FromData for CurrencyBalance {
    fn from_data(data: Value) -> Result<Self, DataError> {
        let mut f = Fields::new(data)?;
        Ok(Self {
            currency: f.text("currency")?,
            balance: f.decimal("balance")?,
            extra: f.extra(),
        })
    }
}

/// One AccountLedger row.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerEntry {
    pub user_id: Option<String>,
    pub datestamp: String,
    pub order_id: Option<String>,
    pub account_name: String,
    pub message_id: Option<String>,
    pub transaction_type: Option<String>,
    pub currency: String,
    pub amount: Decimal,
    pub gluepay_id: Option<String>,
    pub extra: Extra,
}

impl FromData for LedgerEntry {
    fn from_data(data: Value) -> Result<Self, DataError> {
        let mut f = Fields::new(data)?;
        Ok(Self {
            user_id: f.optional_text("userid")?,
            datestamp: f.text("datestamp")?,
            order_id: f.optional_text("orderid")?,
            account_name: f.text("accountname")?,
            message_id: f.optional_text("messageid")?,
            transaction_type: f.optional_text("transactiontype")?,
            currency: f.text("currency")?,
            amount: f.decimal("amount")?,
            gluepay_id: f.optional_text("gluepayid")?,
            extra: f.extra(),
        })
    }
}

/// The settlement report's raw CSV text (parsed into rows by the API layer).
#[derive(Clone, Debug, PartialEq)]
pub struct SettlementReportCsv {
    pub csv: String,
    pub extra: Extra,
}

impl FromData for SettlementReportCsv {
    fn from_data(data: Value) -> Result<Self, DataError> {
        let mut f = Fields::new(data)?;
        Ok(Self {
            csv: f
                .optional_text("view_automatic_settlement_details")?
                .unwrap_or_default(),
            extra: f.extra(),
        })
    }
}

/// MerchantSettlement's `{reference}`.
#[derive(Clone, Debug, PartialEq)]
pub struct SettlementReference {
    pub reference: String,
    pub extra: Extra,
}

impl FromData for SettlementReference {
    fn from_data(data: Value) -> Result<Self, DataError> {
        let mut f = Fields::new(data)?;
        Ok(Self {
            reference: f.text("reference")?,
            extra: f.extra(),
        })
    }
}

/// The raw verified tree, for callers that want it untouched.
impl FromData for Value {
    fn from_data(data: Value) -> Result<Self, DataError> {
        Ok(data)
    }
}
