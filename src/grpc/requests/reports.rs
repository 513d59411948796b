//! Requests that read: withdrawals, balance, ledger, settlement report, and the merchant's own
//! settlement.

use std::collections::HashMap;

use super::{ExtraTarget, Prepared, prepare};
use crate::{
    grpc::{Error, validate::Check},
    pb,
    trustly::methods as m,
};

pub fn get_withdrawals(r: pb::GetWithdrawalsRequest) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let method = c
        .order_id("order_id", &r.order_id)
        .map(m::GetWithdrawals::from);
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
