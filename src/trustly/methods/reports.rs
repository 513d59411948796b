//! Reading methods: GetWithdrawals, Balance, AccountLedger, the settlement report, and
//! MerchantSettlement.

use super::*;

// === GetWithdrawals / Balance / AccountLedger / settlement ===

order_method! {
    /// `GetWithdrawals`: the transfer state of a payout (spec §5.13). Trustly allows it at most once
    /// per 15 minutes per payout.
    GetWithdrawals as "order_id_number" = "GetWithdrawals" -> Vec<Withdrawal>
}

with_extra! {
    /// `Balance`: the merchant's balances (spec §5.14). At most once per 15 minutes.
    #[derive(Default)]
    pub struct Balance {}
}

method!(Balance = "Balance" -> Vec<CurrencyBalance>);

with_extra! {
    /// `AccountLedger`: settled ledger rows for a period (spec §5.15).
    #[derive(Default)]
    pub struct AccountLedger {
        /// `YYYY-MM-DD`.
        pub from_date: String,
        /// `YYYY-MM-DD`.
        pub to_date: String,
        pub currency: Option<Currency>,
    }
}

method!(AccountLedger = "AccountLedger" -> Vec<LedgerEntry>);

/// `ViewAutomaticSettlementDetailsCSV`, the settlement report (spec §5.16).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ViewAutomaticSettlementDetailsCsv {
    /// `YYYY-MM-DD`.
    pub settlement_date: String,
    pub currency: Option<Currency>,
    pub attributes: SettlementReportAttributes,
}

with_extra! {
    pub struct SettlementReportAttributes {
        /// The CSV layout version; "1.2" is the one whose columns are documented.
        #[serde(rename = "APIVersion")]
        pub api_version: String,
    }
}

impl Default for SettlementReportAttributes {
    fn default() -> Self {
        Self {
            api_version: "1.2".to_owned(),
            extra: Extra::new(),
        }
    }
}

method!(ViewAutomaticSettlementDetailsCsv = "ViewAutomaticSettlementDetailsCSV" -> SettlementReportCsv);

with_extra! {
    /// `MerchantSettlement`: move funds to the merchant's own bank account (spec §5.17).
    pub struct MerchantSettlement {
        #[serde(rename = "MessageID")]
        pub message_id: String,
        pub amount: Amount,
        pub currency: Currency,
    }
}

method!(MerchantSettlement = "MerchantSettlement" -> SettlementReference);
