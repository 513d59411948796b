//! Requests that read: withdrawals, balance, ledger and settlement report.

use std::collections::HashMap;

use super::{ExtraTarget, Prepared, prepare};
use crate::{
    grpc::{Error, validate::Check},
    pb,
    trustly::methods::{self as m, Method},
};

/// Prepares a read: it has no idempotency key (reading again is harmless) and its request no
/// `extra_attributes` (so where they would go does not matter).
fn prepare_read<M: Method>(c: Check, method: Option<M>) -> Result<Prepared, Error> {
    prepare(c, method, HashMap::new(), ExtraTarget::Data, None)
}

pub fn get_withdrawals(r: pb::GetWithdrawalsRequest) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let method = c
        .order_id("order_id", &r.order_id)
        .map(m::GetWithdrawals::from);
    prepare_read(c, method)
}

pub fn balance(_: pb::BalanceRequest) -> Result<Prepared, Error> {
    prepare_read(Check::default(), Some(m::Balance::default()))
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
    prepare_read(c, method)
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
    prepare_read(c, method)
}
