//! Trustly's canonical serialization `S(value)` and the signed plaintext (spec §3.3).
//!
//! It works on the raw JSON tree only. Typed structs are turned into a tree once, and that same
//! tree is signed and sent; inbound messages are verified against the tree exactly as received.
//! Serde's map ordering is never trusted: keys are sorted here, by byte order, every time.

use serde_json::Value;

/// Returns `method || uuid || S(data)`, the text that is signed (spec §3.1).
pub fn plaintext(method: &str, uuid: &str, data: &Value) -> String {
    let mut out = String::with_capacity(method.len() + uuid.len() + 512);
    out.push_str(method);
    out.push_str(uuid);
    write(data, &mut out);
    out
}

/// Returns `S(value)`.
pub fn serialize(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// Appends `S(value)` to `out`.
///
/// Recursion depth is bounded by the tree: trees parsed from the network are at most 128 levels
/// deep (serde_json's recursion limit), and trees we build are shallow.
fn write(value: &Value, out: &mut String) {
    match value {
        // Null and empty containers contribute nothing, but their parent key is still emitted.
        Value::Null => {}
        // Trustly never sends booleans and we never send them (spec §3.3 [U]); the JSON lexeme
        // is the least surprising rendering if one ever arrives.
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // With `arbitrary_precision` this is the number's original lexeme ("616", "20.00"); only
        // an exponent marker is normalised (`1E5` -> `1e+5`), which Trustly never sends.
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(s),
        // Arrays keep their order and emit no indices.
        Value::Array(items) => items.iter().for_each(|item| write(item, out)),
        Value::Object(map) => {
            // Ordinal (byte-wise) key order: `str`'s `Ord` is exactly that.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            for (key, value) in entries {
                out.push_str(key);
                write(value, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_ordinally_not_by_locale() {
        // Regressions of spec §7(e): collation-based sorts put these the other way round.
        let data = json!({"IntegrationModule": "b", "IP": "a"});
        assert_eq!(serialize(&data), "IPaIntegrationModuleb");
        let data = json!({"PaymentDate": "d", "PSPMerchantURL": "u", "PSPMerchant": "m"});
        assert_eq!(serialize(&data), "PSPMerchantmPSPMerchantURLuPaymentDated");
        let data = json!({"UnchangeableNationalIdentificationNumber": "1", "URLTarget": "t", "URLScheme": "s"});
        assert_eq!(
            serialize(&data),
            "URLSchemesURLTargettUnchangeableNationalIdentificationNumber1"
        );
    }

    #[test]
    fn null_and_empty_values_keep_their_key() {
        let data = json!({"b": null, "a": {}, "c": [], "d": ""});
        assert_eq!(serialize(&data), "abcd");
    }

    #[test]
    fn numbers_keep_their_original_lexeme() {
        let data: Value = serde_json::from_str(
            r#"{"a": 100.00, "b": 12345678901234567890123, "c": 616, "d": -0.50, "e": 0.0}"#,
        )
        .expect("valid json");
        assert_eq!(
            serialize(&data),
            "a100.00b12345678901234567890123c616d-0.50e0.0"
        );
    }

    #[test]
    fn exponent_markers_are_normalised_by_serde_json() {
        // Known, pinned deviation: serde_json's `arbitrary_precision` rewrites the exponent marker
        // (`1E16` -> `1e+16`). Trustly never sends exponent notation; if it did, verification would
        // fail closed (the message is rejected, never believed). This test flags any change.
        let data: Value =
            serde_json::from_str(r#"[1e16, 1E16, 1e-5, 1.50E2]"#).expect("valid json");
        assert_eq!(serialize(&data), "1e+161e+161e-51.50e+2");
    }

    #[test]
    fn escapes_are_resolved() {
        let data: Value = serde_json::from_str(r#"{"k": "\u00e5\/x\"y\n"}"#).expect("valid json");
        assert_eq!(serialize(&data), "kå/x\"y\n");
    }

    #[test]
    fn plaintext_prefixes_method_and_uuid() {
        let data = json!({"status": "OK"});
        assert_eq!(
            plaintext("credit", "f1b77aac-516d-4b89-a125-c005f4c020f0", &data),
            "creditf1b77aac-516d-4b89-a125-c005f4c020f0statusOK"
        );
    }
}
