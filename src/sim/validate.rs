//! Reading and validating request `Data` the way Trustly does, with Trustly's error codes.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};
use url::Url;

use crate::{money::Currency, trustly::methods::OrderId};

/// A JSON-RPC error the simulator answers with: Trustly's code and name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub code: i64,
    pub name: &'static str,
}

impl Rejection {
    pub const fn new(code: i64, name: &'static str) -> Self {
        Self { code, name }
    }
}

pub const INVALID_AMOUNT: Rejection = Rejection::new(615, "ERROR_INVALID_AMOUNT");
pub const INVALID_CREDENTIALS: Rejection = Rejection::new(616, "ERROR_INVALID_CREDENTIALS");
pub const INVALID_CURRENCY: Rejection = Rejection::new(622, "ERROR_INVALID_CURRENCY_CODE");
pub const INVALID_PARAMETERS: Rejection = Rejection::new(623, "ERROR_INVALID_PARAMETERS");
pub const BAD_SIGNATURE: Rejection = Rejection::new(636, "ERROR_UNABLE_TO_VERIFY_RSA_SIGNATURE");
pub const DUPLICATE_MESSAGE_ID: Rejection = Rejection::new(637, "ERROR_DUPLICATE_MESSAGE_ID");
pub const INVALID_EMAIL: Rejection = Rejection::new(642, "ERROR_INVALID_EMAIL");
pub const INVALID_LOCALE: Rejection = Rejection::new(645, "ERROR_INVALID_LOCALE");
pub const INVALID_ORDER_ID: Rejection = Rejection::new(655, "ERROR_INVALID_ORDER_ID");
pub const DUPLICATE_UUID: Rejection = Rejection::new(688, "ERROR_DUPLICATE_UUID");
pub const ENDUSERID_IS_NULL: Rejection = Rejection::new(696, "ERROR_ENDUSERID_IS_NULL");
pub const MESSAGEID_IS_NULL: Rejection = Rejection::new(697, "ERROR_MESSAGEID_IS_NULL");
pub const INVALID_IP: Rejection = Rejection::new(698, "ERROR_INVALID_IP");
pub const MALFORMED_SUCCESSURL: Rejection = Rejection::new(700, "ERROR_MALFORMED_SUCCESSURL");
pub const MALFORMED_FAILURL: Rejection = Rejection::new(701, "ERROR_MALFORMED_FAILURL");
pub const MALFORMED_TEMPLATEURL: Rejection = Rejection::new(702, "ERROR_MALFORMED_TEMPLATEURL");
pub const MALFORMED_NOTIFICATIONURL: Rejection =
    Rejection::new(705, "ERROR_MALFORMED_NOTIFICATIONURL");
pub const NOT_SECURE_NOTIFICATIONURL: Rejection =
    Rejection::new(734, "ERROR_NOT_SECURE_NOTIFICATIONURL");
pub const INVALID_COUNTRY: Rejection = Rejection::new(737, "ERROR_INVALID_COUNTRY");

// Trustly names these errors but does not document their numbers (spec §6, §10.1). The simulator
// numbers them 9xx so they can never be mistaken for a documented code; clients should match on
// the name.
pub const INVALID_FUNCTION: Rejection = Rejection::new(901, "ERROR_INVALID_FUNCTION");
pub const NOT_FOUND: Rejection = Rejection::new(902, "ERROR_NOT_FOUND");
pub const INVALID_BANK_ACCOUNT_NUMBER: Rejection =
    Rejection::new(903, "ERROR_INVALID_BANK_ACCOUNT_NUMBER");
pub const NO_SUITABLE_BANK_ACCOUNT_FOUND: Rejection =
    Rejection::new(904, "ERROR_NO_SUITABLE_BANK_ACCOUNT_FOUND");
/// Balance, and GetWithdrawals for one order, called again within 15 minutes. Trustly documents
/// the limit (spec §5.13, §5.14, §8) but not the error it answers with, so the name and number are
/// the simulator's own, like the other 9xx codes.
pub const TOO_MANY_REQUESTS: Rejection = Rejection::new(906, "ERROR_TOO_MANY_REQUESTS");
/// Payouts, refunds and settlements draw on the merchant balance; Trustly's name for running out
/// is undocumented, so this one is the simulator's own.
pub const INSUFFICIENT_FUNDS: Rejection = Rejection::new(905, "ERROR_INSUFFICIENT_FUNDS");

/// Typed, validated access to a request's `Data` (or its `Attributes`).
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    /// NotificationURL may be plain http only on loopback, so local merchants can develop.
    pub allow_loopback_http: bool,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self {
            map,
            allow_loopback_http: true,
        }
    }

    /// The `Attributes` object: `{}` when absent or null.
    pub fn attributes(&self, required: bool) -> Result<Fields<'a>, Rejection> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        match self.map.get("Attributes") {
            Some(Value::Object(map)) => Ok(Fields { map, ..*self }),
            None | Some(Value::Null) if !required => Ok(Fields {
                map: EMPTY.get_or_init(Map::new),
                ..*self
            }),
            _ => Err(INVALID_PARAMETERS),
        }
    }

    /// A string field; numbers are accepted as their lexeme (Trustly is lenient here).
    pub fn optional(&self, name: &str) -> Result<Option<String>, Rejection> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(INVALID_PARAMETERS),
        }
    }

    pub fn required(&self, name: &str) -> Result<String, Rejection> {
        self.required_or(name, INVALID_PARAMETERS)
    }

    /// A required field whose absence has its own code (696 for EndUserID, 697 for MessageID).
    pub fn required_or(&self, name: &str, missing: Rejection) -> Result<String, Rejection> {
        self.optional(name)?.ok_or(missing)
    }

    /// A present-but-possibly-empty string (BankNumber is "" for IBAN accounts).
    pub fn present(&self, name: &str) -> Result<String, Rejection> {
        match self.map.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(INVALID_PARAMETERS),
        }
    }

    /// An amount: a string (or number lexeme) with exactly two decimals and > 0 (spec §5: 615).
    pub fn amount(&self, name: &str) -> Result<Decimal, Rejection> {
        self.optional_amount(name)?.ok_or(INVALID_AMOUNT)
    }

    pub fn optional_amount(&self, name: &str) -> Result<Option<Decimal>, Rejection> {
        let Some(text) = self.optional(name).map_err(|_| INVALID_AMOUNT)? else {
            return Ok(None);
        };
        let (int, frac) = text.split_once('.').ok_or(INVALID_AMOUNT)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || frac.len() != 2 || !digits(frac) {
            return Err(INVALID_AMOUNT);
        }
        let amount = Decimal::from_str_exact(&text).map_err(|_| INVALID_AMOUNT)?;
        if amount <= Decimal::ZERO {
            return Err(INVALID_AMOUNT);
        }
        Ok(Some(amount))
    }

    pub fn currency(&self, name: &str) -> Result<String, Rejection> {
        let text = self.optional(name)?.ok_or(INVALID_CURRENCY)?;
        Currency::from_str(&text).map_err(|_| INVALID_CURRENCY)?;
        Ok(text)
    }

    pub fn optional_currency(&self, name: &str) -> Result<Option<String>, Rejection> {
        match self.optional(name)? {
            None => Ok(None),
            Some(_) => self.currency(name).map(Some),
        }
    }

    /// NotificationURL: a valid https URL without `?` (705), https required (734) except on
    /// loopback when allowed.
    pub fn notification_url(&self) -> Result<String, Rejection> {
        let text = self.required_or("NotificationURL", MALFORMED_NOTIFICATIONURL)?;
        let url = Url::parse(&text).map_err(|_| MALFORMED_NOTIFICATIONURL)?;
        if text.contains('?') || url.host_str().is_none() {
            return Err(MALFORMED_NOTIFICATIONURL);
        }
        match url.scheme() {
            "https" => Ok(text),
            "http" if self.allow_loopback_http && is_loopback(&url) => Ok(text),
            "http" => Err(NOT_SECURE_NOTIFICATIONURL),
            _ => Err(MALFORMED_NOTIFICATIONURL),
        }
    }

    /// SuccessURL / FailURL / TemplateURL: http(s) URLs.
    pub fn web_url(
        &self,
        name: &str,
        required: bool,
        malformed: Rejection,
    ) -> Result<(), Rejection> {
        match self.optional(name)? {
            None if required => Err(malformed),
            None => Ok(()),
            Some(text) => match Url::parse(&text) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                    Ok(())
                }
                _ => Err(malformed),
            },
        }
    }

    /// The checkout attributes every end-user flow shares (Deposit, Withdraw, SelectAccount).
    pub fn checkout(&self) -> Result<(), Rejection> {
        self.required("Firstname")?;
        self.required("Lastname")?;
        let country = self.required_or("Country", INVALID_COUNTRY)?;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(INVALID_COUNTRY);
        }
        let locale = self.required_or("Locale", INVALID_LOCALE)?;
        let ok_locale = matches!(locale.as_bytes(), [a, b, b'_', c, d]
            if a.is_ascii_lowercase() && b.is_ascii_lowercase() && c.is_ascii_uppercase() && d.is_ascii_uppercase());
        if !ok_locale {
            return Err(INVALID_LOCALE);
        }
        self.web_url("SuccessURL", true, MALFORMED_SUCCESSURL)?;
        self.web_url("FailURL", true, MALFORMED_FAILURL)?;
        self.web_url("TemplateURL", false, MALFORMED_TEMPLATEURL)?;
        if let Some(ip) = self.optional("IP")?
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(INVALID_IP);
        }
        self.email(false)?;
        Ok(())
    }

    /// `Email`: a plausible address when present (642), and present when `required` (642).
    pub fn email(&self, required: bool) -> Result<Option<String>, Rejection> {
        match self.optional("Email")? {
            Some(email) if is_email(&email) => Ok(Some(email)),
            Some(_) => Err(INVALID_EMAIL),
            None if required => Err(INVALID_EMAIL),
            None => Ok(None),
        }
    }

    /// An order id as the sidecar's [`OrderId`] defines it (digits, no leading zero, at most
    /// `i64::MAX`), given as a string or a JSON number (655 otherwise). Trustly accepts both JSON
    /// types as far as anyone knows (spec §3.5 [U]); the simulator does too.
    pub fn order_id(&self) -> Result<String, Rejection> {
        let id = self.required_or("OrderID", INVALID_ORDER_ID)?;
        OrderId::parse(&id)
            .map(|id| id.as_str().to_owned())
            .ok_or(INVALID_ORDER_ID)
    }

    /// A `YYYY-MM-DD` date (623 otherwise).
    pub fn date(&self, name: &str) -> Result<String, Rejection> {
        let text = self.required(name)?;
        if crate::trustly::methods::is_date(&text) {
            Ok(text)
        } else {
            Err(INVALID_PARAMETERS)
        }
    }

    /// `"1"`/`1` is true; absent, `"0"` or `0` is false.
    pub fn flag(&self, name: &str) -> Result<bool, Rejection> {
        match self.optional(name)?.as_deref() {
            None | Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(_) => Err(INVALID_PARAMETERS),
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn is_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !text.contains(' ')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(
        value: Value,
        check: impl Fn(&Fields<'_>) -> Result<(), Rejection>,
    ) -> Result<(), Rejection> {
        let Value::Object(map) = value else {
            panic!("object")
        };
        check(&Fields::new(&map))
    }

    #[test]
    fn amounts_need_exactly_two_decimals_and_a_positive_value() {
        for (amount, ok) in [
            (json!("10.00"), true),
            (json!("10"), false),
            (json!("10.5"), false),
            (json!("0.00"), false),
            (json!("-1.00"), false),
            (json!("1e2"), false),
        ] {
            let result = with(json!({"Amount": amount}), |f| {
                f.amount("Amount").map(|_| ())
            });
            assert_eq!(result.is_ok(), ok, "{amount}");
            if !ok {
                assert_eq!(result, Err(INVALID_AMOUNT));
            }
        }
    }

    #[test]
    fn notification_urls_follow_trustlys_rules_relaxed_for_loopback() {
        for (url, expected) in [
            ("https://merchant.example/n", Ok(())),
            ("http://127.0.0.1:8080/n", Ok(())),
            ("http://localhost/n", Ok(())),
            ("http://merchant.example/n", Err(NOT_SECURE_NOTIFICATIONURL)),
            (
                "https://merchant.example/n?x=1",
                Err(MALFORMED_NOTIFICATIONURL),
            ),
            ("not a url", Err(MALFORMED_NOTIFICATIONURL)),
        ] {
            assert_eq!(
                with(json!({"NotificationURL": url}), |f| f
                    .notification_url()
                    .map(|_| ())),
                expected,
                "{url}"
            );
        }
    }
}
