//! The one settings reader: looks each variable up (blank counts as unset), parses it, and
//! collects every problem instead of stopping at the first. Socket addresses, URLs, durations,
//! booleans and secret files are parsed here once. Knows nothing of what a setting means.

use std::{net::SocketAddr, time::Duration};

use url::Url;

use super::Problem;

/// Reads settings from a lookup and records every problem.
pub struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    pub problems: Vec<Problem>,
    /// Whether any setting at all was given (nothing: a first run, pointed to `--sandbox`).
    pub anything_set: bool,
}

impl<'a> Reader<'a> {
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            lookup,
            problems: Vec::new(),
            anything_set: false,
        }
    }

    /// The raw value; blank counts as unset.
    pub fn get(&mut self, var: &str) -> Option<String> {
        let value = (self.lookup)(var).filter(|v| !v.trim().is_empty());
        self.anything_set |= value.is_some();
        value
    }

    /// Keeps a parsed value, or records why it could not be parsed.
    pub fn parsed<T>(&mut self, var: &'static str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.invalid(var, message)).ok()
    }

    pub fn invalid(&mut self, var: &'static str, message: String) {
        self.problems.push(Problem::Invalid { var, message });
    }

    pub fn missing(&mut self, var: &'static str) {
        self.problems.push(Problem::Missing { var });
    }

    /// The parsed value, or `default` when unset.
    pub fn value<T>(
        &mut self,
        var: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let result = self.get(var).map_or(Ok(default), |v| parse(&v));
        self.parsed(var, result)
    }

    /// The parsed value, if set.
    pub fn optional<T>(
        &mut self,
        var: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.get(var)?;
        self.parsed(var, parse(&value))
    }

    pub fn duration(&mut self, var: &'static str, default: Duration) -> Option<Duration> {
        self.value(var, default, parse_duration)
    }

    /// A boolean; an invalid one is recorded and read as `default`.
    pub fn flag(&mut self, var: &'static str, default: bool) -> bool {
        self.value(var, default, parse_bool).unwrap_or(default)
    }

    pub fn socket_addr(&mut self, var: &'static str, default: &str) -> Option<SocketAddr> {
        let text = self.get(var);
        let result = text
            .as_deref()
            .unwrap_or(default)
            .parse::<SocketAddr>()
            .map_err(|e| format!("not a socket address: {e}"));
        self.parsed(var, result)
    }

    /// The content of the file a setting names (`read` is the attempt to read `path`), or a
    /// problem naming the setting and the file.
    pub fn file<T>(
        &mut self,
        var: &'static str,
        path: &str,
        read: std::io::Result<T>,
    ) -> Option<T> {
        read.map_err(|source| {
            self.problems.push(Problem::SecretFile {
                var,
                path: path.into(),
                source,
            })
        })
        .ok()
    }
}

/// Any URL.
pub fn parse_url(text: &str) -> Result<Url, String> {
    Url::parse(text).map_err(|e| format!("not a URL: {e}"))
}

/// An `http` or `https` URL.
pub fn parse_http_url(text: &str) -> Result<Url, String> {
    parse_url(text).and_then(|url| match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("scheme {other:?} is not http(s)")),
    })
}

/// Parses `250ms`, `10s`, `2m`, `1h` or `7d` (a whole number and a unit), greater than zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 250ms, 10s or 2m"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        "d" => Duration::from_secs(number.saturating_mul(86_400)),
        _ => {
            return Err(format!(
                "{text:?} is not a duration such as 250ms, 10s or 2m"
            ));
        }
    };
    if duration.is_zero() {
        return Err(format!("{text:?} must be greater than zero"));
    }
    Ok(duration)
}

pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(format!("expected true/false or 1/0, got {other:?}")),
    }
}
