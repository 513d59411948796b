//! Trustly's notification kinds as typed values (spec §4): `credit`, `debit`, `pending`,
//! `payoutconfirmation`, `cancel`, `account`, `payoutfailed`, `kyc`, and anything else kept as
//! its raw `data`. The one place that knows the field names of a notification's `data`.
//!
//! Values stay as Trustly sent them (amounts and timestamps as text): the readers convert. Knows
//! nothing of gRPC, the store or the sidecar's configuration.

use std::collections::HashMap;

use serde_json::Value;

/// The fields every money notification carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transaction {
    pub end_user_id: String,
    /// The amount as Trustly wrote it (a decimal string).
    pub amount: String,
    pub currency: String,
    /// Trustly's timestamp text (`2015-03-12 15:14:18.61671+00`).
    pub timestamp: String,
    pub attributes: HashMap<String, String>,
}

/// `cancel`: the order was cancelled before money moved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cancel {
    pub end_user_id: String,
    pub timestamp: String,
    pub attributes: HashMap<String, String>,
}

/// `account`: the end user's bank account; known attributes are lifted out of `attributes`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub account_id: String,
    pub verified: bool,
    pub clearing_house: String,
    pub bank: String,
    pub descriptor: String,
    pub last_digits: String,
    pub direct_debit_mandate: bool,
    /// The attributes not lifted out above.
    pub attributes: HashMap<String, String>,
}

/// `payoutfailed`: a payout that was confirmed did not reach the end user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PayoutFailed {
    pub transaction: Transaction,
    pub error_code: String,
    pub error_message: String,
}

/// `kyc`: the end user's identity, awaiting the merchant's decision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kyc {
    pub kyc_entity_id: String,
    pub abort: bool,
    pub abort_message: String,
    pub attributes: HashMap<String, String>,
}

/// A notification's `data` by its method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Credit(Transaction),
    Debit(Transaction),
    Pending(Transaction),
    PayoutConfirmation(Transaction),
    Cancel(Cancel),
    Account(Account),
    PayoutFailed(PayoutFailed),
    Kyc(Kyc),
    /// A method this sidecar does not know: its `data` as JSON text.
    Unknown {
        data_json: String,
    },
}

impl Kind {
    /// The kind of a notification `method` with its `data` (missing fields read as empty).
    pub fn parse(method: &str, data: &Value) -> Self {
        let fields = Fields(data);
        match method {
            "credit" => Kind::Credit(fields.transaction()),
            "debit" => Kind::Debit(fields.transaction()),
            "pending" => Kind::Pending(fields.transaction()),
            "payoutconfirmation" => Kind::PayoutConfirmation(fields.transaction()),
            "cancel" => Kind::Cancel(Cancel {
                end_user_id: fields.text("enduserid"),
                timestamp: fields.text("timestamp"),
                attributes: fields.attributes(),
            }),
            "account" => Kind::Account(fields.account()),
            "payoutfailed" => Kind::PayoutFailed(PayoutFailed {
                transaction: fields.transaction(),
                error_code: fields.text("errorcode"),
                error_message: fields.text("errormessage"),
            }),
            "kyc" => Kind::Kyc(Kyc {
                kyc_entity_id: fields.text("kycentityid"),
                abort: fields.text("abort") == "1",
                abort_message: fields.text("abortmessage"),
                attributes: fields.attributes(),
            }),
            _ => Kind::Unknown {
                data_json: data.to_string(),
            },
        }
    }
}

/// Field access on a notification's `data`.
struct Fields<'a>(&'a Value);

impl Fields<'_> {
    /// A field as text: strings as they are, numbers by their lexeme, null or missing as empty.
    fn text(&self, name: &str) -> String {
        text(self.0.get(name))
    }

    /// `attributes` as text values (a non-string by its JSON text, `null` included).
    fn attributes(&self) -> HashMap<String, String> {
        match self.0.get("attributes") {
            Some(Value::Object(map)) => map
                .iter()
                .map(|(key, value)| {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (key.clone(), text)
                })
                .collect(),
            _ => HashMap::new(),
        }
    }

    fn transaction(&self) -> Transaction {
        Transaction {
            end_user_id: self.text("enduserid"),
            amount: self.text("amount"),
            currency: self.text("currency"),
            timestamp: self.text("timestamp"),
            attributes: self.attributes(),
        }
    }

    fn account(&self) -> Account {
        let mut rest = self.attributes();
        let mut take = |key: &str| rest.remove(key).unwrap_or_default();
        let (clearing_house, bank, descriptor, last_digits, mandate) = (
            take("clearinghouse"),
            take("bank"),
            take("descriptor"),
            take("lastdigits"),
            take("directdebitmandate"),
        );
        Account {
            account_id: self.text("accountid"),
            verified: self.text("verified") == "1",
            clearing_house,
            bank,
            descriptor,
            last_digits,
            direct_debit_mandate: mandate == "1",
            attributes: rest,
        }
    }
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_read_their_fields_and_keep_the_rest_as_attributes() {
        let data = json!({
            "accountid": "9", "verified": "1",
            "attributes": {"bank": "SEB", "lastdigits": "1234", "clearinghouse": "SWEDEN", "descriptor": "d", "extra": 7}
        });
        let Kind::Account(account) = Kind::parse("account", &data) else {
            panic!("an account");
        };
        assert_eq!(
            (
                account.account_id.as_str(),
                account.verified,
                account.bank.as_str()
            ),
            ("9", true, "SEB")
        );
        assert_eq!(
            account.attributes,
            HashMap::from([("extra".into(), "7".into())])
        );
        let credit = Kind::parse(
            "credit",
            &json!({"amount": "1.00", "currency": "EUR", "enduserid": null}),
        );
        assert_eq!(
            credit,
            Kind::Credit(Transaction {
                amount: "1.00".into(),
                currency: "EUR".into(),
                ..Transaction::default()
            })
        );
        assert_eq!(
            Kind::parse("newkind", &json!({"a": 1})),
            Kind::Unknown {
                data_json: r#"{"a":1}"#.into()
            }
        );
    }
}
