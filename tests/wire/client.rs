//! The JSON-RPC client against a scripted in-test Trustly: every outcome class, and the
//! byte-identical replay.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use support::{
    fake_trustly::{FakeTrustly, Reply},
    *,
};
use trustly_sidecar::{
    money::{Amount, Currency},
    secret::Secret,
    trustly::{
        Client, ClientConfig, Disposition, Error, ErrorCode,
        methods::{
            CheckoutAttributes, Deposit, DepositAttributes, Extra, Opening, OrderId, Refund,
            RefundAttributes,
        },
        sign::{Backend, CryptoPool},
    },
};

/// Short enough to keep the suite fast, far below the scripted 30 s delay so it cannot flake.
const TEST_REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

async fn setup() -> (FakeTrustly, Client) {
    setup_with(|_| {}).await
}

async fn setup_with(adjust: impl FnOnce(&mut ClientConfig)) -> (FakeTrustly, Client) {
    let fake = FakeTrustly::start(
        verifier(Backend::RustCrypto, MERCHANT_PUBLIC),
        signer(Backend::RustCrypto, TRUSTLY_PRIVATE),
    )
    .await;
    let mut config = ClientConfig::new(fake.url(), "merchant", Secret::new("päss".to_owned()));
    config.request_timeout = TEST_REQUEST_TIMEOUT;
    adjust(&mut config);
    let client = Client::new(
        config,
        signer(Backend::RustCrypto, MERCHANT_PRIVATE),
        verifier(Backend::RustCrypto, TRUSTLY_PUBLIC),
        CryptoPool::new(2),
    )
    .expect("client builds");
    (fake, client)
}

fn deposit() -> Deposit {
    Deposit {
        opening: Opening {
            notification_url: "https://merchant.example/notify".into(),
            end_user_id: "user-1".into(),
            message_id: "msg-1".into(),
        },
        attributes: DepositAttributes {
            currency: "SEK".parse().expect("currency"),
            checkout: CheckoutAttributes {
                firstname: "Åsa".into(),
                lastname: "Öberg".into(),
                country: "SE".into(),
                locale: "sv_SE".into(),
                success_url: "https://merchant.example/ok".into(),
                fail_url: "https://merchant.example/fail".into(),
                ..Default::default()
            },
            shopper_statement: Some("Shop".into()),
            amount: Some("100.5".parse().expect("amount")),
            suggested_min_amount: None,
            suggested_max_amount: None,
            method: None,
            shipping_address_country: None,
            shipping_address_postal_code: None,
            shipping_address_city: None,
            shipping_address_line1: None,
            shipping_address_line2: None,
            shipping_address: None,
            request_direct_debit_mandate: None,
            charge_account_id: None,
            quick_deposit: None,
            external_reference: None,
            account_id: None,
            recipient_information: None,
            request_kyc: None,
            hold_notifications: None,
            extra: Extra::from([("NewTrustlyAttribute".to_owned(), json!("kept"))]),
        },
    }
}

fn order_url() -> serde_json::Value {
    json!({"orderid": "1371798227", "url": "https://checkout.example/1371798227"})
}

async fn call_error(fake: &FakeTrustly, client: &Client, reply: Reply) -> Error {
    fake.push(reply);
    client.call(&deposit()).await.expect_err("call fails")
}

#[tokio::test]
async fn success_is_typed_and_the_request_is_exactly_what_was_signed() {
    let (fake, client) = setup().await;
    fake.push(Reply::Ok(
        json!({"orderid": 1371798227, "url": "https://checkout.example/x", "newfield": "v"}),
    ));
    let answer = client.call(&deposit()).await.expect("deposit succeeds");
    assert_eq!(
        answer.order_id, "1371798227",
        "numeric orderid accepted as its lexeme"
    );
    assert_eq!(
        answer.extra.get("newfield"),
        Some(&json!("v")),
        "unknown fields survive"
    );

    let received = fake.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert!(
        request.signature_valid,
        "fake Trustly verified our signature"
    );
    assert_eq!(request.method, "Deposit");
    assert_eq!(
        request.content_length,
        Some(request.body.len()),
        "Content-Length counts bytes"
    );
    assert!(
        request.body.len() > String::from_utf8_lossy(&request.body).chars().count(),
        "body has multi-byte UTF-8"
    );
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    let data = &request.data;
    assert_eq!(data["Username"], "merchant");
    assert_eq!(data["Password"], "päss");
    assert_eq!(data["EndUserID"], "user-1");
    assert_eq!(data["NotificationURL"], "https://merchant.example/notify");
    assert_eq!(
        data["Attributes"]["Amount"], "100.50",
        "amounts always carry two decimals"
    );
    assert_eq!(data["Attributes"]["Firstname"], "Åsa");
    assert_eq!(data["Attributes"]["NewTrustlyAttribute"], "kept");
    assert!(
        data["Attributes"].get("Email").is_none(),
        "absent optionals are omitted, not null"
    );
    let envelope: serde_json::Value = serde_json::from_slice(&request.body).expect("json");
    assert_eq!(envelope["version"], "1.1");
    assert!(
        envelope["params"].get("Signature").is_some() && envelope["params"].get("UUID").is_some()
    );
}

#[tokio::test]
async fn a_verified_error_is_definitive() {
    let (fake, client) = setup().await;
    let error = call_error(
        &fake,
        &client,
        Reply::Error {
            code: 616,
            name: "ERROR_INVALID_CREDENTIALS",
        },
    )
    .await;
    assert_eq!(error.disposition(), Disposition::Definitive);
    assert!(
        matches!(
            error,
            Error::Rejected {
                code: ErrorCode::InvalidCredentials,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_verified_error_is_read_whatever_the_http_status() {
    let (fake, client) = setup().await;
    let error = call_error(
        &fake,
        &client,
        Reply::ErrorWithStatus {
            status: 500,
            code: 637,
            name: "ERROR_DUPLICATE_MESSAGE_ID",
        },
    )
    .await;
    assert!(
        matches!(
            error,
            Error::Rejected {
                code: ErrorCode::DuplicateMessageId,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.disposition(), Disposition::Definitive);
}

#[tokio::test]
async fn error_620_is_ambiguous() {
    let (fake, client) = setup().await;
    let error = call_error(
        &fake,
        &client,
        Reply::Error {
            code: 620,
            name: "ERROR_UNKNOWN",
        },
    )
    .await;
    assert!(matches!(
        error,
        Error::Rejected {
            code: ErrorCode::Unknown,
            ..
        }
    ));
    assert_eq!(error.disposition(), Disposition::Ambiguous);
}

#[tokio::test]
async fn a_timeout_is_ambiguous() {
    let (fake, client) = setup().await;
    let error = call_error(
        &fake,
        &client,
        Reply::Delay(Duration::from_secs(30), Box::new(Reply::Ok(order_url()))),
    )
    .await;
    assert!(matches!(error, Error::Timeout), "{error:?}");
    assert_eq!(error.disposition(), Disposition::Ambiguous);
}

#[tokio::test]
async fn a_reset_connection_is_ambiguous() {
    let (fake, client) = setup().await;
    let error = call_error(&fake, &client, Reply::Reset).await;
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert_eq!(error.disposition(), Disposition::Ambiguous);
}

#[tokio::test]
async fn a_refused_connection_is_ambiguous() {
    let (fake, client) = setup().await;
    drop(fake); // nothing listens any more
    tokio::task::yield_now().await;
    let error = client.call(&deposit()).await.expect_err("nothing listens");
    assert!(
        matches!(error, Error::Transport(_) | Error::Timeout),
        "{error:?}"
    );
    assert_eq!(error.disposition(), Disposition::Ambiguous);
}

#[tokio::test]
async fn a_5xx_without_a_verifiable_body_is_ambiguous() {
    let (fake, client) = setup().await;
    let error = call_error(
        &fake,
        &client,
        Reply::Raw {
            status: 503,
            body: Bytes::from_static(b"Service Unavailable"),
        },
    )
    .await;
    assert!(
        matches!(error, Error::HttpStatus { status: 503 }),
        "{error:?}"
    );
    assert_eq!(error.disposition(), Disposition::Ambiguous);
}

#[tokio::test]
async fn a_garbage_body_is_ambiguous() {
    let (fake, client) = setup().await;
    let error = call_error(
        &fake,
        &client,
        Reply::Raw {
            status: 200,
            body: Bytes::from_static(b"<html>oops</html>"),
        },
    )
    .await;
    assert!(matches!(error, Error::Malformed(_)), "{error:?}");
    assert_eq!(error.disposition(), Disposition::Ambiguous);
}

#[tokio::test]
async fn an_error_without_a_signed_part_is_ambiguous() {
    let (fake, client) = setup().await;
    let body = json!({"version": "1.1", "error": {"name": "JSONRPCError", "code": 616, "message": "ERROR_INVALID_CREDENTIALS"}});
    let error = call_error(
        &fake,
        &client,
        Reply::Raw {
            status: 200,
            body: Bytes::from(body.to_string()),
        },
    )
    .await;
    assert!(
        matches!(error, Error::Malformed(_)),
        "unsigned error codes are not believed: {error:?}"
    );
    assert_eq!(error.disposition(), Disposition::Ambiguous);
}

#[tokio::test]
async fn a_bad_signature_is_never_believed() {
    let (fake, client) = setup().await;
    let error = call_error(&fake, &client, Reply::BadSignature(order_url())).await;
    assert!(matches!(error, Error::BadSignature), "{error:?}");
    assert_eq!(error.disposition(), Disposition::Ambiguous);
}

#[tokio::test]
async fn a_response_for_another_uuid_or_method_is_refused() {
    let (fake, client) = setup().await;
    let error = call_error(&fake, &client, Reply::WrongUuid(order_url())).await;
    assert!(matches!(error, Error::UuidMismatch { .. }), "{error:?}");
    assert_eq!(error.disposition(), Disposition::Ambiguous);
    let error = call_error(&fake, &client, Reply::WrongMethod(order_url())).await;
    assert!(matches!(error, Error::MethodMismatch { .. }), "{error:?}");
}

#[tokio::test]
async fn an_oversized_body_is_refused_unread() {
    let (fake, client) = setup_with(|config| config.max_response_bytes = 1024).await;
    let error = call_error(
        &fake,
        &client,
        Reply::Raw {
            status: 200,
            body: Bytes::from(vec![b' '; 4096]),
        },
    )
    .await;
    assert!(
        matches!(error, Error::BodyTooLarge { limit: 1024 }),
        "{error:?}"
    );
    assert_eq!(error.disposition(), Disposition::Ambiguous);
}

#[tokio::test]
async fn a_verified_success_with_the_wrong_shape_is_ambiguous() {
    let (fake, client) = setup().await;
    let error = call_error(&fake, &client, Reply::Ok(json!({"url": "https://x"}))).await;
    assert!(matches!(error, Error::UnexpectedData(_)), "{error:?}");
    assert_eq!(error.disposition(), Disposition::Ambiguous);
}

#[tokio::test]
async fn an_ambiguous_refund_is_replayed_byte_for_byte() {
    let (fake, client) = setup().await;
    let refund = Refund {
        order_id: OrderId::parse("1371798227").expect("order id"),
        amount: "10.00".parse::<Amount>().expect("amount"),
        currency: "EUR".parse::<Currency>().expect("currency"),
        attributes: RefundAttributes::default(),
    };
    let signed = client.sign(&refund).await.expect("signs");
    fake.push(Reply::Delay(
        Duration::from_secs(30),
        Box::new(Reply::Ok(json!({"orderid": "1", "result": "1"}))),
    ));
    let first = client
        .send(&signed)
        .await
        .expect_err("first attempt times out");
    assert!(first.is_ambiguous());

    fake.push(Reply::Ok(json!({"orderid": "1371798227", "result": "1"})));
    let data = client.send(&signed).await.expect("replay succeeds");
    assert_eq!(data["result"], "1");

    let received = fake.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].body, received[1].body,
        "replay sends the same bytes"
    );
    assert_eq!(received[0].uuid, signed.uuid);
    assert_eq!(received[1].uuid, signed.uuid);
    assert!(received.iter().all(|r| r.signature_valid));
    assert!(
        received[0].data.get("Attributes").is_none(),
        "empty Refund attributes are omitted"
    );
    assert!(
        !format!("{signed:?}").contains("päss"),
        "Debug never shows the credentials"
    );
}

#[tokio::test]
async fn each_new_call_gets_a_fresh_uuid() {
    let (fake, client) = setup().await;
    fake.push(Reply::Ok(order_url()));
    fake.push(Reply::Ok(order_url()));
    client.call(&deposit()).await.expect("first");
    client.call(&deposit()).await.expect("second");
    let received = fake.received();
    assert_ne!(received[0].uuid, received[1].uuid);
    assert!(
        uuid::Uuid::parse_str(&received[0].uuid)
            .is_ok_and(|u| u.hyphenated().to_string() == received[0].uuid)
    );
}
