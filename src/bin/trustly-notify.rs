//! `trustly-notify`: signs one test notification as "Trustly", POSTs it to a running sidecar's
//! notification intake and checks the signed answer. A developer tool for local development only.
//!
//! Exit codes: 0 the answer is a valid signed answer (2xx, verifies with the merchant key, echoes
//! `uuid` and `method`, carries a `status`); 1 anything else (transport error, non-2xx, unsigned,
//! bad signature, mismatched echo); 64 bad flags or key files.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use clap::Parser;
use rand::Rng as _;
use serde_json::{Map, Value, json};
use trustly_sidecar::{
    config::{DEFAULT_NOTIFICATION_LISTEN, DEFAULT_NOTIFICATION_PATH},
    money::Currency,
    sim::{
        clock::Timestamp,
        keys::{self as test_keys},
    },
    trustly::{
        canonical, keys,
        sign::{Backend, Signer, Verifier},
        wire,
    },
};

/// Exit code for invalid flags or key files (BSD `EX_USAGE`).
const EXIT_CONFIG: u8 = 64;
/// Exit code when the sidecar's answer is not a valid signed answer.
const EXIT_BAD_ANSWER: u8 = 1;
/// Largest answer read. The sidecar's answers are a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Signs one test notification as "Trustly" and POSTs it to a sidecar's notification intake.
///
/// For local development only: the default signing key is a PUBLICLY KNOWN test key.
#[derive(Parser, Debug)]
#[command(name = "trustly-notify", version)]
struct Flags {
    /// The sidecar's notification intake URL.
    #[arg(long, env = "TRUSTLY_NOTIFY_URL", default_value_t = default_intake_url())]
    url: String,
    /// Notification method: credit, debit, pending, cancel, account, payoutconfirmation, kyc, or
    /// any other string (sent with credit's fields).
    #[arg(long, env = "TRUSTLY_NOTIFY_METHOD", default_value = "credit")]
    method: String,
    /// `orderid` [default: random 10 digits]
    #[arg(long, env = "TRUSTLY_NOTIFY_ORDER_ID")]
    order_id: Option<String>,
    /// `messageid` [default: notify- + random 10 digits]
    #[arg(long, env = "TRUSTLY_NOTIFY_MESSAGE_ID")]
    message_id: Option<String>,
    /// `enduserid` (not sent for account and kyc).
    #[arg(
        long,
        env = "TRUSTLY_NOTIFY_END_USER_ID",
        default_value = "trustly-notify-user"
    )]
    end_user_id: String,
    /// `amount`, a decimal string sent as a JSON string (not sent for cancel, account and kyc).
    #[arg(long, env = "TRUSTLY_NOTIFY_AMOUNT", default_value = "100.00")]
    amount: String,
    /// `currency`, ISO 4217 (not sent for cancel, account and kyc).
    #[arg(long, env = "TRUSTLY_NOTIFY_CURRENCY", default_value = "EUR")]
    currency: String,
    /// `notificationid`; reuse one to send a duplicate [default: random 10 digits]
    #[arg(long, env = "TRUSTLY_NOTIFY_NOTIFICATION_ID")]
    notification_id: Option<String>,
    /// The notification's `uuid` [default: random v4]
    #[arg(long, env = "TRUSTLY_NOTIFY_UUID")]
    uuid: Option<String>,
    /// Private key (PEM) playing "Trustly"; its public half must be the sidecar's Trustly key
    /// [default: the PUBLICLY KNOWN src/trustly/keys/published/python-client-test-private-1.pem, the key of a
    /// --sandbox sidecar's simulator and of trustly-sim]
    #[arg(long, env = "TRUSTLY_NOTIFY_SIGNING_KEY_PATH")]
    signing_key_path: Option<PathBuf>,
    /// Merchant public key (PEM) that verifies the sidecar's answer
    /// [default: the public half of src/trustly/keys/published/merchant-test-private.pem, a --sandbox's key]
    #[arg(long, env = "TRUSTLY_NOTIFY_VERIFY_KEY_PATH")]
    verify_key_path: Option<PathBuf>,
    /// A JSON object sent as `params.data` instead of the generated one (the data flags above
    /// are then ignored).
    #[arg(long, env = "TRUSTLY_NOTIFY_DATA_JSON")]
    data_json: Option<String>,
    /// Seconds to wait for the whole exchange.
    #[arg(long, env = "TRUSTLY_NOTIFY_TIMEOUT", default_value_t = 10)]
    timeout: u64,
}

/// Everything needed to send and check one notification.
struct Plan {
    url: url::Url,
    method: String,
    uuid: String,
    data: Value,
    signer: Arc<dyn Signer>,
    verifier: Arc<dyn Verifier>,
    verify_key: String,
    timeout: Duration,
    fixture_signing_key: bool,
}

/// The intake of a sidecar running with its default listen address and path.
fn default_intake_url() -> String {
    format!("http://{DEFAULT_NOTIFICATION_LISTEN}{DEFAULT_NOTIFICATION_PATH}")
}

/// Checks every flag, reporting all problems at once.
fn plan(flags: Flags) -> Result<Plan, Vec<String>> {
    let mut problems = Vec::new();
    let url = noted(intake_url(&flags.url), &mut problems);
    if flags.method.is_empty() {
        problems.push("--method must not be empty".into());
    }
    if flags.uuid.as_deref() == Some("") {
        problems.push("--uuid must not be empty".into());
    }
    if flags.timeout == 0 {
        problems.push("--timeout must be at least 1 second".into());
    }
    let signer = noted(signer(flags.signing_key_path.as_deref()), &mut problems);
    let verifier = noted(verifier(flags.verify_key_path.as_deref()), &mut problems);
    let data = data(&flags, &mut problems);
    match (url, signer, verifier, data) {
        (Some(url), Some(signer), Some(verifier), Some(data)) if problems.is_empty() => Ok(Plan {
            url,
            uuid: flags
                .uuid
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            method: flags.method,
            data,
            signer,
            verifier,
            verify_key: flags.verify_key_path.map_or_else(
                || format!("the embedded test key {}", test_keys::MERCHANT_KEY_NAME),
                |path| path.display().to_string(),
            ),
            timeout: Duration::from_secs(flags.timeout),
            fixture_signing_key: flags.signing_key_path.is_none(),
        }),
        _ => Err(problems),
    }
}

/// The value, or `None` with its problem recorded.
fn noted<T>(checked: Result<T, String>, problems: &mut Vec<String>) -> Option<T> {
    checked.map_err(|problem| problems.push(problem)).ok()
}

fn intake_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("--url {text:?}: not a URL: {e}"))?;
    if matches!(url.scheme(), "http" | "https") {
        Ok(url)
    } else {
        Err(format!("--url {text:?}: must be http or https"))
    }
}

/// Signs as "Trustly": with the key file, or the PUBLICLY KNOWN simulator key.
fn signer(key_path: Option<&Path>) -> Result<Arc<dyn Signer>, String> {
    let key = match key_path {
        Some(path) => {
            keys::load_private_key(path).map_err(|e| format!("--signing-key-path: {e}"))?
        }
        None => test_keys::simulator_private_key(),
    };
    Backend::RustCrypto
        .signer(key)
        .map_err(|e| format!("signing key: {e}"))
}

/// Verifies the sidecar's answer: with the key file, or the public half of the test merchant key.
fn verifier(key_path: Option<&Path>) -> Result<Arc<dyn Verifier>, String> {
    let key = match key_path {
        Some(path) => keys::load_public_key(path).map_err(|e| format!("--verify-key-path: {e}"))?,
        None => rsa::RsaPublicKey::from(&test_keys::merchant_private_key()),
    };
    Backend::RustCrypto
        .verifier(key)
        .map_err(|e| format!("verify key: {e}"))
}

/// `params.data`: the `--data-json` object, or generated from the data flags once they are valid.
fn data(flags: &Flags, problems: &mut Vec<String>) -> Option<Value> {
    if let Some(text) = &flags.data_json {
        return noted(data_json(text), problems);
    }
    if !is_decimal(&flags.amount) {
        problems.push(format!(
            "--amount {:?}: expected a decimal such as 100.00",
            flags.amount
        ));
    }
    if flags.currency.parse::<Currency>().is_err() {
        problems.push(format!(
            "--currency {:?}: not an ISO 4217 currency code",
            flags.currency
        ));
    }
    Some(generated_data(flags))
}

fn data_json(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(data @ Value::Object(_)) => Ok(data),
        Ok(_) => Err("--data-json must be a JSON object".into()),
        Err(e) => Err(format!("--data-json is not valid JSON: {e}")),
    }
}

/// `params.data` with Trustly's lowercase fields for the method (spec §4.2).
fn generated_data(flags: &Flags) -> Value {
    let mut data = Map::new();
    let order_id = flags.order_id.clone().unwrap_or_else(random_digits);
    data.insert("orderid".into(), json!(order_id));
    data.insert(
        "messageid".into(),
        json!(
            flags
                .message_id
                .clone()
                .unwrap_or_else(|| format!("notify-{}", random_digits()))
        ),
    );
    data.insert(
        "notificationid".into(),
        json!(flags.notification_id.clone().unwrap_or_else(random_digits)),
    );
    match flags.method.as_str() {
        "account" => {
            data.insert("accountid".into(), json!(random_digits()));
            data.insert("verified".into(), json!("1"));
            data.insert(
                "attributes".into(),
                json!({
                    "clearinghouse": "SWEDEN",
                    "bank": "SEB",
                    "descriptor": "**706212",
                    "lastdigits": "706212",
                }),
            );
        }
        "kyc" => {
            data.insert("kycentityid".into(), json!(format!("kyc-{order_id}")));
            data.insert(
                "attributes".into(),
                json!({
                    "firstname": "Test",
                    "lastname": "Person",
                    "dob": "1990-01-01",
                    "street": "Testgatan 1",
                    "zipcode": "11122",
                    "city": "Stockholm",
                    "country": "SE",
                }),
            );
        }
        method => {
            data.insert("enduserid".into(), json!(flags.end_user_id));
            if method != "cancel" {
                // A JSON string, as Trustly sends it (spec §4.2).
                data.insert("amount".into(), json!(flags.amount));
                data.insert("currency".into(), json!(flags.currency));
            }
            data.insert("timestamp".into(), json!(Timestamp::now().trustly()));
            data.insert("attributes".into(), json!({}));
        }
    }
    Value::Object(data)
}

/// Digits with an optional fractional part: `100`, `100.00`.
fn is_decimal(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}

fn random_digits() -> String {
    rand::thread_rng()
        .gen_range(1_000_000_000_u64..10_000_000_000)
        .to_string()
}

#[tokio::main]
async fn main() -> ExitCode {
    let flags = match Flags::try_parse() {
        Ok(flags) => flags,
        Err(error) => {
            let _ = error.print();
            // --help and --version are not errors.
            return if error.use_stderr() {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let plan = match plan(flags) {
        Ok(plan) => plan,
        Err(problems) => {
            eprintln!("trustly-notify: invalid configuration:");
            problems.iter().for_each(|p| eprintln!("  - {p}"));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if plan.fixture_signing_key {
        eprintln!("==================================================================");
        eprintln!("NO --signing-key-path: signing with a PUBLICLY KNOWN test key");
        eprintln!(
            "(src/trustly/keys/published/python-client-test-private-1.pem, a --sandbox's key)."
        );
        eprintln!("Anyone can forge these signatures. For local development only:");
        eprintln!("a sidecar must never trust its public half outside development.");
        eprintln!("==================================================================");
    }
    match send(&plan).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("trustly-notify: {problem}");
            ExitCode::from(EXIT_BAD_ANSWER)
        }
    }
}

/// Signs, POSTs, prints the exchange and checks the answer.
async fn send(plan: &Plan) -> Result<(), String> {
    let plaintext = canonical::plaintext(&plan.method, &plan.uuid, &plan.data);
    let signature = plan
        .signer
        .sign(plaintext.as_bytes())
        .map_err(|e| format!("could not sign the notification: {e}"))?;
    let notification = wire::notification(&plan.method, &plan.uuid, &signature, plan.data.clone());
    let body = serde_json::to_vec(&notification)
        .map_err(|e| format!("could not encode the notification: {e}"))?;
    println!("POST {}", plan.url);
    println!("sent: {}", String::from_utf8_lossy(&body));

    let client = reqwest::Client::builder()
        .timeout(plan.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("could not build the HTTP client: {e}"))?;
    let response = client
        .post(plan.url.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST {} failed: {}", plan.url, describe(&e)))?;
    let status = response.status();
    let answer = read_limited(response)
        .await
        .map_err(|e| format!("reading the answer failed: {e}"))?;
    println!("HTTP {status}");
    if answer.is_empty() {
        println!("(empty body)");
    } else {
        println!("{}", String::from_utf8_lossy(&answer));
    }

    let checked = check_answer(plan, &answer);
    if !status.is_success() {
        return Err(format!(
            "HTTP {status}: the sidecar did not accept the notification"
        ));
    }
    checked
}

/// Checks the answer is signed with the merchant key and echoes our `uuid` and `method`.
fn check_answer(plan: &Plan, body: &[u8]) -> Result<(), String> {
    let answer = match wire::parse_notification_response(body) {
        Ok(answer) => answer,
        Err(malformed) => {
            println!("answer: not a signed notification answer ({malformed})");
            return Err("the answer is not a signed notification answer".into());
        }
    };
    let valid = answer.verify(plan.verifier.as_ref());
    let status = answer.data.get("status").and_then(Value::as_str);
    println!(
        "answer: status={} signature={}",
        status.unwrap_or("(none)"),
        if valid { "valid" } else { "INVALID" }
    );
    let mut problems = Vec::new();
    if !valid {
        problems.push(format!(
            "the answer's signature does not verify with {}",
            plan.verify_key
        ));
    }
    if answer.uuid != plan.uuid {
        problems.push(format!(
            "the answer echoes uuid {:?}, not {:?}",
            answer.uuid, plan.uuid
        ));
    }
    if answer.method != plan.method {
        problems.push(format!(
            "the answer echoes method {:?}, not {:?}",
            answer.method, plan.method
        ));
    }
    if status.is_none() {
        problems.push("the answer's data has no status string".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Bytes, String> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A transport error with its causes ("error sending request" alone says nothing).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out (see --timeout)".into();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
