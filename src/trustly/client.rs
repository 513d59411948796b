//! The JSON-RPC client: builds the `Data` tree once, signs it, sends exactly those bytes,
//! verifies the answer against the raw tree and classifies the outcome.
//!
//! A [`SignedRequest`] is the unit of idempotency: it can be stored and sent again byte for byte,
//! so a retry after an ambiguous outcome carries the same UUID and Trustly answers the first
//! attempt instead of acting twice (spec §8).

use std::{fmt, sync::Arc, time::Duration};

use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value};
use tracing::{debug, instrument};
use url::Url;
use uuid::Uuid;

use super::{
    Error,
    canonical::{self, Variant},
    codes::ErrorCode,
    methods::{FromData, Method},
    sign::{CryptoPool, Signer, Verifier},
    wire::{self, Response, SignedPart},
};
use crate::secret::Secret;

/// Connect timeout. Trustly's PHP client uses 5 s; a TCP+TLS handshake to Trustly takes well under
/// a second, so anything slower is an outage, and failing fast frees the caller to retry.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Total time for one call, body included. Trustly's PHP client uses 30 s, and some calls
/// (AccountLedger, settlement reports) legitimately take seconds.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body read. The biggest answers are ledger and settlement-report data for a
/// period; 8 MiB holds tens of thousands of rows while bounding memory per in-flight call.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// Where and as whom the client talks to Trustly.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub endpoint: Url,
    pub username: String,
    pub password: Secret<String>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_response_bytes: usize,
}

impl ClientConfig {
    /// A config with the default timeouts and body limit.
    pub fn new(endpoint: Url, username: impl Into<String>, password: Secret<String>) -> Self {
        Self {
            endpoint,
            username: username.into(),
            password,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// A signed request, exactly as sent. It contains the API credentials, so its `Debug` shows only
/// the method, UUID and size.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub method: String,
    pub uuid: String,
    /// The exact JSON body; replays send these bytes unchanged.
    pub body: Bytes,
}

impl fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("uuid", &self.uuid)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Talks JSON-RPC 1.1 to Trustly (or the simulator).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    /// The API password; replaceable when its file changes (key and password reload).
    password: Arc<parking_lot::RwLock<Secret<String>>>,
    signer: Arc<dyn Signer>,
    verifier: Arc<dyn Verifier>,
    crypto: CryptoPool,
}

impl Client {
    pub fn new(
        config: ClientConfig,
        signer: Arc<dyn Signer>,
        verifier: Arc<dyn Verifier>,
        crypto: CryptoPool,
    ) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // Trustly answers the POST itself; a redirect would be a misconfiguration.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::Transport)?;
        Ok(Self {
            http,
            password: Arc::new(parking_lot::RwLock::new(config.password.clone())),
            config: Arc::new(config),
            signer,
            verifier,
            crypto,
        })
    }

    /// Replaces the API password for calls signed from now on.
    pub fn set_password(&self, password: Secret<String>) {
        *self.password.write() = password;
    }

    /// Signs, sends and reads one typed call with a fresh UUID.
    pub async fn call<M: Method>(&self, method: &M) -> Result<M::Response, Error> {
        let request = self.sign(method).await?;
        let data = self.send(&request).await?;
        Ok(M::Response::from_data(data)?)
    }

    /// Builds and signs a typed call with a fresh UUID, without sending it.
    pub async fn sign<M: Method>(&self, method: &M) -> Result<SignedRequest, Error> {
        let data = method.data().map_err(Error::Encoding)?;
        self.sign_data(M::NAME, Uuid::new_v4(), data).await
    }

    /// Adds the credentials to `data`, signs `method + uuid + S(Data)` and encodes the body from
    /// that same tree.
    pub async fn sign_data(
        &self,
        method: &str,
        uuid: Uuid,
        mut data: Map<String, Value>,
    ) -> Result<SignedRequest, Error> {
        data.insert(
            "Username".into(),
            Value::String(self.config.username.clone()),
        );
        data.insert(
            "Password".into(),
            Value::String(self.password.read().expose().clone()),
        );
        let data = Value::Object(data);
        // Never send a boolean or a float: Trustly's serializer may render it differently from
        // ours and answer 636 (spec §3.3). Typed fields are strings or integers; this catches an
        // extra attribute or a future typed field that is not.
        canonical::check_unambiguous(&data)
            .map_err(|problem| Error::Encoding(serde::ser::Error::custom(problem)))?;
        let uuid = uuid.hyphenated().to_string();
        let plaintext = canonical::plaintext(method, &uuid, &data);
        let signer = Arc::clone(&self.signer);
        let signature = self
            .crypto
            .run(signer.inline(), move || signer.sign(plaintext.as_bytes()))
            .await
            .and_then(|signed| signed)
            .map_err(Error::Signing)?;
        let body = serde_json::to_vec(&wire::request(method, &uuid, &signature, data))
            .map_err(Error::Encoding)?;
        Ok(SignedRequest {
            method: method.to_owned(),
            uuid,
            body: Bytes::from(body),
        })
    }

    /// Sends `request` exactly as signed (first attempt or replay) and returns the verified
    /// response data.
    pub async fn send(&self, request: &SignedRequest) -> Result<Value, Error> {
        self.send_observed(request).await.map(|(data, _)| data)
    }

    /// [`Client::send`], also returning the serializer variant the answer's signature covered
    /// ([`Variant::CANONICAL`] normally; spec §3.3), so the caller can count it. This module keeps
    /// no metrics of its own for it.
    #[instrument(skip_all, fields(method = %request.method, uuid = %request.uuid))]
    pub async fn send_observed(&self, request: &SignedRequest) -> Result<(Value, Variant), Error> {
        let response = self
            .http
            .post(self.config.endpoint.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .header(http::header::ACCEPT, "application/json")
            // `Bytes` body: reqwest sets Content-Length to the byte length (not characters).
            .body(request.body.clone())
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = read_limited(response, self.config.max_response_bytes).await?;

        let verifier = Arc::clone(&self.verifier);
        let (method, uuid) = (request.method.clone(), request.uuid.clone());
        let outcome = self
            .crypto
            .run(verifier.inline(), move || {
                interpret(status, &body, &method, &uuid, verifier.as_ref())
            })
            .await
            .map_err(Error::Signing)?;
        match &outcome {
            Ok(_) => debug!(status, "trustly call succeeded"),
            Err(error) => {
                debug!(status, %error, disposition = ?error.disposition(), "trustly call failed")
            }
        }
        outcome
    }
}

/// Why a body could not be read whole.
#[derive(Debug)]
pub(crate) enum BodyReadError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads at most `limit` bytes of body; a larger body is an error, not a truncation.
pub(crate) async fn read_body_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, BodyReadError> {
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(BodyReadError::TooLarge);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyReadError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

async fn read_limited(response: reqwest::Response, limit: usize) -> Result<Bytes, Error> {
    read_body_limited(response, limit)
        .await
        .map_err(|error| match error {
            BodyReadError::TooLarge => Error::BodyTooLarge { limit },
            BodyReadError::Transport(error) => transport_error(error),
        })
}

fn transport_error(error: reqwest::Error) -> Error {
    if error.is_timeout() {
        Error::Timeout
    } else {
        Error::Transport(error)
    }
}

/// Decides what a response means. Pure, so every network input can be fed to it in tests.
///
/// Whenever the body is a JSON-RPC envelope it is interpreted, whatever the HTTP status (spec
/// §1). Nothing is believed unless its signature verifies and it answers this exact request.
pub fn interpret_response(
    status: u16,
    body: &[u8],
    method: &str,
    uuid: &str,
    verifier: &dyn Verifier,
) -> Result<Value, Error> {
    interpret(status, body, method, uuid, verifier).map(|(data, _)| data)
}

/// [`interpret_response`], with the serializer variant the success's signature covered.
pub fn interpret(
    status: u16,
    body: &[u8],
    method: &str,
    uuid: &str,
    verifier: &dyn Verifier,
) -> Result<(Value, Variant), Error> {
    let unverifiable = |malformed: wire::Malformed| {
        if (200..300).contains(&status) {
            Error::Malformed(malformed)
        } else {
            Error::HttpStatus { status }
        }
    };
    match wire::parse_response(body).map_err(unverifiable)? {
        Response::Result(part) => {
            let variant = check_answers_request(&part, method, uuid, verifier)?;
            Ok((part.data, variant))
        }
        Response::Error(error) => {
            let part = error.signed.ok_or_else(|| {
                unverifiable(wire::Malformed("error response without a signed part"))
            })?;
            check_answers_request(&part, method, uuid, verifier)?;
            // Only the signed inner data is trusted for the code (spec §3.2).
            let code = part
                .data
                .get("code")
                .and_then(wire::integer)
                .ok_or(Error::Malformed(wire::Malformed(
                    "signed error data without a code",
                )))?;
            let message = part
                .data
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            Err(Error::Rejected {
                code: ErrorCode::from_code(code, &message),
                message,
            })
        }
    }
}

fn check_answers_request(
    part: &SignedPart,
    method: &str,
    uuid: &str,
    verifier: &dyn Verifier,
) -> Result<Variant, Error> {
    let Some(variant) = part.verify_tolerant(verifier) else {
        return Err(Error::BadSignature);
    };
    if part.uuid != uuid {
        return Err(Error::UuidMismatch {
            expected: uuid.to_owned(),
            got: part.uuid.clone(),
        });
    }
    if part.method != method {
        return Err(Error::MethodMismatch {
            expected: method.to_owned(),
            got: part.method.clone(),
        });
    }
    Ok(variant)
}
