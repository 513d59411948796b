//! `trustly::Error`: every way a call to Trustly can end other than success, and what it means for
//! the money.

use super::{codes::ErrorCode, methods::DataError, sign::SignError, wire::Malformed};

/// What an error means for the request's effect at Trustly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Nothing left this process: retrying with a new request is safe.
    NotSent,
    /// Trustly answered, verifiably, and refused: nothing happened and retrying will not help.
    Definitive,
    /// The money may or may not have moved. Retry only by replaying the identical signed request
    /// (same UUID, same bytes) so Trustly answers the first attempt instead of acting twice.
    Ambiguous,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request could not be signed; nothing was sent.
    #[error("request could not be signed")]
    Signing(#[source] SignError),
    /// The request could not be built; nothing was sent.
    #[error("request could not be encoded")]
    Encoding(#[source] serde_json::Error),
    /// The connection failed or broke before a whole response arrived.
    #[error("transport failure talking to trustly")]
    Transport(#[source] reqwest::Error),
    /// No whole response within the configured total timeout.
    #[error("trustly did not answer in time")]
    Timeout,
    /// A non-2xx status without a verifiable JSON-RPC body.
    #[error("trustly answered http {status} without a verifiable body")]
    HttpStatus { status: u16 },
    /// The response body exceeded the configured limit and was not read.
    #[error("response body exceeds {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The body is not a JSON-RPC response, or a protocol-level error without a signed part.
    #[error("malformed response: {0}")]
    Malformed(#[from] Malformed),
    /// The response signature does not verify with Trustly's key: it is never believed.
    #[error("response signature does not verify")]
    BadSignature,
    /// A verified response for a different request.
    #[error("response uuid {got:?} does not match request uuid {expected:?}")]
    UuidMismatch { expected: String, got: String },
    /// A verified response for a different method.
    #[error("response method {got:?} does not match request method {expected:?}")]
    MethodMismatch { expected: String, got: String },
    /// Trustly refused the request with a verified JSON-RPC error.
    #[error("trustly rejected the request: {code}")]
    Rejected { code: ErrorCode, message: String },
    /// A verified success whose data lacks what the method promises.
    #[error("unexpected response data")]
    UnexpectedData(#[from] DataError),
}

impl Error {
    /// What this error means for the money (see [`Disposition`]).
    pub fn disposition(&self) -> Disposition {
        match self {
            Error::Signing(_) | Error::Encoding(_) => Disposition::NotSent,
            Error::Rejected { code, .. } => match code {
                // 620: "unspecified; contact Trustly" - the outcome is unknown (spec §6).
                ErrorCode::Unknown => Disposition::Ambiguous,
                _ => Disposition::Definitive,
            },
            Error::Transport(_)
            | Error::Timeout
            | Error::HttpStatus { .. }
            | Error::BodyTooLarge { .. }
            | Error::Malformed(_)
            | Error::BadSignature
            | Error::UuidMismatch { .. }
            | Error::MethodMismatch { .. }
            // Trustly accepted and answered, but we cannot tell the application what it said.
            | Error::UnexpectedData(_) => Disposition::Ambiguous,
        }
    }

    pub fn is_ambiguous(&self) -> bool {
        self.disposition() == Disposition::Ambiguous
    }
}
