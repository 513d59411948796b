//! Field checks of incoming requests: every problem is collected with its field path, so the
//! client sees them all at once (`google.rpc.BadRequest`). Knows the gRPC field names and the
//! bounds; builds nothing to send.

use std::str::FromStr;

use url::Url;

use super::{Error, FieldViolation, requests::Defaults};
use crate::{
    money::{Amount, Currency, MoneyError},
    pb,
    trustly::methods::{self as m, OrderId},
};

/// Longest free-text field accepted. Trustly's longest documented fields (URLs, addresses) are far
/// shorter; the bound keeps a hostile client from making us sign megabytes.
pub const MAX_FIELD_CHARS: usize = 2048;
/// Longest idempotency key (`message_id`, `request_id`).
pub const MAX_KEY_CHARS: usize = 200;
/// Most `extra_attributes` entries accepted on one request.
pub const MAX_EXTRA_ATTRIBUTES: usize = 64;

/// Collects field violations.
#[derive(Default)]
pub struct Check {
    violations: Vec<FieldViolation>,
}

impl Check {
    pub(in crate::grpc) fn violation(&mut self, field: &str, description: impl Into<String>) {
        self.violations.push(FieldViolation {
            field: field.to_owned(),
            description: description.into(),
        });
    }

    pub(in crate::grpc) fn bounded(&mut self, field: &str, value: &str) {
        if value.chars().count() > MAX_FIELD_CHARS {
            self.violation(
                field,
                format!("must be at most {MAX_FIELD_CHARS} characters"),
            );
        }
    }

    /// A non-empty string.
    pub fn required(&mut self, field: &str, value: &str) -> String {
        if value.trim().is_empty() {
            self.violation(field, "is required");
        }
        self.bounded(field, value);
        value.to_owned()
    }

    /// An optional string: empty means absent.
    pub fn optional(&mut self, field: &str, value: &str) -> Option<String> {
        self.bounded(field, value);
        (!value.is_empty()).then(|| value.to_owned())
    }

    /// An idempotency key: required, at most 200 characters.
    pub fn key(&mut self, field: &str, value: &str) -> String {
        let value = self.required(field, value);
        if value.chars().count() > MAX_KEY_CHARS {
            self.violation(field, format!("must be at most {MAX_KEY_CHARS} characters"));
        }
        value
    }

    /// The text to check further, or `None` when it is empty: absent, and a violation when
    /// `required`.
    fn given<'t>(&mut self, field: &str, text: &'t str, required: bool) -> Option<&'t str> {
        if text.is_empty() {
            if required {
                self.violation(field, "is required");
            }
            return None;
        }
        Some(text)
    }

    /// Money text (an amount or a currency code), its parse error the violation.
    fn money_text<T: FromStr<Err = MoneyError>>(&mut self, field: &str, text: &str) -> Option<T> {
        text.parse()
            .map_err(|e: MoneyError| self.violation(field, e.to_string()))
            .ok()
    }

    pub fn amount(&mut self, field: &str, text: &str, required: bool) -> Option<Amount> {
        let text = self.given(field, text, required)?;
        self.money_text(field, text)
    }

    pub fn currency(&mut self, field: &str, text: &str) -> Option<Currency> {
        let text = self.given(field, text, true)?;
        self.money_text(field, text)
    }

    pub fn optional_currency(&mut self, field: &str, text: &str) -> Option<Currency> {
        if text.is_empty() {
            None
        } else {
            self.currency(field, text)
        }
    }

    pub fn money(&mut self, field: &str, money: Option<&pb::Money>) -> Option<(Amount, Currency)> {
        let Some(money) = money else {
            self.violation(field, "is required");
            return None;
        };
        let amount = self.amount(&format!("{field}.amount"), &money.amount, true);
        let currency = self.currency(&format!("{field}.currency_code"), &money.currency_code);
        amount.zip(currency)
    }

    pub fn order_id(&mut self, field: &str, text: &str) -> Option<OrderId> {
        let text = self.given(field, text, true)?;
        OrderId::parse(text).or_else(|| {
            self.violation(field, OrderId::FORMAT);
            None
        })
    }

    /// A `YYYY-MM-DD` date.
    pub fn date(&mut self, field: &str, text: &str, required: bool) -> Option<String> {
        let text = self.given(field, text, required)?;
        if m::is_date(text) {
            Some(text.to_owned())
        } else {
            self.violation(field, "must be a date as YYYY-MM-DD");
            None
        }
    }

    /// ISO 3166-1 alpha-2.
    pub fn country(&mut self, field: &str, text: &str, required: bool) -> Option<String> {
        let text = self.given(field, text, required)?;
        if text.len() == 2 && text.bytes().all(|b| b.is_ascii_uppercase()) {
            Some(text.to_owned())
        } else {
            self.violation(
                field,
                "must be an ISO 3166-1 alpha-2 country code such as \"SE\"",
            );
            None
        }
    }

    /// `ll_CC`, e.g. `sv_SE`.
    pub fn locale(&mut self, field: &str, text: &str) -> String {
        let valid = matches!(text.as_bytes(), [a, b, b'_', c, d]
            if a.is_ascii_lowercase() && b.is_ascii_lowercase() && c.is_ascii_uppercase() && d.is_ascii_uppercase());
        if !valid {
            self.violation(field, "must be a locale as ll_CC, such as \"sv_SE\"");
        }
        text.to_owned()
    }

    /// An http(s) URL.
    pub fn web_url(&mut self, field: &str, text: &str, required: bool) -> Option<String> {
        let text = self.given(field, text, required)?;
        self.bounded(field, text);
        match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                Some(text.to_owned())
            }
            _ => {
                self.violation(field, "must be an http or https URL");
                None
            }
        }
    }

    /// A NotificationURL override: https, or http on loopback (local development); never `?`.
    pub fn notification_url(&mut self, field: &str, text: &str, defaults: &Defaults) -> String {
        if text.is_empty() {
            return defaults.notification_url.to_string();
        }
        self.bounded(field, text);
        let ok = Url::parse(text).is_ok_and(|url| {
            let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || url.host_str() == Some("localhost");
            (url.scheme() == "https" || (url.scheme() == "http" && loopback)) && !text.contains('?')
        });
        if !ok {
            self.violation(
                field,
                "must be an https URL without '?' (plain http only on loopback)",
            );
        }
        text.to_owned()
    }

    pub fn email(&mut self, field: &str, text: &str, required: bool) -> Option<String> {
        let text = self.given(field, text, required)?;
        let valid = text.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }) && !text.contains(char::is_whitespace);
        if !valid {
            self.violation(field, "must be an email address");
        }
        self.optional(field, text)
    }

    pub fn ip(&mut self, field: &str, text: &str) -> Option<String> {
        if !text.is_empty() && text.parse::<std::net::IpAddr>().is_err() {
            self.violation(field, "must be exactly one IP address");
        }
        self.optional(field, text)
    }

    pub fn url_target(&mut self, field: &str, text: &str) -> Option<String> {
        if !matches!(text, "" | "_top" | "_self" | "_parent") {
            self.violation(field, "must be _top, _self or _parent");
        }
        self.optional(field, text)
    }

    /// Ok when no field was invalid.
    pub fn finish(self) -> Result<(), Error> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(self.violations))
        }
    }
}
