//! The intake section: where Trustly posts notifications, and what intake answers when no
//! subscriber decides in time.

use std::{net::SocketAddr, time::Duration};

use url::Url;

use super::{reader::parse_url, tls::Vars, *};
use crate::ops::tls::{Protocol, TlsFiles};

/// Where the notification intake listens (the port exposed to Trustly through the Ingress).
pub const ENV_NOTIFICATION_LISTEN: &str = "TRUSTLY_SIDECAR_NOTIFICATION_LISTEN";
pub const DEFAULT_NOTIFICATION_LISTEN: &str = "127.0.0.1:8480";
/// The public NotificationURL Trustly posts to (https, no `?`). Required unless sandbox; a request
/// may override it per order.
pub const ENV_NOTIFICATION_URL: &str = "TRUSTLY_SIDECAR_NOTIFICATION_URL";
/// The path Trustly posts notifications to (the path of the NotificationURL).
pub const ENV_NOTIFICATION_PATH: &str = "TRUSTLY_SIDECAR_NOTIFICATION_PATH";
pub const DEFAULT_NOTIFICATION_PATH: &str = "/trustly/notifications";
/// How long intake waits for a subscriber's decision on a Withdraw `debit` or a `kyc`, e.g. `10s`.
/// Trustly waits for the HTTP answer meanwhile, so this stays well under its request timeout.
pub const ENV_DECISION_DEADLINE: &str = "TRUSTLY_SIDECAR_DECISION_DEADLINE";
pub const DEFAULT_DECISION_DEADLINE: Duration = Duration::from_secs(10);
/// Without a decision in time: `withhold` (answer 503 so Trustly resends and asks again; no money
/// decision is ever made by default) or `answer` (debit OK, kyc CONTINUE).
pub const ENV_DECISION_FALLBACK: &str = "TRUSTLY_SIDECAR_DECISION_FALLBACK";
/// TLS certificate chain of the intake listener (optional; with `ENV_INTAKE_TLS_KEY_PATH`), for
/// when Trustly reaches it without a TLS-terminating Ingress. Reloaded when it changes.
pub const ENV_INTAKE_TLS_CERT_PATH: &str = "TRUSTLY_SIDECAR_INTAKE_TLS_CERT_PATH";
/// Private key of the intake certificate.
pub const ENV_INTAKE_TLS_KEY_PATH: &str = "TRUSTLY_SIDECAR_INTAKE_TLS_KEY_PATH";
/// CA certificate(s) intake clients must present a certificate from (mTLS, e.g. from a proxy).
pub const ENV_INTAKE_TLS_CLIENT_CA_PATH: &str = "TRUSTLY_SIDECAR_INTAKE_TLS_CLIENT_CA_PATH";

const INTAKE_TLS: Vars = Vars {
    cert: ENV_INTAKE_TLS_CERT_PATH,
    key: ENV_INTAKE_TLS_KEY_PATH,
    client_ca: ENV_INTAKE_TLS_CLIENT_CA_PATH,
};

/// Notification intake.
#[derive(Clone)]
pub struct Intake {
    pub listen: SocketAddr,
    /// The default NotificationURL for orders.
    pub url: Url,
    pub path: String,
    pub decision_deadline: Duration,
    pub decision_fallback: DecisionFallback,
    /// The intake listener's TLS files; none: plaintext.
    pub tls: Option<TlsFiles>,
}

impl Intake {
    pub(super) fn read(r: &mut Reader<'_>, sandbox: bool) -> Option<Self> {
        let listen = r.socket_addr(ENV_NOTIFICATION_LISTEN, DEFAULT_NOTIFICATION_LISTEN);
        let url = match r.get(ENV_NOTIFICATION_URL) {
            Some(text) => r.parsed(ENV_NOTIFICATION_URL, parse_notification_url(&text)),
            // The sandbox's simulator posts to the local intake over plain http.
            None if sandbox => listen
                .and_then(|addr| Url::parse(&format!("http://{addr}/trustly/notifications")).ok()),
            None => {
                r.missing(ENV_NOTIFICATION_URL);
                None
            }
        };
        let path = r
            .get(ENV_NOTIFICATION_PATH)
            .unwrap_or_else(|| DEFAULT_NOTIFICATION_PATH.to_owned());
        if !path.starts_with('/') || path.contains('?') {
            r.invalid(
                ENV_NOTIFICATION_PATH,
                "must start with / and contain no ?".into(),
            );
        }
        let decision_deadline = r.duration(ENV_DECISION_DEADLINE, DEFAULT_DECISION_DEADLINE);
        let decision_fallback =
            r.value(
                ENV_DECISION_FALLBACK,
                DecisionFallback::Withhold,
                |v| match v {
                    "withhold" => Ok(DecisionFallback::Withhold),
                    "answer" => Ok(DecisionFallback::Answer),
                    other => Err(format!(
                        "unknown fallback {other:?} (expected withhold or answer)"
                    )),
                },
            );
        let tls = tls::read(r, &INTAKE_TLS, Protocol::Http1);
        Some(Self {
            tls: tls.files,
            listen: listen?,
            url: url?,
            path,
            decision_deadline: decision_deadline?,
            decision_fallback: decision_fallback?,
        })
    }
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("listen", &self.listen)
            .field("url", &self.url.as_str())
            .field("path", &self.path)
            .field("decision_deadline", &self.decision_deadline)
            .field("decision_fallback", &self.decision_fallback)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The public NotificationURL: https (Trustly refuses plain http, 734) and no `?` (705); plain
/// http only on loopback, for local development against the simulator.
fn parse_notification_url(text: &str) -> Result<Url, String> {
    let url = parse_url(text)?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(host)) => host == "localhost",
        None => false,
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err("must be https (Trustly refuses plain http; http only on loopback)".into());
    }
    if url.query().is_some() || text.contains('?') {
        return Err("must not contain '?' (Trustly refuses query strings)".into());
    }
    Ok(url)
}
