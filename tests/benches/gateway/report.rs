//! What the benchmark prints and writes: a table per backend (each figure the median of the
//! runs, their range in brackets), the sidecar against the in-process client, the issue's
//! targets, and the JSON document.

use std::{path::Path, time::Duration};

use serde_json::{Value, json};
use trustly_sidecar::trustly::sign::Backend;

use crate::{
    HIGH_CONCURRENCY, INTAKE_CONNECTIONS, LOAD_CORE, NOTIFICATION_RATE, SIDECAR_CORE,
    load::{Figure, Spread, Stats},
    notify::NotificationFigures,
    procs::Store,
};

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct MemoryFigures {
    pub idle_kib: u64,
    pub peak_kib: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct Run {
    pub store: Store,
    pub concurrency: usize,
    pub figure: Figure,
}

#[derive(Debug)]
pub struct BackendReport {
    pub backend: Backend,
    /// Signs per second on one core.
    pub ceiling: Spread,
    pub direct_c1: Figure,
    /// The in-process client by concurrency (1 and HIGH_CONCURRENCY).
    pub in_process: Vec<(usize, Figure)>,
    pub runs: Vec<Run>,
    pub notifications: NotificationFigures,
    pub memory: MemoryFigures,
}

/// About the whole run, printed and written with it.
pub struct Meta {
    pub pinned: bool,
    pub window: Duration,
    pub runs: usize,
    /// `git rev-parse --short HEAD`, `-dirty` with uncommitted changes.
    pub commit: String,
    /// UTC, YYYY-MM-DD.
    pub date: String,
    /// Why the figures mean little (`--force` on a busy machine); empty: reliable.
    pub unreliable: Vec<String>,
}

impl Meta {
    /// The title line of the table and the picture.
    pub fn title(&self) -> String {
        format!(
            "gateway benchmark, commit {}, {}: median of {} runs of {} s{}{}",
            self.commit,
            self.date,
            self.runs,
            self.window.as_secs_f64(),
            if self.pinned { "" } else { ", NOT PINNED" },
            if self.unreliable.is_empty() {
                ""
            } else {
                ", UNRELIABLE (busy machine, --force)"
            }
        )
    }
}

impl BackendReport {
    fn run(&self, store: Store, concurrency: usize) -> &Stats {
        &self.figure(store, concurrency).median
    }

    fn figure(&self, store: Store, concurrency: usize) -> &Figure {
        &self
            .runs
            .iter()
            .find(|r| r.store == store && r.concurrency == concurrency)
            .expect("measured")
            .figure
    }

    fn in_process(&self, concurrency: usize) -> &Figure {
        &self
            .in_process
            .iter()
            .find(|(c, _)| *c == concurrency)
            .expect("measured")
            .1
    }

    /// Every measured path as (name, figure, whether its latency adds to the direct client's).
    pub fn paths(&self) -> Vec<(String, &Figure, bool)> {
        let mut paths = vec![(
            "direct client -> simulator, c=1".to_owned(),
            &self.direct_c1,
            false,
        )];
        for (concurrency, figure) in &self.in_process {
            paths.push((format!("in-process client, c={concurrency}"), figure, false));
        }
        for run in &self.runs {
            paths.push((
                format!("sidecar gRPC ({:?}), c={}", run.store, run.concurrency),
                &run.figure,
                run.concurrency == 1,
            ));
        }
        let n = &self.notifications;
        paths.push((
            format!("intake (Redis), {INTAKE_CONNECTIONS} connections"),
            &n.intake,
            false,
        ));
        paths.push((
            format!("intake -> subscriber, {NOTIFICATION_RATE}/s"),
            &n.delivery,
            false,
        ));
        paths.push((
            format!("intake A -> subscriber B, {NOTIFICATION_RATE}/s"),
            &n.cross_replica,
            false,
        ));
        paths
    }

    /// The sidecar against the in-process client at the same concurrency, as (name, throughput
    /// ratio, p50 ratio, p99 ratio), each sidecar / in-process over the medians.
    pub fn ratios(&self) -> Vec<(String, f64, f64, f64)> {
        let mut ratios = Vec::new();
        for concurrency in [1, HIGH_CONCURRENCY] {
            let app = &self.in_process(concurrency).median;
            for store in [Store::Memory, Store::Redis] {
                let sidecar = self.run(store, concurrency);
                ratios.push((
                    format!("{store:?}, c={concurrency}"),
                    sidecar.per_second / app.per_second,
                    sidecar.p50_ms / app.p50_ms,
                    sidecar.p99_ms / app.p99_ms,
                ));
            }
        }
        ratios
    }
}

/// Each target of the issue, as (name, measured, target, met).
pub fn targets(r: &BackendReport) -> Vec<(String, String, String, bool)> {
    let mut rows = Vec::new();
    for store in [Store::Memory, Store::Redis] {
        let c64 = r.run(store, HIGH_CONCURRENCY);
        let share = c64.per_second / r.ceiling.median;
        rows.push((
            format!("{store:?}: c={HIGH_CONCURRENCY} throughput / ceiling"),
            format!("{:.1}%", share * 100.0),
            ">= 90%".to_owned(),
            share >= 0.90,
        ));
        let c1 = r.run(store, 1);
        let added_p50 = c1.p50_ms - r.direct_c1.median.p50_ms;
        let added_p99 = c1.p99_ms - r.direct_c1.median.p99_ms;
        rows.push((
            format!("{store:?}: c=1 added latency p50"),
            format!("{added_p50:.3} ms"),
            "<= 0.3 ms".to_owned(),
            added_p50 <= 0.3,
        ));
        rows.push((
            format!("{store:?}: c=1 added latency p99"),
            format!("{added_p99:.3} ms"),
            "<= 1 ms".to_owned(),
            added_p99 <= 1.0,
        ));
    }
    let intake_share = r.notifications.intake.median.per_second / r.ceiling.median;
    rows.push((
        "intake throughput / ceiling".into(),
        format!("{:.1}%", intake_share * 100.0),
        ">= 80%".into(),
        intake_share >= 0.80,
    ));
    rows.push((
        format!("intake -> subscriber p99 at {NOTIFICATION_RATE}/s"),
        format!("{:.3} ms", r.notifications.delivery.median.p99_ms),
        "<= 5 ms".into(),
        r.notifications.delivery.median.p99_ms <= 5.0,
    ));
    rows.push((
        format!("intake -> other replica's subscriber p99 at {NOTIFICATION_RATE}/s"),
        format!("{:.3} ms", r.notifications.cross_replica.median.p99_ms),
        "<= 5 ms".into(),
        r.notifications.cross_replica.median.p99_ms <= 5.0,
    ));
    rows.push((
        "RSS idle".into(),
        format!("{:.1} MB", r.memory.idle_kib as f64 / 1024.0),
        "<= 30 MB".into(),
        r.memory.idle_kib <= 30 * 1024,
    ));
    rows.push((
        "RSS peak under load".into(),
        format!("{:.1} MB", r.memory.peak_kib as f64 / 1024.0),
        "<= 80 MB".into(),
        r.memory.peak_kib <= 80 * 1024,
    ));
    rows
}

pub fn print_table(report: &[BackendReport], meta: &Meta) {
    println!();
    println!("{}", meta.title());
    println!(
        "sidecar (and in-process client) on core {SIDECAR_CORE}, simulator + load on core \
         {LOAD_CORE}; each figure: median [min-max] of the runs; core{SIDECAR_CORE}: how busy \
         core {SIDECAR_CORE} was (near 100%: the sidecar or in-process client is the limit; well \
         below: the load core is)"
    );
    if let Some(first) = meta.unreliable.first() {
        println!(
            "UNRELIABLE (--force): {} problems (every one is in the JSON); the first: {first}",
            meta.unreliable.len()
        );
    }
    for r in report {
        println!();
        println!(
            "backend {} — one-core signing ceiling {} signs/s",
            r.backend,
            r.ceiling.cell(0)
        );
        println!(
            "{:<34} {:>18} {:>24} {:>24} {:>8} {:>9} {:>9} {:>6}",
            "path",
            "req/s",
            "p50 ms",
            "p99 ms",
            "ceiling",
            "+p50 ms",
            "+p99 ms",
            format!("core{SIDECAR_CORE}")
        );
        for (name, figure, added) in r.paths() {
            let s = &figure.median;
            let (p50, p99) = if added {
                (
                    format!("{:+.3}", s.p50_ms - r.direct_c1.median.p50_ms),
                    format!("{:+.3}", s.p99_ms - r.direct_c1.median.p99_ms),
                )
            } else {
                (String::new(), String::new())
            };
            println!(
                "{name:<34} {:>18} {:>24} {:>24} {:>7.1}% {p50:>9} {p99:>9} {:>5.0}%",
                figure.spread(|s| s.per_second).cell(0),
                figure.spread(|s| s.p50_ms).cell(3),
                figure.spread(|s| s.p99_ms).cell(3),
                s.per_second / r.ceiling.median * 100.0,
                s.sidecar_core_busy * 100.0
            );
        }
        println!(
            "RSS idle {:.1} MB, peak under load {:.1} MB",
            r.memory.idle_kib as f64 / 1024.0,
            r.memory.peak_kib as f64 / 1024.0
        );
        println!("sidecar / in-process client (medians; throughput > 1: sidecar faster):");
        for (name, throughput, p50, p99) in r.ratios() {
            println!("  {name:<14} throughput {throughput:.2}x  p50 {p50:.2}x  p99 {p99:.2}x");
        }
        println!("targets:");
        for (name, measured, target, met) in targets(r) {
            println!(
                "  {} {name:<44} {measured:>10}  (target {target})",
                if met { "met   " } else { "MISSED" }
            );
        }
    }
}

pub fn write_json(path: &Path, report: &[BackendReport], meta: &Meta) -> anyhow::Result<()> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let backends: Vec<Value> = report
        .iter()
        .map(|r| {
            json!({
                "backend": r.backend.to_string(),
                "ceiling_signs_per_second": r.ceiling,
                "direct_c1": r.direct_c1,
                "in_process": r.in_process.iter().map(|(concurrency, figure)| {
                    json!({"concurrency": concurrency, "figure": figure})
                }).collect::<Vec<_>>(),
                "sidecar": r.runs,
                "notifications": r.notifications,
                "memory_kib": r.memory,
                "sidecar_over_in_process": r.ratios().into_iter().map(|(name, t, p50, p99)| {
                    json!({"name": name, "throughput": t, "p50": p50, "p99": p99})
                }).collect::<Vec<_>>(),
                "targets": targets(r).into_iter().map(|(name, measured, target, met)| {
                    json!({"name": name, "measured": measured, "target": target, "met": met})
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let document = json!({
        "commit": meta.commit,
        "date": meta.date,
        "cpu": cpu,
        "pinned": meta.pinned,
        "seconds_per_run": meta.window.as_secs_f64(),
        "runs": meta.runs,
        "reliable": meta.unreliable.is_empty(),
        "unreliable_because": meta.unreliable,
        "backends": backends,
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&document)?)?;
    Ok(())
}
