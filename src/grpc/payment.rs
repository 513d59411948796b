//! `trustly.v1.PaymentService`: validate → sign → send → verify → typed answer.
//!
//! Idempotency without a store: the JSON-RPC UUID is derived from (username, method, key), where
//! the key is the MessageID or `request_id`. A retry with the same key and the same fields is then
//! the byte-identical signed request, which Trustly answers with its first answer instead of acting
//! again (spec §8); the same key with different fields gets 688. The Redis layer (issue 6) adds
//! stored outcomes on top.

use tonic::{Request, Response, Status};
use tracing::{Instrument, info_span, warn};
use uuid::Uuid;

use super::{
    Error,
    convert::{self, Defaults, Prepared},
};
use std::{collections::HashMap, time::Duration};

use crate::{
    metrics,
    monitor::BalanceWatch,
    pb::{self, payment_service_server::PaymentService},
    store::{
        self, Store,
        accounts::{self, Account, AccountCache, DetailsHasher},
        idempotency::{Begin, Finish, Idempotency, Outcome, Scope},
        polls::{PollBegin, Polls},
    },
    trustly::{
        self, Client, Disposition, ErrorCode, SignedRequest,
        canonical::Variant,
        methods::{self as m, FromData},
    },
};

/// Namespace of the derived JSON-RPC UUIDs (a fixed random UUID, never to change: changing it
/// would turn every retry of an in-flight request into a new request).
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a0e_9b57_4d0b_8c43_1e7a_25d9_b3f4);

/// Where idempotency records live and for how long.
#[derive(Clone)]
pub struct IdempotencySettings {
    pub store: Idempotency,
    /// How long one attempt may hold a key; after it a retry replays the stored request.
    pub lease: Duration,
    pub retention: Duration,
}

/// The AccountID cache as the payment RPCs use it.
#[derive(Clone)]
pub struct AccountSettings {
    pub cache: AccountCache,
    pub hasher: DetailsHasher,
    /// Answer RegisterAccount from the cache when the details are known for the end user.
    pub from_cache: bool,
}

/// The `PaymentService` implementation.
#[derive(Clone)]
pub struct Payments {
    client: Client,
    idempotency: IdempotencySettings,
    accounts: AccountSettings,
    username: String,
    defaults: Defaults,
    /// Withdraw orders are remembered here so their `debit` waits for the merchant's decision.
    log: Store,
    /// Every Balance answer updates the balance gauges.
    balances: BalanceWatch,
    /// The last answers of Balance and GetWithdrawals (per order), shared like the log.
    polls: Polls,
    /// Trustly's polling limit: those are called at most once per this window (zero: no limit).
    poll_window: Duration,
}

impl Payments {
    pub fn new(
        client: Client,
        username: String,
        defaults: Defaults,
        log: Store,
        idempotency: IdempotencySettings,
        accounts: AccountSettings,
        balances: BalanceWatch,
    ) -> Self {
        Self {
            client,
            idempotency,
            accounts,
            username,
            defaults,
            polls: log.polls.clone(),
            log,
            balances,
            poll_window: crate::config::DEFAULT_POLL_WINDOW,
        }
    }

    /// Sets the polling window of Balance and GetWithdrawals (see `TRUSTLY_SIDECAR_POLL_WINDOW`).
    pub fn with_poll_window(mut self, window: Duration) -> Self {
        self.poll_window = window;
        self
    }

    /// Calls a rate-limited method (Balance; GetWithdrawals per order) at most once per window
    /// across the fleet: inside the window the last answer is returned, and its age goes into the
    /// response metadata ([`ANSWER_AGE_METADATA`]). While the window's first call is still in
    /// flight and there is no earlier answer: `ABORTED` (REQUEST_IN_PROGRESS), retry shortly.
    async fn polled(&self, name: &str, prepared: Prepared) -> Result<serde_json::Value, Error> {
        if self.poll_window.is_zero() {
            return self.execute(prepared).await;
        }
        match self.polls.begin(name, self.poll_window).await? {
            PollBegin::Call => {
                let result = self.execute(prepared).await;
                let answer = result.as_ref().ok().map(serde_json::Value::to_string);
                if let Err(error) = self.polls.finish(name, answer.as_deref()).await {
                    warn!(%error, poll = name, "could not store a poll answer; the next call asks Trustly once its window ends");
                }
                result
            }
            PollBegin::Cached { data, received_ms } => {
                let age = store::now_ms().saturating_sub(received_ms) / 1000;
                mark_answer_age(age);
                tracing::debug!(
                    poll = name,
                    age_seconds = age,
                    "answered from the last poll, inside Trustly's window"
                );
                serde_json::from_str(&data)
                    .map_err(|_| Error::Store(store::Error::Protocol("stored poll answer")))
            }
            PollBegin::Pending => Err(Error::RequestInProgress),
        }
    }

    /// Calls Balance and records the answer in the balance gauges (the Balance RPC and the
    /// balance monitor both come here).
    pub async fn refresh_balances(&self) -> Result<pb::BalanceResponse, Error> {
        let data = self
            .polled("Balance", convert::balance(pb::BalanceRequest {})?)
            .await?;
        let balances = Vec::<m::CurrencyBalance>::from_data(data).map_err(unexpected)?;
        self.balances
            .observe(balances.iter().map(|b| (b.currency.as_str(), b.balance)));
        Ok(convert::balances(balances))
    }

    /// Links an order to its end user, so its `account` notification can be cached (best effort:
    /// the order exists either way).
    async fn remember_order(&self, order_id: &str, end_user_id: &str) {
        if let Err(error) = self
            .accounts
            .cache
            .remember_order(order_id, end_user_id)
            .await
        {
            warn!(%error, %order_id, "could not link an order to its end user for the account cache");
        }
    }

    /// The JSON-RPC UUID of a request: derived from its idempotency key, or fresh.
    pub fn uuid_for(&self, method: &str, key: Option<&str>) -> Uuid {
        match key {
            Some(key) => Uuid::new_v5(
                &IDEMPOTENCY_NAMESPACE,
                format!("{}\n{method}\n{key}", self.username).as_bytes(),
            ),
            None => Uuid::new_v4(),
        }
    }

    /// Signs and sends a prepared request, returning Trustly's verified `data`.
    ///
    /// With an idempotency key the key is reserved first (fail closed if the store is down), a
    /// finished key answers from its stored outcome, and a key whose earlier attempt was ambiguous
    /// (or whose process died) sends the stored signed request again, byte for byte.
    async fn execute(&self, prepared: Prepared) -> Result<serde_json::Value, Error> {
        let uuid = self.uuid_for(prepared.method, prepared.idempotency_key.as_deref());
        // The RPC's span (see `lib::rpc_span`) carries the order's identifiers into every log line.
        let rpc_span = tracing::Span::current();
        for (field, name) in [("MessageID", "messageid"), ("OrderID", "orderid")] {
            if let Some(value) = prepared.data.get(field) {
                rpc_span.record(name, tracing::field::display(identifier(value)));
            }
        }
        let span = info_span!("trustly", method = prepared.method, %uuid);
        let result = async {
            let fingerprint = fingerprint(prepared.method, &prepared.data);
            let signed = self
                .client
                .sign_data(prepared.method, uuid, prepared.data)
                .await?;
            let Some(key) = prepared.idempotency_key else {
                return self.send(&signed).await;
            };
            let scope = Scope {
                merchant: &self.username,
                method: prepared.method,
                key: &key,
            };
            let idempotency = &self.idempotency;
            let mut replay = false;
            let request = match idempotency
                .store
                .begin(
                    &scope,
                    &fingerprint,
                    &signed.uuid,
                    &signed.body,
                    idempotency.lease,
                    idempotency.retention,
                )
                .await?
            {
                Begin::Proceed => signed,
                Begin::Replay { request } => {
                    tracing::info!("replaying the stored signed request");
                    metrics::global().idempotency("resent");
                    replay = true;
                    SignedRequest {
                        body: request,
                        ..signed
                    }
                }
                Begin::Finished(outcome) => {
                    mark_replayed();
                    metrics::global().idempotency("replayed");
                    return match outcome {
                        Outcome::Success { data } => serde_json::from_str(&data)
                            .map_err(|_| Error::Store(store::Error::Protocol("stored answer"))),
                        Outcome::Rejected { code, message } => Err(trustly::Error::Rejected {
                            code: ErrorCode::from_code(code, &message),
                            message,
                        }
                        .into()),
                    };
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
                })) if replay => {
                    let order_id =
                        self.log
                            .orders
                            .for_message(&key)
                            .await
                            .unwrap_or_else(|error| {
                                warn!(%error, "could not look up the order of a MessageID");
                                None
                            });
                    warn!(
                        ?order_id,
                        "a replay met 637: the order exists and is not re-issued"
                    );
                    Err(Error::OrderExists { order_id })
                }
                other => other,
            };
            let finish = match &outcome {
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
            };
            if let Err(error) = idempotency.store.finish(&scope, &finish).await {
                // The lease expires; the next call with the key replays the stored request.
                warn!(%error, "could not record the outcome of an idempotent call");
            }
            outcome
        }
        .instrument(span)
        .await;
        if let Ok(data) = &result
            && let Some(order_id) = data.get("orderid")
        {
            rpc_span.record("orderid", tracing::field::display(identifier(order_id)));
        }
        result
    }

    async fn send(&self, request: &SignedRequest) -> Result<serde_json::Value, Error> {
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

    async fn call<T: FromData>(&self, prepared: Prepared) -> Result<T, Error> {
        let data = self.execute(prepared).await?;
        T::from_data(data).map_err(|e| {
            let error = trustly::Error::UnexpectedData(e);
            log_failure(&error);
            Error::from(error)
        })
    }
}

/// An identifier (OrderID, MessageID) as logged: strings without quotes, numbers as written.
fn identifier(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Logs a failed Trustly call at the edge with its cause (the client only sees a reason).
fn log_failure(error: &trustly::Error) {
    match error.disposition() {
        Disposition::Definitive => tracing::info!(%error, "trustly refused the request"),
        Disposition::Ambiguous => warn!(%error, "trustly outcome unknown"),
        Disposition::NotSent => tracing::error!(%error, "request not sent"),
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Response metadata set when the answer is a stored outcome, not a new call to Trustly.
pub const REPLAY_METADATA: &str = "trustly-idempotent-replay";

/// Response metadata set when a rate-limited call (Balance, GetWithdrawals) was answered with the
/// last answer instead of a new call to Trustly: that answer's age in whole seconds.
pub const ANSWER_AGE_METADATA: &str = "trustly-answer-age-seconds";

tokio::task_local! {
    /// Set by `execute` when the answer came from a finished idempotency record.
    static REPLAYED: std::cell::Cell<bool>;
    /// Set by `polled` when the answer is the last poll's, with its age in seconds.
    static ANSWER_AGE: std::cell::Cell<Option<u64>>;
}

fn mark_replayed() {
    let _ = REPLAYED.try_with(|replayed| replayed.set(true));
}

fn mark_answer_age(seconds: u64) {
    let _ = ANSWER_AGE.try_with(|age| age.set(Some(seconds)));
}

/// Runs a handler body and turns its result into a gRPC reply, marking replays and recording the
/// RPC's latency by status code.
async fn respond<T>(
    rpc: &'static str,
    body: impl std::future::Future<Output = Result<T, Error>>,
) -> Reply<T> {
    let started = std::time::Instant::now();
    let reply = REPLAYED
        .scope(
            std::cell::Cell::new(false),
            ANSWER_AGE.scope(std::cell::Cell::new(None), async {
                let result = body.await;
                let replayed = REPLAYED.with(std::cell::Cell::get);
                let age = ANSWER_AGE.with(std::cell::Cell::get);
                result.map_err(Status::from).map(|value| {
                    let mut response = Response::new(value);
                    if replayed {
                        response.metadata_mut().insert(
                            REPLAY_METADATA,
                            tonic::metadata::MetadataValue::from_static("true"),
                        );
                    }
                    if let Some(age) = age {
                        response
                            .metadata_mut()
                            .insert(ANSWER_AGE_METADATA, age.into());
                    }
                    response
                })
            }),
        )
        .await;
    let code = reply
        .as_ref()
        .map_or_else(Status::code, |_| tonic::Code::Ok);
    metrics::global().rpc(rpc, code, started.elapsed());
    reply
}

/// A request's fingerprint: SHA-256 over the method and its `Data` without credentials, in the
/// map's (sorted) key order, so the same fields always give the same fingerprint.
fn fingerprint(method: &str, data: &serde_json::Map<String, serde_json::Value>) -> String {
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

#[tonic::async_trait]
impl PaymentService for Payments {
    async fn deposit(&self, request: Request<pb::DepositRequest>) -> Reply<pb::DepositResponse> {
        respond("Deposit", async {
            let request = request.into_inner();
            let end_user_id = request.end_user_id.clone();
            let prepared = convert::deposit(request, &self.defaults)?;
            let (order_id, url, extra_fields) = convert::order_with_url(self.call(prepared).await?);
            self.remember_order(&order_id, &end_user_id).await;
            Ok(pb::DepositResponse {
                order_id,
                url,
                extra_fields,
            })
        })
        .await
    }

    async fn withdraw(&self, request: Request<pb::WithdrawRequest>) -> Reply<pb::WithdrawResponse> {
        respond("Withdraw", async {
                let request = request.into_inner();
                let end_user_id = request.end_user_id.clone();
                let prepared = convert::withdraw(request, &self.defaults)?;
                let (order_id, url, extra_fields) =
                    convert::order_with_url(self.call(prepared).await?);
                self.remember_order(&order_id, &end_user_id).await;
                if let Err(error) = self.log.orders.remember_withdraw(&order_id).await {
                    // The withdrawal exists; only the decision routing of its `debit` is affected.
                    tracing::error!(%error, %order_id, "could not record a Withdraw order; its debit will not wait for a decision");
                }
                Ok(pb::WithdrawResponse {
                    order_id,
                    url,
                    extra_fields,
                })
        })
        .await
    }

    async fn select_account(
        &self,
        request: Request<pb::SelectAccountRequest>,
    ) -> Reply<pb::SelectAccountResponse> {
        respond("SelectAccount", async {
            let request = request.into_inner();
            let end_user_id = request.end_user_id.clone();
            let prepared = convert::select_account(request, &self.defaults)?;
            let (order_id, url, extra_fields) = convert::order_with_url(self.call(prepared).await?);
            self.remember_order(&order_id, &end_user_id).await;
            Ok(pb::SelectAccountResponse {
                order_id,
                url,
                extra_fields,
            })
        })
        .await
    }

    async fn refund(&self, request: Request<pb::RefundRequest>) -> Reply<pb::RefundResponse> {
        respond("Refund", async {
            let answer: m::OrderResult = self.call(convert::refund(request.into_inner())?).await?;
            Ok(pb::RefundResponse {
                order_id: answer.order_id,
                accepted: answer.accepted,
                extra_fields: convert::extra_fields(answer.extra),
            })
        })
        .await
    }

    async fn approve_withdrawal(
        &self,
        request: Request<pb::ApproveWithdrawalRequest>,
    ) -> Reply<pb::ApproveWithdrawalResponse> {
        respond("ApproveWithdrawal", async {
            let answer: m::OrderResult = self
                .call(convert::approve_withdrawal(request.into_inner())?)
                .await?;
            Ok(pb::ApproveWithdrawalResponse {
                order_id: answer.order_id,
                accepted: answer.accepted,
                extra_fields: convert::extra_fields(answer.extra),
            })
        })
        .await
    }

    async fn deny_withdrawal(
        &self,
        request: Request<pb::DenyWithdrawalRequest>,
    ) -> Reply<pb::DenyWithdrawalResponse> {
        respond("DenyWithdrawal", async {
            let answer: m::OrderResult = self
                .call(convert::deny_withdrawal(request.into_inner())?)
                .await?;
            Ok(pb::DenyWithdrawalResponse {
                order_id: answer.order_id,
                accepted: answer.accepted,
                extra_fields: convert::extra_fields(answer.extra),
            })
        })
        .await
    }

    async fn register_account(
        &self,
        request: Request<pb::RegisterAccountRequest>,
    ) -> Reply<pb::RegisterAccountResponse> {
        respond("RegisterAccount", async {
            let request = request.into_inner();
            let end_user_id = request.end_user_id.clone();
            let details = request.account.as_ref().map(|a| {
                self.accounts.hasher.key(&end_user_id, &a.clearing_house, &a.bank_number, &a.account_number)
            });
            let prepared = convert::register_account(request)?;
            // The same details always give the same AccountID (spec §5.8): answer from the cache.
            if let (true, Some(details)) = (self.accounts.from_cache, &details) {
                match self.accounts.cache.find(details).await {
                    Ok(Some(account)) => {
                        tracing::debug!(account_id = %account.account_id, "RegisterAccount answered from the account cache");
                        return Ok(pb::RegisterAccountResponse {
                            account_id: account.account_id,
                            clearing_house: account.clearing_house,
                            bank: account.bank,
                            descriptor: account.descriptor,
                            extra_fields: HashMap::new(),
                        });
                    }
                    Ok(None) => {}
                    Err(error) => warn!(%error, "account cache unavailable; asking Trustly"),
                }
            }
            let answer: m::AccountRegistration = self.call(prepared).await?;
            let account = Account {
                account_id: answer.account_id.clone(),
                end_user_id,
                bank: answer.bank.clone(),
                clearing_house: answer.clearinghouse.clone(),
                descriptor: answer.descriptor.clone(),
                last_digits: answer.descriptor.chars().filter(char::is_ascii_digit).collect(),
                verified: true,
                source: "register_account".into(),
                last_seen_ms: accounts::now_ms(),
            };
            if let Err(error) = self.accounts.cache.put(&account, details.as_ref()).await {
                warn!(%error, account_id = %account.account_id, "could not cache a registered account");
            }
            Ok(pb::RegisterAccountResponse {
                account_id: answer.account_id,
                clearing_house: answer.clearinghouse,
                bank: answer.bank,
                descriptor: answer.descriptor,
                extra_fields: convert::extra_fields(answer.extra),
            })
        })
        .await
    }

    async fn account_payout(
        &self,
        request: Request<pb::AccountPayoutRequest>,
    ) -> Reply<pb::AccountPayoutResponse> {
        respond("AccountPayout", async {
            let answer: m::OrderResult = self
                .call(convert::account_payout(
                    request.into_inner(),
                    &self.defaults,
                )?)
                .await?;
            Ok(pb::AccountPayoutResponse {
                order_id: answer.order_id,
                accepted: answer.accepted,
                extra_fields: convert::extra_fields(answer.extra),
            })
        })
        .await
    }

    async fn register_account_payout(
        &self,
        request: Request<pb::RegisterAccountPayoutRequest>,
    ) -> Reply<pb::RegisterAccountPayoutResponse> {
        respond("RegisterAccountPayout", async {
            let answer: m::OrderResult = self
                .call(convert::register_account_payout(
                    request.into_inner(),
                    &self.defaults,
                )?)
                .await?;
            Ok(pb::RegisterAccountPayoutResponse {
                order_id: answer.order_id,
                accepted: answer.accepted,
                extra_fields: convert::extra_fields(answer.extra),
            })
        })
        .await
    }

    async fn get_withdrawals(
        &self,
        request: Request<pb::GetWithdrawalsRequest>,
    ) -> Reply<pb::GetWithdrawalsResponse> {
        respond("GetWithdrawals", async {
            let prepared = convert::get_withdrawals(request.into_inner())?;
            let order = prepared
                .data
                .get("OrderID")
                .map(identifier)
                .unwrap_or_default();
            let data = self
                .polled(&format!("GetWithdrawals:{order}"), prepared)
                .await?;
            convert::withdrawals(data).map_err(unexpected)
        })
        .await
    }

    async fn balance(&self, request: Request<pb::BalanceRequest>) -> Reply<pb::BalanceResponse> {
        let pb::BalanceRequest {} = request.into_inner();
        respond("Balance", self.refresh_balances()).await
    }

    async fn account_ledger(
        &self,
        request: Request<pb::AccountLedgerRequest>,
    ) -> Reply<pb::AccountLedgerResponse> {
        respond("AccountLedger", async {
            let data = self
                .execute(convert::account_ledger(request.into_inner())?)
                .await?;
            convert::ledger(data).map_err(unexpected)
        })
        .await
    }

    async fn settlement_report(
        &self,
        request: Request<pb::SettlementReportRequest>,
    ) -> Reply<pb::SettlementReportResponse> {
        respond("SettlementReport", async {
            let report: m::SettlementReportCsv = self
                .call(convert::settlement_report(request.into_inner())?)
                .await?;
            convert::settlement_rows(&report.csv).map_err(unexpected)
        })
        .await
    }

    async fn charge(&self, request: Request<pb::ChargeRequest>) -> Reply<pb::ChargeResponse> {
        respond("Charge", async {
            let answer: m::ChargeResult = self
                .call(convert::charge(request.into_inner(), &self.defaults)?)
                .await?;
            Ok(pb::ChargeResponse {
                accepted: answer.accepted,
                order_id: answer.order_id.unwrap_or_default(),
                rejected: answer.rejected.unwrap_or_default(),
                extra_fields: convert::extra_fields(answer.extra),
            })
        })
        .await
    }

    async fn cancel_charge(
        &self,
        request: Request<pb::CancelChargeRequest>,
    ) -> Reply<pb::CancelChargeResponse> {
        respond("CancelCharge", async {
            let answer: m::ChargeResult = self
                .call(convert::cancel_charge(request.into_inner())?)
                .await?;
            Ok(pb::CancelChargeResponse {
                accepted: answer.accepted,
                rejected: answer.rejected.unwrap_or_default(),
                extra_fields: convert::extra_fields(answer.extra),
            })
        })
        .await
    }

    async fn merchant_settlement(
        &self,
        request: Request<pb::MerchantSettlementRequest>,
    ) -> Reply<pb::MerchantSettlementResponse> {
        respond("MerchantSettlement", async {
            let answer: m::SettlementReference = self
                .call(convert::merchant_settlement(request.into_inner())?)
                .await?;
            Ok(pb::MerchantSettlementResponse {
                reference: answer.reference,
                extra_fields: convert::extra_fields(answer.extra),
            })
        })
        .await
    }
}

/// A verified answer that lacks what the method promises: the outcome is unknown to the caller.
fn unexpected(error: m::DataError) -> Error {
    let error = trustly::Error::UnexpectedData(error);
    log_failure(&error);
    Error::from(error)
}
