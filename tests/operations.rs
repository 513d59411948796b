//! Operations: metrics after a scripted flow, health endpoints, graceful shutdown with a call in
//! flight.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

mod support;

use std::time::Duration;

use serde_json::json;
use support::{app, sim::*};
use trustly_sidecar::pb::{
    self, account_service_client::AccountServiceClient,
    notification_service_client::NotificationServiceClient,
    order_service_client::OrderServiceClient,
};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .expect("ops endpoint");
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The value of the first metric line starting with `prefix` (labels included).
fn metric(text: &str, prefix: &str) -> f64 {
    metric_value(text, prefix).unwrap_or_else(|| panic!("no metric {prefix} in:\n{text}"))
}

/// The value of the first metric line starting with `prefix`, if there is one.
fn metric_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_describe_a_scripted_flow() {
    let h = SimHarness::start().await;
    // The simulator starts with 1000.00 EUR and SEK: EUR is under its threshold, SEK is not.
    let (vars, files) = app::vars_for(
        &h,
        &[
            ("TRUSTLY_SIDECAR_BALANCE_INTERVAL", "15m"),
            ("TRUSTLY_SIDECAR_LOW_BALANCE", "EUR=5000.00,SEK=10.00"),
        ],
    );
    let mut sidecar = app::spawn_with_intake(vars, files).await;
    let mut stream = NotificationServiceClient::new(sidecar.channel.clone())
        .stream_notifications(pb::StreamNotificationsRequest {
            consumer_group: "metrics".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let order_id = sidecar
        .client
        .deposit(deposit("m-metrics"))
        .await
        .unwrap()
        .into_inner()
        .order_id;
    sidecar.client.deposit(deposit("m-metrics")).await.unwrap(); // answered from the record
    let mut changed = deposit("m-metrics");
    changed.amount = "1.00".into();
    sidecar.client.deposit(changed).await.expect_err("conflict");
    h.act(&order_id, "complete", json!({})).await;
    for _ in 0..2 {
        stream.message().await.unwrap();
    }

    // A WatchOrders group: a new one starts at the oldest change, so one arrives at once.
    let mut watch = OrderServiceClient::new(sidecar.channel.clone())
        .watch_orders(pb::WatchOrdersRequest {
            consumer_group: "metrics-watch".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while !matches!(
        watch.message().await.unwrap().and_then(|m| m.item),
        Some(pb::watch_orders_response::Item::Change(_))
    ) {}

    let (status, text) = get(sidecar.ops_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metric(
            &text,
            r#"trustly_sidecar_rpc_seconds_count{service="trustly.v1.PaymentService",method="Deposit",code="OK"}"#
        ) >= 2.0
    );
    assert!(
        metric(
            &text,
            r#"trustly_sidecar_rpc_seconds_count{service="trustly.v1.PaymentService",method="Deposit",code="FAILED_PRECONDITION"}"#
        ) >= 1.0
    );
    assert!(
        metric(
            &text,
            r#"trustly_sidecar_trustly_call_seconds_count{method="Deposit",outcome="success"}"#
        ) >= 1.0
    );
    assert!(metric(&text, "trustly_sidecar_signing_seconds_count") >= 1.0);
    assert!(
        metric(
            &text,
            r#"trustly_sidecar_notifications_total{method="credit",outcome="stored"}"#
        ) >= 1.0
    );
    assert!(
        metric(
            &text,
            r#"trustly_sidecar_idempotency_total{result="replayed"}"#
        ) >= 1.0
    );
    assert!(
        metric(
            &text,
            r#"trustly_sidecar_idempotency_total{result="conflict"}"#
        ) >= 1.0
    );
    assert!(
        metric(
            &text,
            r#"trustly_sidecar_stream_deliveries_total{group="metrics"}"#
        ) >= 2.0
    );
    assert!(metric(&text, "trustly_sidecar_stream_subscribers") >= 1.0);
    // Two events delivered to the group and not acknowledged; nothing left undelivered.
    assert_eq!(
        metric(&text, r#"trustly_sidecar_stream_pending{group="metrics"}"#),
        2.0
    );
    assert_eq!(
        metric(&text, r#"trustly_sidecar_stream_lag{group="metrics"}"#),
        0.0
    );
    // The change feed's group in its own families, not in the notification ones.
    for family in ["order_changes_lag", "order_changes_pending"] {
        let series = format!(r#"trustly_sidecar_{family}{{group="metrics-watch"}}"#);
        assert!(metric(&text, &series) >= 0.0);
    }
    assert_eq!(
        metric_value(
            &text,
            r#"trustly_sidecar_stream_lag{group="metrics-watch"}"#
        ),
        None
    );

    // Balance: polled once at start (the 15-minute turn), and updated by every Balance RPC.
    let balances = sidecar
        .client
        .balance(pb::BalanceRequest {})
        .await
        .unwrap()
        .into_inner()
        .balances;
    let eur = balances
        .iter()
        .find(|b| b.currency_code == "EUR")
        .expect("an EUR balance");
    let text = h
        .eventually(
            "the startup poll and the RPC both called Balance",
            || async {
                let (_, text) = get(sidecar.ops_addr, "/metrics").await;
                metric_value(
                    &text,
                    r#"trustly_sidecar_trustly_call_seconds_count{method="Balance",outcome="success"}"#,
                )
                .is_some_and(|calls| calls >= 2.0)
                .then_some(text)
            },
        )
        .await;
    assert_eq!(
        metric(&text, r#"trustly_sidecar_trustly_balance{currency="EUR"}"#),
        eur.balance.parse::<f64>().unwrap()
    );
    assert_eq!(
        metric(
            &text,
            r#"trustly_sidecar_trustly_balance_low{currency="EUR"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"trustly_sidecar_trustly_balance_low{currency="SEK"}"#
        ),
        0.0
    );
}

#[tokio::test]
async fn every_service_is_measured_with_canonical_codes_once_per_call() {
    let h = SimHarness::start().await;
    let (vars, files) = app::vars_for(&h, &[]);
    let mut sidecar = app::spawn(vars, files).await;
    let channel = sidecar.channel.clone();
    let empty = pb::RefundRequest::default();
    let invalid = sidecar.client.refund(empty).await.expect_err("invalid");
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
    let mut notifications = NotificationServiceClient::new(channel.clone());
    let stream = notifications
        .stream_notifications(pb::StreamNotificationsRequest {
            consumer_group: "codes".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ack = |group: &str| pb::AcknowledgeNotificationRequest {
        consumer_group: group.into(),
        event_id: "1-0".into(),
        ..Default::default()
    };
    notifications
        .acknowledge_notification(ack("codes"))
        .await
        .unwrap();
    let refused = notifications
        .acknowledge_notification(ack("no spaces"))
        .await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::InvalidArgument);
    let mut accounts = AccountServiceClient::new(channel.clone());
    accounts
        .list_accounts(pb::ListAccountsRequest {
            end_user_id: "u-codes".into(),
        })
        .await
        .unwrap();
    let missing = accounts
        .get_account(pb::GetAccountRequest {
            account_id: "no-such-account".into(),
        })
        .await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);
    assert_eq!(unknown_method(channel).await, tonic::Code::Unimplemented);
    drop(stream); // the stream is measured when it ends: cancelled by its client

    let rpc = |service: &str, method: &str, code: &str| {
        format!(
            r#"trustly_sidecar_rpc_seconds_count{{service="trustly.v1.{service}",method="{method}",code="{code}"}}"#
        )
    };
    let text = h
        .eventually("the cancelled stream is recorded", || async {
            let (_, text) = get(sidecar.ops_addr, "/metrics").await;
            let stream = rpc("NotificationService", "StreamNotifications", "CANCELLED");
            metric_value(&text, &stream).is_some().then_some(text)
        })
        .await;
    for (series, count) in [
        (rpc("PaymentService", "Refund", "INVALID_ARGUMENT"), 1.0),
        (rpc("NotificationService", "AcknowledgeNotification", "OK"), 1.0),
        (rpc("NotificationService", "AcknowledgeNotification", "INVALID_ARGUMENT"), 1.0),
        (rpc("NotificationService", "StreamNotifications", "CANCELLED"), 1.0),
        (rpc("AccountService", "ListAccounts", "OK"), 1.0),
        (rpc("AccountService", "GetAccount", "NOT_FOUND"), 1.0),
        (
            r#"trustly_sidecar_rpc_seconds_count{service="unknown",method="unknown",code="UNIMPLEMENTED"}"#.to_owned(),
            1.0,
        ),
    ] {
        assert_eq!(metric(&text, &series), count, "{series}");
    }
    assert!(
        !text.contains("code=\"InvalidArgument\""),
        "no Rust code names"
    );
    assert!(!text.contains("grpc.health"), "probes are not API calls");
    // The default signing backend: OpenSSL when built in (a default feature), else the `rsa` crate.
    let default_backend = if cfg!(feature = "openssl") {
        "openssl"
    } else {
        "rustcrypto"
    };
    let build = text
        .lines()
        .find(|line| line.starts_with("trustly_sidecar_build_info{"))
        .expect("build_info");
    assert!(
        build.starts_with(&format!(
            r#"trustly_sidecar_build_info{{version="{}",revision=""#,
            env!("CARGO_PKG_VERSION")
        )) && build.ends_with(&format!(r#",backend="{default_backend}"}} 1"#)),
        "{build}"
    );
    assert_eq!(metric(&text, "trustly_sidecar_ready "), 1.0);
    for process in [
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(metric(&text, process) > 0.0, "{process}");
    }
}

/// Calls a method no `trustly.v1` service has; returns the code it gets.
async fn unknown_method(channel: tonic::transport::Channel) -> tonic::Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    grpc.unary::<_, pb::BalanceResponse, _>(
        tonic::Request::new(pb::BalanceRequest {}),
        http::uri::PathAndQuery::from_static("/trustly.v1.PaymentService/NoSuchMethod"),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .expect_err("no such method")
    .code()
}

#[tokio::test]
async fn health_endpoints_and_graceful_shutdown_with_a_call_in_flight() {
    let h = SimHarness::start().await;
    let (vars, files) = app::vars_for(&h, &[]);
    let mut sidecar = app::spawn(vars, files).await;
    assert_eq!(get(sidecar.ops_addr, "/healthz").await.0, 200);
    assert_eq!(get(sidecar.ops_addr, "/readyz").await.0, 200);

    assert_eq!(
        h.admin_post(
            "faults",
            json!({"kind": "latency", "latency_ms": 1000, "method": "Deposit"})
        )
        .await
        .0,
        201
    );
    let in_flight = {
        let mut client = sidecar.client.clone();
        tokio::spawn(async move { client.deposit(deposit("m-in-flight")).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ops = sidecar.ops_addr;
    sidecar.begin_stop();
    // Not ready from the start of the drain, while the call is still running.
    let (status, _) = get(ops, "/readyz").await;
    assert_eq!(status, 503, "readiness drops at once");
    let answer = in_flight
        .await
        .unwrap()
        .expect("the in-flight call finishes");
    assert!(!answer.into_inner().order_id.is_empty());
    sidecar.stop().await.expect("clean stop");
    assert!(
        reqwest::Client::new()
            .get(format!("http://{ops}/healthz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_err(),
        "stopped"
    );
}

#[tokio::test]
async fn a_second_trustly_key_is_accepted_during_a_rotation() {
    let h = SimHarness::start().await;
    // The "current" key is not the one the simulator signs with; the "next" one is.
    let current = support::key_path(support::MERCHANT_PUBLIC)
        .display()
        .to_string();
    let next = support::key_path(support::TRUSTLY_PUBLIC)
        .display()
        .to_string();
    let (mut vars, files) = app::vars_for(&h, &[]);
    vars.insert(
        "TRUSTLY_SIDECAR_TRUSTLY_PUBLIC_KEY_PATH".into(),
        current.clone(),
    );
    let mut without_next = app::spawn(vars.clone(), Vec::new()).await;
    let status = without_next
        .client
        .balance(pb::BalanceRequest {})
        .await
        .expect_err("wrong key");
    assert_eq!(
        status.code(),
        tonic::Code::Internal,
        "answers signed with an unknown key are refused"
    );
    vars.insert("TRUSTLY_SIDECAR_TRUSTLY_NEXT_PUBLIC_KEY_PATH".into(), next);
    let mut rotating = app::spawn(vars, files).await;
    rotating
        .client
        .balance(pb::BalanceRequest {})
        .await
        .expect("the next key verifies");
}

#[tokio::test]
async fn logs_never_carry_secrets_or_personal_data_at_any_level() {
    let h = SimHarness::start().await;
    // RUST_LOG=trace: every level of every crate is written, so nothing can hide below it.
    let process = app::spawn_process(
        &h,
        &[
            ("TRUSTLY_SIDECAR_LOG_FORMAT", "json"),
            ("RUST_LOG", "trace"),
        ],
    )
    .await;
    let mut client = trustly_sidecar::pb::payment_service_client::PaymentServiceClient::new(
        process.channel.clone(),
    );
    // A flow full of personal data: names, national id, email, phone, account number.
    let mut request = deposit("m-redaction");
    let user = request.user.as_mut().unwrap();
    user.national_identification_number = "790131-1234".into();
    user.mobile_phone = "+46709876543".into();
    let order_id = client.deposit(request).await.unwrap().into_inner().order_id;
    client
        .register_account(support::requests::register_account())
        .await
        .unwrap();
    h.act(&order_id, "complete", json!({"send_account": true}))
        .await;
    h.eventually("notifications answered", || async {
        let deliveries = h.deliveries(&order_id).await;
        (deliveries
            .iter()
            .filter(|d| d["outcome"] == "acknowledged")
            .count()
            >= 3)
            .then_some(())
    })
    .await;
    drop(client);
    let (status, logs) = process.terminate().await;
    assert!(status.success(), "the sidecar exits 0 on SIGTERM");
    assert!(logs.lines().count() > 20, "trace logs were written");
    // Every RPC and notification has a span carrying its identifiers.
    let carries = |needles: &[&str]| {
        logs.lines()
            .any(|line| needles.iter().all(|needle| line.contains(needle)))
    };
    assert!(
        carries(&[
            r#""rpc":"/trustly.v1.PaymentService/Deposit""#,
            r#""messageid":"m-redaction""#
        ]),
        "a Deposit's log lines carry its MessageID"
    );
    assert!(
        carries(&[
            r#""name":"notification""#,
            r#""notificationid":""#,
            &format!(r#""orderid":"{order_id}""#)
        ]),
        "a notification's log lines carry its notificationid and orderid"
    );
    let private_key =
        std::fs::read_to_string(support::key_path(support::MERCHANT_PRIVATE)).unwrap();
    let key_line = private_key.lines().nth(1).unwrap();
    for secret in [
        PASSWORD,
        key_line,
        "Åsa",
        "Öberg",
        "790131-1234",
        "asa@example.com",
        "+46709876543",
        "69706212",
        "\\u00c5sa",
    ] {
        let hit = logs.lines().find(|line| line.contains(secret));
        assert!(
            hit.is_none(),
            "{secret:?} appears in a log line: {}",
            hit.unwrap_or_default()
        );
    }
}

#[tokio::test]
async fn the_key_and_password_reload_on_change_and_a_bad_key_is_refused() {
    let h = SimHarness::start().await;
    let key = tempfile::NamedTempFile::new().unwrap();
    let password = tempfile::NamedTempFile::new().unwrap();
    let merchant_pem = std::fs::read(support::key_path(support::MERCHANT_PRIVATE)).unwrap();
    std::fs::write(key.path(), &merchant_pem).unwrap();
    std::fs::write(password.path(), PASSWORD).unwrap();
    // Balance is the probe, called until the reload shows: no polling window for it.
    let (mut vars, _) = app::vars_for(
        &h,
        &[
            ("TRUSTLY_SIDECAR_RELOAD_INTERVAL", "100ms"),
            ("TRUSTLY_SIDECAR_POLL_WINDOW", "0s"),
        ],
    );
    vars.insert(
        "TRUSTLY_SIDECAR_PRIVATE_KEY_PATH".into(),
        key.path().display().to_string(),
    );
    vars.insert(
        "TRUSTLY_SIDECAR_PASSWORD_PATH".into(),
        password.path().display().to_string(),
    );
    let sidecar = app::spawn(vars, Vec::new()).await;
    let balance = || {
        let mut client = sidecar.client.clone();
        async move { client.balance(pb::BalanceRequest {}).await }
    };
    let reason = |status: &tonic::Status| {
        use tonic_types::StatusExt;
        status
            .get_details_error_info()
            .map(|i| i.reason)
            .unwrap_or_default()
    };
    balance().await.expect("works with the mounted key");

    // A broken key file: refused, the old key keeps signing.
    std::fs::write(
        key.path(),
        "-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    balance()
        .await
        .expect("still signing with the previous key");

    // Another valid key: used from now on (the simulator does not know it: 636).
    std::fs::write(
        key.path(),
        std::fs::read(support::key_path("python-client-test-private-1.pem")).unwrap(),
    )
    .unwrap();
    h.eventually("the new key is in use", || async {
        let status = balance().await.err()?;
        (reason(&status) == "ERROR_UNABLE_TO_VERIFY_RSA_SIGNATURE").then_some(())
    })
    .await;
    std::fs::write(key.path(), &merchant_pem).unwrap();
    h.eventually("the original key is back", || async {
        balance().await.ok().map(|_| ())
    })
    .await;

    // The password file too.
    std::fs::write(password.path(), "rotated-but-wrong\n").unwrap();
    h.eventually("the new password is used", || async {
        let status = balance().await.err()?;
        (reason(&status) == "ERROR_INVALID_CREDENTIALS").then_some(())
    })
    .await;
    std::fs::write(password.path(), format!("{PASSWORD}\n")).unwrap();
    h.eventually("the right password again", || async {
        balance().await.ok().map(|_| ())
    })
    .await;
}

/// The shared deposit, with the checkout pages on m.example.
fn deposit(message_id: &str) -> pb::DepositRequest {
    let mut request = support::requests::deposit(message_id);
    if let Some(user) = request.user.as_mut() {
        user.success_url = "https://m.example/ok".into();
        user.fail_url = "https://m.example/fail".into();
    }
    request
}
