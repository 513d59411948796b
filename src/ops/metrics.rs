//! Prometheus metrics, served on the ops port at `/metrics`. One process-wide registry: every
//! component records into [`global()`]; nothing here knows about gRPC or Redis beyond labels.

use std::{
    sync::{OnceLock, atomic::AtomicU64},
    time::Duration,
};

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub rpc: String,
    pub code: String,
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
    /// `unavailable` (method is empty when the body could not be parsed).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IdempotencyLabels {
    /// `replayed`, `conflict`, `in_progress`, `resent`, `recovered`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    /// The consumer group.
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
pub struct CurrencyLabels {
    pub currency: String,
}

/// Every metric the sidecar exports.
pub struct Metrics {
    registry: Registry,
    pub rpc_seconds: Family<RpcLabels, Histogram>,
    pub trustly_seconds: Family<TrustlyLabels, Histogram>,
    pub signing_seconds: Histogram,
    pub notifications: Family<NotificationLabels, Counter>,
    pub deliveries: Counter,
    pub redeliveries: Counter,
    pub dead_letters: Counter,
    pub subscribers: Gauge,
    pub idempotency: Family<IdempotencyLabels, Counter>,
    pub store_errors: Counter,
    /// Events appended but not yet delivered to a consumer group.
    pub stream_lag: Family<GroupLabels, Gauge>,
    /// Events delivered to a group and not yet acknowledged.
    pub stream_pending: Family<GroupLabels, Gauge>,
    /// Trustly balance per currency. Prometheus values are floats; the exact decimal is in logs
    /// and the Balance RPC, and the low-balance flag is computed on the decimal.
    pub balance: Family<CurrencyLabels, Gauge<f64, AtomicU64>>,
    /// 1 when the balance is under its configured threshold.
    pub balance_low: Family<CurrencyLabels, Gauge>,
    /// Incoming messages whose signature verified only under a client serializer variant.
    pub signature_variants: Family<VariantLabels, Counter>,
}

/// Latency buckets from 1 ms to ~33 s: RSA signing is milliseconds, Trustly calls up to the
/// 30 s timeout.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("trustly_sidecar");
        let metrics = Self {
            rpc_seconds: Family::new_with_constructor(latency),
            trustly_seconds: Family::new_with_constructor(latency),
            signing_seconds: latency(),
            notifications: Family::default(),
            deliveries: Counter::default(),
            redeliveries: Counter::default(),
            dead_letters: Counter::default(),
            subscribers: Gauge::default(),
            idempotency: Family::default(),
            store_errors: Counter::default(),
            stream_lag: Family::default(),
            stream_pending: Family::default(),
            balance: Family::default(),
            balance_low: Family::default(),
            signature_variants: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "rpc_seconds",
            "gRPC calls by RPC and status code",
            metrics.rpc_seconds.clone(),
        );
        registry.register(
            "trustly_call_seconds",
            "Trustly JSON-RPC calls by method and outcome",
            metrics.trustly_seconds.clone(),
        );
        registry.register(
            "signing_seconds",
            "RSA signing time per request",
            metrics.signing_seconds.clone(),
        );
        registry.register(
            "notifications",
            "Notifications received, by method and outcome",
            metrics.notifications.clone(),
        );
        registry.register(
            "stream_deliveries",
            "Events handed to subscribers",
            metrics.deliveries.clone(),
        );
        registry.register(
            "stream_redeliveries",
            "Events delivered again after the ack deadline",
            metrics.redeliveries.clone(),
        );
        registry.register(
            "dead_letters",
            "Events moved to a dead-letter list",
            metrics.dead_letters.clone(),
        );
        registry.register(
            "stream_subscribers",
            "Open notification streams",
            metrics.subscribers.clone(),
        );
        registry.register(
            "idempotency",
            "Idempotency decisions other than a first call",
            metrics.idempotency.clone(),
        );
        registry.register(
            "store_errors",
            "Failed Redis (or store) calls",
            metrics.store_errors.clone(),
        );
        registry.register(
            "stream_lag",
            "Events appended but not yet delivered to the consumer group",
            metrics.stream_lag.clone(),
        );
        registry.register(
            "stream_pending",
            "Events delivered to the consumer group and not yet acknowledged",
            metrics.stream_pending.clone(),
        );
        registry.register(
            "trustly_balance",
            "Merchant balance at Trustly by currency (from Balance calls)",
            metrics.balance.clone(),
        );
        registry.register(
            "trustly_balance_low",
            "1 when the balance is under its configured low-balance threshold",
            metrics.balance_low.clone(),
        );
        registry.register(
            "signature_variants",
            "Incoming messages whose signature verified only under a known client serializer variant (spec 3.3)",
            metrics.signature_variants.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// One finished RPC; `code` is the status code's label (the gRPC adapter names it).
    pub fn rpc(&self, rpc: &str, code: &str, elapsed: Duration) {
        let labels = RpcLabels {
            rpc: rpc.to_owned(),
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
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}
