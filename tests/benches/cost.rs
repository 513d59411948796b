//! Cost benchmark: what the work costs as it grows (issue 17, part 4).
//!
//! ```text
//! cargo bench --bench cost [-- N]
//! ```
//!
//! 1. Redis bytes per record, against the Redis at `COST_BENCH_REDIS_URL` (default
//!    `redis://127.0.0.1:6379`) under a fresh key prefix, removed at the end (SCAN + UNLINK on
//!    that prefix only). N (default 100 000) of each, written through the code paths the sidecar
//!    uses, 64 at a time:
//!    - idempotency records: `Idempotency::begin` + `finish` of a signed AccountPayout and its
//!      answer (what the payments engine does for one call);
//!    - stored notifications: `Log::record` of a signed `credit` with its signed reply;
//!    - orders: a Deposit RPC fact, a `pending` and a `credit` fact through `OrderBook::record`
//!      (which also appends to the order change feed).
//!
//!    Bytes are the sum of `MEMORY USAGE <key> SAMPLES 0` over every key of the prefix (streams
//!    and indexes included) after each family, minus the sum before it; the `used_memory` delta
//!    of `INFO memory` is printed too (it also counts the expiry table, but on a shared Redis it
//!    moves with other clients' keys).
//! 2. The sidecar binary's RSS (`VmRSS`) with 1 000 open StreamNotifications streams, 10 per
//!    consumer group over 100 groups, opened over 10 HTTP/2 channels, once with the memory store
//!    and once with Redis. Every stream is established when it has had its first heartbeat.
//!
//! Signing 300 000 RSA signatures would dominate the run, so 32 requests (and notifications and
//! replies) are signed and each record reuses one with its own MessageID, UUID and notification
//! id substituted (same lengths): the stored bytes are those of real signed messages.
//!
//! Prints a table and a JSON line, and saves both to `tests/benches/results/cost-<date>.*`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failed setup is a crash

#[path = "cost/records.rs"]
mod records;
#[path = "shared/rss.rs"]
mod rss;
#[path = "cost/streams.rs"]
mod streams;
#[path = "cost/usage.rs"]
mod usage;

use std::{fmt::Write as _, path::PathBuf, time::Instant};

use serde_json::json;

/// Records of each family unless an argument says otherwise (issue 17 asks for 100 000).
const DEFAULT_RECORDS: usize = 100_000;
/// The shared Redis of the development machine; `COST_BENCH_REDIS_URL` names another.
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(DEFAULT_RECORDS);
    let redis_url =
        std::env::var("COST_BENCH_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(n, &redis_url))
}

async fn run(n: usize, redis_url: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let prefix = format!("cost-bench-{}", uuid::Uuid::new_v4().simple());
    let measured = measure(n, redis_url, &prefix).await;
    // Whatever happened, nothing of the prefix stays behind.
    let cleaned = usage::clean(redis_url, &prefix).await?;
    eprintln!("   removed {cleaned} keys under {prefix}");
    let (families, rss) = measured?;
    report(n, redis_url, &families, &rss, started.elapsed().as_secs())
}

async fn measure(
    n: usize,
    redis_url: &str,
    prefix: &str,
) -> anyhow::Result<(Vec<records::Family>, Vec<streams::Rss>)> {
    eprintln!("== Redis bytes per record: {n} of each, prefix {prefix}");
    let families = records::measure(redis_url, prefix, n).await?;
    eprintln!("== RSS with {} streams", streams::STREAMS);
    let mut rss = Vec::new();
    for store in [streams::Store::Memory, streams::Store::Redis] {
        let figure = streams::measure(store, redis_url, &format!("{prefix}:rss")).await?;
        eprintln!("   {store:?}: {figure:?}");
        rss.push(figure);
    }
    Ok((families, rss))
}

/// Prints the table and the JSON line, and saves both under `tests/benches/results`.
fn report(
    n: usize,
    redis_url: &str,
    families: &[records::Family],
    rss: &[streams::Rss],
    seconds: u64,
) -> anyhow::Result<()> {
    let summary = summary(n, redis_url, families, rss, seconds);
    let text = format!("{}{summary}\n", table(n, redis_url, families, rss)?);
    print!("{text}");
    let date = std::process::Command::new("date")
        .args(["-u", "+%F"])
        .output()?
        .stdout;
    let date = String::from_utf8_lossy(&date).trim().to_owned();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/benches/results");
    std::fs::write(dir.join(format!("cost-{date}.txt")), &text)?;
    std::fs::write(
        dir.join(format!("cost-{date}.json")),
        serde_json::to_string_pretty(&summary)? + "\n",
    )?;
    eprintln!("wrote {}/cost-{date}.{{txt,json}}", dir.display());
    Ok(())
}

fn table(
    n: usize,
    redis_url: &str,
    families: &[records::Family],
    rss: &[streams::Rss],
) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    // Sizes do not depend on load; the load is printed so RSS readings can be judged.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("unknown");
    writeln!(
        text,
        "cost benchmark: {n} records of each family; Redis {redis_url}; \
         1-minute load average {load} at the end"
    )?;
    writeln!(
        text,
        "Redis bytes: delta of the sum of MEMORY USAGE (SAMPLES 0) over every key of the prefix; \
         INFO used_memory delta alongside"
    )?;
    writeln!(
        text,
        "{:<28} {:>8} {:>8} {:>14} {:>16} {:>12}",
        "family", "records", "keys", "bytes/record", "used_memory/rec", "value bytes"
    )?;
    for f in families {
        writeln!(
            text,
            "{:<28} {:>8} {:>8} {:>14.0} {:>16.0} {:>12}",
            f.name,
            f.records,
            f.keys,
            f.bytes as f64 / f.records as f64,
            f.used_memory as f64 / f.records as f64,
            f.value_bytes
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.0}")),
        )?;
    }
    writeln!(
        text,
        "sidecar RSS with {} StreamNotifications streams ({} groups x {}, {} channels):",
        streams::STREAMS,
        streams::GROUPS,
        streams::STREAMS / streams::GROUPS,
        streams::CHANNELS
    )?;
    for r in rss {
        writeln!(
            text,
            "  {:<6} idle {:>6.1} MB  with streams {:>6.1} MB  (subscribers gauge {})",
            format!("{:?}", r.store),
            r.idle_kib as f64 / 1024.0,
            r.streams_kib as f64 / 1024.0,
            r.subscribers
        )?;
    }
    Ok(text)
}

fn summary(
    n: usize,
    redis_url: &str,
    families: &[records::Family],
    rss: &[streams::Rss],
    seconds: u64,
) -> serde_json::Value {
    json!({
        "records": n,
        "redis": redis_url,
        "method": "sum of MEMORY USAGE SAMPLES 0 over the prefix's keys, before/after each family",
        "families": families.iter().map(|f| json!({
            "name": f.name,
            "records": f.records,
            "keys": f.keys,
            "bytes_per_record": (f.bytes as f64 / f.records as f64).round(),
            "used_memory_per_record": (f.used_memory as f64 / f.records as f64).round(),
            "value_bytes_per_record": f.value_bytes.map(f64::round),
        })).collect::<Vec<_>>(),
        "rss": rss.iter().map(|r| json!({
            "store": format!("{:?}", r.store).to_lowercase(),
            "streams": streams::STREAMS,
            "groups": streams::GROUPS,
            "idle_mb": (r.idle_kib as f64 / 102.4).round() / 10.0,
            "with_streams_mb": (r.streams_kib as f64 / 102.4).round() / 10.0,
            "subscribers_gauge": r.subscribers,
        })).collect::<Vec<_>>(),
        "seconds": seconds,
    })
}
