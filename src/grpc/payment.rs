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

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use super::{
    Error,
    convert::{self, Defaults},
};
use crate::{
    metrics,
    payments::{self, Answer, BankDetails},
    pb::{self, payment_service_server::PaymentService},
    trustly::methods as m,
};

/// The `PaymentService` implementation.
#[derive(Clone)]
pub struct Payments {
    engine: payments::Payments,
    defaults: Defaults,
}

impl Payments {
    pub fn new(engine: payments::Payments, defaults: Defaults) -> Self {
        Self { engine, defaults }
    }

    /// The payment engine behind the service (the balance monitor shares it).
    pub fn engine(&self) -> &payments::Payments {
        &self.engine
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// Response metadata set when the answer is a stored outcome, not a new call to Trustly.
pub const REPLAY_METADATA: &str = "trustly-idempotent-replay";

/// Response metadata set when a rate-limited call (Balance, GetWithdrawals) was answered with the
/// last answer instead of a new call to Trustly: that answer's age in whole seconds.
pub const ANSWER_AGE_METADATA: &str = "trustly-answer-age-seconds";

/// Runs a handler body and turns its answer into a gRPC reply with the replay / age metadata,
/// recording the RPC's latency by status code.
async fn respond<T>(
    rpc: &'static str,
    body: impl std::future::Future<Output = Result<Answer<T>, Error>>,
) -> Reply<T> {
    let started = std::time::Instant::now();
    let reply = body.await.map_err(Status::from).map(|answer| {
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
    });
    let code = reply
        .as_ref()
        .map_or_else(Status::code, |_| tonic::Code::Ok);
    metrics::global().rpc(rpc, &format!("{code:?}"), started.elapsed());
    reply
}

/// The `pb` shape every order-result RPC answers with.
fn order_result<T>(
    answer: m::OrderResult,
    build: fn(String, bool, HashMap<String, String>) -> T,
) -> T {
    build(
        answer.order_id,
        answer.accepted,
        convert::extra_fields(answer.extra),
    )
}

#[tonic::async_trait]
impl PaymentService for Payments {
    async fn deposit(&self, request: Request<pb::DepositRequest>) -> Reply<pb::DepositResponse> {
        respond("Deposit", async {
            let request = request.into_inner();
            let end_user_id = request.end_user_id.clone();
            let prepared = convert::deposit(request, &self.defaults)?;
            let answer = self.engine.open_order(prepared, &end_user_id).await?;
            Ok(answer.map(|a| {
                let (order_id, url, extra_fields) = convert::order_with_url(a);
                pb::DepositResponse {
                    order_id,
                    url,
                    extra_fields,
                }
            }))
        })
        .await
    }

    async fn withdraw(&self, request: Request<pb::WithdrawRequest>) -> Reply<pb::WithdrawResponse> {
        respond("Withdraw", async {
            let request = request.into_inner();
            let end_user_id = request.end_user_id.clone();
            let prepared = convert::withdraw(request, &self.defaults)?;
            let answer = self.engine.withdraw(prepared, &end_user_id).await?;
            Ok(answer.map(|a| {
                let (order_id, url, extra_fields) = convert::order_with_url(a);
                pb::WithdrawResponse {
                    order_id,
                    url,
                    extra_fields,
                }
            }))
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
            let answer = self.engine.open_order(prepared, &end_user_id).await?;
            Ok(answer.map(|a| {
                let (order_id, url, extra_fields) = convert::order_with_url(a);
                pb::SelectAccountResponse {
                    order_id,
                    url,
                    extra_fields,
                }
            }))
        })
        .await
    }

    async fn refund(&self, request: Request<pb::RefundRequest>) -> Reply<pb::RefundResponse> {
        respond("Refund", async {
            let prepared = convert::refund(request.into_inner())?;
            let answer = self.engine.call(prepared).await?;
            Ok(answer.map(|a| {
                order_result(a, |order_id, accepted, extra_fields| pb::RefundResponse {
                    order_id,
                    accepted,
                    extra_fields,
                })
            }))
        })
        .await
    }

    async fn approve_withdrawal(
        &self,
        request: Request<pb::ApproveWithdrawalRequest>,
    ) -> Reply<pb::ApproveWithdrawalResponse> {
        respond("ApproveWithdrawal", async {
            let prepared = convert::approve_withdrawal(request.into_inner())?;
            let answer = self.engine.call(prepared).await?;
            Ok(answer.map(|a| {
                order_result(a, |order_id, accepted, extra_fields| {
                    pb::ApproveWithdrawalResponse {
                        order_id,
                        accepted,
                        extra_fields,
                    }
                })
            }))
        })
        .await
    }

    async fn deny_withdrawal(
        &self,
        request: Request<pb::DenyWithdrawalRequest>,
    ) -> Reply<pb::DenyWithdrawalResponse> {
        respond("DenyWithdrawal", async {
            let prepared = convert::deny_withdrawal(request.into_inner())?;
            let answer = self.engine.call(prepared).await?;
            Ok(answer.map(|a| {
                order_result(a, |order_id, accepted, extra_fields| {
                    pb::DenyWithdrawalResponse {
                        order_id,
                        accepted,
                        extra_fields,
                    }
                })
            }))
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
            let bank = request.account.as_ref().map(|a| BankDetails {
                clearing_house: a.clearing_house.clone(),
                bank_number: a.bank_number.clone(),
                account_number: a.account_number.clone(),
            });
            let prepared = convert::register_account(request)?;
            let answer = self
                .engine
                .register_account(prepared, end_user_id, bank.as_ref())
                .await?;
            Ok(answer.map(|a| pb::RegisterAccountResponse {
                account_id: a.account_id,
                clearing_house: a.clearinghouse,
                bank: a.bank,
                descriptor: a.descriptor,
                extra_fields: convert::extra_fields(a.extra),
            }))
        })
        .await
    }

    async fn account_payout(
        &self,
        request: Request<pb::AccountPayoutRequest>,
    ) -> Reply<pb::AccountPayoutResponse> {
        respond("AccountPayout", async {
            let prepared = convert::account_payout(request.into_inner(), &self.defaults)?;
            let answer = self.engine.call(prepared).await?;
            Ok(answer.map(|a| {
                order_result(a, |order_id, accepted, extra_fields| {
                    pb::AccountPayoutResponse {
                        order_id,
                        accepted,
                        extra_fields,
                    }
                })
            }))
        })
        .await
    }

    async fn register_account_payout(
        &self,
        request: Request<pb::RegisterAccountPayoutRequest>,
    ) -> Reply<pb::RegisterAccountPayoutResponse> {
        respond("RegisterAccountPayout", async {
            let prepared = convert::register_account_payout(request.into_inner(), &self.defaults)?;
            let answer = self.engine.call(prepared).await?;
            Ok(answer.map(|a| {
                order_result(a, |order_id, accepted, extra_fields| {
                    pb::RegisterAccountPayoutResponse {
                        order_id,
                        accepted,
                        extra_fields,
                    }
                })
            }))
        })
        .await
    }

    async fn get_withdrawals(
        &self,
        request: Request<pb::GetWithdrawalsRequest>,
    ) -> Reply<pb::GetWithdrawalsResponse> {
        respond("GetWithdrawals", async {
            let prepared = convert::get_withdrawals(request.into_inner())?;
            let answer = self.engine.withdrawals(prepared).await?;
            Ok(answer.map(convert::withdrawals))
        })
        .await
    }

    async fn balance(&self, request: Request<pb::BalanceRequest>) -> Reply<pb::BalanceResponse> {
        let pb::BalanceRequest {} = request.into_inner();
        respond("Balance", async {
            let answer = self.engine.refresh_balances().await?;
            Ok(answer.map(convert::balances))
        })
        .await
    }

    async fn account_ledger(
        &self,
        request: Request<pb::AccountLedgerRequest>,
    ) -> Reply<pb::AccountLedgerResponse> {
        respond("AccountLedger", async {
            let prepared = convert::account_ledger(request.into_inner())?;
            let answer = self.engine.call(prepared).await?;
            Ok(answer.map(convert::ledger))
        })
        .await
    }

    async fn settlement_report(
        &self,
        request: Request<pb::SettlementReportRequest>,
    ) -> Reply<pb::SettlementReportResponse> {
        respond("SettlementReport", async {
            let prepared = convert::settlement_report(request.into_inner())?;
            let answer = self.engine.settlement_report(prepared).await?;
            Ok(answer.map(convert::settlement_rows))
        })
        .await
    }

    async fn charge(&self, request: Request<pb::ChargeRequest>) -> Reply<pb::ChargeResponse> {
        respond("Charge", async {
            let prepared = convert::charge(request.into_inner(), &self.defaults)?;
            let answer: Answer<m::ChargeResult> = self.engine.call(prepared).await?;
            Ok(answer.map(|a| pb::ChargeResponse {
                accepted: a.accepted,
                order_id: a.order_id.unwrap_or_default(),
                rejected: a.rejected.unwrap_or_default(),
                extra_fields: convert::extra_fields(a.extra),
            }))
        })
        .await
    }

    async fn cancel_charge(
        &self,
        request: Request<pb::CancelChargeRequest>,
    ) -> Reply<pb::CancelChargeResponse> {
        respond("CancelCharge", async {
            let prepared = convert::cancel_charge(request.into_inner())?;
            let answer: Answer<m::ChargeResult> = self.engine.call(prepared).await?;
            Ok(answer.map(|a| pb::CancelChargeResponse {
                accepted: a.accepted,
                rejected: a.rejected.unwrap_or_default(),
                extra_fields: convert::extra_fields(a.extra),
            }))
        })
        .await
    }

    async fn merchant_settlement(
        &self,
        request: Request<pb::MerchantSettlementRequest>,
    ) -> Reply<pb::MerchantSettlementResponse> {
        respond("MerchantSettlement", async {
            let prepared = convert::merchant_settlement(request.into_inner())?;
            let answer: Answer<m::SettlementReference> = self.engine.call(prepared).await?;
            Ok(answer.map(|a| pb::MerchantSettlementResponse {
                reference: a.reference,
                extra_fields: convert::extra_fields(a.extra),
            }))
        })
        .await
    }
}
