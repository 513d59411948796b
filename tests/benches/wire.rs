//! Wire-core micro-benchmark: `cargo bench --bench wire [-- SECONDS]` (the `openssl` backend is a
//! default feature; `--no-default-features` measures `rustcrypto` alone). Prints signs/s and
//! verifies/s per backend and the cost of canonical serialization alone, on a realistic Deposit
//! (the 18-attribute Data of perf-baselines §3).
//!
//! Each figure is the median of 5 runs of SECONDS (default 1) after a warm-up; single-threaded.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use trustly_sidecar::trustly::{canonical, keys, sign::Backend, wire};

const RUNS: usize = 5;

fn deposit_data() -> Value {
    json!({
        "Username": "merchant_username", "Password": "merchant_password",
        "NotificationURL": "https://merchant.example/trustly/notifications/9f2c",
        "EndUserID": "user-4711", "MessageID": "7d8f6a3e-5c1b-4e2a-9b0d-1f2e3d4c5b6a",
        "Attributes": {
            "Country": "SE", "Locale": "sv_SE", "Currency": "SEK", "Amount": "100.00",
            "IP": "123.123.123.123", "MobilePhone": "+46709876543", "Firstname": "Åsa",
            "Lastname": "Öberg", "Email": "asa@example.com",
            "NationalIdentificationNumber": "790131-1234", "ShopperStatement": "Example Shop",
            "SuccessURL": "https://merchant.example/success", "FailURL": "https://merchant.example/fail",
            "TemplateURL": "https://merchant.example/template", "URLTarget": "_top",
            "SuggestedMinAmount": "10.00", "SuggestedMaxAmount": "1000.00",
            "RequestDirectDebitMandate": "0"
        }
    })
}

/// Runs `op` repeatedly for `window`, returning operations per second.
fn rate(window: Duration, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < window {
        op();
        count += 1;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn median_rate(window: Duration, mut op: impl FnMut()) -> f64 {
    rate(window / 4, &mut op); // warm-up
    let mut rates: Vec<f64> = (0..RUNS).map(|_| rate(window, &mut op)).collect();
    rates.sort_by(f64::total_cmp);
    rates[RUNS / 2]
}

fn report(what: &str, per_second: f64) {
    println!(
        "{what:<58} {per_second:>12.0} /s {:>10.2} µs/op",
        1e6 / per_second
    );
}

fn main() -> anyhow::Result<()> {
    let seconds: f64 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(1.0);
    let window = Duration::from_secs_f64(seconds);
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");
    let private = keys::load_private_key(format!("{fixtures}/merchant-test-private.pem").as_ref())?;
    let public = keys::load_public_key(format!("{fixtures}/merchant-test-public.pem").as_ref())?;

    let data = deposit_data();
    let uuid = "258a2184-2842-b485-25ca-293525152425";
    let plaintext = canonical::plaintext("Deposit", uuid, &data);
    println!(
        "Deposit: {} attributes, plaintext {} bytes; {RUNS} runs x {seconds} s, median",
        data["Attributes"].as_object().map_or(0, |a| a.len()),
        plaintext.len()
    );
    report(
        "canonical serialization S(Data) + plaintext",
        median_rate(window, || {
            std::hint::black_box(canonical::plaintext(
                "Deposit",
                uuid,
                std::hint::black_box(&data),
            ));
        }),
    );

    for backend in Backend::available() {
        let signer = backend.signer(private.clone())?;
        let verifier = backend.verifier(public.clone())?;
        let signature = signer.sign(plaintext.as_bytes())?;
        anyhow::ensure!(
            verifier.verify(plaintext.as_bytes(), &signature),
            "self-check failed"
        );
        report(
            &format!("[{backend}] sign (RSA-2048 PKCS#1 v1.5 SHA-1)"),
            median_rate(window, || {
                std::hint::black_box(signer.sign(plaintext.as_bytes()).ok());
            }),
        );
        report(
            &format!("[{backend}] verify"),
            median_rate(window, || {
                std::hint::black_box(verifier.verify(plaintext.as_bytes(), &signature));
            }),
        );
        let body = serde_json::to_vec(&wire::success_response(
            "Deposit",
            uuid,
            &signature,
            data.clone(),
        ))?;
        report(
            &format!(
                "[{backend}] incoming: parse + serialize + verify ({} B)",
                body.len()
            ),
            median_rate(window, || {
                let Ok(wire::Response::Result(part)) = wire::parse_response(&body) else {
                    panic!("benchmark body parses");
                };
                std::hint::black_box(part.verify(verifier.as_ref()));
            }),
        );
    }
    Ok(())
}
