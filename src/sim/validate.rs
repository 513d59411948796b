//! Reading and validating request `Data` the way Trustly does, with Trustly's error codes.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};
use url::Url;

use crate::{
    money::Currency,
    trustly::methods::{Opening, OrderId},
};

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

/// Declares the errors the simulator answers with. Each constant is named as Trustly names the
/// error, without the `ERROR_` prefix, so the name is written once and cannot drift.
macro_rules! rejections {
    ($($(#[$doc:meta])* $name:ident = $code:literal;)*) => {
        $(
            $(#[$doc])*
            pub const $name: Rejection = Rejection::new($code, concat!("ERROR_", stringify!($name)));
        )*

        /// Every error above, for the test that holds them to the wire core's table.
        #[cfg(test)]
        const ALL: &[Rejection] = &[$($name),*];
    };
}

rejections! {
    INVALID_AMOUNT = 615;
    INVALID_CREDENTIALS = 616;
    INVALID_CURRENCY_CODE = 622;
    INVALID_PARAMETERS = 623;
    UNABLE_TO_VERIFY_RSA_SIGNATURE = 636;
    DUPLICATE_MESSAGE_ID = 637;
    INVALID_EMAIL = 642;
    INVALID_LOCALE = 645;
    INVALID_ORDER_ID = 655;
    DUPLICATE_UUID = 688;
    ENDUSERID_IS_NULL = 696;
    MESSAGEID_IS_NULL = 697;
    INVALID_IP = 698;
    MALFORMED_SUCCESSURL = 700;
    MALFORMED_FAILURL = 701;
    MALFORMED_TEMPLATEURL = 702;
    MALFORMED_NOTIFICATIONURL = 705;
    NOT_SECURE_NOTIFICATIONURL = 734;
    INVALID_COUNTRY = 737;

    // Trustly names the errors below but does not document their numbers (spec §6, §10.1). The
    // simulator numbers them 9xx so they can never be mistaken for a documented code; clients
    // should match on the name.
    INVALID_FUNCTION = 901;
    NOT_FOUND = 902;
    INVALID_BANK_ACCOUNT_NUMBER = 903;
    NO_SUITABLE_BANK_ACCOUNT_FOUND = 904;
    /// Payouts, refunds and settlements draw on the merchant balance; Trustly's name for running
    /// out is undocumented, so this one is the simulator's own.
    INSUFFICIENT_FUNDS = 905;
    /// Balance, and GetWithdrawals for one order, called again within 15 minutes. Trustly
    /// documents the limit (spec §5.13, §5.14, §8) but not the error it answers with, so the name
    /// and number are the simulator's own, like the other 9xx codes.
    TOO_MANY_REQUESTS = 906;
}

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
        let text = self.optional(name)?.ok_or(INVALID_CURRENCY_CODE)?;
        Currency::from_str(&text).map_err(|_| INVALID_CURRENCY_CODE)?;
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

    /// What opens every order: NotificationURL (705, 734), EndUserID (696) and MessageID (697),
    /// checked in that order.
    pub fn opening(&self) -> Result<Opening, Rejection> {
        Ok(Opening {
            notification_url: self.notification_url()?,
            end_user_id: self.required_or("EndUserID", ENDUSERID_IS_NULL)?,
            message_id: self.required_or("MessageID", MESSAGEID_IS_NULL)?,
        })
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

/// Fewest letters and digits an account number may have: the simulator's own plausibility floor
/// (Trustly documents none), below any real account number or IBAN.
const MIN_ACCOUNT_NUMBER_CHARS: usize = 4;

/// Whether `text` could be an account number: letters, digits, spaces and hyphens, with at least
/// [`MIN_ACCOUNT_NUMBER_CHARS`] letters and digits (RegisterAccount, and the checkout's entry).
pub fn plausible_account_number(text: &str) -> bool {
    let alphanumeric = text.chars().filter(char::is_ascii_alphanumeric).count();
    alphanumeric >= MIN_ACCOUNT_NUMBER_CHARS
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
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
    fn documented_codes_match_the_wire_cores_table_and_the_rest_are_the_simulators_own() {
        use crate::trustly::codes::ErrorCode;
        // The simulator numbers its own errors from here up (see `rejections!`).
        const FIRST_SIMULATED_CODE: i64 = 900;
        for rejection in ALL {
            let known = ErrorCode::from_code(rejection.code, "");
            if rejection.code < FIRST_SIMULATED_CODE {
                assert_eq!(known.name(), rejection.name, "{}", rejection.code);
            } else {
                assert!(!ErrorCode::KNOWN.contains(&known), "{}", rejection.code);
            }
        }
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
