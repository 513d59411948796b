//! Requests that open or act on an order: deposits, withdrawals, refunds, payouts, accounts and
//! charges, and the merchant's own settlement.

use std::collections::HashMap;

use super::{
    Defaults, ExtraTarget, PLACEHOLDER_CURRENCY, Prepared,
    attributes::{address, address_of, bank_account, checkout, flag, holder, party, payout, psp},
    prepare,
};
use crate::{
    grpc::{Error, validate::Check},
    pb,
    trustly::methods::{self as m, Method},
};

pub fn deposit(r: pb::DepositRequest, d: &Defaults) -> Result<Prepared, Error> {
    let (mut c, message_id, notification_url) = opening(&r.message_id, &r.notification_url, d);
    let method = m::Deposit {
        opening: end_user(&mut c, notification_url, &r.end_user_id, &message_id),
        attributes: m::DepositAttributes {
            // Any valid currency stands in while the other fields are checked; an invalid one
            // is reported with them, and nothing built from the stand-in is ever sent.
            currency: c
                .currency("currency_code", &r.currency_code)
                .unwrap_or(PLACEHOLDER_CURRENCY),
            checkout: checkout(&mut c, r.user.as_ref(), r.psp_merchant.as_ref(), true),
            shopper_statement: Some(c.required("shopper_statement", &r.shopper_statement)),
            amount: c.amount("amount", &r.amount, false),
            suggested_min_amount: c.amount("suggested_min_amount", &r.suggested_min_amount, false),
            suggested_max_amount: c.amount("suggested_max_amount", &r.suggested_max_amount, false),
            method: c.optional("method", &r.method),
            shipping_address_country: c.country(
                "shipping_address_country",
                &r.shipping_address_country,
                false,
            ),
            shipping_address_postal_code: c.optional(
                "shipping_address_postal_code",
                &r.shipping_address_postal_code,
            ),
            shipping_address_city: c.optional("shipping_address_city", &r.shipping_address_city),
            shipping_address_line1: c.optional("shipping_address_line1", &r.shipping_address_line1),
            shipping_address_line2: c.optional("shipping_address_line2", &r.shipping_address_line2),
            shipping_address: c.optional("shipping_address", &r.shipping_address),
            request_direct_debit_mandate: flag(r.request_direct_debit_mandate),
            charge_account_id: c.optional("charge_account_id", &r.charge_account_id),
            quick_deposit: flag(r.quick_deposit),
            external_reference: c.optional("external_reference", &r.external_reference),
            account_id: c.optional("account_id", &r.account_id),
            recipient_information: party(
                &mut c,
                "recipient_information",
                r.recipient_information.as_ref(),
            ),
            request_kyc: flag(r.request_kyc),
            hold_notifications: flag(r.hold_notifications),
            extra: m::Extra::new(),
        },
    };
    prepare_keyed(c, Some(method), r.extra_attributes, message_id)
}

pub fn withdraw(r: pb::WithdrawRequest, d: &Defaults) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let message_id = c.key("message_id", &r.message_id);
    let currency = c
        .currency("currency_code", &r.currency_code)
        .unwrap_or(PLACEHOLDER_CURRENCY);
    let notification_url = c.notification_url("notification_url", &r.notification_url, d);
    let method = m::Withdraw {
        opening: end_user(&mut c, notification_url, &r.end_user_id, &message_id),
        currency,
        attributes: m::WithdrawAttributes {
            checkout: checkout(&mut c, r.user.as_ref(), r.psp_merchant.as_ref(), false),
            shopper_statement: Some(c.required("shopper_statement", &r.shopper_statement)),
            suggested_min_amount: c.amount("suggested_min_amount", &r.suggested_min_amount, false),
            suggested_max_amount: c.amount("suggested_max_amount", &r.suggested_max_amount, false),
            suggested_amount: c.amount("suggested_amount", &r.suggested_amount, false),
            date_of_birth: c.date("date_of_birth", &r.date_of_birth, false),
            address: address_of!(&mut c, "", r),
            external_reference: c.optional("external_reference", &r.external_reference),
            sender_information: party(&mut c, "sender_information", r.sender_information.as_ref()),
            extra: m::Extra::new(),
        },
    };
    prepare_keyed(c, Some(method), r.extra_attributes, message_id)
}

pub fn select_account(r: pb::SelectAccountRequest, d: &Defaults) -> Result<Prepared, Error> {
    let (mut c, message_id, notification_url) = opening(&r.message_id, &r.notification_url, d);
    let method = m::SelectAccount {
        opening: end_user(&mut c, notification_url, &r.end_user_id, &message_id),
        attributes: m::SelectAccountAttributes {
            // A mandate needs the end user's email (spec §5.7).
            checkout: checkout(
                &mut c,
                r.user.as_ref(),
                r.psp_merchant.as_ref(),
                r.request_direct_debit_mandate,
            ),
            shopper_statement: c.optional("shopper_statement", &r.shopper_statement),
            request_direct_debit_mandate: flag(r.request_direct_debit_mandate),
            date_of_birth: c.date("date_of_birth", &r.date_of_birth, false),
            hold_notifications: flag(r.hold_notifications),
            extra: m::Extra::new(),
        },
    };
    prepare_keyed(c, Some(method), r.extra_attributes, message_id)
}

pub fn refund(r: pb::RefundRequest) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let key = c.key("request_id", &r.request_id);
    let order_id = c.order_id("order_id", &r.order_id);
    let money = c.money("amount", r.amount.as_ref());
    let external_reference = c.optional("external_reference", &r.external_reference);
    let method = order_id
        .zip(money)
        .map(|(order_id, (amount, currency))| m::Refund {
            order_id,
            amount,
            currency,
            attributes: m::RefundAttributes {
                external_reference,
                extra: m::Extra::new(),
            },
        });
    prepare_keyed(c, method, r.extra_attributes, key)
}

/// What every order-opening request checks first, in this order: its MessageID (the idempotency
/// key), then its NotificationURL (or the configured default).
fn opening(message_id: &str, notification_url: &str, d: &Defaults) -> (Check, String, String) {
    let mut c = Check::default();
    let message_id = c.key("message_id", message_id);
    let notification_url = c.notification_url("notification_url", notification_url, d);
    (c, message_id, notification_url)
}

/// The opening fields of an order, checking the end user id (where a request checks it next).
fn end_user(
    c: &mut Check,
    notification_url: String,
    end_user_id: &str,
    message_id: &str,
) -> m::Opening {
    m::Opening {
        notification_url,
        end_user_id: c.required("end_user_id", end_user_id),
        message_id: message_id.to_owned(),
    }
}

/// Prepares a method whose pass-through fields go into `Attributes`, under its idempotency key
/// (a MessageID, or a request id).
fn prepare_keyed<M: Method>(
    c: Check,
    method: Option<M>,
    extra: HashMap<String, String>,
    key: String,
) -> Result<Prepared, Error> {
    prepare(c, method, extra, ExtraTarget::Attributes, Some(key))
}

/// ApproveWithdrawal, DenyWithdrawal and CancelCharge: an idempotency key and an OrderID, each
/// request checked and prepared alike.
macro_rules! order_actions {
    ($($name:ident($request:ident) -> $method:ident;)+) => {$(
        pub fn $name(r: pb::$request) -> Result<Prepared, Error> {
            let mut c = Check::default();
            let key = c.key("request_id", &r.request_id);
            let method = c.order_id("order_id", &r.order_id).map(m::$method::from);
            prepare(c, method, r.extra_attributes, ExtraTarget::Data, Some(key))
        }
    )+};
}

order_actions! {
    approve_withdrawal(ApproveWithdrawalRequest) -> ApproveWithdrawal;
    deny_withdrawal(DenyWithdrawalRequest) -> DenyWithdrawal;
    cancel_charge(CancelChargeRequest) -> CancelCharge;
}

pub fn register_account(r: pb::RegisterAccountRequest) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let method = m::RegisterAccount {
        end_user_id: c.required("end_user_id", &r.end_user_id),
        account: bank_account(&mut c, r.account.as_ref()),
        attributes: holder(&mut c, r.holder.as_ref()),
    };
    // Naturally idempotent: the same details always give the same AccountID (spec §5.8).
    prepare(
        c,
        Some(method),
        r.extra_attributes,
        ExtraTarget::Attributes,
        None,
    )
}

pub fn account_payout(r: pb::AccountPayoutRequest, d: &Defaults) -> Result<Prepared, Error> {
    let (mut c, message_id, notification_url) = opening(&r.message_id, &r.notification_url, d);
    let account_id = c.required("account_id", &r.account_id);
    let opening = end_user(&mut c, notification_url, &r.end_user_id, &message_id);
    let money = c.money("amount", r.amount.as_ref());
    let attributes = payout(
        &mut c,
        &r.shopper_statement,
        &r.external_reference,
        r.psp_merchant.as_ref(),
        r.sender_information.as_ref(),
    );
    let method = money.map(|(amount, currency)| m::AccountPayout {
        opening,
        account_id,
        amount,
        currency,
        attributes,
    });
    prepare_keyed(c, method, r.extra_attributes, message_id)
}

pub fn register_account_payout(
    r: pb::RegisterAccountPayoutRequest,
    d: &Defaults,
) -> Result<Prepared, Error> {
    let (mut c, message_id, notification_url) = opening(&r.message_id, &r.notification_url, d);
    let opening = end_user(&mut c, notification_url, &r.end_user_id, &message_id);
    let account = bank_account(&mut c, r.account.as_ref());
    let money = c.money("amount", r.amount.as_ref());
    let attributes = m::RegisterAccountPayoutAttributes {
        payout: payout(
            &mut c,
            &r.shopper_statement,
            &r.external_reference,
            r.psp_merchant.as_ref(),
            r.sender_information.as_ref(),
        ),
        account: holder(&mut c, r.holder.as_ref()),
    };
    let method = money.map(|(amount, currency)| m::RegisterAccountPayout {
        opening,
        account,
        amount,
        currency,
        attributes,
    });
    prepare_keyed(c, method, r.extra_attributes, message_id)
}

pub fn charge(r: pb::ChargeRequest, d: &Defaults) -> Result<Prepared, Error> {
    let (mut c, message_id, notification_url) = opening(&r.message_id, &r.notification_url, d);
    let account_id = c.required("account_id", &r.account_id);
    let opening = end_user(&mut c, notification_url, &r.end_user_id, &message_id);
    let money = c.money("amount", r.amount.as_ref());
    let attributes = m::ChargeAttributes {
        shopper_statement: c.required("shopper_statement", &r.shopper_statement),
        email: c.email("email", &r.email, true).unwrap_or_default(),
        payment_date: c.date("payment_date", &r.payment_date, false),
        external_reference: c.optional("external_reference", &r.external_reference),
        psp: psp(&mut c, r.psp_merchant.as_ref()),
        extra: m::Extra::new(),
    };
    let method = money.map(|(amount, currency)| m::Charge {
        account_id,
        opening,
        amount,
        currency,
        attributes,
    });
    prepare_keyed(c, method, r.extra_attributes, message_id)
}

pub fn merchant_settlement(r: pb::MerchantSettlementRequest) -> Result<Prepared, Error> {
    let mut c = Check::default();
    let message_id = c.key("message_id", &r.message_id);
    let method = c
        .money("amount", r.amount.as_ref())
        .map(|(amount, currency)| m::MerchantSettlement {
            message_id: message_id.clone(),
            amount,
            currency,
            extra: m::Extra::new(),
        });
    prepare(
        c,
        method,
        r.extra_attributes,
        ExtraTarget::Data,
        Some(message_id),
    )
}
