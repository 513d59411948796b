//! The shared parts of requests (party, checkout, bank account, holder, PSP) from their `pb`
//! form, each field checked on the way.

use crate::{grpc::validate::Check, pb, trustly::methods as m};

/// Checks the six address fields of a request message that has them (`address_country`,
/// `address_postal_code`, `address_city`, `address_line1`, `address_line2`, `address`) with
/// [`address`], under the field names `{prefix}address_country` and so on.
macro_rules! address_of {
    ($check:expr, $prefix:literal, $message:expr) => {
        address(
            $check,
            $prefix,
            [
                &$message.address_country,
                &$message.address_postal_code,
                &$message.address_city,
                &$message.address_line1,
                &$message.address_line2,
                &$message.address,
            ],
        )
    };
}
pub(super) use address_of;

/// `true` is sent as the flag; `false` is simply not sent.
pub(super) fn flag(value: bool) -> Option<bool> {
    value.then_some(true)
}

pub(super) fn psp(check: &mut Check, psp: Option<&pb::PspMerchant>) -> m::PspAttributes {
    let Some(psp) = psp else {
        return m::PspAttributes::default();
    };
    m::PspAttributes {
        psp_merchant: check.optional("psp_merchant.name", &psp.name),
        psp_merchant_url: check.web_url("psp_merchant.url", &psp.url, false),
        merchant_category_code: check.optional(
            "psp_merchant.merchant_category_code",
            &psp.merchant_category_code,
        ),
    }
}

/// A string sent as given (it may be empty: Trustly accepts an empty Lastname or BankNumber), but
/// never longer than any field may be.
pub(super) fn bounded(check: &mut Check, field: &str, value: &str) -> String {
    check.bounded(field, value);
    value.to_owned()
}

/// The attributes AccountPayout and RegisterAccountPayout share, checked in this order.
pub(super) fn payout(
    check: &mut Check,
    shopper_statement: &str,
    external_reference: &str,
    psp_merchant: Option<&pb::PspMerchant>,
    sender_information: Option<&pb::PartyInformation>,
) -> m::PayoutAttributes {
    m::PayoutAttributes {
        shopper_statement: check.required("shopper_statement", shopper_statement),
        external_reference: check.optional("external_reference", external_reference),
        psp: psp(check, psp_merchant),
        sender_information: party(check, "sender_information", sender_information),
        extra: m::Extra::new(),
    }
}

pub(super) fn party(
    check: &mut Check,
    field: &str,
    party: Option<&pb::PartyInformation>,
) -> Option<m::PartyInformation> {
    let party = party?;
    let party_type = match pb::PartyType::try_from(party.party_type) {
        Ok(pb::PartyType::Person) => "PERSON",
        Ok(pb::PartyType::Organisation) => "ORGANISATION",
        _ => {
            check.violation(
                &format!("{field}.party_type"),
                "must be PARTY_TYPE_PERSON or PARTY_TYPE_ORGANISATION",
            );
            ""
        }
    };
    Some(m::PartyInformation {
        party_type: party_type.to_owned(),
        firstname: check.required(&format!("{field}.first_name"), &party.first_name),
        lastname: bounded(check, &format!("{field}.last_name"), &party.last_name),
        country_code: check
            .country(&format!("{field}.country_code"), &party.country_code, true)
            .unwrap_or_default(),
        customer_id: check.optional(&format!("{field}.customer_id"), &party.customer_id),
        address: check.optional(&format!("{field}.address"), &party.address),
        date_of_birth: check.date(
            &format!("{field}.date_of_birth"),
            &party.date_of_birth,
            false,
        ),
        extra: m::Extra::new(),
    })
}

pub(super) fn checkout(
    check: &mut Check,
    user: Option<&pb::CheckoutUser>,
    psp_merchant: Option<&pb::PspMerchant>,
    email_required: bool,
) -> m::CheckoutAttributes {
    let Some(u) = user else {
        check.violation("user", "is required");
        return m::CheckoutAttributes::default();
    };
    m::CheckoutAttributes {
        firstname: check.required("user.first_name", &u.first_name),
        lastname: check.required("user.last_name", &u.last_name),
        country: check
            .country("user.country", &u.country, true)
            .unwrap_or_default(),
        locale: check.locale("user.locale", &u.locale),
        success_url: check
            .web_url("user.success_url", &u.success_url, true)
            .unwrap_or_default(),
        fail_url: check
            .web_url("user.fail_url", &u.fail_url, true)
            .unwrap_or_default(),
        email: check.email("user.email", &u.email, email_required),
        mobile_phone: check.optional("user.mobile_phone", &u.mobile_phone),
        ip: check.ip("user.ip", &u.ip),
        template_url: check.web_url("user.template_url", &u.template_url, false),
        url_target: check.url_target("user.url_target", &u.url_target),
        national_identification_number: check.optional(
            "user.national_identification_number",
            &u.national_identification_number,
        ),
        unchangeable_national_identification_number: flag(
            u.unchangeable_national_identification_number,
        ),
        url_scheme: check.optional("user.url_scheme", &u.url_scheme),
        return_to_app_url: check.optional("user.return_to_app_url", &u.return_to_app_url),
        psp: psp(check, psp_merchant),
    }
}

pub(super) fn bank_account(check: &mut Check, account: Option<&pb::BankAccount>) -> m::BankAccount {
    let Some(a) = account else {
        check.violation("account", "is required");
        return m::BankAccount::default();
    };
    m::BankAccount {
        clearing_house: check.required("account.clearing_house", &a.clearing_house),
        bank_number: bounded(check, "account.bank_number", &a.bank_number),
        account_number: check.required("account.account_number", &a.account_number),
        firstname: check.required("account.first_name", &a.first_name),
        lastname: bounded(check, "account.last_name", &a.last_name),
    }
}

pub(super) fn holder(
    check: &mut Check,
    holder: Option<&pb::AccountHolder>,
) -> m::RegisterAccountAttributes {
    let Some(h) = holder else {
        return m::RegisterAccountAttributes::default();
    };
    m::RegisterAccountAttributes {
        date_of_birth: check.date("holder.date_of_birth", &h.date_of_birth, false),
        mobile_phone: check.optional("holder.mobile_phone", &h.mobile_phone),
        national_identification_number: check.optional(
            "holder.national_identification_number",
            &h.national_identification_number,
        ),
        address: address_of!(check, "holder.", h),
        email: check.email("holder.email", &h.email, false),
        extra: m::Extra::new(),
    }
}

/// A postal address: country, postal code, city, line 1, line 2 and free-text address, in that
/// order, checked under the field names `{prefix}address_country` and so on.
pub(super) fn address(check: &mut Check, prefix: &str, fields: [&str; 6]) -> m::Address {
    let [country, postal_code, city, line1, line2, address] = fields;
    let name = |field: &str| format!("{prefix}{field}");
    m::Address {
        address_country: check.country(&name("address_country"), country, false),
        address_postal_code: check.optional(&name("address_postal_code"), postal_code),
        address_city: check.optional(&name("address_city"), city),
        address_line1: check.optional(&name("address_line1"), line1),
        address_line2: check.optional(&name("address_line2"), line2),
        address: check.optional(&name("address"), address),
    }
}
