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

/// Returns `method || uuid || S(data)` with the scalars rendered as `variant` renders them.
pub fn plaintext_with(method: &str, uuid: &str, data: &Value, variant: Variant) -> String {
    let mut out = String::with_capacity(method.len() + uuid.len() + 512);
    out.push_str(method);
    out.push_str(uuid);
    write_with(data, &mut out, variant);
    out
}

/// Returns `S(value)`.
pub fn serialize(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// Appends `S(value)` to `out`.
fn write(value: &Value, out: &mut String) {
    write_with(value, out, Variant::CANONICAL);
}

/// Appends `S(value)` to `out`, rendering booleans and non-integer numbers as `variant` does.
///
/// Recursion depth is bounded by the tree: trees parsed from the network are at most 128 levels
/// deep (serde_json's recursion limit), and trees we build are shallow.
fn write_with(value: &Value, out: &mut String, variant: Variant) {
    match value {
        // Null and empty containers contribute nothing, but their parent key is still emitted.
        Value::Null => {}
        // Trustly never sends booleans and we never send them (spec §3.3 [U]); the JSON lexeme
        // is the canonical rendering, the clients' other renderings are variants.
        Value::Bool(b) => out.push_str(variant.booleans.render(*b)),
        // With `arbitrary_precision` this is the number's original lexeme ("616", "20.00"); only
        // an exponent marker is normalised (`1E5` -> `1e+5`), which Trustly never sends.
        Value::Number(n) => {
            let lexeme = n.to_string();
            match variant.numbers.render(&lexeme) {
                Some(rendered) => out.push_str(&rendered),
                None => out.push_str(&lexeme),
            }
        }
        Value::String(s) => out.push_str(s),
        // Arrays keep their order and emit no indices.
        Value::Array(items) => items.iter().for_each(|item| write_with(item, out, variant)),
        Value::Object(map) => {
            // Ordinal (byte-wise) key order: `str`'s `Ord` is exactly that.
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            for (key, value) in entries {
                out.push_str(key);
                write_with(value, out, variant);
            }
        }
    }
}

// === serializer variants (spec §3.3, §3.4) ===

/// How a Trustly client renders JSON booleans when it serializes data for signing (spec §3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Booleans {
    /// `true`/`false`: the JSON lexeme (Java, JS). Canonical.
    Lowercase,
    /// `True`/`False` (Python, .NET).
    TitleCase,
    /// `1`/`""` (PHP).
    Php,
}

impl Booleans {
    fn render(self, b: bool) -> &'static str {
        match (self, b) {
            (Booleans::Lowercase, true) => "true",
            (Booleans::Lowercase, false) => "false",
            (Booleans::TitleCase, true) => "True",
            (Booleans::TitleCase, false) => "False",
            (Booleans::Php, true) => "1",
            (Booleans::Php, false) => "",
        }
    }
}

/// How a Trustly client renders a non-integer JSON number (`100.00`, `1.5e2`) after parsing it
/// into a double (spec §3.4). Integer lexemes are the same in every client and never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Numbers {
    /// The lexeme as received (`100.00`). Canonical (spec §3.6 rule 6).
    Lexeme,
    /// A double with at least one decimal (`100.0`, `100.5`): Python `repr`, Java
    /// `Double.toString`.
    Float,
    /// The shortest text of the double (`100`, `100.5`): JS, PHP, .NET.
    Shortest,
}

impl Numbers {
    /// The rendering of `lexeme`, or `None` to keep it: integers, canonical, and magnitudes
    /// where some client of the style switches to an exponent form (Java from 1e7 and below 1e-3,
    /// Python from 1e16; PHP and .NET from 1e15, JS from 1e21). Those are not reproduced: such a
    /// message fails closed, as it did before.
    fn render(self, lexeme: &str) -> Option<String> {
        if !lexeme.contains(['.', 'e', 'E']) {
            return None;
        }
        let plain_range = match self {
            Numbers::Lexeme => return None,
            Numbers::Float => 1e-3..1e7,
            Numbers::Shortest => 1e-4..1e15,
        };
        let value: f64 = lexeme.parse().ok().filter(|v: &f64| v.is_finite())?;
        if value != 0.0 && !plain_range.contains(&value.abs()) {
            return None;
        }
        // Rust's `Display` for f64 is the shortest text that reads back as the same double,
        // without exponent: what every client prints in these ranges, except that Python and
        // Java keep one decimal on whole values (`100.0`).
        Some(if self == Numbers::Float && value.fract() == 0.0 {
            format!("{value:.1}")
        } else {
            format!("{value}")
        })
    }
}

/// One way of serializing data for signing: the canonical form, or a known client's rendering of
/// booleans and non-integer numbers. Everything else (key order, nulls, strings, integers) is the
/// same in every variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Variant {
    pub booleans: Booleans,
    pub numbers: Numbers,
}

impl Variant {
    /// The canonical serialization (spec §3.3).
    pub const CANONICAL: Variant = Variant {
        booleans: Booleans::Lowercase,
        numbers: Numbers::Lexeme,
    };

    /// A stable name for metrics and logs (a small, fixed set).
    pub fn name(self) -> &'static str {
        use Booleans as B;
        use Numbers as N;
        match (self.booleans, self.numbers) {
            (B::Lowercase, N::Lexeme) => "canonical",
            (B::TitleCase, N::Lexeme) => "booleans_title_case",
            (B::Php, N::Lexeme) => "booleans_php",
            (B::Lowercase, N::Float) => "numbers_float",
            (B::Lowercase, N::Shortest) => "numbers_shortest",
            (B::TitleCase, N::Float) => "booleans_title_case+numbers_float",
            (B::TitleCase, N::Shortest) => "booleans_title_case+numbers_shortest",
            (B::Php, N::Float) => "booleans_php+numbers_float",
            (B::Php, N::Shortest) => "booleans_php+numbers_shortest",
        }
    }

    /// The non-canonical variants worth trying for `data`: only the axes for which the data holds
    /// a boolean or a non-integer number. Empty when it holds neither, so nothing is loosened
    /// for the messages Trustly actually sends (strings and integers).
    pub fn alternatives(data: &Value) -> Vec<Variant> {
        let (booleans, fractions) = ambiguous_scalars(data);
        let boolean_styles: &[Booleans] = if booleans {
            &[Booleans::Lowercase, Booleans::TitleCase, Booleans::Php]
        } else {
            &[Booleans::Lowercase]
        };
        let number_styles: &[Numbers] = if fractions {
            &[Numbers::Lexeme, Numbers::Float, Numbers::Shortest]
        } else {
            &[Numbers::Lexeme]
        };
        boolean_styles
            .iter()
            .flat_map(|&booleans| {
                number_styles
                    .iter()
                    .map(move |&numbers| Variant { booleans, numbers })
            })
            .filter(|variant| *variant != Variant::CANONICAL)
            .collect()
    }
}

/// Whether `value` holds (booleans, non-integer numbers) anywhere.
fn ambiguous_scalars(value: &Value) -> (bool, bool) {
    match value {
        Value::Bool(_) => (true, false),
        Value::Number(n) => (false, n.to_string().contains(['.', 'e', 'E'])),
        Value::Array(items) => items.iter().fold((false, false), |acc, item| {
            let (b, f) = ambiguous_scalars(item);
            (acc.0 || b, acc.1 || f)
        }),
        Value::Object(map) => map.values().fold((false, false), |acc, item| {
            let (b, f) = ambiguous_scalars(item);
            (acc.0 || b, acc.1 || f)
        }),
        Value::Null | Value::String(_) => (false, false),
    }
}

/// Checks that a tree we are about to send holds no boolean and no non-integer number: the
/// clients disagree on how to serialize those (spec §3.3, §3.6 rule 5), so Trustly could verify a
/// different plaintext than we signed. Returns the path of the first offender.
pub fn check_unambiguous(value: &Value) -> Result<(), String> {
    fn walk(value: &Value, path: &mut Vec<String>) -> Result<(), String> {
        let offender = match value {
            Value::Bool(_) => Some("a boolean"),
            Value::Number(n) if n.to_string().contains(['.', 'e', 'E']) => {
                Some("a non-integer number")
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    walk(item, path)?;
                    path.pop();
                }
                None
            }
            Value::Object(map) => {
                for (key, item) in map {
                    path.push(key.clone());
                    walk(item, path)?;
                    path.pop();
                }
                None
            }
            Value::Null | Value::String(_) | Value::Number(_) => None,
        };
        match offender {
            Some(what) => Err(format!("{} is {what}; send it as a string", path.join("."))),
            None => Ok(()),
        }
    }
    walk(value, &mut Vec::new())
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
    fn variants_render_booleans_and_fractions_as_each_client_does() {
        let data: Value = serde_json::from_str(
            r#"{"a": true, "b": false, "c": 100.00, "d": 100.50, "e": 616, "f": "x"}"#,
        )
        .expect("valid json");
        let render = |booleans, numbers| {
            let mut out = String::new();
            write_with(&data, &mut out, Variant { booleans, numbers });
            out
        };
        use Booleans as B;
        use Numbers as N;
        assert_eq!(
            render(B::Lowercase, N::Lexeme),
            "atruebfalsec100.00d100.50e616fx"
        );
        assert_eq!(
            render(B::TitleCase, N::Float),
            "aTruebFalsec100.0d100.5e616fx"
        );
        assert_eq!(render(B::Php, N::Shortest), "a1bc100d100.5e616fx");
        assert_eq!(
            render(B::Lowercase, N::Float),
            "atruebfalsec100.0d100.5e616fx"
        );
    }

    #[test]
    fn alternatives_exist_only_for_ambiguous_scalars() {
        let plain = json!({"amount": "20.00", "orderid": 3931155141u64, "attributes": {"n": null}});
        assert!(Variant::alternatives(&plain).is_empty());
        let booleans = json!({"x": [true]});
        assert_eq!(Variant::alternatives(&booleans).len(), 2);
        let both: Value = serde_json::from_str(r#"{"x": {"y": false, "z": 1.5}}"#).expect("json");
        let all = Variant::alternatives(&both);
        assert_eq!(all.len(), 8);
        let names: std::collections::HashSet<_> = all.iter().map(|v| v.name()).collect();
        assert_eq!(names.len(), 8, "every variant has its own name");
        assert!(!names.contains("canonical"));
    }

    #[test]
    fn outgoing_trees_must_hold_only_strings_integers_and_nulls() {
        assert!(check_unambiguous(&json!({"A": {"B": ["1", 1, null]}})).is_ok());
        assert_eq!(
            check_unambiguous(&json!({"Attributes": {"Flag": true}})),
            Err("Attributes.Flag is a boolean; send it as a string".to_owned())
        );
        let float: Value = serde_json::from_str(r#"{"Amount": 1.50}"#).expect("json");
        assert_eq!(
            check_unambiguous(&float),
            Err("Amount is a non-integer number; send it as a string".to_owned())
        );
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
