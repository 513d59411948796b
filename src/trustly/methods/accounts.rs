//! Bank accounts: RegisterAccount and CreateAccount.

use super::*;

// === RegisterAccount / CreateAccount ===

/// `RegisterAccount`: register known bank details and get an `accountid` (spec §5.8). The same
/// details always give the same accountid.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterAccount {
    #[serde(rename = "EndUserID")]
    pub end_user_id: String,
    #[serde(flatten)]
    pub account: BankAccount,
    pub attributes: RegisterAccountAttributes,
}

/// Bank details as RegisterAccount and RegisterAccountPayout take them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BankAccount {
    /// Country name in uppercase (`SWEDEN`, `GERMANY`), or `IBAN`.
    pub clearing_house: String,
    /// `""` for IBAN accounts.
    pub bank_number: String,
    pub account_number: String,
    pub firstname: String,
    pub lastname: String,
}

with_extra! {
    #[derive(Default)]
    pub struct RegisterAccountAttributes {
        pub date_of_birth: Option<String>,
        pub mobile_phone: Option<String>,
        pub national_identification_number: Option<String>,
        #[serde(flatten)]
        pub address: Address,
        pub email: Option<String>,
    }
}

method!(RegisterAccount = "RegisterAccount" -> AccountRegistration);

/// `CreateAccount`: the same fields and answer as RegisterAccount (spec §5.1).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct CreateAccount(pub RegisterAccount);

method!(CreateAccount = "CreateAccount" -> AccountRegistration);
