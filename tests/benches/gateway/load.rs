//! Closed-loop load and the figures it yields: each figure is the median of `--runs` measured
//! windows, every window kept for its spread.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::Mutex;

use crate::{SIDECAR_CORE, quiet};

/// Warm-up before the measured windows (connections, caches and allocator settle).
pub const WARM_UP: Duration = Duration::from_millis(500);

/// One measured window.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Stats {
    pub requests: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// p99.9: fewer than 1 000 requests in a window make it the window's maximum.
    pub p999_ms: f64,
    /// How busy the sidecar's core was during the window (0-1): near 1 at saturation, the
    /// sidecar is the limit; well below, the load core (generator, simulator, Redis) is.
    pub sidecar_core_busy: f64,
}

/// A median with the smallest and largest run beside it.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut values: Vec<f64> = values.into_iter().collect();
        values.sort_by(f64::total_cmp);
        let Some((&min, &max)) = values.first().zip(values.last()) else {
            return Self {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        };
        let middle = values.len() / 2;
        let median = if values.len() % 2 == 1 {
            values[middle]
        } else {
            (values[middle - 1] + values[middle]) / 2.0
        };
        Self { median, min, max }
    }

    /// `median [min-max]`, with `decimals` decimals.
    pub fn cell(&self, decimals: usize) -> String {
        format!(
            "{:.decimals$} [{:.decimals$}-{:.decimals$}]",
            self.median, self.min, self.max
        )
    }
}

/// A figure over several windows: each field's median across them, and every window.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Figure {
    pub median: Stats,
    pub runs: Vec<Stats>,
}

impl Figure {
    pub fn of(runs: Vec<Stats>) -> Self {
        let median = Stats {
            requests: runs.iter().map(|r| r.requests).sum(),
            errors: runs.iter().map(|r| r.errors).sum(),
            per_second: Spread::of(runs.iter().map(|r| r.per_second)).median,
            p50_ms: Spread::of(runs.iter().map(|r| r.p50_ms)).median,
            p90_ms: Spread::of(runs.iter().map(|r| r.p90_ms)).median,
            p99_ms: Spread::of(runs.iter().map(|r| r.p99_ms)).median,
            p999_ms: Spread::of(runs.iter().map(|r| r.p999_ms)).median,
            sidecar_core_busy: Spread::of(runs.iter().map(|r| r.sidecar_core_busy)).median,
        };
        Self { median, runs }
    }

    /// One field across the runs.
    pub fn spread(&self, field: impl Fn(&Stats) -> f64) -> Spread {
        Spread::of(self.runs.iter().map(field))
    }

    /// p50, p90, p99, p99.9 (medians over the runs), in ms.
    pub fn percentiles(&self) -> [f64; 4] {
        let m = &self.median;
        [m.p50_ms, m.p90_ms, m.p99_ms, m.p999_ms]
    }
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/s p50 {} ms p99 {} ms, sidecar core {:.0}% busy ({} runs, {} requests, {} errors)",
            self.spread(|s| s.per_second).cell(0),
            self.spread(|s| s.p50_ms).cell(3),
            self.spread(|s| s.p99_ms).cell(3),
            self.median.sidecar_core_busy * 100.0,
            self.runs.len(),
            self.median.requests,
            self.median.errors
        )
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

pub fn stats(mut latencies: Vec<Duration>, errors: u64, elapsed: Duration) -> Stats {
    latencies.sort();
    Stats {
        requests: latencies.len() as u64,
        errors,
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile(&latencies, 50.0),
        p90_ms: percentile(&latencies, 90.0),
        p99_ms: percentile(&latencies, 99.0),
        p999_ms: percentile(&latencies, 99.9),
        sidecar_core_busy: 0.0,
    }
}

/// `concurrency` workers call `op` back to back: a warm-up, then `--runs` windows of `window`,
/// each checked for a busy machine ([`quiet::check`]).
pub async fn measure<F, Fut>(concurrency: usize, window: Duration, op: F) -> anyhow::Result<Figure>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let op = Arc::new(op);
    let _ = closed_loop(concurrency, WARM_UP, Arc::clone(&op)).await;
    let mut runs = Vec::new();
    for _ in 0..quiet::runs() {
        let sample = quiet::Sample::now();
        let core = quiet::CoreTicks::now(SIDECAR_CORE);
        let (latencies, errors, elapsed) = closed_loop(concurrency, window, Arc::clone(&op)).await;
        let sidecar_core_busy = core.busy_until(&quiet::CoreTicks::now(SIDECAR_CORE));
        quiet::check(&sample)?;
        runs.push(Stats {
            sidecar_core_busy,
            ..stats(latencies, errors, elapsed)
        });
    }
    Ok(Figure::of(runs))
}

async fn closed_loop<F, Fut>(
    concurrency: usize,
    window: Duration,
    op: Arc<F>,
) -> (Vec<Duration>, u64, Duration)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let start = Instant::now();
    let deadline = start + window;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, counter, errors, first_error) = (
                Arc::clone(&op),
                Arc::clone(&counter),
                Arc::clone(&errors),
                Arc::clone(&first_error),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let began = Instant::now();
                    match op(i).await {
                        Ok(()) => latencies.push(began.elapsed()),
                        Err(error) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error.lock().get_or_insert(error);
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    if let Some(error) = first_error.lock().take() {
        eprintln!("   first error: {error}");
    }
    (latencies, errors.load(Ordering::Relaxed), start.elapsed())
}
