//! Incoming signatures made by Trustly's other client serializers (spec §3.3, §3.4): booleans as
//! `True`/`False` (Python, .NET) or `1`/`""` (PHP), non-integer numbers as doubles (`100.0` in
//! Python/Java, `100` in JS/PHP/.NET). Each vector is signed with the test "Trustly" key over a
//! plaintext written out by hand here, not produced by the code under test. Only these documented
//! renderings are accepted; tampered data and undocumented renderings still fail. Outgoing data
//! never holds a boolean or a float.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use serde_json::{Map, Value, json};
use support::*;
use trustly_sidecar::{
    secret::Secret,
    trustly::{
        Client, ClientConfig, Error,
        canonical::Variant,
        client,
        sign::{Backend, CryptoPool},
        wire,
    },
};

const UUID: &str = "258a2184-2842-b485-25ca-293525152425";

/// The `data` of a credit with a boolean and non-integer numbers, as raw JSON text (a `json!`
/// literal would pass the numbers through f64 and lose their lexemes).
fn data_text(amount: &str) -> String {
    format!(
        r#"{{"amount":{amount},"attributes":{{"flag":false,"rate":1.50}},"currency":"SEK","enduserid":"u","messageid":"m","notificationid":"42","orderid":"1371798227","refund":true,"timestamp":"2026-11-21 10:00:00+00"}}"#
    )
}

/// `S(data)` with the scalars rendered as text by hand, for one client.
fn serialized(amount: &str, flag: &str, rate: &str, refund: &str) -> String {
    format!(
        "amount{amount}attributesflag{flag}rate{rate}currencySEKenduseridumessageidmnotificationid42orderid1371798227refund{refund}timestamp2026-11-21 10:00:00+00"
    )
}

/// (client, its S(data), the variant name the sidecar must report).
fn clients() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "canonical (raw lexemes, Java/JS booleans)",
            serialized("100.00", "false", "1.50", "true"),
            "canonical",
        ),
        (
            "Python",
            serialized("100.0", "False", "1.5", "True"),
            "booleans_title_case+numbers_float",
        ),
        (
            "Java",
            serialized("100.0", "false", "1.5", "true"),
            "numbers_float",
        ),
        (
            "JS",
            serialized("100", "false", "1.5", "true"),
            "numbers_shortest",
        ),
        (
            "PHP",
            serialized("100", "", "1.5", "1"),
            "booleans_php+numbers_shortest",
        ),
        (
            ".NET",
            serialized("100", "False", "1.5", "True"),
            "booleans_title_case+numbers_shortest",
        ),
    ]
}

fn notification(data: &str, signature: &str) -> Vec<u8> {
    format!(
        r#"{{"method":"credit","params":{{"signature":"{signature}","uuid":"{UUID}","data":{data}}},"version":"1.1"}}"#
    )
    .into_bytes()
}

fn sign(serialized: &str) -> String {
    signer(Backend::RustCrypto, TRUSTLY_PRIVATE)
        .sign(format!("credit{UUID}{serialized}").as_bytes())
        .unwrap()
}

#[test]
fn each_clients_rendering_verifies_and_is_named() {
    let verifier = verifier(Backend::RustCrypto, TRUSTLY_PUBLIC);
    for (client, serialized, name) in clients() {
        let body = notification(&data_text("100.00"), &sign(&serialized));
        let part = wire::parse_notification(&body).expect("parses");
        let variant = part.verify_tolerant(verifier.as_ref());
        assert_eq!(variant.map(Variant::name), Some(name), "{client}");
        // The plain check is canonical only: a variant never passes it.
        assert_eq!(
            part.verify(verifier.as_ref()),
            name == "canonical",
            "{client}"
        );
    }
}

#[test]
fn tampered_data_and_undocumented_renderings_still_fail() {
    let verifier = verifier(Backend::RustCrypto, TRUSTLY_PUBLIC);
    for (client, serialized, _) in clients() {
        // Signed as the client serialized 100.00, then the amount changed on the way.
        let body = notification(&data_text("100.01"), &sign(&serialized));
        let part = wire::parse_notification(&body).expect("parses");
        assert_eq!(part.verify_tolerant(verifier.as_ref()), None, "{client}");
    }
    for undocumented in [
        serialized("100.00", "FALSE", "1.50", "TRUE"),
        serialized("100.00", "0", "1.50", "1"),
        serialized("1.0E2", "false", "1.5", "true"),
        serialized("100.000", "false", "1.500", "true"),
    ] {
        let body = notification(&data_text("100.00"), &sign(&undocumented));
        let part = wire::parse_notification(&body).expect("parses");
        assert_eq!(
            part.verify_tolerant(verifier.as_ref()),
            None,
            "{undocumented}"
        );
    }
    // Data with only strings and integers gets no variants at all: a signature over another
    // rendering of a string is simply bad.
    let plain = r#"{"amount":"100.00","notificationid":"42"}"#;
    let body = notification(plain, &sign("amount100.0notificationid42"));
    let part = wire::parse_notification(&body).expect("parses");
    assert_eq!(part.verify_tolerant(verifier.as_ref()), None);
}

#[test]
fn a_response_signed_by_a_python_serializer_is_accepted_and_reported() {
    let verifier = verifier(Backend::RustCrypto, TRUSTLY_PUBLIC);
    let data = r#"{"orderid":"1371798227","result":"1","rate":2.50,"flag":true}"#;
    let signature = signer(Backend::RustCrypto, TRUSTLY_PRIVATE)
        .sign(format!("Refund{UUID}flagTrueorderid1371798227rate2.5result1").as_bytes())
        .unwrap();
    let body = format!(
        r#"{{"result":{{"signature":"{signature}","uuid":"{UUID}","method":"Refund","data":{data}}},"version":"1.1"}}"#
    );
    let (data, variant) =
        client::interpret(200, body.as_bytes(), "Refund", UUID, verifier.as_ref()).expect("ok");
    assert_eq!(variant.name(), "booleans_title_case+numbers_float");
    assert_eq!(data["orderid"], json!("1371798227"));
    // The same body with the result flipped is a bad signature, not a variant.
    let tampered = body.replace(r#""result":"1""#, r#""result":"0""#);
    assert!(matches!(
        client::interpret(200, tampered.as_bytes(), "Refund", UUID, verifier.as_ref()),
        Err(Error::BadSignature)
    ));
}

#[tokio::test]
async fn outgoing_data_never_holds_a_boolean_or_a_float() {
    let client = Client::new(
        ClientConfig::new(
            "https://test.trustly.com/api/1".parse().unwrap(),
            "merchant",
            Secret::new("password".to_owned()),
        ),
        signer(Backend::RustCrypto, MERCHANT_PRIVATE),
        verifier(Backend::RustCrypto, TRUSTLY_PUBLIC),
        CryptoPool::new(1),
    )
    .unwrap();
    let data = |attributes: Value| -> Map<String, Value> {
        let Value::Object(map) = json!({"OrderID": 1371798227u64, "Attributes": attributes}) else {
            unreachable!()
        };
        map
    };
    let float: Value = serde_json::from_str("1.50").unwrap();
    for refused in [json!({"Flag": true}), json!({"Nested": [{"Rate": float}]})] {
        let error = client
            .sign_data("Refund", uuid::Uuid::new_v4(), data(refused.clone()))
            .await
            .expect_err("refused");
        assert!(matches!(error, Error::Encoding(_)), "{refused}: {error:?}");
    }
    // Strings, integers and nulls are what Trustly's serializers agree on.
    let signed = client
        .sign_data(
            "Refund",
            uuid::Uuid::new_v4(),
            data(json!({"Flag": "1", "QuickDeposit": 1, "Empty": null})),
        )
        .await
        .expect("signs");
    let sent: Value = serde_json::from_slice(&signed.body).unwrap();
    assert_eq!(sent["params"]["Data"]["Attributes"]["Flag"], json!("1"));
}
