//! Direct debits: Charge and CancelCharge.

use super::*;

// === Charge / CancelCharge ===

/// `Charge`: a direct debit of a mandated account (spec §5.11). Business rejections come back in
/// a success envelope, in `rejected`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Charge {
    #[serde(rename = "AccountID")]
    pub account_id: String,
    #[serde(flatten)]
    pub opening: Opening,
    pub amount: Amount,
    pub currency: Currency,
    pub attributes: ChargeAttributes,
}

with_extra! {
    #[derive(Default)]
    pub struct ChargeAttributes {
        pub shopper_statement: String,
        pub email: String,
        /// `YYYY-MM-DD`; as soon as possible when absent.
        pub payment_date: Option<String>,
        pub external_reference: Option<String>,
        #[serde(flatten)]
        pub psp: PspAttributes,
    }
}

method!(Charge = "Charge" -> ChargeResult);

order_method! {
    /// `CancelCharge` of a future-dated Charge (spec §5.12).
    CancelCharge = "CancelCharge" -> ChargeResult
}
