//! Bounded fuzzing, run in CI with fixed seeds: the canonical serializer (`trustly::canonical`)
//! and the notification parser (`wire::parse_notification`, and intake over HTTP behind it).
//!
//! - The serializer, on JSON text generated from random trees (deep and wide, any unicode, every
//!   escape form, odd number lexemes) and rendered in several ways (key order, escapes,
//!   whitespace): it never panics, is deterministic, ignores key order and escape form, matches a
//!   model computed from the tree itself, and its output is never longer than the input.
//! - The parser, on arbitrary bytes up to 64 KiB, on random envelopes, and on mutations of a
//!   genuine signed notification: it never panics, returns Ok exactly for JSON-RPC 1.1
//!   notification shapes, and a mutated notification verifies only if the text its signature
//!   covers is unchanged. Over HTTP, intake stores nothing but the genuine notification.
//! - Nesting: at serde_json's depth limit the serializer works on half a worker thread's stack;
//!   beyond it, bodies deep inside a notification envelope are refused without overflow.
//!
//! The crate forbids `unsafe`, so no counting allocator can be installed here; memory is bounded
//! by the 64 KiB intake limit (tests/api/bad_input.rs) and, here, by the size of what is built from
//! an input: the parsed tree's footprint and the canonical text are checked against its length.
//!
//! Seeds are fixed, so a run is reproducible; `FUZZ_CASES=<n>` runs n cases per target instead
//! of the CI default.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::{
    collections::BTreeMap,
    fmt::Debug,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use proptest::{
    collection::{btree_map, vec},
    prelude::*,
    sample::Index,
    strategy::ValueTree,
    test_runner::{Config, RngAlgorithm, TestCaseResult, TestRng, TestRunner},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Map, Value, json};
use support::{app, sim::SimHarness, *};
use trustly_sidecar::trustly::{canonical, sign::Backend, wire};

// === runner ===

/// Every target starts from this seed (ChaCha), so CI runs are reproducible.
const SEED: [u8; 32] = *b"trustly-sidecar fuzz seed 000001";

fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn runner(default_cases: u32) -> TestRunner {
    let config = Config {
        cases: cases(default_cases),
        failure_persistence: None,
        // Shrinking a 64 KiB body byte by byte would take minutes; a few hundred steps is enough
        // to point at the problem.
        max_shrink_iters: 512,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED))
}

/// Runs `test` on `cases` values of `strategy`, panicking with the (shrunk) failing input.
fn fuzz<S: Strategy>(default_cases: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
where
    S::Value: Debug,
{
    if let Err(error) = runner(default_cases).run(&strategy, test) {
        panic!("{error}");
    }
}

// === JSON trees and their renderings ===

/// A JSON tree as generated, before it is rendered as text.
#[derive(Clone, Debug)]
enum Node {
    Null,
    Bool(bool),
    /// The number's lexeme, as written in the text.
    Number(String),
    String(String),
    Array(Vec<Node>),
    /// Unique keys (JSON objects with repeated keys keep the last; not what is tested here).
    Object(Vec<(String, Node)>),
}

/// Valid JSON number lexemes, including the odd ones: long, signed zero, exponents of each form.
fn number_lexeme() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?(0|[1-9][0-9]{0,30})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,4})?",
        "(0|[1-9][0-9]{0,5})\\.[0-9]{2}",
        Just("-0".to_owned()),
        Just("-0.0e-0".to_owned()),
        Just("1E400".to_owned()),
        Just("123456789012345678901234567890.123456789".to_owned()),
    ]
}

/// Strings with everything that needs escaping, any unicode, and keys that sort differently by
/// byte than by collation.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\"\\\\/]{0,8}",
        "[A-Za-z0-9_]{0,12}",
        "[\u{80}-\u{7ff}\u{800}-\u{ffff}\u{10000}-\u{10ffff}]{0,6}",
        prop::sample::select(vec![
            "IP",
            "IntegrationModule",
            "PSPMerchant",
            "PSPMerchantURL",
            "PaymentDate",
            "URLTarget",
            "URLScheme",
            "Unchangeable",
            "a",
            "A",
            "_",
            "é",
            "e\u{301}",
            "",
        ])
        .prop_map(str::to_owned),
    ]
}

fn leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        Just(Node::Null),
        any::<bool>().prop_map(Node::Bool),
        number_lexeme().prop_map(Node::Number),
        text().prop_map(Node::String),
    ]
}

fn object(entries: BTreeMap<String, Node>) -> Node {
    Node::Object(entries.into_iter().collect())
}

/// Random trees: up to 8 levels, up to a few hundred nodes.
fn tree() -> impl Strategy<Value = Node> {
    leaf().prop_recursive(8, 256, 10, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..10).prop_map(Node::Array),
            btree_map(text(), inner, 0..10).prop_map(object),
        ]
    })
}

/// Wide trees: one level of up to 1 500 members or items.
fn wide_tree() -> impl Strategy<Value = Node> {
    prop_oneof![
        btree_map(text(), leaf(), 0..1500).prop_map(object),
        vec(leaf(), 0..1500).prop_map(Node::Array),
    ]
}

/// Deep trees: a chain of up to 120 arrays and objects (serde_json refuses more than 128), with
/// a sibling leaf at every level.
fn deep_tree() -> impl Strategy<Value = Node> {
    (vec((any::<bool>(), text(), leaf()), 1..=120), leaf()).prop_map(|(levels, bottom)| {
        levels
            .into_iter()
            .rev()
            .fold(bottom, |inner, (is_array, key, sibling)| {
                if is_array {
                    Node::Array(vec![sibling, inner])
                } else {
                    // `key` and a different key for the sibling.
                    let other = format!("{key}~");
                    Node::Object(vec![(key, inner), (other, sibling)])
                }
            })
    })
}

/// How a tree is rendered as JSON text.
#[derive(Clone, Copy, Debug)]
struct Style {
    /// Shuffles every object's members.
    order: u64,
    /// Which characters are written as `\uXXXX` (0: only what must be escaped, 1: non-ASCII
    /// too, 2: everything).
    escape: u8,
    /// `/` written as `\/`.
    escape_slash: bool,
    /// Whitespace between tokens.
    spaced: bool,
}

fn style() -> impl Strategy<Value = Style> {
    (any::<u64>(), 0u8..3, any::<bool>(), any::<bool>()).prop_map(
        |(order, escape, escape_slash, spaced)| Style {
            order,
            escape,
            escape_slash,
            spaced,
        },
    )
}

/// A small deterministic shuffle (xorshift), so a style always renders a tree the same way.
fn shuffled<'a, T>(items: &'a [T], seed: &mut u64) -> Vec<&'a T> {
    let mut out: Vec<&T> = items.iter().collect();
    for i in (1..out.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let j = usize::try_from(*seed % (i as u64 + 1)).expect("fits");
        out.swap(i, j);
    }
    out
}

fn render(node: &Node, style: Style) -> String {
    let mut out = String::new();
    let mut seed = style.order | 1;
    write_node(node, style, &mut seed, &mut out);
    out
}

fn write_node(node: &Node, style: Style, seed: &mut u64, out: &mut String) {
    let gap = if style.spaced { " \n\t" } else { "" };
    match node {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Number(lexeme) => out.push_str(lexeme),
        Node::String(s) => write_string(s, style, out),
        Node::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(gap);
                write_node(item, style, seed, out);
            }
            out.push_str(gap);
            out.push(']');
        }
        Node::Object(entries) => {
            out.push('{');
            for (i, (key, value)) in shuffled(entries, seed).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(gap);
                write_string(key, style, out);
                out.push_str(gap);
                out.push(':');
                out.push_str(gap);
                write_node(value, style, seed, out);
            }
            out.push_str(gap);
            out.push('}');
        }
    }
}

fn write_string(s: &str, style: Style, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        let must = c == '"' || c == '\\' || c < ' ';
        let escaped = style.escape == 2 || (style.escape == 1 && !c.is_ascii());
        match c {
            '/' if style.escape_slash => out.push_str("\\/"),
            '"' | '\\' | '\n' | '\t' | '\r' | '\u{8}' | '\u{c}' if must && !escaped => {
                out.push('\\');
                out.push(match c {
                    '\n' => 'n',
                    '\t' => 't',
                    '\r' => 'r',
                    '\u{8}' => 'b',
                    '\u{c}' => 'f',
                    other => other,
                });
            }
            _ if must || escaped => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// `S(tree)` computed from the generated tree, independently of `serde_json::Value`: keys in
/// byte order, strings as they are, numbers as serde_json keeps their lexeme.
fn model(node: &Node, out: &mut String) {
    match node {
        Node::Null => {}
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Number(lexeme) => out.push_str(
            &serde_json::from_str::<Value>(lexeme)
                .expect("a valid lexeme")
                .to_string(),
        ),
        Node::String(s) => out.push_str(s),
        Node::Array(items) => items.iter().for_each(|item| model(item, out)),
        Node::Object(entries) => {
            let mut sorted: Vec<&(String, Node)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            for (key, value) in sorted {
                out.push_str(key);
                model(value, out);
            }
        }
    }
}

fn parse(text: &str) -> Result<Value, TestCaseError> {
    serde_json::from_str(text)
        .map_err(|e| TestCaseError::fail(format!("generated JSON does not parse: {e}: {text}")))
}

/// The serializer's properties for one tree rendered two ways.
fn check_canonical(node: &Node, first: Style, second: Style) -> TestCaseResult {
    let text = render(node, first);
    let other_text = render(node, second);
    let value = parse(&text)?;
    let other = parse(&other_text)?;
    let canonical = canonical::serialize(&value);
    // Deterministic, and blind to member order, escape form and whitespace.
    prop_assert_eq!(&canonical, &canonical::serialize(&value));
    prop_assert_eq!(&canonical, &canonical::serialize(&other));
    // The same as the model computed from the tree itself.
    let mut expected = String::new();
    model(node, &mut expected);
    prop_assert_eq!(&canonical, &expected);
    // `method || uuid || S(data)`.
    prop_assert_eq!(
        canonical::plaintext("credit", "u-1", &value),
        format!("credit{}{canonical}", "u-1")
    );
    // No blow-up: never longer than the tree written compactly, and within twice the text it
    // was parsed from (serde_json may add a `+` to an exponent).
    let compact = serde_json::to_string(&value).expect("encode");
    prop_assert!(canonical.len() <= compact.len());
    prop_assert!(canonical.len() <= 2 * text.len());
    Ok(())
}

#[test]
fn canonical_serializer_on_random_trees() {
    fuzz(2000, (tree(), style(), style()), |(node, first, second)| {
        check_canonical(&node, first, second)
    });
}

#[test]
fn canonical_serializer_on_wide_and_deep_trees() {
    fuzz(
        100,
        (prop_oneof![wide_tree(), deep_tree()], style(), style()),
        |(node, first, second)| check_canonical(&node, first, second),
    );
}

// === the notification parser ===

/// What `parse_notification` must accept: a JSON object with `version` "1.1" (or the number
/// 1.1, which Trustly's own clients send), a string `method`, and `params` holding a string
/// `signature`, a string `uuid` and an object `data`. Anything else is refused.
fn notification_shape(body: &[u8]) -> Option<wire::SignedPart> {
    let Ok(Value::Object(root)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let version = match root.get("version")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let params = root.get("params")?.as_object()?;
    (version == "1.1").then_some(())?;
    Some(wire::SignedPart {
        method: root.get("method")?.as_str()?.to_owned(),
        signature: params.get("signature")?.as_str()?.to_owned(),
        uuid: params.get("uuid")?.as_str()?.to_owned(),
        data: Value::Object(params.get("data")?.as_object()?.clone()),
    })
}

/// The approximate heap a parsed tree holds: one `Value` per node plus its text and, for
/// objects, a map entry per member.
fn footprint(value: &Value) -> usize {
    let node = size_of::<Value>();
    node + match value {
        Value::Null | Value::Bool(_) => 0,
        Value::Number(n) => n.to_string().len(),
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(footprint).sum(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| size_of::<String>() + k.len() + footprint(v))
            .sum(),
    }
}

/// The parser's properties for one body.
fn check_parser(body: &[u8]) -> TestCaseResult {
    let parsed = wire::parse_notification(body);
    let expected = notification_shape(body);
    match (&parsed, &expected) {
        (Ok(part), Some(shape)) => prop_assert_eq!(part, shape),
        (Err(_), None) => {}
        _ => prop_assert!(
            false,
            "parse_notification gave {:?}, the shape says {:?}",
            parsed,
            expected
        ),
    }
    if let Ok(part) = parsed {
        // What is built from a body is proportional to it.
        prop_assert!(part.plaintext().len() <= 2 * body.len());
        prop_assert!(footprint(&part.data) <= 64 * body.len() + 1024);
    }
    Ok(())
}

/// Bytes up to 64 KiB: uniform, or drawn from JSON's alphabet so the parser gets further in.
fn random_body() -> impl Strategy<Value = Vec<u8>> {
    const JSON_BYTES: &[u8] = b" \t\r\n{}[]{}[]\"\"\"::,,,\\/0123456789.-+eEtruefalsnu\xc3\xa5\xff";
    (any::<u64>(), 0..=64 * 1024usize, any::<bool>(), 0..4usize).prop_map(
        |(seed, max_len, json_alphabet, scale)| {
            // Mostly short bodies, some up to the full 64 KiB.
            let len = max_len >> (scale * 4);
            let mut rng = StdRng::seed_from_u64(seed);
            let mut body = vec![0u8; len];
            rng.fill(&mut body[..]);
            if json_alphabet {
                for b in &mut body {
                    *b = JSON_BYTES[usize::from(*b) % JSON_BYTES.len()];
                }
            }
            body
        },
    )
}

#[test]
fn parser_on_arbitrary_bytes() {
    fuzz(2000, random_body(), |body| check_parser(&body));
}

/// A JSON value of any type, for envelope members.
fn any_member() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9-]{0,12}".prop_map(Value::String),
        Just(json!([])),
        Just(json!({})),
        Just(json!({"orderid": "1", "notificationid": "2"})),
        Just(json!([{"orderid": "1"}])),
    ]
}

/// An envelope member: absent, typical, or of any type.
fn member(typical: Value) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        8 => Just(Some(typical)),
        2 => any_member().prop_map(Some),
    ]
}

/// Notification-like envelopes with members missing, misnamed or of the wrong type.
fn envelope() -> impl Strategy<Value = Value> {
    let version = prop_oneof![
        1 => Just(None),
        6 => Just(Some(json!("1.1"))),
        2 => Just(Some(serde_json::from_str("1.1").expect("number"))),
        1 => Just(Some(serde_json::from_str("1.10").expect("number"))),
        1 => Just(Some(json!("1.10"))),
        1 => Just(Some(json!("2.0"))),
        1 => Just(Some(json!(1))),
        1 => Just(Some(json!(" 1.1"))),
        1 => any_member().prop_map(Some),
    ];
    let params = prop_oneof![
        1 => any_member().prop_map(Some),
        1 => Just(None),
        6 => (
            member(json!("c2lnbmF0dXJl")),
            member(json!("6d3c5a4e-2f7b-4c1d-9e8a-0b1c2d3e4f50")),
            member(json!({"notificationid": "1", "amount": "5.00"})),
            prop::option::of(("[a-zA-Z]{1,10}", any_member())),
        )
            .prop_map(|(signature, uuid, data, extra)| {
                let mut params = Map::new();
                for (key, value) in [("signature", signature), ("uuid", uuid), ("data", data)] {
                    if let Some(value) = value {
                        params.insert(key.into(), value);
                    }
                }
                if let Some((key, value)) = extra {
                    params.insert(key, value);
                }
                Some(Value::Object(params))
            }),
    ];
    (
        version,
        member(json!("credit")),
        params,
        prop::option::of(("[a-zA-Z]{1,10}", any_member())),
    )
        .prop_map(|(version, method, params, extra)| {
            let mut root = Map::new();
            for (key, value) in [("version", version), ("method", method), ("params", params)] {
                if let Some(value) = value {
                    root.insert(key.into(), value);
                }
            }
            if let Some((key, value)) = extra {
                root.insert(key, value);
            }
            Value::Object(root)
        })
}

#[test]
fn parser_on_random_envelopes() {
    let accepted = AtomicUsize::new(0);
    fuzz(2000, envelope(), |envelope| {
        let body = serde_json::to_vec(&envelope).expect("encode");
        if wire::parse_notification(&body).is_ok() {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
        check_parser(&body)
    });
    // The generator reaches both sides.
    let accepted = accepted.into_inner();
    assert!(
        (100..1900).contains(&accepted),
        "{accepted} of 2000 envelopes accepted"
    );
}

// === mutations of a genuine notification ===

const UUID: &str = "6d3c5a4e-2f7b-4c1d-9e8a-0b1c2d3e4f50";

/// A genuine `credit` notification signed with Trustly's (test) key, and the text it signs.
fn genuine(notification_id: &str) -> (Vec<u8>, String) {
    let data = json!({
        "orderid": "1234567890", "messageid": "m-fuzz", "notificationid": notification_id,
        "enduserid": "user-1", "amount": "5.00", "currency": "EUR",
        "timestamp": "2026-11-21 10:00:00.123456+00",
        "attributes": {"name": "Åsa \"Ö\"\\n", "list": [1, 2.50, null, {}]}
    });
    let plaintext = canonical::plaintext("credit", UUID, &data);
    let signature = signer(Backend::RustCrypto, TRUSTLY_PRIVATE)
        .sign(plaintext.as_bytes())
        .expect("signs");
    let body =
        serde_json::to_vec(&wire::notification("credit", UUID, &signature, data)).expect("encode");
    (body, plaintext)
}

#[derive(Clone, Debug)]
enum Mutation {
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
    /// Copies a run of up to 16 bytes to another place.
    Copy(Index, Index, usize),
}

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(b" \t\n\r{}[]\",:\\/0123456789.-eEnul".to_vec()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        (any::<Index>(), byte()).prop_map(|(at, b)| Mutation::Set(at, b)),
        (any::<Index>(), byte()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<Index>(), 1..=16usize)
            .prop_map(|(from, to, n)| Mutation::Copy(from, to, n)),
    ]
}

fn mutated(body: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut body = body.to_vec();
    for m in mutations {
        if body.is_empty() {
            break;
        }
        let len = body.len();
        match m {
            Mutation::Flip(at, mask) => body[at.index(len)] ^= mask,
            Mutation::Set(at, b) => body[at.index(len)] = *b,
            Mutation::Insert(at, b) => body.insert(at.index(len + 1), *b),
            Mutation::Delete(at) => {
                body.remove(at.index(len));
            }
            Mutation::Truncate(at) => body.truncate(at.index(len)),
            Mutation::Copy(from, to, n) => {
                let from = from.index(len);
                let run = body[from..(from + n).min(len)].to_vec();
                let to = to.index(len + 1);
                body.splice(to..to, run);
            }
        }
    }
    body
}

#[test]
fn mutated_genuine_notifications_never_verify_with_other_content() {
    let (body, plaintext) = genuine("9600000001");
    let trustly = verifier(Backend::RustCrypto, TRUSTLY_PUBLIC);
    let original = wire::parse_notification(&body).expect("parses");
    assert!(
        original.verify(trustly.as_ref()),
        "the genuine one verifies"
    );
    let (parsed, verified) = (AtomicUsize::new(0), AtomicUsize::new(0));
    fuzz(2000, vec(mutation(), 1..=4), |mutations| {
        let body = mutated(&body, &mutations);
        check_parser(&body)?;
        if let Ok(part) = wire::parse_notification(&body) {
            parsed.fetch_add(1, Ordering::Relaxed);
            if part.verify(trustly.as_ref()) {
                verified.fetch_add(1, Ordering::Relaxed);
                // Only a mutation that leaves the signed text as it was (whitespace, an escape
                // written another way, a member outside the signed part) may still verify.
                prop_assert_eq!(part.plaintext(), plaintext.clone());
            } else if part.plaintext() == plaintext {
                // The signed text is intact, so the signature itself was changed.
                prop_assert_ne!(
                    &part.signature,
                    &original.signature,
                    "a genuine text failed"
                );
            }
        }
        Ok(())
    });
    // The mutations exercise the verifier, not only the JSON parser.
    let (parsed, verified) = (parsed.into_inner(), verified.into_inner());
    assert!(
        parsed - verified >= 200,
        "only {} of 2000 mutations parsed and were refused by the verifier",
        parsed - verified
    );
}

// === intake over HTTP ===

/// Posts a body to the intake; returns the status and body.
async fn post(client: &reqwest::Client, sidecar: &app::Sidecar, body: Vec<u8>) -> (u16, Vec<u8>) {
    let response = client
        .post(format!(
            "http://{}/trustly/notifications",
            sidecar.intake_addr
        ))
        .body(body)
        .send()
        .await
        .expect("intake answers");
    (
        response.status().as_u16(),
        response.bytes().await.expect("body").to_vec(),
    )
}

/// Mutated genuine notifications and random bodies (some over 64 KiB) posted to a real intake:
/// each gets one of intake's answers, only a body that signs the genuine text is answered OK,
/// and the log holds nothing but the genuine notification.
#[tokio::test]
async fn intake_stores_nothing_but_the_genuine_notification() {
    let h = SimHarness::start().await;
    let (vars, files) = app::vars_for(&h, &[]);
    let sidecar = app::spawn(vars, files).await;
    let client = reqwest::Client::new();
    let (genuine_body, plaintext) = genuine("9700000001");
    let (status, first_answer) = post(&client, &sidecar, genuine_body.clone()).await;
    assert_eq!(status, 200, "the genuine notification is stored");

    // The inputs come from the seeded runner, then are posted one by one.
    let mut runner = runner(600);
    let strategy = prop_oneof![
        4 => vec(mutation(), 1..=4).prop_map(move |m| mutated(&genuine_body, &m)),
        1 => random_body(),
        1 => (0..8 * 1024usize).prop_map(|extra| vec![b' '; 64 * 1024 - 4 * 1024 + extra]),
    ];
    for _ in 0..runner.config().cases {
        let body = strategy.new_tree(&mut runner).expect("a value").current();
        let parsed = wire::parse_notification(&body);
        let (status, answer) = post(&client, &sidecar, body.clone()).await;
        let answer_text = String::from_utf8_lossy(&answer);
        let shown = String::from_utf8_lossy(&body[..body.len().min(2000)]).into_owned();
        match status {
            200 => {
                let part =
                    parsed.unwrap_or_else(|e| panic!("OK for an unparsable body ({e}): {shown}"));
                assert_eq!(part.plaintext(), plaintext, "OK for other content: {shown}");
                if part.method == "credit" && part.uuid == UUID {
                    assert_eq!(answer, first_answer, "a repeat gets the first answer");
                }
            }
            400 => assert!(
                [
                    "not a JSON-RPC 1.1 notification",
                    "notification without notificationid"
                ]
                .contains(&answer_text.as_ref()),
                "400 {answer_text}: {shown}"
            ),
            403 => assert_eq!(answer_text, "signature does not verify", "{shown}"),
            413 => {
                assert!(body.len() > 64 * 1024, "413 for {} bytes", body.len());
                assert_eq!(answer_text, "notification too large");
            }
            other => panic!("{other} {answer_text}: {shown}"),
        }
        if status != 413 {
            assert!(
                body.len() <= 64 * 1024,
                "{} bytes were not refused",
                body.len()
            );
        }
    }

    // A new consumer group starts at the beginning of the log: one event, the genuine one.
    let seen = support::requests::notification_ids_from_start(
        sidecar.channel.clone(),
        "fuzz-audit",
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(seen, ["9700000001"]);
}

// === nesting ===

/// Runs `f` on a thread with half the stack of a Tokio worker (2 MiB), so a recursion that only
/// just fits would fail here first.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(f)
        .expect("thread")
        .join()
        .expect("no stack overflow")
}

/// The deepest nesting serde_json accepts is serialized; one level deeper is refused.
#[test]
fn the_deepest_accepted_tree_serializes_on_a_small_stack() {
    on_small_stack(|| {
        for (open, close) in [("[", "]"), ("{\"a\":", "}"), ("[{\"a\":", "}]")] {
            let nested = |depth: usize| format!("{}0{}", open.repeat(depth), close.repeat(depth));
            let levels = |depth: usize| depth * open.matches(['[', '{']).count();
            let deepest = (1..200)
                .take_while(|&d| serde_json::from_str::<Value>(&nested(d)).is_ok())
                .last()
                .expect("some depth parses");
            assert!(
                (100..=128).contains(&levels(deepest)),
                "{open}: {} levels",
                levels(deepest)
            );
            let value: Value = serde_json::from_str(&nested(deepest)).expect("parses");
            let expected = format!("{}0", "a".repeat(open.matches('a').count() * deepest));
            assert_eq!(canonical::serialize(&value), expected, "{open}");
            assert!(serde_json::from_str::<Value>(&nested(deepest + 1)).is_err());
        }
    });
}

/// tests/wire/properties.rs refuses 100 000 levels at the root; here they sit where a notification's
/// members go, and the genuine notification's data is nested to the limit and beyond.
#[test]
fn deep_nesting_inside_a_notification_is_refused_without_overflow() {
    on_small_stack(|| {
        let (body, _) = genuine("9800000001");
        let text = String::from_utf8(body).expect("utf-8");
        for deep in [
            "[".repeat(100_000),
            "{\"a\":".repeat(100_000),
            "[{\"a\":".repeat(50_000),
        ] {
            for member in ["\"amount\":\"5.00\"", "\"notificationid\":\"9800000001\""] {
                let key = member.split(':').next().expect("key");
                let body = text.replacen(member, &format!("{key}:{deep}"), 1);
                assert!(body.len() > text.len());
                assert!(wire::parse_notification(body.as_bytes()).is_err());
            }
            for params in [
                "{\"method\":\"credit\",\"version\":\"1.1\",\"params\":",
                "{\"version\":\"1.1\",\"method\":",
            ] {
                let body = format!("{params}{deep}");
                assert!(wire::parse_notification(body.as_bytes()).is_err());
            }
        }
        // At the limit, the notification still parses and its plaintext is built.
        let deep_ok = format!("\"amount\":{}{}", "[".repeat(120), "]".repeat(120));
        let body = text.replacen("\"amount\":\"5.00\"", &deep_ok, 1);
        let part = wire::parse_notification(body.as_bytes()).expect("120 levels parse");
        assert!(part.plaintext().starts_with("credit"));
    });
}
