//! Measuring and cleaning the bench's keys, on a plain Redis connection.

use redis::aio::MultiplexedConnection;

/// Keys per SCAN step and per MEMORY USAGE pipeline.
const SCAN_COUNT: usize = 1000;
/// Records whose value length is sampled (`STRLEN`).
const VALUE_SAMPLE: usize = 1000;

pub async fn raw(url: &str) -> anyhow::Result<MultiplexedConnection> {
    Ok(redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?)
}

/// One SCAN step over the keys matching `pattern`: the next cursor and the keys.
async fn scan_step(
    raw: &mut MultiplexedConnection,
    cursor: u64,
    pattern: &str,
) -> anyhow::Result<(u64, Vec<String>)> {
    Ok(redis::cmd("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(SCAN_COUNT)
        .query_async(raw)
        .await?)
}

/// (keys, summed `MEMORY USAGE ... SAMPLES 0`) of every key under `prefix`.
pub async fn prefix_usage(
    raw: &mut MultiplexedConnection,
    prefix: &str,
) -> anyhow::Result<(u64, u64)> {
    let (mut keys, mut bytes, mut cursor) = (0u64, 0u64, 0u64);
    loop {
        let (next, batch) = scan_step(raw, cursor, &format!("{prefix}:*")).await?;
        if !batch.is_empty() {
            let mut pipe = redis::pipe();
            for key in &batch {
                pipe.cmd("MEMORY")
                    .arg("USAGE")
                    .arg(key)
                    .arg("SAMPLES")
                    .arg(0);
            }
            let sizes: Vec<Option<u64>> = pipe.query_async(raw).await?;
            keys += batch.len() as u64;
            bytes += sizes.into_iter().flatten().sum::<u64>();
        }
        if next == 0 {
            return Ok((keys, bytes));
        }
        cursor = next;
    }
}

/// Average `STRLEN` of up to [`VALUE_SAMPLE`] keys matching `pattern`.
pub async fn value_bytes(raw: &mut MultiplexedConnection, pattern: &str) -> anyhow::Result<f64> {
    let (mut lengths, mut cursor) = (Vec::new(), 0u64);
    while lengths.len() < VALUE_SAMPLE {
        let (next, batch) = scan_step(raw, cursor, pattern).await?;
        if !batch.is_empty() {
            let mut pipe = redis::pipe();
            for key in &batch {
                pipe.cmd("STRLEN").arg(key);
            }
            lengths.extend(pipe.query_async::<Vec<u64>>(raw).await?);
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(lengths.iter().sum::<u64>() as f64 / lengths.len().max(1) as f64)
}

pub async fn used_memory(raw: &mut MultiplexedConnection) -> anyhow::Result<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(raw).await?;
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no used_memory in INFO memory"))
}

/// Removes every key under `prefix` (SCAN + UNLINK; nothing else is touched). Returns how many.
pub async fn clean(url: &str, prefix: &str) -> anyhow::Result<u64> {
    let mut raw = raw(url).await?;
    let (mut removed, mut cursor) = (0u64, 0u64);
    loop {
        let (next, batch) = scan_step(&mut raw, cursor, &format!("{prefix}:*")).await?;
        if !batch.is_empty() {
            removed += redis::cmd("UNLINK")
                .arg(&batch)
                .query_async::<u64>(&mut raw)
                .await?;
        }
        if next == 0 {
            return Ok(removed);
        }
        cursor = next;
    }
}
