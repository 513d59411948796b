//! `trustly.v1.PaymentService`: a thin adapter over the payment use cases (`crate::payments`).
//!
//! Each RPC validates its `pb` request into a prepared wire-core call (`convert`), runs the use
//! case, and turns the answer back into `pb`, with response metadata for a replayed answer or the
//! age of a polled one. The engine (idempotency, polling window, accounts) lives in `payments`.
//!
//! Idempotency without a store: the JSON-RPC UUID is derived from (username, method, key), where
//! the key is the MessageID or `request_id`. A retry with the same key and the same fields is then
//! the byte-identical signed request, which Trustly answers with its first answer instead of acting
//! again (spec §8); the same key with different fields gets 688. The Redis layer (issue 6) adds
//! stored outcomes on top.

use tonic::{Request, Response, Status};

use super::{
    Error,
    convert::{self, Defaults},
};
use crate::{
    payments::{Answer, BankDetails, Error as EngineError, Payments as Engine, Prepared},
    pb::{self, payment_service_server::PaymentService},
    trustly::methods as m,
};

/// The `PaymentService` implementation.
#[derive(Clone)]
pub struct Payments {
    engine: Engine,
    defaults: Defaults,
}

impl Payments {
    pub fn new(engine: Engine, defaults: Defaults) -> Self {
        Self { engine, defaults }
    }

    /// The payment engine behind the service (the balance monitor shares it).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Response metadata set when the answer is a stored outcome, not a new call to Trustly.
pub const REPLAY_METADATA: &str = "trustly-idempotent-replay";

/// Response metadata set when a rate-limited call (Balance, GetWithdrawals) was answered with the
/// last answer instead of a new call to Trustly: that answer's age in whole seconds.
pub const ANSWER_AGE_METADATA: &str = "trustly-answer-age-seconds";

/// Runs a handler body and turns its answer into a gRPC reply with the replay / age metadata.
/// (Latency and status codes are recorded for every RPC by the server's metrics layer.)
async fn respond<T>(body: impl std::future::Future<Output = Result<Answer<T>, Error>>) -> Reply<T> {
    body.await.map_err(Status::from).map(|answer| {
        let mut response = Response::new(answer.value);
        if answer.replayed {
            response.metadata_mut().insert(
                REPLAY_METADATA,
                tonic::metadata::MetadataValue::from_static("true"),
            );
        }
        if let Some(age) = answer.age {
            response
                .metadata_mut()
                .insert(ANSWER_AGE_METADATA, age.into());
        }
        response
    })
}

/// An opened order (Deposit, Withdraw, SelectAccount), as the engine answers.
type Opened = Result<Answer<m::OrderWithUrl>, EngineError>;

impl Payments {
    /// Deposit, Withdraw, SelectAccount: the order that `open` opens is linked to its end user.
    async fn open(
        &self,
        end_user_id: String,
        prepared: Prepared,
        open: impl AsyncFnOnce(&Engine, Prepared, &str) -> Opened,
    ) -> Opened {
        open(&self.engine, prepared, &end_user_id).await
    }

    /// RegisterAccount: its bank details key the account cache, read before the request is used.
    async fn registration(
        &self,
        request: pb::RegisterAccountRequest,
    ) -> Result<Answer<m::AccountRegistration>, Error> {
        let end_user_id = request.end_user_id.clone();
        let bank = request.account.as_ref().map(|a| BankDetails {
            clearing_house: a.clearing_house.clone(),
            bank_number: a.bank_number.clone(),
            account_number: a.account_number.clone(),
        });
        let prepared = convert::register_account(request)?;
        Ok(self
            .engine
            .register_account(prepared, end_user_id, bank.as_ref())
            .await?)
    }
}

/// `From` Trustly's answer for each `pb` response that carries it in the same fields.
macro_rules! from_answer {
    ($answer:ty, |$a:ident| $build:block => $($response:ident),+) => {$(
        impl From<$answer> for pb::$response {
            fn from($a: $answer) -> Self $build
        }
    )+};
}

from_answer!(m::OrderWithUrl, |a| {
    let (order_id, url, extra_fields) = convert::order_with_url(a);
    Self { order_id, url, extra_fields }
} => DepositResponse, WithdrawResponse, SelectAccountResponse);

from_answer!(m::OrderResult, |a| {
    let extra_fields = convert::extra_fields(a.extra);
    Self { order_id: a.order_id, accepted: a.accepted, extra_fields }
} => RefundResponse, ApproveWithdrawalResponse, DenyWithdrawalResponse, AccountPayoutResponse,
    RegisterAccountPayoutResponse);

fn registered(a: m::AccountRegistration) -> pb::RegisterAccountResponse {
    pb::RegisterAccountResponse {
        account_id: a.account_id,
        clearing_house: a.clearinghouse,
        bank: a.bank,
        descriptor: a.descriptor,
        extra_fields: convert::extra_fields(a.extra),
    }
}

fn charged(a: m::ChargeResult) -> pb::ChargeResponse {
    pb::ChargeResponse {
        accepted: a.accepted,
        order_id: a.order_id.unwrap_or_default(),
        rejected: a.rejected.unwrap_or_default(),
        extra_fields: convert::extra_fields(a.extra),
    }
}

fn charge_cancelled(a: m::ChargeResult) -> pb::CancelChargeResponse {
    pb::CancelChargeResponse {
        accepted: a.accepted,
        rejected: a.rejected.unwrap_or_default(),
        extra_fields: convert::extra_fields(a.extra),
    }
}

fn settlement(a: m::SettlementReference) -> pb::MerchantSettlementResponse {
    pb::MerchantSettlementResponse {
        reference: a.reference,
        extra_fields: convert::extra_fields(a.extra),
    }
}

/// Declares `PaymentService`, one row per RPC: its method with its `pb` request and response
/// types, then the use case that answers it (given the service and the request under the two
/// names before the rows; `?` refuses an invalid request) and how its answer becomes the
/// response (`From` unless named). Every RPC then goes through `respond` alike.
macro_rules! payment_service {
    (|$service:ident, $request:ident|
     $($method:ident($req:ident) -> $resp:ident: $answer:expr $(, $reply:expr)?;)+) => {
        #[tonic::async_trait]
        impl PaymentService for Payments {$(
            async fn $method(&self, request: Request<pb::$req>) -> Reply<pb::$resp> {
                let ($service, $request) = (self, request.into_inner());
                respond(async move {
                    Ok($answer.await?.map(payment_service!(@reply $($reply)?)))
                })
                .await
            }
        )+}
    };
    (@reply) => { Into::into };
    (@reply $reply:expr) => { $reply };
}

payment_service! { |s, r|
    deposit(DepositRequest) -> DepositResponse:
        s.open(r.end_user_id.clone(), convert::deposit(r, &s.defaults)?, Engine::open_order);
    withdraw(WithdrawRequest) -> WithdrawResponse:
        s.open(r.end_user_id.clone(), convert::withdraw(r, &s.defaults)?, Engine::withdraw);
    select_account(SelectAccountRequest) -> SelectAccountResponse:
        s.open(r.end_user_id.clone(), convert::select_account(r, &s.defaults)?, Engine::open_order);
    refund(RefundRequest) -> RefundResponse:
        s.engine.call::<m::OrderResult>(convert::refund(r)?);
    approve_withdrawal(ApproveWithdrawalRequest) -> ApproveWithdrawalResponse:
        s.engine.call::<m::OrderResult>(convert::approve_withdrawal(r)?);
    deny_withdrawal(DenyWithdrawalRequest) -> DenyWithdrawalResponse:
        s.engine.call::<m::OrderResult>(convert::deny_withdrawal(r)?);
    register_account(RegisterAccountRequest) -> RegisterAccountResponse:
        s.registration(r), registered;
    account_payout(AccountPayoutRequest) -> AccountPayoutResponse:
        s.engine.call::<m::OrderResult>(convert::account_payout(r, &s.defaults)?);
    register_account_payout(RegisterAccountPayoutRequest) -> RegisterAccountPayoutResponse:
        s.engine.call::<m::OrderResult>(convert::register_account_payout(r, &s.defaults)?);
    get_withdrawals(GetWithdrawalsRequest) -> GetWithdrawalsResponse:
        s.engine.withdrawals(convert::get_withdrawals(r)?), convert::withdrawals;
    balance(BalanceRequest) -> BalanceResponse:
        { let pb::BalanceRequest {} = r; s.engine.refresh_balances() }, convert::balances;
    account_ledger(AccountLedgerRequest) -> AccountLedgerResponse:
        s.engine.call(convert::account_ledger(r)?), convert::ledger;
    settlement_report(SettlementReportRequest) -> SettlementReportResponse:
        s.engine.settlement_report(convert::settlement_report(r)?), convert::settlement_rows;
    charge(ChargeRequest) -> ChargeResponse:
        s.engine.call(convert::charge(r, &s.defaults)?), charged;
    cancel_charge(CancelChargeRequest) -> CancelChargeResponse:
        s.engine.call(convert::cancel_charge(r)?), charge_cancelled;
    merchant_settlement(MerchantSettlementRequest) -> MerchantSettlementResponse:
        s.engine.call(convert::merchant_settlement(r)?), settlement;
}
