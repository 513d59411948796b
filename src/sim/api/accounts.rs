//! RegisterAccount / CreateAccount, and the bank details RegisterAccountPayout registers too.

use serde_json::{Value, json};

use super::Context;
use crate::sim::{state::Account, validate::*};

pub(super) fn register(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Value, Rejection> {
    data.attributes(false)?;
    let account = bank_account(cx, data)?;
    Ok(json!({
        "accountid": account.account_id,
        "clearinghouse": account.clearinghouse,
        "bank": account.bank,
        "descriptor": account.descriptor,
    }))
}

/// The bank details of RegisterAccount / RegisterAccountPayout, registered.
pub(super) fn bank_account(cx: &mut Context<'_>, data: &Fields<'_>) -> Result<Account, Rejection> {
    let clearinghouse = data.required("ClearingHouse")?;
    let bank_number = data.present("BankNumber")?;
    let account_number = data.required("AccountNumber")?;
    data.present("Firstname")?;
    data.present("Lastname")?;
    if !plausible_account_number(&account_number) {
        return Err(INVALID_BANK_ACCOUNT_NUMBER);
    }
    Ok(cx
        .state
        .register_account(&clearinghouse, &bank_number, &account_number))
}
