//! The single mapping from [`Error`] to `tonic::Status`, with `google.rpc.ErrorInfo` (domain
//! `trustly.com`) on every error and `google.rpc.BadRequest` field violations for invalid input.
//! Messages are fixed texts (INVALID_ARGUMENT's lists each invalid field's path with its fixed
//! description, never the value sent): no error chain, key or credential ever reaches a client.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::{Error, FieldViolation};
use crate::payments;
use crate::trustly::{self, ErrorCode};

/// `ErrorInfo.domain` of every error.
pub const ERROR_DOMAIN: &str = "trustly.com";

/// Reasons of errors that are not Trustly's own error names.
pub mod reason {
    pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
    /// The request may or may not have taken effect at Trustly.
    pub const OUTCOME_UNKNOWN: &str = "TRUSTLY_OUTCOME_UNKNOWN";
    pub const TIMEOUT: &str = "TRUSTLY_TIMEOUT";
    pub const BAD_SIGNATURE: &str = "TRUSTLY_BAD_SIGNATURE";
    pub const MISMATCHED_RESPONSE: &str = "TRUSTLY_MISMATCHED_RESPONSE";
    pub const SIGNING_FAILED: &str = "SIGNING_FAILED";
    /// Redis (idempotency records) could not be reached; nothing was sent.
    pub const STORE_UNAVAILABLE: &str = "STORE_UNAVAILABLE";
    pub const REQUEST_IN_PROGRESS: &str = "REQUEST_IN_PROGRESS";
    /// A replay met 637: the order exists and was recovered, not re-issued.
    pub const ORDER_EXISTS: &str = "ORDER_EXISTS";
    pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
    /// A dead letter or cached account named by the call does not exist.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// A subscriber fell behind its bounded buffer and was closed.
    pub const SUBSCRIBER_TOO_SLOW: &str = "SUBSCRIBER_TOO_SLOW";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// The sidecar is shutting down; reconnect (to another replica).
    pub const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(violations) => {
                let message = invalid_message(&violations);
                let mut details = ErrorDetails::with_error_info(
                    reason::INVALID_ARGUMENT,
                    ERROR_DOMAIN,
                    HashMap::new(),
                );
                for violation in violations {
                    details.add_bad_request_violation(violation.field, violation.description);
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::Payment(error) => payment_status(error),
            Error::Store(_) => store_unavailable(),
            Error::NotFound(what) => with_info(
                Code::NotFound,
                format!("no such {what}"),
                reason::NOT_FOUND,
                HashMap::new(),
            ),
            Error::SubscriberTooSlow => with_info(
                Code::ResourceExhausted,
                "subscriber too slow; reconnect to resume",
                reason::SUBSCRIBER_TOO_SLOW,
                HashMap::new(),
            ),
            Error::Unauthenticated => with_info(
                Code::Unauthenticated,
                "a valid bearer token is required",
                reason::UNAUTHENTICATED,
                HashMap::new(),
            ),
            Error::ShuttingDown => with_info(
                Code::Unavailable,
                "sidecar shutting down; reconnect",
                reason::SHUTTING_DOWN,
                HashMap::new(),
            ),
        }
    }
}

/// A status with its `ErrorInfo`: this domain, `reason` and `metadata`.
fn with_info(
    code: Code,
    message: impl Into<String>,
    reason: &str,
    metadata: HashMap<String, String>,
) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// A payment use case's failure, variant by variant.
fn payment_status(error: payments::Error) -> Status {
    match error {
        payments::Error::Trustly(error) => trustly_status(&error),
        payments::Error::Store(_) => store_unavailable(),
        payments::Error::OrderExists { order_id } => {
            let mut metadata = HashMap::from([("outcome".to_owned(), "exists".to_owned())]);
            if let Some(order_id) = order_id {
                metadata.insert("order_id".to_owned(), order_id);
            }
            with_info(
                Code::AlreadyExists,
                "the order already exists at Trustly; it was not created again (see metadata order_id)",
                reason::ORDER_EXISTS,
                metadata,
            )
        }
        payments::Error::RequestInProgress => with_info(
            Code::Aborted,
            "a request with this idempotency key is in progress; retry later",
            reason::REQUEST_IN_PROGRESS,
            HashMap::new(),
        ),
        payments::Error::IdempotencyKeyReused => with_info(
            Code::FailedPrecondition,
            "this idempotency key was used for a different request",
            reason::IDEMPOTENCY_KEY_REUSED,
            HashMap::new(),
        ),
    }
}

/// The store (idempotency records, notification log, account cache) could not be asked.
fn store_unavailable() -> Status {
    with_info(
        Code::Unavailable,
        "the store is unavailable; nothing was done (nor sent to Trustly), retry",
        reason::STORE_UNAVAILABLE,
        HashMap::from([("outcome".to_owned(), "not_sent".to_owned())]),
    )
}

/// Violations spelled out in an INVALID_ARGUMENT message; the rest are counted. The message
/// travels in the `grpc-message` header, and a request with thousands of bad `extra_attributes`
/// keys must not make that header larger than clients accept (grpc-go's default header list
/// limit is 16 KiB); every violation is still in `BadRequest`.
pub const MAX_MESSAGE_VIOLATIONS: usize = 16;

/// `invalid request: amount: must be greater than zero; user.locale: is required`: field paths
/// and fixed descriptions only, never a value the caller sent.
fn invalid_message(violations: &[FieldViolation]) -> String {
    let listed: Vec<String> = violations
        .iter()
        .take(MAX_MESSAGE_VIOLATIONS)
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect();
    if listed.is_empty() {
        return "invalid request".to_owned();
    }
    let mut message = format!("invalid request: {}", listed.join("; "));
    if violations.len() > MAX_MESSAGE_VIOLATIONS {
        message.push_str(&format!(
            "; and {} more (see BadRequest)",
            violations.len() - MAX_MESSAGE_VIOLATIONS
        ));
    }
    message
}

fn trustly_status(error: &trustly::Error) -> Status {
    use trustly::Error as E;
    let (code, reason, message, cause) = match error {
        E::Signing(_) | E::Encoding(_) => (
            Code::Internal,
            reason::SIGNING_FAILED,
            "the request could not be signed; nothing was sent",
            "signing",
        ),
        E::Transport(_) => (
            Code::Unavailable,
            reason::OUTCOME_UNKNOWN,
            UNKNOWN_OUTCOME,
            "transport",
        ),
        E::HttpStatus { .. } => (
            Code::Unavailable,
            reason::OUTCOME_UNKNOWN,
            UNKNOWN_OUTCOME,
            "http_status",
        ),
        E::BodyTooLarge { .. } => (
            Code::Unavailable,
            reason::OUTCOME_UNKNOWN,
            UNKNOWN_OUTCOME,
            "body_too_large",
        ),
        E::Malformed(_) => (
            Code::Unavailable,
            reason::OUTCOME_UNKNOWN,
            UNKNOWN_OUTCOME,
            "malformed_response",
        ),
        E::Timeout => (
            Code::DeadlineExceeded,
            reason::TIMEOUT,
            "Trustly did not answer in time; the outcome is unknown",
            "timeout",
        ),
        E::BadSignature => (
            Code::Internal,
            reason::BAD_SIGNATURE,
            "Trustly's answer failed signature verification and was not believed; the outcome is unknown",
            "bad_signature",
        ),
        E::UuidMismatch { .. } | E::MethodMismatch { .. } | E::UnexpectedData(_) => (
            Code::Internal,
            reason::MISMATCHED_RESPONSE,
            "Trustly's answer does not match the request and was not believed; the outcome is unknown",
            "mismatched_response",
        ),
        E::Rejected { code, .. } => return rejected(code),
    };
    let metadata = HashMap::from([
        ("outcome".to_owned(), disposition(error).to_owned()),
        ("cause".to_owned(), cause.to_owned()),
    ]);
    with_info(code, message, reason, metadata)
}

const UNKNOWN_OUTCOME: &str = "the outcome at Trustly is unknown; retry with the same idempotency key and fields to replay the identical request";

/// A verified Trustly error: the reason is Trustly's name, the metadata carries the code.
fn rejected(code: &ErrorCode) -> Status {
    let metadata = HashMap::from([
        ("code".to_owned(), code.code().to_string()),
        (
            "outcome".to_owned(),
            if code == &ErrorCode::Unknown {
                "unknown"
            } else {
                "rejected"
            }
            .to_owned(),
        ),
    ]);
    match code {
        // 620 ERROR_UNKNOWN: Trustly itself does not know; treat like any unknown outcome.
        ErrorCode::Unknown => with_info(Code::Unavailable, UNKNOWN_OUTCOME, code.name(), metadata),
        _ => with_info(
            Code::FailedPrecondition,
            format!(
                "Trustly refused the request: {} {}",
                code.code(),
                code.name()
            ),
            code.name(),
            metadata,
        ),
    }
}

fn disposition(error: &trustly::Error) -> &'static str {
    match error.disposition() {
        trustly::Disposition::NotSent => "not_sent",
        trustly::Disposition::Definitive => "rejected",
        trustly::Disposition::Ambiguous => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trustly::wire::Malformed;

    fn info(status: &Status) -> (String, HashMap<String, String>) {
        let info = status
            .get_details_error_info()
            .expect("every status carries ErrorInfo");
        assert_eq!(info.domain, ERROR_DOMAIN);
        (info.reason, info.metadata)
    }

    /// Each error becomes a status of its code whose `ErrorInfo` names its reason.
    fn assert_maps(cases: Vec<(Error, Code, &str)>) {
        for (error, code, expected_reason) in cases {
            let status = Status::from(error);
            assert_eq!(status.code(), code, "{expected_reason}");
            assert_eq!(info(&status).0, expected_reason);
        }
    }

    #[test]
    fn every_variant_maps_to_its_code_and_reason() {
        use trustly::Error as E;
        let (expected, got) = (String::from("a"), String::from("b"));
        let rejected = |code| E::Rejected {
            code,
            message: "x".into(),
        };
        let unknown = (Code::Unavailable, reason::OUTCOME_UNKNOWN);
        let mismatched = (Code::Internal, reason::MISMATCHED_RESPONSE);
        let trustly_cases = [
            (E::Timeout, (Code::DeadlineExceeded, reason::TIMEOUT)),
            (E::HttpStatus { status: 503 }, unknown),
            (E::BodyTooLarge { limit: 1 }, unknown),
            (E::Malformed(Malformed("x")), unknown),
            (E::BadSignature, (Code::Internal, reason::BAD_SIGNATURE)),
            (
                E::UuidMismatch {
                    expected: expected.clone(),
                    got: got.clone(),
                },
                mismatched,
            ),
            (E::MethodMismatch { expected, got }, mismatched),
            (
                E::Signing(trustly::sign::SignError::TaskFailed),
                (Code::Internal, reason::SIGNING_FAILED),
            ),
            (
                rejected(ErrorCode::DuplicateMessageId),
                (Code::FailedPrecondition, "ERROR_DUPLICATE_MESSAGE_ID"),
            ),
            (
                rejected(ErrorCode::Unknown),
                (Code::Unavailable, "ERROR_UNKNOWN"),
            ),
        ];
        let mut cases: Vec<(Error, Code, &str)> = vec![(
            Error::invalid("amount", "is required"),
            Code::InvalidArgument,
            reason::INVALID_ARGUMENT,
        )];
        cases.extend(
            trustly_cases
                .into_iter()
                .map(|(error, (code, reason))| (error.into(), code, reason)),
        );
        assert_maps(cases);
    }

    #[test]
    fn the_store_and_the_subscribers_errors_map_to_one_code_and_reason_each() {
        assert_maps(vec![
            (
                Error::Store(crate::store::Error::Protocol("x")),
                Code::Unavailable,
                reason::STORE_UNAVAILABLE,
            ),
            (
                Error::NotFound("dead letter in this group"),
                Code::NotFound,
                reason::NOT_FOUND,
            ),
            (
                Error::SubscriberTooSlow,
                Code::ResourceExhausted,
                reason::SUBSCRIBER_TOO_SLOW,
            ),
            (
                Error::Unauthenticated,
                Code::Unauthenticated,
                reason::UNAUTHENTICATED,
            ),
            (
                Error::ShuttingDown,
                Code::Unavailable,
                reason::SHUTTING_DOWN,
            ),
        ]);
    }

    #[test]
    fn rejections_carry_the_numeric_code_and_ambiguity_is_marked() {
        let status = Status::from(Error::from(trustly::Error::Rejected {
            code: ErrorCode::InvalidCredentials,
            message: "secret detail".into(),
        }));
        let (_, metadata) = info(&status);
        assert_eq!(metadata.get("code").map(String::as_str), Some("616"));
        assert_eq!(
            metadata.get("outcome").map(String::as_str),
            Some("rejected")
        );
        assert!(!status.message().contains("secret detail"));
        let status = Status::from(Error::from(trustly::Error::Timeout));
        assert_eq!(
            info(&status).1.get("outcome").map(String::as_str),
            Some("unknown")
        );
    }

    #[test]
    fn invalid_arguments_name_every_field() {
        let status = Status::from(Error::InvalidArgument(vec![
            FieldViolation {
                field: "amount.amount".into(),
                description: "must be greater than zero".into(),
            },
            FieldViolation {
                field: "user.locale".into(),
                description: "must be ll_CC".into(),
            },
        ]));
        let fields: Vec<String> = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["amount.amount", "user.locale"]);
        assert_eq!(
            status.message(),
            "invalid request: amount.amount: must be greater than zero; user.locale: must be ll_CC"
        );
    }

    #[test]
    fn a_long_list_of_violations_is_cut_in_the_message_not_in_bad_request() {
        let total = MAX_MESSAGE_VIOLATIONS + 3;
        let violations: Vec<FieldViolation> = (0..total)
            .map(|i| FieldViolation {
                field: format!("extra_attributes[k{i}]"),
                description: "must be at most 2048 characters".into(),
            })
            .collect();
        let status = Status::from(Error::InvalidArgument(violations));
        let message = status.message();
        assert!(message.starts_with("invalid request: extra_attributes[k0]: must be"));
        let last_listed = format!("extra_attributes[k{}]:", MAX_MESSAGE_VIOLATIONS - 1);
        let first_cut = format!("extra_attributes[k{MAX_MESSAGE_VIOLATIONS}]:");
        assert!(message.contains(&last_listed), "{message}");
        assert!(!message.contains(&first_cut), "{message}");
        assert!(
            message.ends_with("; and 3 more (see BadRequest)"),
            "{message}"
        );
        let bad_request = status.get_details_bad_request().expect("BadRequest");
        assert_eq!(bad_request.field_violations.len(), total);
    }
}
