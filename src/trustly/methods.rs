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

/// Declares what Trustly receives as `Attributes` (or as the `Data` of a method without them):
/// PascalCase keys, and last the `extra` map, so a field Trustly adds later passes through without
/// a release. Add `#[derive(Default)]` where every field has a default.
macro_rules! with_extra {
    ($(#[$meta:meta])* pub struct $ty:ident { $($fields:tt)* }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(rename_all = "PascalCase")]
        pub struct $ty {
            $($fields)*
            /// Pass-through fields, added beside the typed ones (never replacing one).
            #[serde(flatten)]
            pub extra: Extra,
        }
    };
}

/// Declares that a `Data` type is the Trustly method `NAME`, answered with `Response`.
macro_rules! method {
    ($ty:ident = $name:literal -> $response:ty) => {
        impl Method for $ty {
            const NAME: &'static str = $name;
            type Response = $response;
        }
    };
}

/// Declares a method whose `Data` is one `OrderID` and the pass-through fields; `From<OrderId>`
/// builds it without any. `as "order_id_number"` sends the id as a JSON number, else a string.
macro_rules! order_method {
    ($(#[$meta:meta])* $ty:ident $(as $with:literal)? = $name:literal -> $response:ty) => {
        with_extra! {
            $(#[$meta])*
            pub struct $ty {
                #[serde(rename = "OrderID" $(, serialize_with = $with)?)]
                pub order_id: OrderId,
            }
        }

        impl From<OrderId> for $ty {
            fn from(order_id: OrderId) -> Self {
                Self {
                    order_id,
                    extra: Extra::new(),
                }
            }
        }

        method!($ty = $name -> $response);
    };
}

mod accounts;
mod charges;
mod deposits;
mod payouts;
mod reports;
mod responses;
mod settlement_csv;

/// Trustly's date format is checked by the one calendar (`trustly::time`).
pub use super::time::is_date;
pub use accounts::*;
pub use charges::*;
pub use deposits::*;
pub use payouts::*;
pub use reports::*;
pub use responses::*;
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
        outgoing_data(self, [], ExtraTarget::Data).map(|(data, _)| data)
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

/// Where pass-through fields go: into `Attributes`, or into `Data` for methods without one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtraTarget {
    Attributes,
    Data,
}

/// A method's `Data` exactly as it is signed and sent (without credentials): the typed tree, the
/// pass-through fields added, unset fields dropped. Every call builds its `Data` here, typed
/// ([`Method::data`], `Client::call`) or with the gateway's extra attributes.
///
/// A pass-through field may add, never replace: a key naming a typed field (set or not) or a
/// credential is not added and is returned in the second list, in the order given.
pub fn outgoing_data<M: Method + ?Sized>(
    method: &M,
    extra: impl IntoIterator<Item = (String, String)>,
    target: ExtraTarget,
) -> Result<(Map<String, Value>, Vec<String>), serde_json::Error> {
    let mut data = method.typed_tree()?;
    let mut refused = Vec::new();
    let mut extra = extra.into_iter().peekable();
    if extra.peek().is_some() {
        let object = match target {
            ExtraTarget::Data => &mut data,
            ExtraTarget::Attributes => match data
                .entry("Attributes")
                .or_insert_with(|| Value::Object(Map::new()))
            {
                Value::Object(attributes) => attributes,
                _ => &mut data,
            },
        };
        for (key, value) in extra {
            // The typed tree still holds unset fields as null, so they are refused too.
            if object.contains_key(&key)
                || matches!(key.as_str(), "Username" | "Password" | "Attributes")
            {
                refused.push(key);
            } else {
                object.insert(key, Value::String(value));
            }
        }
    }
    drop_nulls(&mut data);
    Ok((data, refused))
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

with_extra! {
    /// `RecipientInformation` / `SenderInformation` (spec §5.2).
    #[derive(Default)]
    pub struct PartyInformation {
        /// `PERSON` or `ORGANISATION`.
        #[serde(rename = "Partytype")]
        pub party_type: String,
        pub firstname: String,
        pub lastname: String,
        pub country_code: String,
        #[serde(rename = "CustomerID")]
        pub customer_id: Option<String>,
        pub address: Option<String>,
        pub date_of_birth: Option<String>,
    }
}

/// Attributes that identify a payment service provider's merchant (EMO partners, e-wallets).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PspAttributes {
    #[serde(rename = "PSPMerchant")]
    pub psp_merchant: Option<String>,
    #[serde(rename = "PSPMerchantURL")]
    pub psp_merchant_url: Option<String>,
    pub merchant_category_code: Option<String>,
}

/// What every order-opening request names: where to notify, the end user, and the MessageID
/// (the idempotency key). Flattened into each `Data`, so the keys stand beside the others.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Opening {
    #[serde(rename = "NotificationURL")]
    pub notification_url: String,
    #[serde(rename = "EndUserID")]
    pub end_user_id: String,
    #[serde(rename = "MessageID")]
    pub message_id: String,
}

/// An end user's postal address, as RegisterAccount and Withdraw take it (flattened into their
/// `Attributes`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    pub address_country: Option<String>,
    pub address_postal_code: Option<String>,
    pub address_city: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub address: Option<String>,
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
