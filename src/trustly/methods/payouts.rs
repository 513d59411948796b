//! Payouts: Withdraw and its approval or denial, AccountPayout and RegisterAccountPayout.

use super::*;

// === Withdraw ===

/// `Withdraw`: a user-driven payout through the checkout (spec §5.4).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Withdraw {
    #[serde(flatten)]
    pub opening: Opening,
    pub currency: Currency,
    pub attributes: WithdrawAttributes,
}

with_extra! {
    #[derive(Default)]
    pub struct WithdrawAttributes {
        #[serde(flatten)]
        pub checkout: CheckoutAttributes,
        pub shopper_statement: Option<String>,
        pub suggested_min_amount: Option<Amount>,
        pub suggested_max_amount: Option<Amount>,
        /// A fixed amount the user cannot change.
        pub suggested_amount: Option<Amount>,
        pub date_of_birth: Option<String>,
        #[serde(flatten)]
        pub address: Address,
        pub external_reference: Option<String>,
        pub sender_information: Option<PartyInformation>,
    }
}

method!(Withdraw = "Withdraw" -> OrderWithUrl);

// === ApproveWithdrawal / DenyWithdrawal ===

order_method! {
    /// `ApproveWithdrawal` of a prepared withdrawal (spec §5.6).
    ApproveWithdrawal as "order_id_number" = "ApproveWithdrawal" -> OrderResult
}

order_method! {
    /// `DenyWithdrawal` of a prepared withdrawal (spec §5.6).
    DenyWithdrawal as "order_id_number" = "DenyWithdrawal" -> OrderResult
}

// === AccountPayout / RegisterAccountPayout ===

/// `AccountPayout` to a known accountid (spec §5.9).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountPayout {
    #[serde(flatten)]
    pub opening: Opening,
    #[serde(rename = "AccountID")]
    pub account_id: String,
    pub amount: Amount,
    pub currency: Currency,
    pub attributes: PayoutAttributes,
}

with_extra! {
    #[derive(Default)]
    pub struct PayoutAttributes {
        pub shopper_statement: String,
        pub external_reference: Option<String>,
        #[serde(flatten)]
        pub psp: PspAttributes,
        pub sender_information: Option<PartyInformation>,
    }
}

method!(AccountPayout = "AccountPayout" -> OrderResult);

/// `RegisterAccountPayout`: register an account and pay out to it in one call (spec §5.10).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterAccountPayout {
    #[serde(flatten)]
    pub opening: Opening,
    #[serde(flatten)]
    pub account: BankAccount,
    pub amount: Amount,
    pub currency: Currency,
    pub attributes: RegisterAccountPayoutAttributes,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RegisterAccountPayoutAttributes {
    #[serde(flatten)]
    pub payout: PayoutAttributes,
    #[serde(flatten)]
    pub account: RegisterAccountAttributes,
}

method!(RegisterAccountPayout = "RegisterAccountPayout" -> OrderResult);
