//! `OrderService.Reconcile`: validates the period, runs `orders::reconcile`, and renders the
//! report.

use rust_decimal::Decimal;
use tonic::Status;

use crate::{
    grpc::{Error, validate::Check},
    orders::reconcile::{self, Mismatch, MismatchKind, Period, Reconciler, Report},
    pb,
};

pub(super) async fn reconcile(
    reconciler: &Reconciler,
    request: pb::ReconcileRequest,
) -> Result<pb::ReconcileResponse, Status> {
    let mut check = Check::default();
    let from = check.date("from_date", &request.from_date, true);
    let to = check.date("to_date", &request.to_date, true);
    let currency = check.optional_currency("currency_code", &request.currency_code);
    check.finish()?;
    let (Some(from), Some(to)) = (from, to) else {
        return Err(Error::invalid("from_date", "must be a date as YYYY-MM-DD").into());
    };
    let period = Period::new(&from, &to).map_err(failed)?;
    let report = reconciler
        .reconcile(&period, currency)
        .await
        .map_err(failed)?;
    Ok(response(report))
}

/// A reconciliation's failure as the API reports it (logged here, mapped by `status.rs`).
fn failed(error: reconcile::Error) -> Status {
    match error {
        reconcile::Error::Period { field, problem } => Error::invalid(field, problem).into(),
        error @ (reconcile::Error::TooManyOrders | reconcile::Error::TooManyLedgerRows) => {
            Error::invalid("to_date", &error.to_string()).into()
        }
        reconcile::Error::Book(error) => super::failed(error),
        reconcile::Error::Ledger(error) => Error::Payment(error).into(),
    }
}

fn response(report: Report) -> pb::ReconcileResponse {
    pb::ReconcileResponse {
        orders_checked: i32::try_from(report.orders_checked).unwrap_or(i32::MAX),
        ledger_rows_checked: i32::try_from(report.ledger_rows_checked).unwrap_or(i32::MAX),
        mismatches: report.mismatches.into_iter().map(mismatch).collect(),
    }
}

fn mismatch(m: Mismatch) -> pb::Mismatch {
    let kind = match m.kind {
        MismatchKind::CreditedWithoutLedgerRow => pb::MismatchKind::CreditedWithoutLedgerRow,
        MismatchKind::LedgerRowWithoutOrder => pb::MismatchKind::LedgerRowWithoutOrder,
        MismatchKind::AmountMismatch => pb::MismatchKind::AmountMismatch,
        MismatchKind::CurrencyMismatch => pb::MismatchKind::CurrencyMismatch,
        MismatchKind::PayoutWithoutLedgerDebit => pb::MismatchKind::PayoutWithoutLedgerDebit,
    };
    pb::Mismatch {
        kind: kind.into(),
        order_id: m.order_id,
        message_id: m.message_id,
        currency_code: m.currency,
        order_amount: m.order_amount.map(amount).unwrap_or_default(),
        ledger_amount: m.ledger_amount.map(amount).unwrap_or_default(),
        detail: m.detail,
    }
}

/// An exact amount with at least two decimals and no trailing zeros past them: the ledger's
/// `5.00000000000000000000` is `5.00`, and `5.001` stays `5.001`.
pub fn amount(value: Decimal) -> String {
    let mut value = value.normalize();
    if value.scale() < crate::money::AMOUNT_SCALE {
        value.rescale(crate::money::AMOUNT_SCALE);
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_keep_every_significant_decimal_and_at_least_two() {
        let parse = |text: &str| text.parse::<Decimal>().unwrap_or_default();
        assert_eq!(amount(parse("5.00000000000000000000")), "5.00");
        assert_eq!(amount(parse("-25")), "-25.00");
        assert_eq!(amount(parse("5.00100000000000000000")), "5.001");
    }
}
