//! The alerts and the dashboard the Helm chart ships read only metrics the sidecar exports: a
//! gateway runs a flow that touches every family they use (payments, a notification delivered,
//! redelivered and dead-lettered, the balance), then every metric name in every alert expr
//! (`files/alerts.yaml`) and every dashboard query (`files/dashboard.json`) must be one of the
//! scrape's `# TYPE` lines: `_total` of a counter, `_bucket` / `_sum` / `_count` of a histogram,
//! a gauge by its name. (promtool checks and unit-tests the rules themselves: helm/test.sh.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use support::{app, sim::*};
use trustly_sidecar::pb::{self, notification_service_client::NotificationServiceClient};

const ALERTS: &str = "helm/trustly-sidecar/files/alerts.yaml";
const DASHBOARD: &str = "helm/trustly-sidecar/files/dashboard.json";

/// PromQL words that are not metrics: operators, and aggregations (which may be followed by
/// `by (...)` rather than `(`; functions are known by the `(` after them).
const KEYWORDS: [&str; 19] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
/// Keywords followed by a parenthesised list of label names, not an expression.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `expr:` of the rule file, block scalars joined into one line.
fn alert_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut exprs = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if !matches!(value, ">" | ">-" | "|" | "|-") {
            exprs.push(value.to_owned());
            continue;
        }
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || indent(l) > indent(line))
            .map(|l| l.trim())
            .collect();
        exprs.push(block.join(" "));
    }
    let alerts = lines
        .iter()
        .filter(|l| l.trim_start().starts_with("- alert:"));
    assert_eq!(
        exprs.len(),
        alerts.count(),
        "one expr per alert in {ALERTS}"
    );
    exprs
}

/// Every query of the dashboard: panel targets (rows' panels too) and query variables.
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    let mut queries = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            queries.push(variable["query"]["query"].as_str().unwrap().to_owned());
        }
    }
    queries
}

/// The metric names a PromQL expression (or Grafana's `label_values(metric, label)`) reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let expr = match expr.strip_prefix("label_values(") {
        Some(args) => args.rsplit_once(',').map_or(args, |(metric, _)| metric),
        None => expr,
    };
    let chars: Vec<char> = expr.chars().collect();
    let skip_past = |from: usize, close: char| {
        (from..chars.len())
            .find(|&j| chars[j] == close)
            .map_or(chars.len(), |j| j + 1)
    };
    let word_end = |from: usize| {
        (from..chars.len())
            .find(|&j| !(chars[j].is_ascii_alphanumeric() || matches!(chars[j], '_' | ':' | '.')))
            .unwrap_or(chars.len())
    };
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i = match c {
            // Label matchers and ranges (Grafana's variables live there too).
            '{' => skip_past(i, '}'),
            '[' => skip_past(i, ']'),
            '"' => skip_past(i + 1, '"'),
            // Numbers and durations.
            c if c.is_ascii_digit() => word_end(i),
            c if c.is_ascii_alphabetic() || c == '_' => {
                let end = word_end(i);
                let word: String = chars[i..end].iter().collect();
                let next = chars[end..].iter().find(|c| !c.is_whitespace());
                match next {
                    Some('(') if LABEL_LISTS.contains(&word.as_str()) => skip_past(end, ')'),
                    Some('(') => end, // a function
                    _ if KEYWORDS.contains(&word.as_str()) => end,
                    _ => {
                        names.insert(word);
                        end
                    }
                }
            }
            _ => i + 1,
        };
    }
    names
}

/// Whether `name` is a series of a family in the scrape's `# TYPE` lines.
fn exported(types: &HashMap<String, String>, name: &str) -> bool {
    let kind = |family: &str| types.get(family).map(String::as_str);
    let suffixed = [
        ("_total", "counter"),
        ("_bucket", "histogram"),
        ("_sum", "histogram"),
        ("_count", "histogram"),
    ];
    matches!(kind(name), Some(k) if k != "counter" && k != "histogram")
        || suffixed.iter().any(|(suffix, family_kind)| {
            name.strip_suffix(suffix)
                .is_some_and(|family| kind(family) == Some(family_kind))
        })
}

#[test]
fn promql_names_are_found_and_labels_functions_and_variables_are_not() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (method, le) (rate(a_bucket{namespace="$namespace", method!="x"}[$__rate_interval]))) / clamp_min(b_total, 1e-9) > 0 and on (group) c or vector(0) + max without (x) (e)"#,
    );
    assert_eq!(
        names,
        BTreeSet::from(["a_bucket", "b_total", "c", "e"].map(String::from))
    );
    let variable = metric_names(r#"label_values(d{namespace="$namespace"}, job)"#);
    assert_eq!(variable, BTreeSet::from(["d".to_owned()]));
}

#[tokio::test]
async fn every_metric_the_alerts_and_the_dashboard_read_is_exported() {
    let text = scrape_after_a_full_flow().await;
    let types: HashMap<String, String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect();
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let sources = [
        (ALERTS, alert_exprs(&read(ALERTS))),
        (DASHBOARD, dashboard_queries(&dashboard)),
    ];
    let mut used = BTreeSet::new();
    for (file, exprs) in &sources {
        assert!(
            exprs.len() >= 10,
            "{file}: only {} queries found",
            exprs.len()
        );
        for expr in exprs {
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{file}: no metric in {expr}");
            for name in names {
                assert!(
                    exported(&types, &name),
                    "{file}: {name} (in {expr}) is not exported; the scrape has {:?}",
                    types.keys().collect::<BTreeSet<_>>()
                );
                used.insert(name);
            }
        }
    }
    for family in [
        "trustly_sidecar_ready",
        "trustly_sidecar_dead_letters_total",
        "process_resident_memory_bytes",
    ] {
        assert!(used.contains(family), "{family} is used: {used:?}");
    }
}

/// A gateway after payments, a notification delivered, redelivered and dead-lettered, and the
/// balance polled; its `/metrics` text.
async fn scrape_after_a_full_flow() -> String {
    let h = SimHarness::start().await;
    let (vars, files) = app::vars_for(
        &h,
        &[
            ("TRUSTLY_SIDECAR_BALANCE_INTERVAL", "15m"),
            ("TRUSTLY_SIDECAR_LOW_BALANCE", "EUR=5000.00"),
            // The scheduled reconciliation exports its gauges from the start.
            ("TRUSTLY_SIDECAR_RECONCILE_INTERVAL", "1h"),
            // Never acknowledged: delivered, redelivered once, then dead-lettered.
            ("TRUSTLY_SIDECAR_ACK_DEADLINE", "200ms"),
            ("TRUSTLY_SIDECAR_MAX_DELIVERIES", "2"),
        ],
    );
    let mut sidecar = app::spawn_with_intake(vars, files).await;
    let _stream = NotificationServiceClient::new(sidecar.channel.clone())
        .stream_notifications(pb::StreamNotificationsRequest {
            consumer_group: "monitoring".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let deposit = support::requests::deposit("m-monitoring");
    let order_id = sidecar
        .client
        .deposit(deposit.clone())
        .await
        .unwrap()
        .into_inner()
        .order_id;
    sidecar.client.deposit(deposit).await.unwrap(); // replayed: idempotency
    h.act(&order_id, "complete", json!({})).await;
    let ops = sidecar.ops_addr;
    h.eventually("a dead letter and the balance", || async move {
        let text = reqwest::get(format!("http://{ops}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let has = |prefix: &str| text.lines().any(|line| line.starts_with(prefix));
        (has("trustly_sidecar_dead_letters_total{")
            && has("trustly_sidecar_stream_redeliveries_total{")
            && has("trustly_sidecar_trustly_balance_low{"))
        .then_some(text)
    })
    .await
}
