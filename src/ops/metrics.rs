//! Prometheus metrics, served on the ops port at `/metrics`. One process-wide registry: every
//! component records into [`global()`]; nothing here knows about gRPC or Redis beyond labels.
//! The sidecar's families are prefixed `trustly_sidecar_`; the standard `process_*` family keeps
//! its conventional names (`super::process`, read from `/proc` at each scrape). Every label has a
//! bounded set of values: fixed names, Trustly's methods and codes, or capped (consumer groups).

use std::{
    collections::HashSet,
    sync::{OnceLock, atomic::AtomicU64},
    time::Duration,
};

use parking_lot::Mutex;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

use super::process::ProcessCollector;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// The full service name (`trustly.v1.PaymentService`), or `unknown` for a path that is not
    /// a `trustly.v1` method.
    pub service: String,
    /// The method (`Deposit`), or `unknown`.
    pub method: String,
    /// The canonical gRPC code name: `OK`, `INVALID_ARGUMENT`, `UNAVAILABLE`, ...
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    /// The git commit built (`unknown` when built without git).
    pub revision: String,
    /// The signing backend in use (`rustcrypto`, `openssl`).
    pub backend: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrustlyLabels {
    pub method: String,
    /// `success`, `rejected_<code>` or `ambiguous`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotificationLabels {
    pub method: String,
    /// `stored`, `duplicate`, `refused_signature`, `refused_malformed`, `refused_too_large`,
    /// `unavailable` (method is empty when the body could not be parsed); for a notification
    /// that waits for a decision: `decided`, or without one in time `fallback` (answered with
    /// the accepting status) or `withheld` (answered 503 so Trustly resends).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IdempotencyLabels {
    /// `replayed`, `conflict`, `in_progress`, `resent`, `recovered`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    /// The consumer group, or [`OTHER_GROUP`] past [`MAX_GROUP_LABELS`]: build with
    /// [`Metrics::group`].
    pub group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VariantLabels {
    /// `response` or `notification`.
    pub source: String,
    /// The serializer variant's name (`booleans_title_case`, `numbers_float`, ...): a fixed set.
    pub variant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MismatchLabels {
    /// The reconciliation mismatch kind (`amount_mismatch`, ...): a fixed set of five.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CurrencyLabels {
    pub currency: String,
}

/// Distinct consumer-group label values per process. Groups are named by subscribers (any valid
/// name), so the label is capped: each consuming application uses one or two groups, and 32
/// leaves room for a large deployment while bounding every group-labelled family to 33 series.
/// Groups seen after the cap are counted together under [`OTHER_GROUP`].
pub const MAX_GROUP_LABELS: usize = 32;
/// The group label of every group past [`MAX_GROUP_LABELS`].
pub const OTHER_GROUP: &str = "other";

/// The prefix of the sidecar's own families; `process_*` keeps Prometheus' standard names.
const PREFIX: &str = "trustly_sidecar";

/// The commit this binary was built from (`build.rs`).
const REVISION: &str = env!("TRUSTLY_SIDECAR_REVISION");

/// Every metric the sidecar exports.
pub struct Metrics {
    registry: Registry,
    /// Every gRPC call of every `trustly.v1` service (recorded by the gRPC server's layer).
    pub rpc_seconds: Family<RpcLabels, Histogram>,
    pub trustly_seconds: Family<TrustlyLabels, Histogram>,
    pub signing_seconds: Histogram,
    pub notifications: Family<NotificationLabels, Counter>,
    pub deliveries: Family<GroupLabels, Counter>,
    pub redeliveries: Family<GroupLabels, Counter>,
    pub dead_letters: Family<GroupLabels, Counter>,
    pub subscribers: Gauge,
    pub idempotency: Family<IdempotencyLabels, Counter>,
    pub store_errors: Counter,
    /// Events appended but not yet delivered to a consumer group.
    pub stream_lag: Family<GroupLabels, Gauge>,
    /// Events delivered to a group and not yet acknowledged.
    pub stream_pending: Family<GroupLabels, Gauge>,
    /// The same two for the order change feed's groups (`WatchOrders`): a family of their own, so
    /// the notification families, their alerts and dashboards keep counting notifications only
    /// (a watch group may share a notification group's name).
    pub order_changes_lag: Family<GroupLabels, Gauge>,
    pub order_changes_pending: Family<GroupLabels, Gauge>,
    /// Trustly balance per currency. Prometheus values are floats; the exact decimal is in logs
    /// and the Balance RPC, and the low-balance flag is computed on the decimal.
    pub balance: Family<CurrencyLabels, Gauge<f64, AtomicU64>>,
    /// 1 when the balance is under its configured threshold.
    pub balance_low: Family<CurrencyLabels, Gauge>,
    /// Incoming messages whose signature verified only under a client serializer variant.
    pub signature_variants: Family<VariantLabels, Counter>,
    /// 1 while `/readyz` answers ready.
    pub ready: Gauge,
    /// Mismatches of the last scheduled reconciliation this replica ran, by kind.
    pub reconcile_mismatches_by_kind: Family<MismatchLabels, Gauge>,
    /// When this replica last finished a scheduled reconciliation (Unix seconds).
    pub reconcile_last_run_seconds: Gauge,
    /// Scheduled reconciliations this replica ran.
    pub reconcile_runs: Counter,
    /// Scheduled reconciliations that failed (AccountLedger, the store, a bound).
    pub reconcile_failures: Counter,
    /// 1, labelled with the version, the commit and the signing backend.
    pub build_info: Family<BuildLabels, Gauge>,
    /// The consumer groups that have a label of their own.
    groups: Mutex<HashSet<String>>,
}

/// Latency buckets from 1 ms to ~33 s: RSA signing is milliseconds, Trustly calls up to the
/// 30 s timeout.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Registers each metric (a clone: they share their values) under its name and help text.
macro_rules! register {
    ($registry:expr, $($metric:expr => $name:literal, $help:literal;)+) => {
        $($registry.register($name, $help, $metric.clone());)+
    };
}

impl Metrics {
    fn new() -> Self {
        let metrics = Self {
            rpc_seconds: Family::new_with_constructor(latency),
            trustly_seconds: Family::new_with_constructor(latency),
            signing_seconds: latency(),
            notifications: Family::default(),
            deliveries: Family::default(),
            redeliveries: Family::default(),
            dead_letters: Family::default(),
            subscribers: Gauge::default(),
            idempotency: Family::default(),
            store_errors: Counter::default(),
            stream_lag: Family::default(),
            stream_pending: Family::default(),
            order_changes_lag: Family::default(),
            order_changes_pending: Family::default(),
            balance: Family::default(),
            balance_low: Family::default(),
            signature_variants: Family::default(),
            ready: Gauge::default(),
            reconcile_mismatches_by_kind: Family::default(),
            reconcile_last_run_seconds: Gauge::default(),
            reconcile_runs: Counter::default(),
            reconcile_failures: Counter::default(),
            build_info: Family::default(),
            groups: Mutex::default(),
            registry: Registry::default(),
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        let own = registry.sub_registry_with_prefix(PREFIX);
        metrics.register_calls(own);
        metrics.register_notifications(own);
        metrics.register_reconciliation(own);
        Self {
            registry,
            ..metrics
        }
    }

    /// The gRPC API, Trustly calls, the stores and the process.
    fn register_calls(&self, registry: &mut Registry) {
        register!(registry,
            self.rpc_seconds => "rpc_seconds",
                "gRPC calls by service, method and canonical status code";
            self.trustly_seconds => "trustly_call_seconds",
                "Trustly JSON-RPC calls by method and outcome";
            self.signing_seconds => "signing_seconds",
                "RSA signing time per request";
            self.idempotency => "idempotency",
                "Idempotency decisions other than a first call";
            self.store_errors => "store_errors",
                "Failed Redis (or store) calls";
            self.balance => "trustly_balance",
                "Merchant balance at Trustly by currency (from Balance calls)";
            self.balance_low => "trustly_balance_low",
                "1 when the balance is under its configured low-balance threshold";
            self.signature_variants => "signature_variants",
                "Incoming messages whose signature verified only under a known client serializer variant (spec 3.3)";
            self.ready => "ready",
                "1 while /readyz answers ready (serving, the store answering), else 0";
            self.build_info => "build_info",
                "1, labelled with the version, the git revision and the signing backend";
        );
    }

    /// Notification intake and delivery.
    fn register_notifications(&self, registry: &mut Registry) {
        register!(registry,
            self.notifications => "notifications",
                "Notifications received, by method and outcome";
            self.deliveries => "stream_deliveries",
                "Events handed to subscribers, by consumer group";
            self.redeliveries => "stream_redeliveries",
                "Events delivered again after the ack deadline, by consumer group";
            self.dead_letters => "dead_letters",
                "Events moved to a dead-letter list, by consumer group";
            self.subscribers => "stream_subscribers",
                "Open notification streams";
            self.stream_lag => "stream_lag",
                "Events appended but not yet delivered to the consumer group";
            self.stream_pending => "stream_pending",
                "Events delivered to the consumer group and not yet acknowledged";
            self.order_changes_lag => "order_changes_lag",
                "Order changes appended but not yet delivered to the WatchOrders consumer group";
            self.order_changes_pending => "order_changes_pending",
                "Order changes delivered to the WatchOrders consumer group and not yet acknowledged";
        );
    }

    /// The scheduled reconciliation (`orders::schedule`).
    fn register_reconciliation(&self, registry: &mut Registry) {
        register!(registry,
            self.reconcile_mismatches_by_kind => "reconcile_mismatches",
                "Mismatches between orders and Trustly's AccountLedger found by this replica's last scheduled reconciliation, by kind";
            self.reconcile_last_run_seconds => "reconcile_last_run_timestamp_seconds",
                "When this replica last finished a scheduled reconciliation (Unix seconds)";
            self.reconcile_runs => "reconcile_runs",
                "Scheduled reconciliations this replica ran (one replica per interval fleet-wide)";
            self.reconcile_failures => "reconcile_failures",
                "Scheduled reconciliations that failed or could not take their turn";
        );
    }

    /// Sets the mismatch gauge of one kind.
    pub fn reconcile_mismatches(&self, kind: &str, count: i64) {
        self.reconcile_mismatches_by_kind
            .get_or_create(&MismatchLabels {
                kind: kind.to_owned(),
            })
            .set(count);
    }

    /// Records when a scheduled reconciliation finished.
    pub fn reconcile_last_run(&self, unix_seconds: u64) {
        self.reconcile_last_run_seconds
            .set(i64::try_from(unix_seconds).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// One finished RPC; `code` is the canonical name of its status code.
    pub fn rpc(&self, service: &str, method: &str, code: &str, elapsed: Duration) {
        let labels = RpcLabels {
            service: service.to_owned(),
            method: method.to_owned(),
            code: code.to_owned(),
        };
        self.rpc_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn trustly(&self, method: &str, outcome: String, elapsed: Duration) {
        let labels = TrustlyLabels {
            method: method.to_owned(),
            outcome,
        };
        self.trustly_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn notification(&self, method: &str, outcome: &str) {
        let labels = NotificationLabels {
            method: method.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.notifications.get_or_create(&labels).inc();
    }

    /// Counts a message verified under a serializer variant; true the first time this process
    /// sees that (source, variant), so the caller logs it once.
    pub fn signature_variant(&self, source: &str, variant: &str) -> bool {
        let labels = VariantLabels {
            source: source.to_owned(),
            variant: variant.to_owned(),
        };
        self.signature_variants.get_or_create(&labels).inc() == 0
    }

    pub fn idempotency(&self, result: &str) {
        self.idempotency
            .get_or_create(&IdempotencyLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// The labels of `group`: its own name for the first [`MAX_GROUP_LABELS`] groups this
    /// process sees, [`OTHER_GROUP`] after that.
    pub fn group(&self, group: &str) -> GroupLabels {
        let mut named = self.groups.lock();
        let own = named.contains(group)
            || (named.len() < MAX_GROUP_LABELS && named.insert(group.to_owned()));
        GroupLabels {
            group: if own { group } else { OTHER_GROUP }.to_owned(),
        }
    }

    /// One event handed to a subscriber of `group`.
    pub fn delivered(&self, group: &str, redelivery: bool) {
        let labels = self.group(group);
        self.deliveries.get_or_create(&labels).inc();
        if redelivery {
            self.redeliveries.get_or_create(&labels).inc();
        }
    }

    /// One event of `group` moved to its dead letters.
    pub fn dead_lettered(&self, group: &str) {
        self.dead_letters.get_or_create(&self.group(group)).inc();
    }

    /// Records the readiness just decided.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// Sets `build_info` for the signing backend in use (the one series: a previous one is
    /// removed).
    pub fn set_build_info(&self, backend: &str) {
        self.build_info.clear();
        let labels = BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            revision: REVISION.to_owned(),
            backend: backend.to_owned(),
        };
        self.build_info.get_or_create(&labels).set(1);
    }
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_past_the_cap_share_one_label() {
        let metrics = Metrics::new();
        for i in 0..MAX_GROUP_LABELS {
            assert_eq!(metrics.group(&format!("g{i}")).group, format!("g{i}"));
        }
        assert_eq!(metrics.group("one-too-many").group, OTHER_GROUP);
        assert_eq!(
            metrics.group("g0").group,
            "g0",
            "a named group keeps its label"
        );
    }

    #[test]
    fn the_exposition_has_the_prefixed_families_and_process_without_prefix() {
        let metrics = Metrics::new();
        metrics.set_build_info("rustcrypto");
        let text = metrics.encode();
        assert!(text.contains("# TYPE trustly_sidecar_ready gauge"));
        assert!(text.contains("trustly_sidecar_build_info{version=\""));
        assert!(text.contains("backend=\"rustcrypto\"} 1"));
        if cfg!(target_os = "linux") {
            assert!(text.contains("# TYPE process_resident_memory_bytes gauge"));
            assert!(!text.contains("trustly_sidecar_process_"));
        }
    }
}
