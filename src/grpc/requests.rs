//! Request building: a validated `pb` request becomes a wire-core method, then its `Data` tree,
//! into which `extra_attributes` are merged without ever replacing a typed field or the
//! credentials. The result is a [`Prepared`] call for the payment use cases; nothing is signed
//! or sent here.

mod attributes;
mod orders;
mod reports;

use std::collections::HashMap;

use url::Url;

pub use orders::*;
pub use reports::*;

use super::{
    Error,
    validate::{Check, MAX_EXTRA_ATTRIBUTES, MAX_KEY_CHARS},
};
use crate::{
    money::Currency,
    trustly::methods::{self as m, ExtraTarget, Method},
};

pub use crate::payments::Prepared;

/// Settings the conversion needs from the sidecar's configuration.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// The NotificationURL used when a request leaves it empty.
    pub notification_url: Url,
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
    let Some(Ok((data, refused))) = method
        .as_ref()
        .map(|method| m::outgoing_data(method, extra, target))
    else {
        check.finish()?;
        // invariant: converters return a method whenever no field was invalid, and typed
        // methods always serialize; report rather than panic if that ever breaks.
        return Err(Error::invalid("request", "could not be encoded"));
    };
    for key in refused {
        check.violation(
            &format!("extra_attributes[{key}]"),
            "collides with a typed field; use the typed field",
        );
    }
    check.finish()?;
    Ok(Prepared {
        method: M::NAME,
        data,
        idempotency_key,
    })
}

/// Stands in for an invalid `currency_code` so the rest of the request is still checked; the
/// request is refused before anything is built from it, so it is never sent.
const PLACEHOLDER_CURRENCY: Currency = Currency::EUR;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

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
