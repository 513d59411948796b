//! Request validation and conversion between `pb` messages and the wire core.
//!
//! Each request is checked field by field; every problem is collected with its field path so the
//! client sees them all at once (`google.rpc.BadRequest`). A valid request becomes a wire-core
//! method, then its `Data` tree, into which `extra_attributes` are merged without ever replacing a
//! typed field or the credentials.

use std::collections::HashMap;

use prost_types::Timestamp;
use serde_json::{Map, Value};
use url::Url;

use super::{Error, FieldViolation};
use crate::{
    money::{Amount, Currency},
    pb,
    trustly::methods::{self as m, Method, OrderId},
};

/// Longest free-text field accepted. Trustly's longest documented fields (URLs, addresses) are far
/// shorter; the bound keeps a hostile client from making us sign megabytes.
pub const MAX_FIELD_CHARS: usize = 2048;
/// Longest idempotency key (`message_id`, `request_id`).
pub const MAX_KEY_CHARS: usize = 200;
/// Most `extra_attributes` entries accepted on one request.
pub const MAX_EXTRA_ATTRIBUTES: usize = 64;

/// Settings the conversion needs from the sidecar's configuration.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// The NotificationURL used when a request leaves it empty.
    pub notification_url: Url,
}

pub use crate::payments::Prepared;

// === field checks ===

/// Collects field violations.
#[derive(Default)]
pub struct Check {
    violations: Vec<FieldViolation>,
}

impl Check {
    fn violation(&mut self, field: &str, description: impl Into<String>) {
        self.violations.push(FieldViolation {
            field: field.to_owned(),
            description: description.into(),
        });
    }

    fn bounded(&mut self, field: &str, value: &str) {
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

    pub fn amount(&mut self, field: &str, text: &str, required: bool) -> Option<Amount> {
        if text.is_empty() {
            if required {
                self.violation(field, "is required");
            }
            return None;
        }
        text.parse()
            .map_err(|e: crate::money::MoneyError| self.violation(field, e.to_string()))
            .ok()
    }

    pub fn currency(&mut self, field: &str, text: &str) -> Option<Currency> {
        if text.is_empty() {
            self.violation(field, "is required");
            return None;
        }
        text.parse()
            .map_err(|e: crate::money::MoneyError| self.violation(field, e.to_string()))
            .ok()
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
        if text.is_empty() {
            self.violation(field, "is required");
            return None;
        }
        OrderId::parse(text).or_else(|| {
            self.violation(field, OrderId::FORMAT);
            None
        })
    }

    /// A `YYYY-MM-DD` date.
    pub fn date(&mut self, field: &str, text: &str, required: bool) -> Option<String> {
        if text.is_empty() {
            if required {
                self.violation(field, "is required");
            }
            return None;
        }
        if m::is_date(text) {
            Some(text.to_owned())
        } else {
            self.violation(field, "must be a date as YYYY-MM-DD");
            None
        }
    }

    /// ISO 3166-1 alpha-2.
    pub fn country(&mut self, field: &str, text: &str, required: bool) -> Option<String> {
        if text.is_empty() {
            if required {
                self.violation(field, "is required");
            }
            return None;
        }
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
        if text.is_empty() {
            if required {
                self.violation(field, "is required");
            }
            return None;
        }
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
        if text.is_empty() {
            if required {
                self.violation(field, "is required");
            }
            return None;
        }
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

/// `true` is sent as the flag; `false` is simply not sent.
fn flag(value: bool) -> Option<bool> {
    value.then_some(true)
}

fn psp(check: &mut Check, psp: Option<&pb::PspMerchant>) -> m::PspAttributes {
    let Some(psp) = psp else {
        return m::PspAttributes::default();
    };
    m::PspAttributes {
        psp_merchant: check.optional("psp_merchant.name", &psp.name),
        psp_merchant_url: check.web_url("psp_merchant.url", &psp.url, false),
        merchant_category_code: check.optional(
            "psp_merchant.merchant_category_code",
            &psp.merchant_category_code,
        ),
    }
}

/// A string sent as given (it may be empty: Trustly accepts an empty Lastname or BankNumber), but
/// never longer than any field may be.
fn bounded(check: &mut Check, field: &str, value: &str) -> String {
    check.bounded(field, value);
    value.to_owned()
}

fn party(
    check: &mut Check,
    field: &str,
    party: Option<&pb::PartyInformation>,
) -> Option<m::PartyInformation> {
    let party = party?;
    let party_type = match pb::PartyType::try_from(party.party_type) {
        Ok(pb::PartyType::Person) => "PERSON",
        Ok(pb::PartyType::Organisation) => "ORGANISATION",
        _ => {
            check.violation(
                &format!("{field}.party_type"),
                "must be PARTY_TYPE_PERSON or PARTY_TYPE_ORGANISATION",
            );
            ""
        }
    };
    Some(m::PartyInformation {
        party_type: party_type.to_owned(),
        firstname: check.required(&format!("{field}.first_name"), &party.first_name),
        lastname: bounded(check, &format!("{field}.last_name"), &party.last_name),
        country_code: check
            .country(&format!("{field}.country_code"), &party.country_code, true)
            .unwrap_or_default(),
        customer_id: check.optional(&format!("{field}.customer_id"), &party.customer_id),
        address: check.optional(&format!("{field}.address"), &party.address),
        date_of_birth: check.date(
            &format!("{field}.date_of_birth"),
            &party.date_of_birth,
            false,
        ),
        extra: m::Extra::new(),
    })
}

fn checkout(
    check: &mut Check,
    user: Option<&pb::CheckoutUser>,
    psp_merchant: Option<&pb::PspMerchant>,
    email_required: bool,
) -> m::CheckoutAttributes {
    let Some(u) = user else {
        check.violation("user", "is required");
        return m::CheckoutAttributes::default();
    };
    m::CheckoutAttributes {
        firstname: check.required("user.first_name", &u.first_name),
        lastname: check.required("user.last_name", &u.last_name),
        country: check
            .country("user.country", &u.country, true)
            .unwrap_or_default(),
        locale: check.locale("user.locale", &u.locale),
        success_url: check
            .web_url("user.success_url", &u.success_url, true)
            .unwrap_or_default(),
        fail_url: check
            .web_url("user.fail_url", &u.fail_url, true)
            .unwrap_or_default(),
        email: check.email("user.email", &u.email, email_required),
        mobile_phone: check.optional("user.mobile_phone", &u.mobile_phone),
        ip: check.ip("user.ip", &u.ip),
        template_url: check.web_url("user.template_url", &u.template_url, false),
        url_target: check.url_target("user.url_target", &u.url_target),
        national_identification_number: check.optional(
            "user.national_identification_number",
            &u.national_identification_number,
        ),
        unchangeable_national_identification_number: flag(
            u.unchangeable_national_identification_number,
        ),
        url_scheme: check.optional("user.url_scheme", &u.url_scheme),
        return_to_app_url: check.optional("user.return_to_app_url", &u.return_to_app_url),
        psp: psp(check, psp_merchant),
    }
}

fn bank_account(check: &mut Check, account: Option<&pb::BankAccount>) -> m::BankAccount {
    let Some(a) = account else {
        check.violation("account", "is required");
        return m::BankAccount::default();
    };
    m::BankAccount {
        clearing_house: check.required("account.clearing_house", &a.clearing_house),
        bank_number: bounded(check, "account.bank_number", &a.bank_number),
        account_number: check.required("account.account_number", &a.account_number),
        firstname: check.required("account.first_name", &a.first_name),
        lastname: bounded(check, "account.last_name", &a.last_name),
    }
}

fn holder(check: &mut Check, holder: Option<&pb::AccountHolder>) -> m::RegisterAccountAttributes {
    let Some(h) = holder else {
        return m::RegisterAccountAttributes::default();
    };
    m::RegisterAccountAttributes {
        date_of_birth: check.date("holder.date_of_birth", &h.date_of_birth, false),
        mobile_phone: check.optional("holder.mobile_phone", &h.mobile_phone),
        national_identification_number: check.optional(
            "holder.national_identification_number",
            &h.national_identification_number,
        ),
        address_country: check.country("holder.address_country", &h.address_country, false),
        address_postal_code: check.optional("holder.address_postal_code", &h.address_postal_code),
        address_city: check.optional("holder.address_city", &h.address_city),
        address_line1: check.optional("holder.address_line1", &h.address_line1),
        address_line2: check.optional("holder.address_line2", &h.address_line2),
        address: check.optional("holder.address", &h.address),
        email: check.email("holder.email", &h.email, false),
        extra: m::Extra::new(),
    }
}

/// Where `extra_attributes` go: into `Attributes`, or into `Data` for methods without one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ExtraTarget {
    Attributes,
    Data,
}

/// Finishes a request: builds the `Data` tree, merges the extras, and reports every invalid field
/// (typed fields and colliding extras together) or returns the tree.
fn prepare<M: Method>(
    mut check: Check,
    method: Option<M>,
    extra: HashMap<String, String>,
    target: ExtraTarget,
    idempotency_key: Option<String>,
) -> Result<Prepared, Error> {
    if extra.len() > MAX_EXTRA_ATTRIBUTES {
        check.violation(
            "extra_attributes",
            format!("at most {MAX_EXTRA_ATTRIBUTES} entries"),
        );
    }
    for (key, value) in &extra {
        if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
            check.violation(
                "extra_attributes",
                format!("keys must be 1 to {MAX_KEY_CHARS} characters"),
            );
        } else {
            check.bounded(&format!("extra_attributes[{key}]"), value);
        }
    }
    // Without a method (some field was invalid) there is no tree; those violations are reported.
    let Some(Ok(mut data)) = method.as_ref().map(Method::typed_tree) else {
        check.finish()?;
        // invariant: converters return a method whenever no field was invalid, and typed
        // methods always serialize; report rather than panic if that ever breaks.
        return Err(Error::InvalidArgument(vec![FieldViolation {
            field: "request".into(),
            description: "could not be encoded".into(),
        }]));
    };
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
        // A pass-through attribute may add, never replace: not a typed field (set or not, as
        // the typed tree still holds unset fields as null), not a credential.
        if object.contains_key(&key)
            || matches!(key.as_str(), "Username" | "Password" | "Attributes")
        {
            check.violation(
                &format!("extra_attributes[{key}]"),
                "collides with a typed field; use the typed field",
            );
        } else {
            object.insert(key, Value::String(value));
        }
    }
    check.finish()?;
    // Typed fields left unset are omitted from what is signed and sent.
    m::drop_nulls(&mut data);
    Ok(Prepared {
        method: M::NAME,
        data,
        idempotency_key,
    })
}

// === requests ===

/// Stands in for an invalid `currency_code` so the rest of the request is still checked; the
/// request is refused before anything is built from it, so it is never sent.
const PLACEHOLDER_CURRENCY: Currency = Currency::EUR;

pub fn deposit(r: pb::DepositRequest, d: &Defaults) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let message_id = c.key("message_id", &r.message_id);
    let method = m::Deposit {
        notification_url: c.notification_url("notification_url", &r.notification_url, d),
        end_user_id: c.required("end_user_id", &r.end_user_id),
        message_id: message_id.clone(),
        attributes: m::DepositAttributes {
            // Any valid currency stands in while the other fields are checked; an invalid one
            // is reported with them, and nothing built from the stand-in is ever sent.
            currency: c
                .currency("currency_code", &r.currency_code)
                .unwrap_or(PLACEHOLDER_CURRENCY),
            checkout: checkout(&mut c, r.user.as_ref(), r.psp_merchant.as_ref(), true),
            shopper_statement: Some(c.required("shopper_statement", &r.shopper_statement)),
            amount: c.amount("amount", &r.amount, false),
            suggested_min_amount: c.amount("suggested_min_amount", &r.suggested_min_amount, false),
            suggested_max_amount: c.amount("suggested_max_amount", &r.suggested_max_amount, false),
            method: c.optional("method", &r.method),
            shipping_address_country: c.country(
                "shipping_address_country",
                &r.shipping_address_country,
                false,
            ),
            shipping_address_postal_code: c.optional(
                "shipping_address_postal_code",
                &r.shipping_address_postal_code,
            ),
            shipping_address_city: c.optional("shipping_address_city", &r.shipping_address_city),
            shipping_address_line1: c.optional("shipping_address_line1", &r.shipping_address_line1),
            shipping_address_line2: c.optional("shipping_address_line2", &r.shipping_address_line2),
            shipping_address: c.optional("shipping_address", &r.shipping_address),
            request_direct_debit_mandate: flag(r.request_direct_debit_mandate),
            charge_account_id: c.optional("charge_account_id", &r.charge_account_id),
            quick_deposit: flag(r.quick_deposit),
            external_reference: c.optional("external_reference", &r.external_reference),
            account_id: c.optional("account_id", &r.account_id),
            recipient_information: party(
                &mut c,
                "recipient_information",
                r.recipient_information.as_ref(),
            ),
            request_kyc: flag(r.request_kyc),
            hold_notifications: flag(r.hold_notifications),
            extra: m::Extra::new(),
        },
    };
    prepare(
        c,
        Some(method),
        r.extra_attributes,
        ExtraTarget::Attributes,
        Some(message_id),
    )
}

pub fn withdraw(r: pb::WithdrawRequest, d: &Defaults) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let message_id = c.key("message_id", &r.message_id);
    let currency = c
        .currency("currency_code", &r.currency_code)
        .unwrap_or(PLACEHOLDER_CURRENCY);
    let method = m::Withdraw {
        notification_url: c.notification_url("notification_url", &r.notification_url, d),
        end_user_id: c.required("end_user_id", &r.end_user_id),
        message_id: message_id.clone(),
        currency,
        attributes: m::WithdrawAttributes {
            checkout: checkout(&mut c, r.user.as_ref(), r.psp_merchant.as_ref(), false),
            shopper_statement: Some(c.required("shopper_statement", &r.shopper_statement)),
            suggested_min_amount: c.amount("suggested_min_amount", &r.suggested_min_amount, false),
            suggested_max_amount: c.amount("suggested_max_amount", &r.suggested_max_amount, false),
            suggested_amount: c.amount("suggested_amount", &r.suggested_amount, false),
            date_of_birth: c.date("date_of_birth", &r.date_of_birth, false),
            address_country: c.country("address_country", &r.address_country, false),
            address_postal_code: c.optional("address_postal_code", &r.address_postal_code),
            address_city: c.optional("address_city", &r.address_city),
            address_line1: c.optional("address_line1", &r.address_line1),
            address_line2: c.optional("address_line2", &r.address_line2),
            address: c.optional("address", &r.address),
            external_reference: c.optional("external_reference", &r.external_reference),
            sender_information: party(&mut c, "sender_information", r.sender_information.as_ref()),
            extra: m::Extra::new(),
        },
    };
    prepare(
        c,
        Some(method),
        r.extra_attributes,
        ExtraTarget::Attributes,
        Some(message_id),
    )
}

pub fn select_account(r: pb::SelectAccountRequest, d: &Defaults) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let message_id = c.key("message_id", &r.message_id);
    let method = m::SelectAccount {
        notification_url: c.notification_url("notification_url", &r.notification_url, d),
        end_user_id: c.required("end_user_id", &r.end_user_id),
        message_id: message_id.clone(),
        attributes: m::SelectAccountAttributes {
            // A mandate needs the end user's email (spec §5.7).
            checkout: checkout(
                &mut c,
                r.user.as_ref(),
                r.psp_merchant.as_ref(),
                r.request_direct_debit_mandate,
            ),
            shopper_statement: c.optional("shopper_statement", &r.shopper_statement),
            request_direct_debit_mandate: flag(r.request_direct_debit_mandate),
            date_of_birth: c.date("date_of_birth", &r.date_of_birth, false),
            hold_notifications: flag(r.hold_notifications),
            extra: m::Extra::new(),
        },
    };
    prepare(
        c,
        Some(method),
        r.extra_attributes,
        ExtraTarget::Attributes,
        Some(message_id),
    )
}

pub fn refund(r: pb::RefundRequest) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let key = c.key("request_id", &r.request_id);
    let order_id = c.order_id("order_id", &r.order_id);
    let money = c.money("amount", r.amount.as_ref());
    let external_reference = c.optional("external_reference", &r.external_reference);
    let method = order_id
        .zip(money)
        .map(|(order_id, (amount, currency))| m::Refund {
            order_id,
            amount,
            currency,
            attributes: m::RefundAttributes {
                external_reference,
                extra: m::Extra::new(),
            },
        });
    prepare(
        c,
        method,
        r.extra_attributes,
        ExtraTarget::Attributes,
        Some(key),
    )
}

/// ApproveWithdrawal, DenyWithdrawal and CancelCharge: an idempotency key and an OrderID.
fn order_action<M: Method>(
    request_id: &str,
    order_id: &str,
    extra: HashMap<String, String>,
    build: impl FnOnce(OrderId) -> M,
) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let key = c.key("request_id", request_id);
    let method = c.order_id("order_id", order_id).map(build);
    prepare(c, method, extra, ExtraTarget::Data, Some(key))
}

pub fn approve_withdrawal(r: pb::ApproveWithdrawalRequest) -> Result<Prepared, Error> {
    order_action(&r.request_id, &r.order_id, r.extra_attributes, |order_id| {
        m::ApproveWithdrawal {
            order_id,
            extra: m::Extra::new(),
        }
    })
}

pub fn deny_withdrawal(r: pb::DenyWithdrawalRequest) -> Result<Prepared, Error> {
    order_action(&r.request_id, &r.order_id, r.extra_attributes, |order_id| {
        m::DenyWithdrawal {
            order_id,
            extra: m::Extra::new(),
        }
    })
}

pub fn register_account(r: pb::RegisterAccountRequest) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let method = m::RegisterAccount {
        end_user_id: c.required("end_user_id", &r.end_user_id),
        account: bank_account(&mut c, r.account.as_ref()),
        attributes: holder(&mut c, r.holder.as_ref()),
    };
    // Naturally idempotent: the same details always give the same AccountID (spec §5.8).
    prepare(
        c,
        Some(method),
        r.extra_attributes,
        ExtraTarget::Attributes,
        None,
    )
}

pub fn account_payout(r: pb::AccountPayoutRequest, d: &Defaults) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let message_id = c.key("message_id", &r.message_id);
    let notification_url = c.notification_url("notification_url", &r.notification_url, d);
    let account_id = c.required("account_id", &r.account_id);
    let end_user_id = c.required("end_user_id", &r.end_user_id);
    let money = c.money("amount", r.amount.as_ref());
    let attributes = m::PayoutAttributes {
        shopper_statement: c.required("shopper_statement", &r.shopper_statement),
        external_reference: c.optional("external_reference", &r.external_reference),
        psp: psp(&mut c, r.psp_merchant.as_ref()),
        sender_information: party(&mut c, "sender_information", r.sender_information.as_ref()),
        extra: m::Extra::new(),
    };
    let method = money.map(|(amount, currency)| m::AccountPayout {
        notification_url,
        account_id,
        end_user_id,
        message_id: message_id.clone(),
        amount,
        currency,
        attributes,
    });
    prepare(
        c,
        method,
        r.extra_attributes,
        ExtraTarget::Attributes,
        Some(message_id),
    )
}

pub fn register_account_payout(
    r: pb::RegisterAccountPayoutRequest,
    d: &Defaults,
) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let message_id = c.key("message_id", &r.message_id);
    let notification_url = c.notification_url("notification_url", &r.notification_url, d);
    let end_user_id = c.required("end_user_id", &r.end_user_id);
    let account = bank_account(&mut c, r.account.as_ref());
    let money = c.money("amount", r.amount.as_ref());
    let attributes = m::RegisterAccountPayoutAttributes {
        payout: m::PayoutAttributes {
            shopper_statement: c.required("shopper_statement", &r.shopper_statement),
            external_reference: c.optional("external_reference", &r.external_reference),
            psp: psp(&mut c, r.psp_merchant.as_ref()),
            sender_information: party(&mut c, "sender_information", r.sender_information.as_ref()),
            extra: m::Extra::new(),
        },
        account: holder(&mut c, r.holder.as_ref()),
    };
    let method = money.map(|(amount, currency)| m::RegisterAccountPayout {
        end_user_id,
        account,
        notification_url,
        message_id: message_id.clone(),
        amount,
        currency,
        attributes,
    });
    prepare(
        c,
        method,
        r.extra_attributes,
        ExtraTarget::Attributes,
        Some(message_id),
    )
}

pub fn get_withdrawals(r: pb::GetWithdrawalsRequest) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let method = c
        .order_id("order_id", &r.order_id)
        .map(|order_id| m::GetWithdrawals {
            order_id,
            extra: m::Extra::new(),
        });
    prepare(c, method, HashMap::new(), ExtraTarget::Data, None)
}

pub fn balance(_: pb::BalanceRequest) -> Result<Prepared, Error> {
    prepare(
        Check::default(),
        Some(m::Balance::default()),
        HashMap::new(),
        ExtraTarget::Data,
        None,
    )
}

pub fn account_ledger(r: pb::AccountLedgerRequest) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let from = c.date("from_date", &r.from_date, true);
    let to = c.date("to_date", &r.to_date, true);
    if let (Some(from), Some(to)) = (&from, &to)
        && from > to
    {
        c.violation("to_date", "must not be before from_date");
    }
    let currency = c.optional_currency("currency_code", &r.currency_code);
    let method = from.zip(to).map(|(from_date, to_date)| m::AccountLedger {
        from_date,
        to_date,
        currency,
        extra: m::Extra::new(),
    });
    prepare(c, method, HashMap::new(), ExtraTarget::Data, None)
}

pub fn settlement_report(r: pb::SettlementReportRequest) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let date = c.date("settlement_date", &r.settlement_date, true);
    let currency = c.optional_currency("currency_code", &r.currency_code);
    let method = date.map(|settlement_date| m::ViewAutomaticSettlementDetailsCsv {
        settlement_date,
        currency,
        attributes: m::SettlementReportAttributes::default(),
    });
    prepare(c, method, HashMap::new(), ExtraTarget::Attributes, None)
}

pub fn charge(r: pb::ChargeRequest, d: &Defaults) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let message_id = c.key("message_id", &r.message_id);
    let notification_url = c.notification_url("notification_url", &r.notification_url, d);
    let account_id = c.required("account_id", &r.account_id);
    let end_user_id = c.required("end_user_id", &r.end_user_id);
    let money = c.money("amount", r.amount.as_ref());
    let attributes = m::ChargeAttributes {
        shopper_statement: c.required("shopper_statement", &r.shopper_statement),
        email: c.email("email", &r.email, true).unwrap_or_default(),
        payment_date: c.date("payment_date", &r.payment_date, false),
        external_reference: c.optional("external_reference", &r.external_reference),
        psp: psp(&mut c, r.psp_merchant.as_ref()),
        extra: m::Extra::new(),
    };
    let method = money.map(|(amount, currency)| m::Charge {
        account_id,
        notification_url,
        end_user_id,
        message_id: message_id.clone(),
        amount,
        currency,
        attributes,
    });
    prepare(
        c,
        method,
        r.extra_attributes,
        ExtraTarget::Attributes,
        Some(message_id),
    )
}

pub fn cancel_charge(r: pb::CancelChargeRequest) -> Result<Prepared, Error> {
    order_action(&r.request_id, &r.order_id, r.extra_attributes, |order_id| {
        m::CancelCharge {
            order_id,
            extra: m::Extra::new(),
        }
    })
}

pub fn merchant_settlement(r: pb::MerchantSettlementRequest) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let message_id = c.key("message_id", &r.message_id);
    let method = c
        .money("amount", r.amount.as_ref())
        .map(|(amount, currency)| m::MerchantSettlement {
            message_id: message_id.clone(),
            amount,
            currency,
            extra: m::Extra::new(),
        });
    prepare(
        c,
        method,
        r.extra_attributes,
        ExtraTarget::Data,
        Some(message_id),
    )
}

// === responses ===

/// Verified answer fields this API does not type: strings as they are, others as JSON text.
pub fn extra_fields(extra: m::Extra) -> HashMap<String, String> {
    extra
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (key, text)
        })
        .collect()
}

/// Parses Trustly's timestamps (`2015-03-12 15:14:18.61671+00`, also `T` and `+HH:MM` forms).
pub fn timestamp(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let (date, rest) = text.split_at_checked(10)?;
    let rest = rest.strip_prefix([' ', 'T'])?;
    let mut parts = date.split('-').map(str::parse::<i64>);
    let (year, month, day) = (
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    );
    let (clock, offset_secs) = match rest.find(['+', '-', 'Z']) {
        Some(i) => {
            let (clock, zone) = rest.split_at(i);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let zone = zone.trim_start_matches(['+', '-', 'Z']).replace(':', "");
            let (hours, minutes) = match zone.len() {
                0 => (0, 0),
                2 => (zone.parse::<i64>().ok()?, 0),
                4 => (
                    zone[..2].parse::<i64>().ok()?,
                    zone[2..].parse::<i64>().ok()?,
                ),
                _ => return None,
            };
            (clock, sign * (hours * 3600 + minutes * 60))
        }
        None => (rest, 0),
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.split(':').map(str::parse::<i64>);
    let (h, mi, s) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().take(9).collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{digits:0<9}").parse::<i32>().ok()?
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    Some(Timestamp { seconds, nanos })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn order_with_url(answer: m::OrderWithUrl) -> (String, String, HashMap<String, String>) {
    (answer.order_id, answer.url, extra_fields(answer.extra))
}

pub fn withdrawals(withdrawals: Vec<m::Withdrawal>) -> pb::GetWithdrawalsResponse {
    let withdrawals = withdrawals
        .into_iter()
        .map(|w| pb::Withdrawal {
            reference: w.reference.unwrap_or_default(),
            order_id: w.order_id,
            transfer_state: w.transfer_state,
            amount: w.amount.to_string(),
            currency_code: w.currency,
            account_id: w.account_id.unwrap_or_default(),
            create_time: w.datestamp.as_deref().and_then(timestamp),
            update_time: w.modification_date.as_deref().and_then(timestamp),
            eta: w.eta.unwrap_or_default(),
            extra_fields: extra_fields(w.extra),
        })
        .collect();
    pb::GetWithdrawalsResponse { withdrawals }
}

pub fn balances(balances: Vec<m::CurrencyBalance>) -> pb::BalanceResponse {
    let balances = balances
        .into_iter()
        .map(|b| pb::CurrencyBalance {
            currency_code: b.currency,
            balance: b.balance.to_string(),
        })
        .collect();
    pb::BalanceResponse { balances }
}

pub fn ledger(entries: Vec<m::LedgerEntry>) -> pb::AccountLedgerResponse {
    let entries = entries
        .into_iter()
        .map(|e| pb::LedgerEntry {
            user_id: e.user_id.unwrap_or_default(),
            create_time: timestamp(&e.datestamp),
            order_id: e.order_id.unwrap_or_default(),
            account_name: e.account_name,
            message_id: e.message_id.unwrap_or_default(),
            transaction_type: e.transaction_type.unwrap_or_default(),
            currency_code: e.currency,
            amount: e.amount.to_string(),
            gluepay_id: e.gluepay_id.unwrap_or_default(),
            extra_fields: extra_fields(e.extra),
        })
        .collect();
    pb::AccountLedgerResponse { entries }
}

/// The settlement report's rows (read from Trustly's CSV by `trustly::methods`).
pub fn settlement_rows(rows: Vec<m::SettlementRow>) -> pb::SettlementReportResponse {
    let rows = rows
        .into_iter()
        .map(|row| pb::SettlementReportRow {
            create_time: timestamp(&row.datestamp),
            account_name: row.account_name,
            currency_code: row.currency,
            amount: row.amount,
            total: row.total,
            order_id: row.order_id,
            order_type: row.order_type,
            message_id: row.message_id,
            username: row.username,
            fx_payment_amount: row.fx_payment_amount,
            fx_payment_currency: row.fx_payment_currency,
            settlement_bank_withdrawal_id: row.settlement_bank_withdrawal_id,
            external_reference: row.external_reference,
        })
        .collect();
    pb::SettlementReportResponse { rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trustly_timestamps_parse() {
        let t = timestamp("2015-03-12 15:14:18.61671+00").expect("parses");
        assert_eq!((t.seconds, t.nanos), (1_426_173_258, 616_710_000));
        let t = timestamp("2013-12-20 14:42:04.675645+01").expect("parses");
        assert_eq!(t.seconds, 1_387_546_924);
        assert_eq!(
            timestamp("2026-11-21T10:00:00Z").map(|t| t.seconds),
            Some(1_795_255_200)
        );
        for bad in [
            "",
            "2015-03-12",
            "yesterday",
            "2015-13-12 00:00:00",
            "2015-03-12 25:00:00+00",
        ] {
            assert!(timestamp(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn extras_never_replace_typed_fields_or_credentials() {
        let defaults = Defaults {
            notification_url: Url::parse("https://m.example/n").expect("url"),
        };
        let request = |extra: &[(&str, &str)]| pb::RefundRequest {
            request_id: "r-1".into(),
            order_id: "123".into(),
            amount: Some(pb::Money {
                amount: "1.00".into(),
                currency_code: "EUR".into(),
            }),
            extra_attributes: extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        };
        let prepared = refund(request(&[("NewThing", "x")])).expect("valid");
        assert_eq!(prepared.data["Attributes"]["NewThing"], "x");
        let _ = &defaults;
        match approve_withdrawal(pb::ApproveWithdrawalRequest {
            request_id: "r".into(),
            order_id: "1".into(),
            extra_attributes: HashMap::from([
                ("Password".to_owned(), "x".to_owned()),
                ("OrderID".to_owned(), "2".to_owned()),
            ]),
        }) {
            Err(Error::InvalidArgument(violations)) => assert_eq!(violations.len(), 2),
            other => panic!("expected violations, got {other:?}"),
        }
    }
}
