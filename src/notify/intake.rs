//! Notification intake: Trustly POSTs a notification; we verify it against the raw tree, dedupe on
//! `notificationid`, append it to the durable log **before** answering, and answer with a signed
//! status echoing `uuid` and `method`. If the log cannot take it we answer 503 without a body, so
//! Trustly resends: an OK is never sent for an unstored event.
//!
//! Whether a notification waits for a subscriber's decision is decided here, once, and stored
//! with the event ([`super::decisions::required`]). Knows nothing of gRPC: subscribers read the
//! log through [`super::delivery`].

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use serde_json::Value;
use tracing::{Instrument, debug, info, info_span, warn};

use super::decisions::{self, Decision, DecisionFallback};
use crate::{
    http_server, metrics,
    orders::{Fact, OrderBook},
    store::{
        self, NewEvent, Recorded, Store,
        accounts::{Account, AccountCache},
        log::Notification as LoggedNotification,
        now_ms,
    },
    trustly::{
        canonical::{self, Variant},
        notification::Kind,
        sign::{CryptoPool, Signer, Verifier},
        wire::{self, SignedPart},
    },
};

/// Largest notification body accepted. Trustly's notifications are well under 4 KiB (a `kyc` with
/// every attribute is the largest); 64 KiB leaves room and bounds memory per request.
pub const MAX_NOTIFICATION_BYTES: usize = 64 * 1024;

/// How long a notification's body may take once its headers are in (hyper's header timer stops
/// there). Trustly posts its few KiB in one write right after the headers; 10 s covers a
/// congested link many times over and bounds how long a client stalled mid-body holds a
/// connection.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What intake needs.
pub struct Intake {
    pub path: String,
    /// Verifies notifications (Trustly's public key of the environment).
    pub trustly: Arc<dyn Verifier>,
    /// Signs our answers (the merchant key).
    pub merchant: Arc<dyn Signer>,
    pub crypto: CryptoPool,
    /// The log, the decisions and the Withdraw orders.
    pub store: Store,
    pub decision_deadline: Duration,
    pub decision_fallback: DecisionFallback,
    /// Filled from `account` notifications.
    pub accounts: AccountCache,
}

impl Intake {
    /// Handles one HTTP request.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
        if req.uri().path() != self.path {
            return Ok(text(StatusCode::NOT_FOUND, "not found"));
        }
        if req.method() != Method::POST {
            return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "POST only"));
        }
        let read = Limited::new(req.into_body(), MAX_NOTIFICATION_BYTES).collect();
        let body = match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Err(_elapsed) => {
                // Not a notification: a client that stopped mid-body; answering closes it.
                metrics::global().notification("", "refused_malformed");
                return Ok(text(
                    StatusCode::REQUEST_TIMEOUT,
                    "notification body not received in time",
                ));
            }
            Ok(Err(_)) => {
                metrics::global().notification("", "refused_too_large");
                return Ok(text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "notification too large",
                ));
            }
        };
        Ok(self.receive(body).await)
    }

    async fn receive(&self, body: Bytes) -> Response<Full<Bytes>> {
        let Ok(notification) = wire::parse_notification(&body) else {
            metrics::global().notification("", "refused_malformed");
            return text(StatusCode::BAD_REQUEST, "not a JSON-RPC 1.1 notification");
        };
        let verifier = Arc::clone(&self.trustly);
        let checked = notification.clone();
        let verified = self
            .crypto
            .run(verifier.inline(), move || {
                checked.verify_tolerant(verifier.as_ref())
            })
            .await
            .unwrap_or(None);
        if let Some(variant) = verified.filter(|v| *v != Variant::CANONICAL)
            && metrics::global().signature_variant("notification", variant.name())
        {
            // Once per variant and process: the counter says how often.
            warn!(method = %notification.method, uuid = %notification.uuid, variant = variant.name(), "a notification verified only under a client serializer variant (spec 3.3); counted in trustly_sidecar_signature_variants");
        }
        if verified.is_none() {
            warn!(method = %notification.method, uuid = %notification.uuid, "notification signature does not verify; refused");
            // No method label: it is unverified text, and labels must stay a small set.
            metrics::global().notification("", "refused_signature");
            return text(StatusCode::FORBIDDEN, "signature does not verify");
        }
        let field = |name: &str| {
            notification.data.get(name).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        // Trustly's notificationid is a string of digits; a number is taken as its lexeme. Null,
        // objects or blanks would all collapse into one bogus dedupe key.
        let notification_id = match notification.data.get("notificationid") {
            Some(Value::String(id)) if !id.trim().is_empty() => Some(id.clone()),
            Some(Value::Number(id)) => Some(id.to_string()),
            _ => None,
        };
        let Some(notification_id) = notification_id else {
            metrics::global().notification(&notification.method, "refused_malformed");
            return text(
                StatusCode::BAD_REQUEST,
                "notification without notificationid",
            );
        };
        let mut event = NewEvent {
            notification: LoggedNotification {
                notification_id,
                method: notification.method.clone(),
                order_id: field("orderid").unwrap_or_default(),
                message_id: field("messageid").unwrap_or_default(),
                received_ms: now_ms(),
                body,
            },
            // Set by `store`, once, before the event is recorded.
            decision_required: false,
        };
        // Every log line about this notification carries its identifiers (never its content).
        let span = info_span!(
            "notification",
            method = %event.notification.method,
            notificationid = %event.notification.notification_id,
            orderid = %event.notification.order_id,
            messageid = %event.notification.message_id,
        );
        match self.store(&notification, &mut event).instrument(span).await {
            Ok(response) => response,
            Err(error) => {
                metrics::global().notification(&event.notification.method, "unavailable");
                metrics::global().store_errors.inc();
                warn!(%error, notification_id = %event.notification.notification_id, "notification log unavailable; answering 503 so Trustly resends");
                text(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable")
            }
        }
    }

    async fn store(
        &self,
        notification: &SignedPart,
        event: &mut NewEvent,
    ) -> Result<Response<Full<Bytes>>, store::Error> {
        event.decision_required = self.needs_decision(&event.notification).await?;
        let event = &*event;
        if event.decision_required {
            let recorded = self.store.log.record(event, None).await?;
            self.note_order(notification, &event.notification).await;
            if let Recorded::Duplicate { reply: Some(reply) } = recorded {
                // A resend fills in a decision fact that failed to record the first time.
                let fact = Fact::stored_answer(&event.notification, &reply, now_ms());
                self.note_decision(fact).await;
                return Ok(self.repeat(notification, &reply).await);
            }
            return self.await_decision(notification, &event.notification).await;
        }
        let reply = self.sign_reply(notification, "OK").await;
        let recorded = self.store.log.record(event, Some(&reply)).await?;
        self.note_order(notification, &event.notification).await;
        match recorded {
            Recorded::New { event_id } => {
                metrics::global().notification(&event.notification.method, "stored");
                info!(%event_id, "notification stored");
                if event.notification.method == "account" {
                    self.cache_account(notification, &event.notification).await;
                }
                Ok(json_ok(reply))
            }
            Recorded::Duplicate { reply: Some(first) } => {
                metrics::global().notification(&event.notification.method, "duplicate");
                debug!("duplicate notification; first answer repeated");
                Ok(self.repeat(notification, &first).await)
            }
            // Recorded earlier while a decision was awaited; keep waiting for it.
            Recorded::Duplicate { reply: None } => {
                self.await_decision(notification, &event.notification).await
            }
        }
    }

    /// Adds a stored notification to its order's state (duplicates too: a fact counts once, and
    /// a resend fills in an update that failed the first time). Never fails the answer.
    async fn note_order(&self, notification: &SignedPart, logged: &LoggedNotification) {
        let Some(fact) = Fact::notification(
            &logged.method,
            &logged.notification_id,
            &logged.message_id,
            &notification.data,
            logged.received_ms,
        ) else {
            return;
        };
        let book = OrderBook::new(self.store.order_states.clone());
        if let Err(error) = book.record(&fact).await {
            metrics::global().store_errors.inc();
            warn!(%error, "order state not updated; the notification is stored and answered");
        }
    }

    /// Adds the answer given to a Withdraw `debit` (its [`Fact::answer`]: the decision, or the
    /// fallback) to its order's state. Never fails the answer.
    async fn note_decision(&self, fact: Option<Fact>) {
        let Some(fact) = fact else {
            return;
        };
        let book = OrderBook::new(self.store.order_states.clone());
        if let Err(error) = book.record(&fact).await {
            metrics::global().store_errors.inc();
            warn!(%error, "withdraw decision not recorded in the order state; the answer is sent");
        }
    }

    /// Caches the AccountID of an `account` notification for the order's end user (known when
    /// this sidecar created the order). Best effort: the notification is stored either way.
    async fn cache_account(&self, notification: &SignedPart, logged: &LoggedNotification) {
        let end_user_id = match self.accounts.end_user_for_order(&logged.order_id).await {
            Ok(Some(end_user_id)) => end_user_id,
            Ok(None) => {
                return debug!(order_id = %logged.order_id, "account notification for an order this sidecar did not create; not cached");
            }
            Err(error) => return warn!(%error, "account cache unavailable"),
        };
        let Kind::Account(notified) = Kind::parse("account", &notification.data) else {
            return;
        };
        let account = Account {
            account_id: notified.account_id,
            end_user_id,
            bank: notified.bank,
            clearing_house: notified.clearing_house,
            descriptor: notified.descriptor,
            last_digits: notified.last_digits,
            verified: notified.verified,
            source: "account_notification".into(),
            last_seen_ms: logged.received_ms,
        };
        if account.account_id.is_empty() {
            return;
        }
        if let Err(error) = self.accounts.put(&account, None).await {
            warn!(%error, account_id = %account.account_id, "could not cache an account");
        }
    }

    /// Whether the notification waits for a subscriber's decision (the rule is in `decisions`;
    /// only a `debit` needs the order looked up).
    async fn needs_decision(&self, logged: &LoggedNotification) -> Result<bool, store::Error> {
        let from_withdraw =
            logged.method == "debit" && self.store.orders.is_withdraw(&logged.order_id).await?;
        Ok(decisions::required(&logged.method, from_withdraw))
    }

    async fn await_decision(
        &self,
        notification: &SignedPart,
        logged: &LoggedNotification,
    ) -> Result<Response<Full<Bytes>>, store::Error> {
        let decision = decisions::wait(
            &self.store.decisions,
            &logged.notification_id,
            self.decision_deadline,
        )
        .await?;
        let (decision, outcome) = match (decision, self.decision_fallback) {
            (Some(decision), _) => (decision, "decided"),
            (None, DecisionFallback::Answer) => (Decision::fallback(&logged.method), "fallback"),
            (None, DecisionFallback::Withhold) => {
                metrics::global().notification(&logged.method, "withheld");
                info!(notification_id = %logged.notification_id, method = %logged.method, "no decision in time; withholding the answer so Trustly resends");
                return Ok(text(StatusCode::SERVICE_UNAVAILABLE, "decision pending"));
            }
        };
        let reply = self.sign_decision(notification, &decision).await;
        self.store
            .log
            .set_reply(&logged.notification_id, &reply)
            .await?;
        self.note_decision(Fact::answer(logged, &decision.status, now_ms()))
            .await;
        metrics::global().notification(&logged.method, outcome);
        Ok(json_ok(reply))
    }

    /// The answer to a repeated notification: the stored bytes when Trustly resent the same
    /// message; for a resend under a new uuid, the same status signed for that uuid.
    async fn repeat(&self, notification: &SignedPart, stored: &Bytes) -> Response<Full<Bytes>> {
        match wire::parse_notification_response(stored) {
            Ok(first) if first.uuid == notification.uuid && first.method == notification.method => {
                json_ok(stored.clone())
            }
            Ok(first) => {
                let status = first
                    .data
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("OK");
                let limit = first
                    .data
                    .get("limit")
                    .and_then(Value::as_str)
                    .and_then(|limit| limit.parse().ok());
                let decision = Decision::new(status, limit);
                json_ok(self.sign_decision(notification, &decision).await)
            }
            Err(_) => json_ok(stored.clone()),
        }
    }

    /// `{"result": {signature, uuid, method, data: {"status": ...}}, "version": "1.1"}`, with the
    /// signature covering all of `data`.
    async fn sign_reply(&self, notification: &SignedPart, status: &str) -> Bytes {
        self.sign_decision(notification, &Decision::new(status, None))
            .await
    }

    /// The signed answer carrying `decision` (its `limit` too: the signature covers all of
    /// `data`, unlike the clients that add fields after signing, spec §4.3).
    async fn sign_decision(&self, notification: &SignedPart, decision: &Decision) -> Bytes {
        let data = decision.data();
        let plaintext = canonical::plaintext(&notification.method, &notification.uuid, &data);
        let signer = Arc::clone(&self.merchant);
        let signature = match self
            .crypto
            .run(signer.inline(), move || signer.sign(plaintext.as_bytes()))
            .await
        {
            Ok(Ok(signature)) => signature,
            Ok(Err(error)) | Err(error) => {
                // Trustly will find the answer invalid and resend: nothing is lost.
                warn!(%error, "could not sign a notification answer");
                String::new()
            }
        };
        let body =
            wire::notification_response(&notification.method, &notification.uuid, &signature, data);
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    }
}

fn json_ok(body: Bytes) -> Response<Full<Bytes>> {
    http_server::response(StatusCode::OK, "application/json; charset=utf-8", body)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    http_server::response(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}
