//! The settlement report's CSV (ViewAutomaticSettlementDetailsCSV v1.2, spec §5.15): RFC 4180
//! records read by header name into rows of text. Knows Trustly's column names, nothing of the
//! API that serves the rows.

use super::DataError;

/// One settlement report row, as text exactly as Trustly wrote it (empty when the column is
/// missing). `datestamp` is Trustly's timestamp text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettlementRow {
    pub datestamp: String,
    pub account_name: String,
    pub currency: String,
    pub amount: String,
    pub total: String,
    pub order_id: String,
    pub order_type: String,
    pub message_id: String,
    pub username: String,
    pub fx_payment_amount: String,
    pub fx_payment_currency: String,
    pub settlement_bank_withdrawal_id: String,
    pub external_reference: String,
}

/// The header names that fill each of `SettlementRow`'s fields, in field order; the first one
/// present is read. Both `extraref` and `externalreference` fill `external_reference`.
const COLUMNS: [&[&str]; 13] = [
    &["datestamp"],
    &["accountname"],
    &["currency"],
    &["amount"],
    &["total"],
    &["orderid"],
    &["ordertype"],
    &["messageid"],
    &["username"],
    &["fxpaymentamount"],
    &["fxpaymentcurrency"],
    &["settlementbankwithdrawalid"],
    &["extraref", "externalreference"],
];

/// Parses the v1.2 settlement CSV into rows, by header name (see `COLUMNS`), so a reordered or
/// extended layout still reads.
pub fn settlement_rows(csv: &str) -> Result<Vec<SettlementRow>, DataError> {
    let mut records = parse_csv(csv).into_iter();
    let Some(header) = records.next() else {
        return Ok(Vec::new());
    };
    let column = |name: &&str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let [
        datestamp,
        account_name,
        currency,
        amount,
        total,
        order_id,
        order_type,
        message_id,
        username,
        fx_payment_amount,
        fx_payment_currency,
        settlement_bank_withdrawal_id,
        external_reference,
    ] = COLUMNS.map(|names| names.iter().find_map(column));
    if currency.is_none() || amount.is_none() {
        return Err(DataError {
            field: "view_automatic_settlement_details".into(),
            problem: "CSV has no amount/currency columns",
        });
    }
    let rows = records
        .filter(|record| record.iter().any(|field| !field.is_empty()))
        .map(|record| {
            let get = |column: Option<usize>| {
                column
                    .and_then(|i| record.get(i))
                    .cloned()
                    .unwrap_or_default()
            };
            SettlementRow {
                datestamp: get(datestamp),
                account_name: get(account_name),
                currency: get(currency),
                amount: get(amount),
                total: get(total),
                order_id: get(order_id),
                order_type: get(order_type),
                message_id: get(message_id),
                username: get(username),
                fx_payment_amount: get(fx_payment_amount),
                fx_payment_currency: get(fx_payment_currency),
                settlement_bank_withdrawal_id: get(settlement_bank_withdrawal_id),
                external_reference: get(external_reference),
            }
        })
        .collect();
    Ok(rows)
}

/// Splits CSV text into records (RFC 4180: quoted fields, doubled quotes, CRLF or LF).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\r', false) => {}
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (c, _) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_handles_quotes_and_layouts() {
        let csv = "datestamp,accountname,currency,amount,total,orderid,ordertype,messageid,username,fxpaymentamount,fxpaymentcurrency,settlementbankwithdrawalid,extraref\r\n\
                   2026-11-20 10:00:00.1+00,CLIENT_FUNDS,EUR,100.00,100.00,123,Deposit,\"m,1\",\"say \"\"hi\"\"\",,,,ref-1\r\n";
        let rows = settlement_rows(csv).expect("parses");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].message_id, "m,1");
        assert_eq!(rows[0].username, "say \"hi\"");
        assert_eq!(rows[0].external_reference, "ref-1");
        assert_eq!(rows[0].amount, "100.00");
        assert_eq!(rows[0].datestamp, "2026-11-20 10:00:00.1+00");
        assert!(settlement_rows("").expect("empty report").is_empty());
        assert!(settlement_rows("orderid\r\n1\r\n").is_err());
    }
}
