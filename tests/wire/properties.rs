//! Property tests: sign→verify round-trips over random JSON trees (unicode, nulls, nested arrays)
//! on every backend; any tampered plaintext byte, leaf or signature fails; and no network input,
//! however malformed, panics the parsers or is believed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use proptest::prelude::*;
use serde_json::{Map, Value};
use support::*;
use trustly_sidecar::trustly::{canonical, client::interpret_response, sign::Backend, wire};

/// Random JSON trees: the shapes Trustly sends (strings, integer and decimal lexemes, nulls,
/// empty containers, nested arrays and objects, any unicode in keys and values).
fn json_tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        "(0|[1-9][0-9]{0,5})\\.[0-9]{2}"
            .prop_map(|s| serde_json::from_str(&s).expect("decimal lexeme")),
        any::<String>().prop_map(Value::String),
        "[A-Za-z0-9_]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn backends() -> impl Strategy<Value = Backend> {
    prop::sample::select(Backend::available().to_vec())
}

/// Paths to every string leaf of a tree, so a test can change one in place.
fn string_leaves(value: &Value, path: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match value {
        Value::String(s) if !s.is_empty() => out.push(path.clone()),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, item)| {
            path.push(PathStep::Index(i));
            string_leaves(item, path, out);
            path.pop();
        }),
        Value::Object(map) => map.iter().for_each(|(k, item)| {
            path.push(PathStep::Key(k.clone()));
            string_leaves(item, path, out);
            path.pop();
        }),
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum PathStep {
    Index(usize),
    Key(String),
}

fn leaf_mut<'a>(value: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(value, |node, step| match step {
        PathStep::Index(i) => &mut node[*i],
        PathStep::Key(k) => &mut node[k.as_str()],
    })
}

proptest! {
    // RSA signing costs milliseconds; 48 trees per property keeps the suite quick.
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sign_then_verify_round_trips_through_the_wire(data in json_tree(), backend in backends(), uuid in "[0-9a-f]{8}-[0-9a-f]{4}") {
        let signature = signer(backend, TRUSTLY_PRIVATE)
            .sign(canonical::plaintext("credit", &uuid, &data).as_bytes())
            .expect("signs");
        // What the receiver sees: the tree after JSON encoding and parsing.
        let body = serde_json::to_vec(&wire::notification("credit", &uuid, &signature, data.clone())).expect("encode");
        let received = match data {
            Value::Object(_) => wire::parse_notification(&body).expect("parses"),
            // Notification data must be an object; other trees are checked via the plaintext.
            _ => wire::SignedPart { method: "credit".into(), uuid: uuid.clone(), signature: signature.clone(), data: data.clone() },
        };
        prop_assert_eq!(received.plaintext(), canonical::plaintext("credit", &uuid, &data));
        prop_assert!(received.verify(verifier(backend, TRUSTLY_PUBLIC).as_ref()));
        prop_assert!(!received.verify(verifier(backend, MERCHANT_PUBLIC).as_ref()), "wrong key must fail");
    }

    #[test]
    fn any_tampered_plaintext_byte_fails(data in json_tree(), backend in backends(), position in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let plaintext = canonical::plaintext("Deposit", "258a2184-2842-b485-25ca-293525152425", &data).into_bytes();
        let signature = signer(backend, MERCHANT_PRIVATE).sign(&plaintext).expect("signs");
        let mut tampered = plaintext.clone();
        let i = position.index(tampered.len());
        tampered[i] ^= flip;
        let verifier = verifier(backend, MERCHANT_PUBLIC);
        prop_assert!(verifier.verify(&plaintext, &signature));
        prop_assert!(!verifier.verify(&tampered, &signature));
    }

    #[test]
    fn any_changed_leaf_fails(data in json_tree(), backend in backends(), pick in any::<prop::sample::Index>(), replacement in any::<char>()) {
        let mut leaves = Vec::new();
        string_leaves(&data, &mut Vec::new(), &mut leaves);
        prop_assume!(!leaves.is_empty());
        let path = &leaves[pick.index(leaves.len())];
        let mut tampered = data.clone();
        let leaf = leaf_mut(&mut tampered, path);
        let original = leaf.as_str().expect("string leaf").to_owned();
        let first = original.chars().next().expect("non-empty");
        prop_assume!(first != replacement);
        // Same position, different character: the plaintext must change there.
        *leaf = Value::String(format!("{replacement}{}", &original[first.len_utf8()..]));

        let uuid = "e76ffbe5-e0f9-4402-8689-f868ed2021f8";
        let signature = signer(backend, MERCHANT_PRIVATE)
            .sign(canonical::plaintext("account", uuid, &data).as_bytes())
            .expect("signs");
        let verifier = verifier(backend, MERCHANT_PUBLIC);
        prop_assert!(!verifier.verify(canonical::plaintext("account", uuid, &tampered).as_bytes(), &signature));
    }

    #[test]
    fn any_tampered_signature_fails(position in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9+/=!-]") {
        let plaintext = b"Balance00000000-0000-4000-8000-000000000000Passwordp";
        let signature = signer(Backend::RustCrypto, MERCHANT_PRIVATE).sign(plaintext).expect("signs");
        let mut chars: Vec<char> = signature.chars().collect();
        let i = position.index(chars.len());
        let new = replacement.chars().next().expect("one char");
        prop_assume!(chars[i] != new);
        chars[i] = new;
        let tampered: String = chars.into_iter().collect();
        for &backend in Backend::available() {
            prop_assert!(!verifier(backend, MERCHANT_PUBLIC).verify(plaintext, &tampered));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic any parser, and are never believed.
    #[test]
    fn arbitrary_bodies_never_panic_or_verify(body in prop::collection::vec(any::<u8>(), 0..512), status in 100u16..600) {
        let verifier = verifier(Backend::RustCrypto, TRUSTLY_PUBLIC);
        prop_assert!(interpret_response(status, &body, "Deposit", "u", verifier.as_ref()).is_err());
        let _ = wire::parse_notification(&body);
        let _ = wire::parse_request(&body);
        let _ = wire::parse_notification_response(&body);
    }

    /// A genuine signed response, mutated anywhere (byte flips, truncation, insertion), never
    /// panics the client, and whatever it accepts is exactly the data Trustly signed.
    #[test]
    fn mutated_genuine_responses_never_yield_other_data(
        position in any::<prop::sample::Index>(),
        mutation in 0u8..3,
        byte in any::<u8>(),
    ) {
        let data = serde_json::json!({"orderid": "1371798227", "url": "https://x.example/å", "n": 12.50, "z": null, "a": [1, {"b": ""}]});
        let uuid = "a4d1578e-6c00-11e5-9d5e-0800279bcb51";
        let signature = signer(Backend::RustCrypto, TRUSTLY_PRIVATE)
            .sign(canonical::plaintext("Deposit", uuid, &data).as_bytes())
            .expect("signs");
        let mut body = serde_json::to_vec(&wire::success_response("Deposit", uuid, &signature, data.clone())).expect("encode");
        let i = position.index(body.len());
        match mutation {
            0 => body[i] = byte,
            1 => body.truncate(i),
            _ => body.insert(i, byte),
        }
        let verifier = verifier(Backend::RustCrypto, TRUSTLY_PUBLIC);
        if let Ok(accepted) = interpret_response(200, &body, "Deposit", uuid, verifier.as_ref()) {
            prop_assert_eq!(canonical::serialize(&accepted), canonical::serialize(&data));
        }
    }
}

#[test]
fn deeply_nested_bodies_are_refused_without_overflowing_the_stack() {
    let verifier = verifier(Backend::RustCrypto, TRUSTLY_PUBLIC);
    for open in ["[", "{\"a\":"] {
        let body = open.repeat(100_000);
        assert!(
            interpret_response(200, body.as_bytes(), "Deposit", "u", verifier.as_ref()).is_err()
        );
        assert!(wire::parse_notification(body.as_bytes()).is_err());
    }
}
