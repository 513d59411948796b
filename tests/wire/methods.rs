//! Typed method data: exact key casing per spec §5 (a wrong case is a 623 at Trustly), flags and
//! numbers typed as Trustly types them, pass-through of unknown attributes, and typed responses
//! that keep unknown fields.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use std::collections::BTreeSet;

use serde_json::{Value, json};
use trustly_sidecar::trustly::methods::*;

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("valid json")
}

fn checkout() -> CheckoutAttributes {
    CheckoutAttributes {
        firstname: "F".into(),
        lastname: "L".into(),
        country: "SE".into(),
        locale: "sv_SE".into(),
        success_url: "https://s".into(),
        fail_url: "https://f".into(),
        ip: Some("127.0.0.1".into()),
        url_target: Some("_top".into()),
        unchangeable_national_identification_number: Some(true),
        psp: PspAttributes {
            psp_merchant: Some("psp".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn data<M: Method>(method: &M) -> Value {
    Value::Object(method.data().expect("serializes"))
}

#[test]
fn select_account_uses_trustly_casing_and_a_numeric_mandate_flag() {
    let method = SelectAccount {
        opening: Opening {
            notification_url: "https://n".into(),
            end_user_id: "u".into(),
            message_id: "m".into(),
        },
        attributes: SelectAccountAttributes {
            checkout: checkout(),
            request_direct_debit_mandate: Some(true),
            // From JSON text: `json!(12.50)` would pass through an f64 and lose the lexeme.
            extra: Extra::from([("FutureField".into(), parse(r#"{"nested": 12.50}"#))]),
            ..Default::default()
        },
    };
    assert_eq!(SelectAccount::NAME, "SelectAccount");
    let data = data(&method);
    assert_eq!(
        keys(&data),
        set(&["Attributes", "EndUserID", "MessageID", "NotificationURL"])
    );
    let attributes = &data["Attributes"];
    assert_eq!(
        keys(attributes),
        set(&[
            "Country",
            "FailURL",
            "Firstname",
            "FutureField",
            "IP",
            "Lastname",
            "Locale",
            "PSPMerchant",
            "RequestDirectDebitMandate",
            "SuccessURL",
            "URLTarget",
            "UnchangeableNationalIdentificationNumber",
        ])
    );
    assert_eq!(
        attributes["RequestDirectDebitMandate"],
        json!(1),
        "a number for SelectAccount"
    );
    assert_eq!(
        attributes["UnchangeableNationalIdentificationNumber"],
        json!("1"),
        "flags are strings"
    );
    assert_eq!(
        attributes["FutureField"]["nested"].to_string(),
        "12.50",
        "extra keeps number lexemes"
    );
}

#[test]
fn withdrawal_order_ids_are_numbers_and_refund_order_ids_strings() {
    let id = OrderId::parse("1371798227").expect("digits");
    let approve = data(&ApproveWithdrawal {
        order_id: id.clone(),
        extra: Extra::new(),
    });
    assert_eq!(approve["OrderID"].to_string(), "1371798227");
    assert!(approve["OrderID"].is_number());
    let refund = data(&Refund {
        order_id: id,
        amount: "5".parse().expect("amount"),
        currency: "EUR".parse().expect("currency"),
        attributes: RefundAttributes {
            external_reference: Some("r-1".into()),
            extra: Extra::new(),
        },
    });
    assert_eq!(
        refund,
        json!({"OrderID": "1371798227", "Amount": "5.00", "Currency": "EUR", "Attributes": {"ExternalReference": "r-1"}})
    );
    assert!(OrderId::parse("12a").is_none() && OrderId::parse("").is_none());
}

#[test]
fn order_ids_are_never_rewritten_on_the_wire() {
    // Trustly's schema types OrderID as a `long` (spec §3.5): nothing above i64::MAX, and no
    // leading zero (the number form would drop it, the string form would not).
    for bad in [
        "0",
        "0001234567890",
        "9223372036854775808",
        "9999999999999999999",
        "12345678901234567890",
        "+1",
        " 1",
    ] {
        assert!(OrderId::parse(bad).is_none(), "{bad}");
    }
    let max = OrderId::parse("9223372036854775807").expect("i64::MAX is a valid id");
    assert_eq!(max.value(), i64::MAX);
    // Every method sends exactly the text it was given, as a number or as a string.
    for text in ["1", "1371798227", "9223372036854775807"] {
        let id = OrderId::parse(text).expect("valid");
        let numbers = [
            data(&ApproveWithdrawal {
                order_id: id.clone(),
                extra: Extra::new(),
            }),
            data(&DenyWithdrawal {
                order_id: id.clone(),
                extra: Extra::new(),
            }),
            data(&GetWithdrawals {
                order_id: id.clone(),
                extra: Extra::new(),
            }),
        ];
        for sent in numbers {
            assert!(sent["OrderID"].is_number(), "{sent}");
            assert_eq!(sent["OrderID"].to_string(), text);
            // What goes out is the body's text: compare the lexeme.
            let body = serde_json::to_string(&sent).expect("encodes");
            assert_eq!(body, format!("{{\"OrderID\":{text}}}"));
        }
        let cancel = data(&CancelCharge {
            order_id: id,
            extra: Extra::new(),
        });
        assert_eq!(cancel["OrderID"], json!(text));
    }
}

#[test]
fn register_account_payout_flattens_account_and_both_attribute_groups() {
    let method = RegisterAccountPayout {
        opening: Opening {
            notification_url: "https://n".into(),
            end_user_id: "u".into(),
            message_id: "m".into(),
        },
        account: BankAccount {
            clearing_house: "SWEDEN".into(),
            bank_number: "6112".into(),
            account_number: "69706212".into(),
            firstname: "F".into(),
            lastname: "L".into(),
        },
        amount: "1.5".parse().expect("amount"),
        currency: "SEK".parse().expect("currency"),
        attributes: RegisterAccountPayoutAttributes {
            payout: PayoutAttributes {
                shopper_statement: "Shop".into(),
                ..Default::default()
            },
            account: RegisterAccountAttributes {
                address: Address {
                    address_postal_code: Some("12345".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
    };
    let data = data(&method);
    assert_eq!(
        keys(&data),
        set(&[
            "AccountNumber",
            "Amount",
            "Attributes",
            "BankNumber",
            "ClearingHouse",
            "Currency",
            "EndUserID",
            "Firstname",
            "Lastname",
            "MessageID",
            "NotificationURL",
        ])
    );
    assert_eq!(
        keys(&data["Attributes"]),
        set(&["AddressPostalCode", "ShopperStatement"])
    );
    assert_eq!(data["Amount"], "1.50");
}

#[test]
fn every_method_has_trustlys_name() {
    let names = [
        Deposit::NAME,
        Withdraw::NAME,
        SelectAccount::NAME,
        Refund::NAME,
        ApproveWithdrawal::NAME,
        DenyWithdrawal::NAME,
        RegisterAccount::NAME,
        CreateAccount::NAME,
        AccountPayout::NAME,
        RegisterAccountPayout::NAME,
        Charge::NAME,
        CancelCharge::NAME,
        GetWithdrawals::NAME,
        Balance::NAME,
        AccountLedger::NAME,
        ViewAutomaticSettlementDetailsCsv::NAME,
        MerchantSettlement::NAME,
    ];
    assert_eq!(
        names,
        [
            "Deposit",
            "Withdraw",
            "SelectAccount",
            "Refund",
            "ApproveWithdrawal",
            "DenyWithdrawal",
            "RegisterAccount",
            "CreateAccount",
            "AccountPayout",
            "RegisterAccountPayout",
            "Charge",
            "CancelCharge",
            "GetWithdrawals",
            "Balance",
            "AccountLedger",
            "ViewAutomaticSettlementDetailsCSV",
            "MerchantSettlement",
        ]
    );
    assert_eq!(data(&Balance::default()), json!({}));
    let report = data(&ViewAutomaticSettlementDetailsCsv {
        settlement_date: "2026-11-20".into(),
        ..Default::default()
    });
    assert_eq!(
        report,
        json!({"SettlementDate": "2026-11-20", "Attributes": {"APIVersion": "1.2"}})
    );
}

#[test]
fn responses_are_typed_and_keep_unknown_fields() {
    let balances = Vec::<CurrencyBalance>::from_data(parse(
        r#"[{"currency": "SEK", "balance": "10.50"}, {"currency": "EUR", "balance": 0.00}]"#,
    ))
    .expect("balances");
    assert_eq!(balances[0].balance.to_string(), "10.50");
    assert_eq!(balances[1].balance.to_string(), "0.00");

    let ledger = LedgerEntry::from_data(json!({
        "datestamp": "2026-11-20 10:00:00.1+00", "accountname": "SUSPENSE_ACCOUNT_CLIENT_FUNDS",
        "currency": "EUR", "amount": "5.00000000000000000000", "gluepayid": "1", "brandnew": "x"
    }))
    .expect("ledger row");
    assert_eq!(
        ledger.amount.to_string(),
        "5.00000000000000000000",
        "exact, all decimals"
    );
    assert_eq!(ledger.extra.get("brandnew"), Some(&json!("x")));

    let charge = ChargeResult::from_data(
        json!({"result": "0", "orderid": null, "rejected": "ERROR_MANDATE_NOT_FOUND"}),
    )
    .expect("charge");
    assert!(!charge.accepted);
    assert_eq!(charge.rejected.as_deref(), Some("ERROR_MANDATE_NOT_FOUND"));

    let error =
        OrderResult::from_data(json!({"orderid": "1", "result": "yes"})).expect_err("bad flag");
    assert_eq!(error.field, "result");
    let error = OrderWithUrl::from_data(json!(["not", "an", "object"])).expect_err("bad shape");
    assert_eq!(error.field, "data");
}
