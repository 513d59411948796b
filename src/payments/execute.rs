//! Executing one Trustly call: sign, reserve the idempotency key, send (or answer from the stored
//! outcome, or resend the stored signed request), recover a replay that met 637, record the
//! outcome. Knows nothing of the transport that asked.

use serde_json::{Map, Value};
use tracing::{Instrument, info_span, warn};

use super::{Answer, Error, Payments, Prepared, identifier};
use crate::{
    metrics,
    orders::{Fact, OrderBook, OrderRequest},
    store::{
        self,
        idempotency::{Begin, Finish, Outcome, Scope},
    },
    trustly::{self, Disposition, ErrorCode, SignedRequest, canonical::Variant, methods::FromData},
};

impl Payments {
    /// Signs and sends a prepared request, returning Trustly's verified `data`.
    ///
    /// With an idempotency key the key is reserved first (fail closed if the store is down), a
    /// finished key answers from its stored outcome, and a key whose earlier attempt was ambiguous
    /// (or whose process died) sends the stored signed request again, byte for byte.
    pub async fn execute(&self, prepared: Prepared) -> Result<Answer<Value>, Error> {
        let uuid = self.uuid_for(prepared.method, prepared.idempotency_key.as_deref());
        // The RPC's span (see `lib::rpc_span`) carries the order's identifiers into every log line.
        let rpc_span = tracing::Span::current();
        for (field, name) in [("MessageID", "messageid"), ("OrderID", "orderid")] {
            if let Some(value) = prepared.data.get(field) {
                rpc_span.record(name, tracing::field::display(identifier(value)));
            }
        }
        // What the order's state needs of the request, when it creates or refunds an order.
        let order_request = OrderRequest::of(prepared.method, &prepared.data);
        let span = info_span!("trustly", method = prepared.method, %uuid);
        let result = async {
            let fingerprint = fingerprint(prepared.method, &prepared.data);
            let started = std::time::Instant::now();
            let signed = self
                .client
                .sign_data(prepared.method, uuid, prepared.data)
                .await?;
            // The wire core keeps no metrics: signing time is observed here.
            metrics::global()
                .signing_seconds
                .observe(started.elapsed().as_secs_f64());
            match prepared.idempotency_key {
                None => self.send(&signed).await.map(Answer::fresh),
                Some(key) => {
                    self.idempotent(prepared.method, &key, &fingerprint, signed)
                        .await
                }
            }
        }
        .instrument(span)
        .await;
        if let Ok(answer) = &result
            && let Some(order_id) = answer.value.get("orderid")
        {
            rpc_span.record("orderid", tracing::field::display(identifier(order_id)));
        }
        if let (Ok(answer), Some(request)) = (&result, order_request) {
            self.note_order(request, uuid.to_string(), &answer.value);
        }
        result
    }

    /// Adds an RPC answer to its order's state, after the answer (see `store::write_behind`).
    /// Never fails the call: the answer is Trustly's.
    fn note_order(&self, request: OrderRequest, uuid: String, answer: &Value) {
        let Some(fact) = Fact::rpc(&request, &uuid, answer, store::now_ms()) else {
            return;
        };
        let book = OrderBook::new(self.log.order_states.clone());
        let written = async move {
            if let Err(error) = book.record(&fact).await {
                metrics::global().store_errors.inc();
                warn!(%error, order_id = %fact.order_id, "order state not updated after a successful call");
            }
        };
        self.log.write_behind.spawn(None, written.in_current_span());
    }

    /// [`Payments::execute`], then reads the answer as the method's typed result.
    pub async fn call<T: FromData>(&self, prepared: Prepared) -> Result<Answer<T>, Error> {
        self.execute(prepared).await?.try_map(typed)
    }

    /// The idempotency protocol around one signed request (see [`Payments::execute`]).
    async fn idempotent(
        &self,
        method: &'static str,
        key: &str,
        fingerprint: &str,
        signed: SignedRequest,
    ) -> Result<Answer<Value>, Error> {
        let scope = Scope {
            merchant: &self.username,
            method,
            key,
        };
        let settings = &self.idempotency;
        // An earlier call with this key may still be recording its outcome here.
        let scope_id = scope.id();
        self.log.write_behind.settled_key(&scope_id).await;
        let begin = settings
            .store
            .begin(
                &scope,
                fingerprint,
                &signed.uuid,
                &signed.body,
                settings.lease,
                settings.retention,
            )
            .await?;
        let (request, replay) = match begin {
            Begin::Proceed => (signed, false),
            Begin::Replay { request } => {
                tracing::info!("replaying the stored signed request");
                metrics::global().idempotency("resent");
                let request = SignedRequest {
                    body: request,
                    ..signed
                };
                (request, true)
            }
            Begin::Finished(outcome) => {
                metrics::global().idempotency("replayed");
                return stored(outcome).map(|value| Answer {
                    value,
                    replayed: true,
                    age: None,
                });
            }
            Begin::InProgress => {
                metrics::global().idempotency("in_progress");
                return Err(Error::RequestInProgress);
            }
            Begin::Reused => {
                metrics::global().idempotency("conflict");
                return Err(Error::IdempotencyKeyReused);
            }
        };
        let outcome = match self.send(&request).await {
            // 637 on a replay: Trustly forgot the UUID but has the MessageID, so the first
            // attempt created the order. Recover it; never issue it again.
            Err(Error::Trustly(trustly::Error::Rejected {
                code: ErrorCode::DuplicateMessageId,
                ..
            })) if replay => Err(self.order_exists(key).await),
            other => other,
        };
        let attempt = Attempt {
            method,
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            uuid: request.uuid.clone(),
        };
        self.finish_behind(attempt, scope_id, finish_of(&outcome));
        outcome.map(Answer::fresh)
    }

    /// Records an attempt's outcome after the answer (see `store::write_behind`), under
    /// `scope_id` (its record's id): a call with the same key in this process waits for it
    /// (`idempotent`).
    fn finish_behind(&self, attempt: Attempt, scope_id: String, finish: Finish) {
        let (store, merchant) = (self.idempotency.store.clone(), self.username.clone());
        let written = async move {
            let scope = Scope {
                merchant: &merchant,
                method: attempt.method,
                key: &attempt.key,
            };
            let (fingerprint, uuid) = (&attempt.fingerprint, &attempt.uuid);
            if let Err(error) = store.finish(&scope, fingerprint, uuid, &finish).await {
                // The lease expires; the next call with the key replays the stored request.
                warn!(%error, "could not record the outcome of an idempotent call");
            }
        };
        self.log
            .write_behind
            .spawn(Some(scope_id), written.in_current_span());
    }

    /// The answer to a replay that met 637: the order exists, under the id a notification named.
    async fn order_exists(&self, message_id: &str) -> Error {
        let order_id = self
            .log
            .orders
            .for_message(message_id)
            .await
            .unwrap_or_else(|error| {
                warn!(%error, "could not look up the order of a MessageID");
                None
            });
        warn!(
            ?order_id,
            "a replay met 637: the order exists and is not re-issued"
        );
        Error::OrderExists { order_id }
    }

    async fn send(&self, request: &SignedRequest) -> Result<Value, Error> {
        let started = std::time::Instant::now();
        let result = self
            .client
            .send_observed(request)
            .await
            .map(|(data, variant)| {
                if variant != Variant::CANONICAL
                    && metrics::global().signature_variant("response", variant.name())
                {
                    // Once per variant and process: the counter says how often.
                    warn!(method = %request.method, variant = variant.name(), "a Trustly response verified only under a client serializer variant (spec 3.3); counted in trustly_sidecar_signature_variants");
                }
                data
            });
        let outcome = match &result {
            Ok(_) => "success".to_owned(),
            Err(error) if error.disposition() == Disposition::Ambiguous => "ambiguous".to_owned(),
            Err(trustly::Error::Rejected { code, .. }) => format!("rejected_{}", code.code()),
            Err(_) => "not_sent".to_owned(),
        };
        metrics::global().trustly(&request.method, outcome, started.elapsed());
        result.map_err(|error| {
            log_failure(&error);
            Error::from(error)
        })
    }
}

/// The idempotent attempt whose outcome is written after the answer: what its record holds
/// besides the outcome.
struct Attempt {
    method: &'static str,
    key: String,
    fingerprint: String,
    uuid: String,
}

/// A finished idempotency record's outcome, as the first call answered it.
fn stored(outcome: Outcome) -> Result<Value, Error> {
    match outcome {
        Outcome::Success { data } => serde_json::from_str(&data)
            .map_err(|_| Error::Store(store::Error::Protocol("stored answer"))),
        Outcome::Rejected { code, message } => Err(trustly::Error::Rejected {
            code: ErrorCode::from_code(code, &message),
            message,
        }
        .into()),
    }
}

/// What an attempt's outcome leaves in the idempotency record: final answers and known
/// rejections are replayed, anything else is ambiguous and the stored request is resent.
fn finish_of(outcome: &Result<Value, Error>) -> Finish {
    match outcome {
        Ok(data) => Finish::Final(Outcome::Success {
            data: data.to_string(),
        }),
        Err(Error::Trustly(trustly::Error::Rejected { code, message }))
            if !matches!(code, ErrorCode::Unknown) =>
        {
            Finish::Final(Outcome::Rejected {
                code: code.code(),
                message: message.clone(),
            })
        }
        Err(_) => Finish::Ambiguous,
    }
}

/// Reads a verified answer as `T`: an answer lacking what the method promises leaves the outcome
/// unknown to the caller.
pub(super) fn typed<T: FromData>(data: Value) -> Result<T, Error> {
    T::from_data(data).map_err(|e| {
        let error = trustly::Error::UnexpectedData(e);
        log_failure(&error);
        Error::from(error)
    })
}

/// Logs a failed Trustly call at the edge with its cause (the client only sees a reason).
pub(super) fn log_failure(error: &trustly::Error) {
    match error.disposition() {
        Disposition::Definitive => tracing::info!(%error, "trustly refused the request"),
        Disposition::Ambiguous => warn!(%error, "trustly outcome unknown"),
        Disposition::NotSent => tracing::error!(%error, "request not sent"),
    }
}

/// A request's fingerprint: SHA-256 over the method and its `Data` without credentials, in the
/// map's (sorted) key order, so the same fields always give the same fingerprint.
fn fingerprint(method: &str, data: &Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(serde_json::to_vec(data).unwrap_or_default());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
