//! JSON-RPC 1.1 envelopes with Trustly's exact casing (spec §2).
//!
//! Requests we send use PascalCase `params` members (`Signature`, `UUID`, `Data`); everything
//! Trustly sends, and our notification answers, use lowercase (`signature`, `uuid`, `data`).
//! Parsing never panics and never believes anything: it only takes the envelope apart. Callers
//! verify the [`SignedPart`] before reading its data.

use serde_json::{Map, Value, json};

use super::{
    canonical::{self, Variant},
    sign::Verifier,
};

/// The JSON-RPC version string. Sent as a string, as the docs and most clients do (spec §2.1).
pub const VERSION: &str = "1.1";

/// Why a body is not the envelope it should be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub &'static str);

/// The signed part of any message: what `method || uuid || S(data)` covers, plus the signature.
#[derive(Clone, Debug, PartialEq)]
pub struct SignedPart {
    pub method: String,
    pub uuid: String,
    pub signature: String,
    pub data: Value,
}

impl SignedPart {
    /// The text the signature covers.
    pub fn plaintext(&self) -> String {
        canonical::plaintext(&self.method, &self.uuid, &self.data)
    }

    /// True if the signature is valid for this method, uuid and data tree.
    pub fn verify(&self, verifier: &dyn Verifier) -> bool {
        verifier.verify(self.plaintext().as_bytes(), &self.signature)
    }

    /// Verifies incoming data, tolerating the serializer variants of Trustly's own clients (spec
    /// §3.3, §3.4) and only them: the canonical form first; if it fails and the data holds
    /// booleans or non-integer numbers, each known rendering of those scalars. Returns the
    /// variant the signature covers ([`Variant::CANONICAL`] in the normal case), or `None` when
    /// nothing verifies or more than one distinct variant does (then no reading is trusted).
    /// Strings, integers, keys and their order are never varied, so tampered data still fails.
    pub fn verify_tolerant(&self, verifier: &dyn Verifier) -> Option<Variant> {
        let canonical = self.plaintext();
        if verifier.verify(canonical.as_bytes(), &self.signature) {
            return Some(Variant::CANONICAL);
        }
        let mut tried = vec![canonical];
        let mut matched = None;
        for variant in Variant::alternatives(&self.data) {
            let plaintext =
                canonical::plaintext_with(&self.method, &self.uuid, &self.data, variant);
            // Variants that render this data the same way are one candidate, not several.
            if tried.contains(&plaintext) {
                continue;
            }
            if verifier.verify(plaintext.as_bytes(), &self.signature) {
                if matched.is_some() {
                    return None;
                }
                matched = Some(variant);
            }
            tried.push(plaintext);
        }
        matched
    }
}

// === outgoing: merchant -> Trustly ===

/// `{"method", "params": {"Signature", "UUID", "Data"}, "version": "1.1"}` (spec §2.1).
pub fn request(method: &str, uuid: &str, signature: &str, data: Value) -> Value {
    json!({
        "method": method,
        "params": { "Signature": signature, "UUID": uuid, "Data": data },
        "version": VERSION,
    })
}

/// Takes a request apart (the simulator's side of §2.1). Key casing is exact: a request with
/// `uuid` instead of `UUID` is malformed, which Trustly answers with 623.
pub fn parse_request(body: &[u8]) -> Result<SignedPart, Malformed> {
    take_call(&mut parse_object(body)?, REQUEST_PARAMS)
}

// === incoming: Trustly -> merchant ===

/// A parsed (not yet verified) response to one of our requests.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// `{"result": {signature, uuid, method, data}}` (spec §2.2).
    Result(SignedPart),
    /// `{"error": {code, message, error: {signature, uuid, method, data}}}` (spec §2.3).
    Error(ErrorResponse),
}

/// An error envelope. Only `signed` can be believed, once verified; the outer `code` and
/// `message` are not covered by the signature.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorResponse {
    pub outer_code: Option<i64>,
    pub outer_message: Option<String>,
    /// Missing for protocol-level errors (invalid JSON and the like): unverifiable.
    pub signed: Option<SignedPart>,
}

/// Takes a response body apart.
pub fn parse_response(body: &[u8]) -> Result<Response, Malformed> {
    let mut root = parse_object(body)?;
    if let Some(mut result) = take_object(&mut root, "result") {
        return Ok(Response::Result(take_signed_part(&mut result, false)?));
    }
    let Some(mut error) = take_object(&mut root, "error") else {
        return Err(Malformed("neither result nor error"));
    };
    let signed = match take_object(&mut error, "error") {
        // Protocol-level errors carry null uuid/method (spec §2.3): verify them as "".
        Some(mut inner) => Some(take_signed_part(&mut inner, true)?),
        None => None,
    };
    Ok(Response::Error(ErrorResponse {
        outer_code: error.get("code").and_then(integer),
        outer_message: take_string(&mut error, "message"),
        signed,
    }))
}

/// `{"result": {signature, uuid, method, data}, "version": "1.1"}`.
pub fn success_response(method: &str, uuid: &str, signature: &str, data: Value) -> Value {
    json!({
        "result": { "signature": signature, "uuid": uuid, "method": method, "data": data },
        "version": VERSION,
    })
}

/// The error envelope of spec §2.3; `data` is `{"code": code, "message": name}`.
pub fn error_response(method: &str, uuid: &str, signature: &str, data: Value) -> Value {
    let code = data.get("code").cloned().unwrap_or(Value::Null);
    let message = data.get("message").cloned().unwrap_or(Value::Null);
    json!({
        "error": {
            "name": "JSONRPCError",
            "code": code,
            "message": message,
            "error": { "signature": signature, "uuid": uuid, "method": method, "data": data },
        },
        "version": VERSION,
    })
}

/// The signed data of an error response: `{"code": 616, "message": "ERROR_..."}`.
pub fn error_data(code: i64, name: &str) -> Value {
    json!({ "code": code, "message": name })
}

// === notifications: Trustly -> merchant, and our answer ===

/// Takes a notification apart: `{"method", "params": {signature, uuid, data}, "version"}`
/// (spec §2.5). `version` must be "1.1" (spec §4.1 step 2).
pub fn parse_notification(body: &[u8]) -> Result<SignedPart, Malformed> {
    let mut root = parse_object(body)?;
    match root.get("version") {
        Some(Value::String(v)) if v == VERSION => {}
        // The number 1.1 is tolerated, as Trustly's own clients send it.
        Some(Value::Number(n)) if n.to_string() == VERSION => {}
        _ => return Err(Malformed("version is not 1.1")),
    }
    take_call(&mut root, NOTIFICATION_PARAMS)
}

/// `{"method", "params": {signature, uuid, data}, "version": "1.1"}`: what Trustly posts.
pub fn notification(method: &str, uuid: &str, signature: &str, data: Value) -> Value {
    json!({
        "method": method,
        "params": { "signature": signature, "uuid": uuid, "data": data },
        "version": VERSION,
    })
}

/// Our answer to a notification (spec §2.6): same shape as a success response, echoing the
/// notification's `method` and `uuid`. The signature covers all of `data`, `message` included.
pub fn notification_response(method: &str, uuid: &str, signature: &str, data: Value) -> Value {
    success_response(method, uuid, signature, data)
}

/// Takes a notification answer apart (the simulator checks ours this way).
pub fn parse_notification_response(body: &[u8]) -> Result<SignedPart, Malformed> {
    match parse_response(body)? {
        Response::Result(part) => Ok(part),
        Response::Error(_) => Err(Malformed("notification answered with an error")),
    }
}

// === helpers ===

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, Malformed> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) if has_duplicate_keys(body) => {
            Err(Malformed("body repeats a key in an object"))
        }
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Malformed("body is not a JSON object")),
        Err(_) => Err(Malformed("body is not valid JSON")),
    }
}

/// True if any object in `body` (valid JSON) names a key twice. `serde_json` keeps the last one
/// and the signature is checked on that, but the raw body is what subscribers get: a parser that
/// keeps the first (`"amount":"5000.00","amount":"5.00"`) would read what was never signed.
fn has_duplicate_keys(body: &[u8]) -> bool {
    use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

    /// Walks any JSON value without building it, failing on a repeated key.
    struct Unique;

    impl<'de> DeserializeSeed<'de> for Unique {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Unique {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Unique)?.is_some() {}
            Ok(())
        }
        // With `arbitrary_precision` a number also arrives here, as a one-key map.
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if !seen.insert(key) {
                    return Err(A::Error::custom("duplicate key"));
                }
                map.next_value_seed(Unique)?;
            }
            Ok(())
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(body);
    Unique.deserialize(&mut deserializer).is_err()
}

/// The `params` members of a call, signature, uuid and data, each with the refusal when it is
/// missing: requests we send spell them in PascalCase, notifications in lowercase.
type ParamNames = [(&'static str, &'static str); 3];

const REQUEST_PARAMS: ParamNames = [
    ("Signature", "missing Signature"),
    ("UUID", "missing UUID"),
    ("Data", "missing Data"),
];

const NOTIFICATION_PARAMS: ParamNames = [
    ("signature", "missing signature"),
    ("uuid", "missing uuid"),
    ("data", "missing data"),
];

/// Takes a call apart: `{"method", "params": {signature, uuid, data}}` under the given names.
fn take_call(root: &mut Map<String, Value>, names: ParamNames) -> Result<SignedPart, Malformed> {
    let method = take_string(root, "method").ok_or(Malformed("missing method"))?;
    let mut params = take_object(root, "params").ok_or(Malformed("missing params"))?;
    let [signature, uuid, data] = names;
    Ok(SignedPart {
        method,
        signature: take_string(&mut params, signature.0).ok_or(Malformed(signature.1))?,
        uuid: take_string(&mut params, uuid.0).ok_or(Malformed(uuid.1))?,
        data: take_object(&mut params, data.0)
            .map(Value::Object)
            .ok_or(Malformed(data.1))?,
    })
}

fn take_signed_part(
    obj: &mut Map<String, Value>,
    null_ids_allowed: bool,
) -> Result<SignedPart, Malformed> {
    let mut id = |key: &'static str, missing: &'static str| match obj.remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(Value::Null) | None if null_ids_allowed => Ok(String::new()),
        _ => Err(Malformed(missing)),
    };
    let method = id("method", "missing method")?;
    let uuid = id("uuid", "missing uuid")?;
    let signature = take_string(obj, "signature").ok_or(Malformed("missing signature"))?;
    // `data` is an object for most methods and an array for Balance, AccountLedger and
    // GetWithdrawals (spec §2.2).
    let data = match obj.remove("data") {
        Some(data @ (Value::Object(_) | Value::Array(_))) => data,
        _ => return Err(Malformed("missing data")),
    };
    Ok(SignedPart {
        method,
        uuid,
        signature,
        data,
    })
}

fn take_string(obj: &mut Map<String, Value>, key: &str) -> Option<String> {
    match obj.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn take_object(obj: &mut Map<String, Value>, key: &str) -> Option<Map<String, Value>> {
    match obj.remove(key) {
        Some(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// An integer given as a JSON number or a numeric string ("Returned numbers can be returned as a
/// string or as a number", spec §2.2).
pub fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_anywhere_is_refused_and_numbers_keep_their_lexeme() {
        let ok = br#"{"method":"credit","params":{"signature":"s","uuid":"u","data":{"amount":"5.00","n":1.10,"a":[{"x":1},{"x":2}]}},"version":"1.1"}"#;
        let parsed = parse_notification(ok).expect("unique keys parse");
        assert_eq!(parsed.data["n"].to_string(), "1.10");
        for body in [
            r#"{"method":"credit","method":"debit","params":{"signature":"s","uuid":"u","data":{}},"version":"1.1"}"#,
            r#"{"method":"credit","params":{"signature":"s","uuid":"u","data":{"amount":"5000.00","amount":"5.00"}},"version":"1.1"}"#,
            r#"{"method":"credit","params":{"signature":"s","uuid":"u","data":{"a":[{"x":1,"x":1}]}},"version":"1.1"}"#,
            r#"{"method":"credit","params":{"signature":"s","uuid":"u","data":{"amount":"1","\u0061mount":"2"}},"version":"1.1"}"#,
        ] {
            assert_eq!(
                parse_notification(body.as_bytes()).err(),
                Some(Malformed("body repeats a key in an object")),
                "{body}"
            );
        }
    }
}
