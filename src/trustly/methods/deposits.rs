//! Pay-ins: Deposit, SelectAccount (the account-selection flow), and Refund of a deposit.

use super::*;

// === Deposit ===

/// `Deposit`: a pay-in; returns the checkout URL (spec §5.3).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deposit {
    #[serde(flatten)]
    pub opening: Opening,
    pub attributes: DepositAttributes,
}

with_extra! {
    pub struct DepositAttributes {
        pub currency: Currency,
        #[serde(flatten)]
        pub checkout: CheckoutAttributes,
        pub shopper_statement: Option<String>,
        pub amount: Option<Amount>,
        pub suggested_min_amount: Option<Amount>,
        pub suggested_max_amount: Option<Amount>,
        /// Only `deposit.bank.netherlands.ideal` today.
        pub method: Option<String>,
        pub shipping_address_country: Option<String>,
        pub shipping_address_postal_code: Option<String>,
        pub shipping_address_city: Option<String>,
        pub shipping_address_line1: Option<String>,
        pub shipping_address_line2: Option<String>,
        pub shipping_address: Option<String>,
        #[serde(serialize_with = "flag_string")]
        pub request_direct_debit_mandate: Option<bool>,
        #[serde(rename = "ChargeAccountID")]
        pub charge_account_id: Option<String>,
        #[serde(serialize_with = "flag_number")]
        pub quick_deposit: Option<bool>,
        pub external_reference: Option<String>,
        #[serde(rename = "AccountID")]
        pub account_id: Option<String>,
        pub recipient_information: Option<PartyInformation>,
        #[serde(rename = "RequestKYC", serialize_with = "flag_string")]
        pub request_kyc: Option<bool>,
        /// Test environment only: hold notifications for manual delivery.
        #[serde(serialize_with = "flag_string")]
        pub hold_notifications: Option<bool>,
    }
}

method!(Deposit = "Deposit" -> OrderWithUrl);

// === SelectAccount ===

/// `SelectAccount`: the end user picks and verifies a bank account; the result arrives as an
/// `account` notification (spec §5.7).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SelectAccount {
    #[serde(flatten)]
    pub opening: Opening,
    pub attributes: SelectAccountAttributes,
}

with_extra! {
    #[derive(Default)]
    pub struct SelectAccountAttributes {
        #[serde(flatten)]
        pub checkout: CheckoutAttributes,
        pub shopper_statement: Option<String>,
        /// A **number** 0/1 for this method (spec §5.7).
        #[serde(serialize_with = "flag_number")]
        pub request_direct_debit_mandate: Option<bool>,
        pub date_of_birth: Option<String>,
        #[serde(serialize_with = "flag_string")]
        pub hold_notifications: Option<bool>,
    }
}

method!(SelectAccount = "SelectAccount" -> OrderWithUrl);

// === Refund ===

/// `Refund` of a Deposit or Charge, in full or in part (spec §5.5). It has no MessageID, so only
/// an identical replay (same UUID) is safe to retry.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Refund {
    #[serde(rename = "OrderID")]
    pub order_id: OrderId,
    pub amount: Amount,
    pub currency: Currency,
    pub attributes: RefundAttributes,
}

with_extra! {
    #[derive(Default)]
    pub struct RefundAttributes {
        pub external_reference: Option<String>,
    }
}

method!(Refund = "Refund" -> OrderResult);
