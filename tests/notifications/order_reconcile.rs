//! Reconciliation end to end: orders created through the sidecar against the simulator, the
//! simulator's ledger edited through `/admin/ledger` to plant each kind of discrepancy, and
//! `OrderService.Reconcile` reporting them; the scheduled run of two replica processes on one
//! Redis, read from their metrics and logs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::{app, requests::redis_url, requests::valid, sim::*};
use tonic::Code;
use tonic_types::StatusExt;
use trustly_sidecar::{
    pb::{self, MismatchKind, order_service_client::OrderServiceClient},
    sim::clock::Timestamp,
};

/// A simulator and a sidecar on Redis (a fresh key prefix) whose NotificationURL is its intake.
async fn start() -> (SimHarness, app::Sidecar) {
    let h = SimHarness::start().await;
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let url = redis_url();
    let (vars, files) = app::vars_for(
        &h,
        &[
            ("TRUSTLY_SIDECAR_REDIS_URL", &url),
            ("TRUSTLY_SIDECAR_REDIS_PREFIX", &prefix),
        ],
    );
    (h, app::spawn_with_intake(vars, files).await)
}

/// The UTC date `days` from today.
fn date(days: i64) -> String {
    let today = Timestamp::now().date();
    let part = |range: std::ops::Range<usize>| today[range].parse::<i64>().unwrap();
    let day = trustly_sidecar::trustly::time::days_from_civil(part(0..4), part(5..7), part(8..10));
    let (y, m, d) = trustly_sidecar::trustly::time::civil_from_days(day + days);
    format!("{y:04}-{m:02}-{d:02}")
}

async fn reconcile(
    s: &app::Sidecar,
    from: &str,
    to: &str,
    currency: &str,
) -> Result<pb::ReconcileResponse, tonic::Status> {
    OrderServiceClient::new(s.channel.clone())
        .reconcile(pb::ReconcileRequest {
            from_date: from.into(),
            to_date: to.into(),
            currency_code: currency.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Today's period, which must reconcile.
async fn today(s: &app::Sidecar) -> pb::ReconcileResponse {
    reconcile(s, &date(0), &date(1), "")
        .await
        .expect("Reconcile")
}

async fn state(s: &app::Sidecar, order_id: &str) -> Option<pb::OrderState> {
    let order = OrderServiceClient::new(s.channel.clone())
        .get_order(pb::GetOrderRequest {
            order_id: order_id.into(),
            ..Default::default()
        })
        .await
        .ok()?
        .into_inner()
        .order?;
    Some(order.state())
}

async fn reaches(h: &SimHarness, s: &app::Sidecar, order_id: &str, wanted: pb::OrderState) {
    h.eventually(&format!("{order_id} {wanted:?}"), || async {
        (state(s, order_id).await == Some(wanted)).then_some(())
    })
    .await;
}

/// A deposit of `amount` EUR, completed and credited.
async fn credited(h: &SimHarness, s: &app::Sidecar, message_id: &str, amount: &str) -> String {
    let mut request = valid::deposit("", message_id);
    request.amount = amount.into();
    let order_id = s.client.clone().deposit(request).await.unwrap();
    let order_id = order_id.into_inner().order_id;
    h.act(&order_id, "complete", json!({})).await;
    reaches(h, s, &order_id, pb::OrderState::Credited).await;
    order_id
}

/// An AccountPayout of 25.00 EUR, executed and confirmed.
async fn confirmed_payout(h: &SimHarness, s: &app::Sidecar) -> String {
    let mut c = s.client.clone();
    let account = c.register_account(valid::register_account("69706212"));
    let account_id = account.await.unwrap().into_inner().account_id;
    let payout = valid::account_payout("", "m-rec-payout", &account_id, "25.00");
    let order_id = c
        .account_payout(payout)
        .await
        .unwrap()
        .into_inner()
        .order_id;
    h.act(&order_id, "complete", json!({})).await;
    reaches(h, s, &order_id, pb::OrderState::Confirmed).await;
    order_id
}

async fn admin(h: &SimHarness, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}/{path}", h.admin_url))
        .body(body.to_string())
        .send()
        .await
        .expect("admin call");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("admin body");
    (status, serde_json::from_slice(&body).expect("admin json"))
}

fn kinds(response: &pb::ReconcileResponse) -> Vec<(MismatchKind, &str)> {
    response
        .mismatches
        .iter()
        .map(|m| (m.kind(), m.order_id.as_str()))
        .collect()
}

#[tokio::test]
async fn a_clean_period_reports_nothing_and_ignores_settlements() {
    let (h, s) = start().await;
    credited(&h, &s, "m-rec-clean", "100.00").await;
    confirmed_payout(&h, &s).await;
    let mut c = s.client.clone();
    let settlement = pb::MerchantSettlementRequest {
        message_id: "m-rec-settle".into(),
        amount: support::requests::money("10.50", "EUR"),
        ..Default::default()
    };
    c.merchant_settlement(settlement)
        .await
        .expect("MerchantSettlement");
    let report = today(&s).await;
    assert_eq!(report.mismatches, []);
    assert_eq!((report.orders_checked, report.ledger_rows_checked), (2, 2));
}

#[tokio::test]
async fn planted_discrepancies_are_reported_by_kind() {
    let (h, s) = start().await;
    let dropped = credited(&h, &s, "m-rec-1", "100.00").await;
    let altered = credited(&h, &s, "m-rec-2", "50.00").await;
    let moved = credited(&h, &s, "m-rec-3", "10.00").await;
    let payout = confirmed_payout(&h, &s).await;
    assert_eq!(today(&s).await.mismatches, [], "clean before planting");

    let delete = reqwest::Method::DELETE;
    let patch = reqwest::Method::PATCH;
    assert_eq!(
        admin(&h, delete.clone(), &format!("ledger/{dropped}"), json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        admin(&h, delete, &format!("ledger/{payout}"), json!({}))
            .await
            .0,
        200
    );
    let amount = json!({"amount": "50.01"});
    assert_eq!(
        admin(&h, patch.clone(), &format!("ledger/{altered}"), amount)
            .await
            .0,
        200
    );
    let currency = json!({"currency": "SEK"});
    assert_eq!(
        admin(&h, patch, &format!("ledger/{moved}"), currency)
            .await
            .0,
        200
    );
    let row = json!({"orderid": "9999999999", "currency": "EUR", "amount": "7.00",
        "transactiontype": "Deposit", "messageid": "m-nobody"});
    assert_eq!(h.admin_post("ledger", row).await.0, 201);

    let report = today(&s).await;
    let mut expected = vec![
        (MismatchKind::CreditedWithoutLedgerRow, dropped.as_str()),
        (MismatchKind::AmountMismatch, altered.as_str()),
        (MismatchKind::CurrencyMismatch, moved.as_str()),
        (MismatchKind::PayoutWithoutLedgerDebit, payout.as_str()),
        (MismatchKind::LedgerRowWithoutOrder, "9999999999"),
    ];
    expected.sort_by_key(|(_, order_id)| order_id.to_owned());
    assert_eq!(kinds(&report), expected);
    let amounts = report
        .mismatches
        .iter()
        .find(|m| m.order_id == altered)
        .unwrap();
    assert_eq!(
        (
            amounts.order_amount.as_str(),
            amounts.ledger_amount.as_str()
        ),
        ("50.00", "50.01")
    );
    let nobody = report
        .mismatches
        .iter()
        .find(|m| m.order_id == "9999999999")
        .unwrap();
    assert_eq!(
        (nobody.message_id.as_str(), nobody.order_amount.as_str()),
        ("m-nobody", "")
    );
}

#[tokio::test]
async fn to_date_is_exclusive() {
    let (h, s) = start().await;
    let tomorrow = date(1);
    let row = json!({"orderid": "8888888888", "currency": "EUR", "amount": "-3.00",
        "transactiontype": "Refund", "datestamp": format!("{tomorrow} 00:00:00.000000+00")});
    assert_eq!(h.admin_post("ledger", row).await.0, 201);
    assert_eq!(
        today(&s).await.ledger_rows_checked,
        0,
        "a row dated to_date"
    );
    let two_days = reconcile(&s, &date(0), &date(2), "").await.unwrap();
    assert_eq!(
        kinds(&two_days),
        [(MismatchKind::LedgerRowWithoutOrder, "8888888888")]
    );
}

#[tokio::test]
async fn bad_periods_are_invalid_argument_naming_the_field() {
    let (_h, s) = start().await;
    let cases = [
        ("", "2026-12-02", "", "from_date"),
        ("2026-12-01", "2026-13-01", "", "to_date"),
        ("2026-12-02", "2026-12-02", "", "to_date"),
        ("2026-12-03", "2026-12-02", "", "to_date"),
        ("2026-12-01", "2027-01-02", "", "to_date"),
        ("2026-12-01", "2026-12-02", "EU", "currency_code"),
    ];
    for (from, to, currency, field) in cases {
        let status = reconcile(&s, from, to, currency).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{from}..{to} {currency}"
        );
        let violations = status
            .get_details_bad_request()
            .expect("BadRequest")
            .field_violations;
        assert_eq!(violations[0].field, field, "{from}..{to} {currency}");
    }
}

#[tokio::test]
async fn the_ledger_admin_refuses_bad_input_with_400() {
    let h = SimHarness::start().await;
    for body in [
        json!({"orderid": "1", "currency": "EUR", "amount": 5, "transactiontype": "Deposit"}),
        json!({"orderid": "1", "currency": "EUR", "amount": "five", "transactiontype": "Deposit"}),
        json!({"orderid": "1", "currency": "EURO", "amount": "5", "transactiontype": "Deposit"}),
        json!({"orderid": "1", "currency": "EUR", "amount": "5", "transactiontype": "Deposit",
            "datestamp": "yesterday"}),
    ] {
        let (status, answer) = h.admin_post("ledger", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let patch = reqwest::Method::PATCH;
    assert_eq!(admin(&h, patch.clone(), "ledger/1", json!({})).await.0, 400);
    assert_eq!(
        admin(&h, patch, "ledger/1", json!({"amount": "1"})).await.0,
        404
    );
    assert_eq!(h.admin_get("ledger").await, json!([]));
}

/// Scheduled runs, read from one replica process's JSON logs: the intervals it reconciled.
fn intervals_run(logs: &str) -> Vec<u64> {
    logs.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "reconciliation run")
        .filter_map(|line| line["fields"]["interval"].as_u64())
        .collect()
}

async fn metric(process: &app::Process, series: &str) -> Option<f64> {
    let url = format!("http://{}/metrics", process.ops_addr);
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn two_replicas_on_one_redis_reconcile_each_interval_once() {
    let h = SimHarness::start().await;
    let row = json!({"orderid": "7777777777", "currency": "EUR", "amount": "1.00",
        "transactiontype": "Deposit", "userid": "user-secret"});
    assert_eq!(h.admin_post("ledger", row).await.0, 201);
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let url = redis_url();
    let vars = [
        ("TRUSTLY_SIDECAR_REDIS_URL", url.as_str()),
        ("TRUSTLY_SIDECAR_REDIS_PREFIX", prefix.as_str()),
        ("TRUSTLY_SIDECAR_RECONCILE_INTERVAL", "1s"),
        ("TRUSTLY_SIDECAR_LOG_FORMAT", "json"),
    ];
    let a = app::spawn_process(&h, &vars).await;
    let b = app::spawn_process(&h, &vars).await;
    // Waits (at most a minute, for a loaded machine) until six intervals were run.
    let mut runs = (Vec::new(), Vec::new());
    for _ in 0..600 {
        runs = (intervals_run(&a.logs()), intervals_run(&b.logs()));
        if runs.0.len() + runs.1.len() >= 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (runs_a, runs_b) = runs;
    assert!(runs_a.len() + runs_b.len() >= 6, "{runs_a:?} {runs_b:?}");
    let (in_a, in_b): (BTreeSet<u64>, BTreeSet<u64>) = (
        runs_a.iter().copied().collect(),
        runs_b.iter().copied().collect(),
    );
    assert_eq!(in_a.len(), runs_a.len(), "replica A ran an interval twice");
    assert_eq!(in_b.len(), runs_b.len(), "replica B ran an interval twice");
    assert_eq!(
        in_a.intersection(&in_b).count(),
        0,
        "{in_a:?} and {in_b:?} share an interval"
    );
    for (process, runs) in [(&a, &runs_a), (&b, &runs_b)] {
        let exported = metric(process, "trustly_sidecar_reconcile_runs_total")
            .await
            .unwrap();
        assert!(
            exported >= runs.len() as f64,
            "{exported} runs exported, {} logged",
            runs.len()
        );
        let series = "trustly_sidecar_reconcile_mismatches{kind=\"amount_mismatch\"}";
        assert_eq!(
            metric(process, series).await,
            Some(0.0),
            "every kind is exported"
        );
        if !runs.is_empty() {
            let found = "trustly_sidecar_reconcile_mismatches{kind=\"ledger_row_without_order\"}";
            assert_eq!(metric(process, found).await, Some(1.0));
            let last = "trustly_sidecar_reconcile_last_run_timestamp_seconds";
            assert!(metric(process, last).await.unwrap() > 0.0);
        }
    }
    let logs = a.kill().await + &b.kill().await;
    assert!(
        logs.contains("7777777777") && !logs.contains("user-secret"),
        "identifiers only"
    );
}

#[tokio::test]
async fn a_trustly_error_from_account_ledger_maps_like_the_account_ledger_rpc() {
    let (h, s) = start().await;
    let fault = json!({"kind": "bad_signature", "method": "AccountLedger", "count": 1});
    let reason = |status: &tonic::Status| {
        let info = status.get_details_error_info().expect("ErrorInfo");
        (status.code(), info.reason, info.domain)
    };
    assert_eq!(h.admin_post("faults", fault.clone()).await.0, 201);
    let reconciled = reconcile(&s, &date(0), &date(1), "").await.unwrap_err();
    assert_eq!(h.admin_post("faults", fault).await.0, 201);
    let mut c = s.client.clone();
    let ledger = c.account_ledger(pb::AccountLedgerRequest {
        from_date: date(0),
        to_date: date(1),
        currency_code: String::new(),
    });
    let direct = ledger.await.unwrap_err();
    assert_eq!(reason(&reconciled), reason(&direct));
    assert_ne!(reconciled.code(), Code::Ok);
    assert_eq!(today(&s).await.mismatches, [], "the fault was used up");
}
