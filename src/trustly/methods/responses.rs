//! Typed views of verified response `data` trees; unknown fields land in `extra`.

use super::*;

// === Responses ===

/// A verified response `data` that does not have the shape its method promises.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("response field {field}: {problem}")]
pub struct DataError {
    pub field: String,
    pub problem: &'static str,
}

/// Typed view of a verified response `data` tree.
pub trait FromData: Sized {
    fn from_data(data: Value) -> Result<Self, DataError>;
}

impl<T: FromData> FromData for Vec<T> {
    fn from_data(data: Value) -> Result<Self, DataError> {
        match data {
            Value::Array(items) => items.into_iter().map(T::from_data).collect(),
            _ => Err(DataError {
                field: "data".to_owned(),
                problem: "expected an array",
            }),
        }
    }
}

/// Takes typed fields out of an object; what is left over is `extra`.
struct Fields(Map<String, Value>);

impl Fields {
    fn new(data: Value) -> Result<Self, DataError> {
        match data {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(problem("data", "expected an object")),
        }
    }

    /// A required string; numbers are accepted as their lexeme (spec §2.2).
    fn text(&mut self, field: &str) -> Result<String, DataError> {
        self.optional_text(field)?
            .ok_or_else(|| problem(field, "missing"))
    }

    fn optional_text(&mut self, field: &str) -> Result<Option<String>, DataError> {
        match self.0.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(problem(field, "expected a string")),
        }
    }

    /// An optional string read as empty when absent or null.
    fn text_or_empty(&mut self, field: &str) -> Result<String, DataError> {
        Ok(self.optional_text(field)?.unwrap_or_default())
    }

    /// "1" → true, "0" → false (numbers too).
    fn flag(&mut self, field: &str) -> Result<bool, DataError> {
        match self.text(field)?.as_str() {
            "1" => Ok(true),
            "0" => Ok(false),
            _ => Err(problem(field, "expected \"1\" or \"0\"")),
        }
    }

    /// An exact decimal amount (any scale: ledger amounts carry 20 decimals).
    fn decimal(&mut self, field: &str) -> Result<Decimal, DataError> {
        let text = self.text(field)?;
        text.parse::<Decimal>()
            .map_err(|_| problem(field, "expected a decimal amount"))
    }

    fn extra(self) -> Extra {
        self.0.into_iter().collect()
    }
}

fn problem(field: &str, problem: &'static str) -> DataError {
    DataError {
        field: field.to_owned(),
        problem,
    }
}

/// Declares response types and their [`FromData`]: each field is read from its Trustly key by a
/// [`Fields`] reader, in the order written, and what is left over goes to `extra`. One mechanism
/// for every typed response, so they all read keys, numbers-as-text and flags the same way.
macro_rules! responses {
    ($(
        $(#[$meta:meta])*
        $name:ident {
            $($(#[$field_meta:meta])* $field:ident: $ty:ty = $read:ident($key:literal),)*
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
            pub extra: Extra,
        }

        impl FromData for $name {
            fn from_data(data: Value) -> Result<Self, DataError> {
                let mut f = Fields::new(data)?;
                Ok(Self {
                    $($field: f.$read($key)?,)*
                    extra: f.extra(),
                })
            }
        }
    )*};
}

responses! {
    /// `{orderid, url}`: Deposit, Withdraw, SelectAccount.
    OrderWithUrl {
        order_id: String = text("orderid"),
        url: String = text("url"),
    }

    /// `{orderid, result}`: Refund, Approve/DenyWithdrawal, AccountPayout, RegisterAccountPayout.
    OrderResult {
        order_id: String = text("orderid"),
        /// Trustly's `result`: "1" accepted, "0" not.
        accepted: bool = flag("result"),
    }

    /// `{accountid, clearinghouse, bank, descriptor}`: RegisterAccount, CreateAccount.
    AccountRegistration {
        account_id: String = text("accountid"),
        clearinghouse: String = text_or_empty("clearinghouse"),
        bank: String = text_or_empty("bank"),
        descriptor: String = text_or_empty("descriptor"),
    }

    /// `{result, orderid, rejected}`: Charge and CancelCharge. A rejection is a business answer
    /// inside a success envelope (spec §2.4).
    ChargeResult {
        accepted: bool = flag("result"),
        order_id: Option<String> = optional_text("orderid"),
        /// `null` on success; `ERROR_MANDATE_NOT_FOUND` or free text otherwise.
        rejected: Option<String> = optional_text("rejected"),
    }

    /// One GetWithdrawals entry (spec §5.13). `transferstate` is kept as text: the set can change.
    Withdrawal {
        reference: Option<String> = optional_text("reference"),
        modification_date: Option<String> = optional_text("modificationdate"),
        order_id: String = text("orderid"),
        datestamp: Option<String> = optional_text("datestamp"),
        transfer_state: String = text("transferstate"),
        amount: Decimal = decimal("amount"),
        account_id: Option<String> = optional_text("accountid"),
        currency: String = text("currency"),
        eta: Option<String> = optional_text("eta"),
    }

    /// One Balance entry.
    CurrencyBalance {
        currency: String = text("currency"),
        balance: Decimal = decimal("balance"),
    }

    /// One AccountLedger row.
    LedgerEntry {
        user_id: Option<String> = optional_text("userid"),
        datestamp: String = text("datestamp"),
        order_id: Option<String> = optional_text("orderid"),
        account_name: String = text("accountname"),
        message_id: Option<String> = optional_text("messageid"),
        transaction_type: Option<String> = optional_text("transactiontype"),
        currency: String = text("currency"),
        amount: Decimal = decimal("amount"),
        gluepay_id: Option<String> = optional_text("gluepayid"),
    }

    /// The settlement report's raw CSV text (read into rows by [`super::settlement_rows`]).
    SettlementReportCsv {
        csv: String = text_or_empty("view_automatic_settlement_details"),
    }

    /// MerchantSettlement's `{reference}`.
    SettlementReference {
        reference: String = text("reference"),
    }
}

/// The raw verified tree, for callers that want it untouched.
impl FromData for Value {
    fn from_data(data: Value) -> Result<Self, DataError> {
        Ok(data)
    }
}
