//! The `pkcs11` signing backend in the sidecar binary, against a fresh SoftHSM2 token: a payout
//! through the simulator signed in the token, a key the simulator does not trust refused, SIGHUP
//! logging a fresh session pool in, and a bad PIN or label exiting 64 naming the setting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::process::Command;

use support::{
    MERCHANT_PRIVATE, app,
    requests::valid,
    sim::SimHarness,
    softhsm::{self, SoftHsm},
};
use trustly_sidecar::pb::payment_service_client::PaymentServiceClient;

/// The sidecar, talking to `h`, signing with `key_label` in `hsm` and no key file.
async fn sidecar(h: &SimHarness, hsm: &SoftHsm, key_label: &str) -> app::Process {
    let vars = hsm.sidecar_vars(key_label);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    app::spawn_process(h, &vars).await
}

/// Registers the test account and pays 10.00 EUR out to it; the order id, or the gRPC error.
async fn payout(process: &app::Process, message_id: &str) -> Result<String, tonic::Status> {
    let mut client = PaymentServiceClient::new(process.channel.clone());
    let account_id = client
        .register_account(valid::register_account("69706212"))
        .await?
        .into_inner()
        .account_id;
    let request = valid::account_payout("", message_id, &account_id, "10.00");
    Ok(client.account_payout(request).await?.into_inner().order_id)
}

#[tokio::test]
async fn an_account_payout_is_signed_in_the_token_and_accepted_by_the_simulator() {
    let hsm = SoftHsm::with_keys(&[("merchant", MERCHANT_PRIVATE)]);
    let h = SimHarness::start().await;
    let process = sidecar(&h, &hsm, "merchant").await;
    let order_id = payout(&process, "hsm-payout")
        .await
        .unwrap_or_else(|status| panic!("{status:?}\n{}", process.logs()));
    // The simulator verified our signature to create the order; the sidecar verified its answer.
    let order = &h.order(&order_id).await["order"];
    assert_eq!(order["kind"], "AccountPayout", "{order}");
    assert_eq!(order["amount"], "10.00");
    assert_eq!(order["message_id"], "hsm-payout");
    let logs = process.logs();
    assert!(logs.contains("signing=pkcs11"), "{logs}");
    assert!(!logs.contains(softhsm::PIN), "the PIN leaked: {logs}");
}

#[tokio::test]
async fn a_token_key_the_simulator_does_not_trust_is_refused_by_it() {
    // The python client's key, labelled as the merchant's: it signs, but not as the merchant.
    let hsm = SoftHsm::with_keys(&[("merchant", "python-client-test-private-1.pem")]);
    let h = SimHarness::start().await;
    let process = sidecar(&h, &hsm, "merchant").await;
    let refused = payout(&process, "hsm-wrong-key")
        .await
        .expect_err("refused");
    assert!(
        refused
            .message()
            .contains("636 ERROR_UNABLE_TO_VERIFY_RSA_SIGNATURE"),
        "{refused:?}"
    );
    assert_eq!(h.order_count().await, 0);
}

#[tokio::test]
async fn sighup_logs_a_fresh_session_pool_in_and_signing_goes_on() {
    let hsm = SoftHsm::with_keys(&[("merchant", MERCHANT_PRIVATE)]);
    let h = SimHarness::start().await;
    let process = sidecar(&h, &hsm, "merchant").await;
    payout(&process, "before-hup").await.expect("payout");
    process.signal("HUP");
    h.eventually("the token's key is reloaded", || {
        let reloaded = process
            .logs()
            .contains("merchant key reloaded from the PKCS#11 token");
        async move { reloaded.then_some(()) }
    })
    .await;
    let order_id = payout(&process, "after-hup").await.expect("payout");
    assert_eq!(h.order(&order_id).await["order"]["kind"], "AccountPayout");
}

/// The binary's exit code and stderr with `vars` (a token's, adjusted) and nothing else.
fn start_failing(vars: &[(String, String)]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_trustly-sidecar"))
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .env("TRUSTLY_SIDECAR_USERNAME", "merchant")
        .env("TRUSTLY_SIDECAR_PASSWORD_PATH", "/dev/null")
        .env(
            "TRUSTLY_SIDECAR_NOTIFICATION_URL",
            "https://merchant.example/n",
        )
        .output()
        .expect("binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_wrong_pin_or_key_label_or_token_exits_64_naming_the_setting() {
    let hsm = SoftHsm::with_keys(&[("merchant", MERCHANT_PRIVATE)]);
    let wrong_pin = hsm.pin_path.with_file_name("wrong-pin");
    std::fs::write(&wrong_pin, "0000\n").unwrap();
    let cases = [
        (
            "TRUSTLY_SIDECAR_PKCS11_PIN_PATH",
            wrong_pin.display().to_string(),
            "--pkcs11-pin-path (TRUSTLY_SIDECAR_PKCS11_PIN_PATH)",
        ),
        (
            "TRUSTLY_SIDECAR_PKCS11_KEY_LABEL",
            "nobody".to_owned(),
            "no RSA private key labelled \"nobody\"",
        ),
        (
            "TRUSTLY_SIDECAR_PKCS11_TOKEN_LABEL",
            "U".to_owned(),
            "--pkcs11-token-label (TRUSTLY_SIDECAR_PKCS11_TOKEN_LABEL)",
        ),
        (
            "TRUSTLY_SIDECAR_PKCS11_MODULE",
            "/nonexistent/libpkcs11.so".to_owned(),
            "--pkcs11-module (TRUSTLY_SIDECAR_PKCS11_MODULE)",
        ),
    ];
    for (var, value, expected) in cases {
        let mut vars = hsm.sidecar_vars("merchant");
        vars.retain(|(k, _)| k != var);
        vars.push((var.to_owned(), value));
        let (code, stderr) = start_failing(&vars);
        assert_eq!(code, Some(64), "{var}: {stderr}");
        assert!(stderr.contains(expected), "{var}: {stderr}");
        assert!(
            !stderr.contains("0000") && !stderr.contains(softhsm::PIN),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn a_key_replaced_in_the_token_is_found_again_after_a_failed_signature() {
    let hsm = SoftHsm::with_keys(&[("merchant", MERCHANT_PRIVATE)]);
    let h = SimHarness::start().await;
    let mut vars = hsm.sidecar_vars("merchant");
    // Checked often, so the test waits little; the check itself is what is tested.
    vars.push(("TRUSTLY_SIDECAR_RELOAD_INTERVAL".into(), "100ms".into()));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let process = app::spawn_process(&h, &vars).await;
    payout(&process, "before-replacement")
        .await
        .expect("payout");
    // The key object is destroyed (its handle is now invalid) and imported again: a rotation
    // under the same label, or an HSM restored from backup.
    destroy_key_in_a_child_process(&hsm, "merchant");
    hsm.import("merchant", MERCHANT_PRIVATE, 2);
    let refused = payout(&process, "at-replacement")
        .await
        .expect_err("the old handle");
    assert!(
        refused.message().contains("could not be signed"),
        "{refused:?}"
    );
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    h.eventually("the sidecar signs with the key again", || {
        let n = attempt.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let process = &process;
        async move {
            payout(process, &format!("after-replacement-{n}"))
                .await
                .ok()
        }
    })
    .await;
    let logs = process.logs();
    assert!(logs.contains("the PKCS#11 token did not sign"), "{logs}");
    assert!(
        logs.contains("merchant key reloaded from the PKCS#11 token"),
        "{logs}"
    );
}

/// Set (to the token's `SOFTHSM2_CONF`) only in the child process that destroys the key.
const CHILD_CONF: &str = "TRUSTLY_SIDECAR_TEST_PKCS11_DESTROY_CONF";

/// Runs the test below in a process of its own with the token's `SOFTHSM2_CONF`.
fn destroy_key_in_a_child_process(hsm: &SoftHsm, label: &str) {
    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "pkcs11::destroys_the_key_when_run_by_the_test_above",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env(CHILD_CONF, &hsm.conf)
        .env("TRUSTLY_SIDECAR_TEST_PKCS11_LABEL", label)
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("key destroyed"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Run by the test above in a process of its own (a no-op in the ordinary suite).
#[test]
fn destroys_the_key_when_run_by_the_test_above() {
    use cryptoki::{
        context::{CInitializeArgs, CInitializeFlags, Pkcs11},
        object::{Attribute, ObjectClass},
        session::UserType,
        types::AuthPin,
    };
    if std::env::var_os(CHILD_CONF).is_none() {
        return;
    }
    let label = std::env::var("TRUSTLY_SIDECAR_TEST_PKCS11_LABEL").unwrap();
    let context = Pkcs11::new(softhsm::MODULE).unwrap();
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = context
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|slot| {
            context.get_token_info(*slot).unwrap().label().trim_end() == softhsm::TOKEN_LABEL
        })
        .expect("the token");
    let session = context.open_rw_session(slot).unwrap();
    session
        .login(
            UserType::User,
            Some(&AuthPin::from(softhsm::PIN.to_owned())),
        )
        .unwrap();
    let template = [
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Label(label.into_bytes()),
    ];
    let keys = session.find_objects(&template).unwrap();
    assert_eq!(keys.len(), 1);
    session.destroy_object(keys[0]).unwrap();
    println!("key destroyed");
}

#[test]
fn live_refuses_a_publicly_known_test_key_in_a_token_too() {
    let hsm = SoftHsm::with_keys(&[("merchant", MERCHANT_PRIVATE)]);
    let mut vars = hsm.sidecar_vars("merchant");
    vars.push(("TRUSTLY_SIDECAR_ENVIRONMENT".into(), "live".into()));
    let (code, stderr) = start_failing(&vars);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains(
            "--pkcs11-key-label (TRUSTLY_SIDECAR_PKCS11_KEY_LABEL): is the PUBLICLY KNOWN test key"
        ),
        "{stderr}"
    );
}
