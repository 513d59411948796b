//! The standard `process_*` metrics, under Prometheus' conventional names (no `trustly_sidecar_`
//! prefix), read from `/proc/self` at each scrape. Linux only: where `/proc` is absent, or a
//! file cannot be read or parsed, that metric is left out rather than exported wrong.

use std::fmt;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

/// Clock ticks per second of the times in `/proc/<pid>/stat`. The kernel reports them in
/// `USER_HZ`, which is 100 on every architecture Linux supports (Prometheus' own procfs reader
/// assumes the same); asking `sysconf(_SC_CLK_TCK)` would take `unsafe` FFI for a constant.
const USER_HZ: f64 = 100.0;

/// Reads `/proc/self` on every scrape.
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let stat = read("/proc/self/stat").and_then(|text| Stat::parse(&text));
        if let Some(rss) = read("/proc/self/status").and_then(|text| resident_bytes(&text)) {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                rss,
            )?;
        }
        if let Some(stat) = &stat {
            let cpu = ConstCounter::new((stat.utime + stat.stime) as f64 / USER_HZ);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                cpu.metric_type(),
            )?)?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            let open = i64::try_from(fds.count()).unwrap_or(i64::MAX);
            gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                open,
            )?;
        }
        if let Some(max) = read("/proc/self/limits").and_then(|text| max_fds(&text)) {
            gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors",
                max,
            )?;
        }
        let boot = read("/proc/stat").and_then(|text| boot_time(&text));
        if let (Some(stat), Some(boot)) = (&stat, boot) {
            let started = boot as f64 + stat.starttime as f64 / USER_HZ;
            gauge(
                &mut encoder,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                started,
            )?;
        }
        Ok(())
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn gauge<N: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: N,
) -> fmt::Result {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

/// The fields of `/proc/self/stat` used here, in clock ticks.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    utime: u64,
    stime: u64,
    /// Since boot.
    starttime: u64,
}

impl Stat {
    /// `pid (comm) state ppid ...`: the command may hold spaces and parentheses, so fields are
    /// counted after the last `)`; there, field 3 (state) is the first.
    fn parse(text: &str) -> Option<Self> {
        let (_, after_comm) = text.rsplit_once(')')?;
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let field = |number: usize| fields.get(number - 3)?.parse().ok();
        Some(Self {
            utime: field(14)?,
            stime: field(15)?,
            starttime: field(22)?,
        })
    }
}

/// `VmRSS:  1234 kB` in `/proc/self/status`, in bytes.
fn resident_bytes(status: &str) -> Option<i64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The soft limit of `Max open files` in `/proc/self/limits` (absent when unlimited).
fn max_fds(limits: &str) -> Option<i64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `btime` in `/proc/stat`: the boot time, in seconds since the epoch.
fn boot_time(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|line| line.starts_with("btime "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let stat = "4242 (trustly (side) car) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 130 0 0 20 0 9 0 1234567 123456789 4000 18446744073709551615";
        assert_eq!(
            Stat::parse(stat),
            Some(Stat {
                utime: 250,
                stime: 130,
                starttime: 1234567,
            })
        );
        assert_eq!(Stat::parse("4242 (truncated) S 1"), None);
        let status = "Name:\ttrustly-sidecar\nVmPeak:\t  90000 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(resident_bytes(status), Some(20480 * 1024));
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_fds(limits), Some(1024));
        assert_eq!(
            max_fds("Max open files            unlimited            unlimited            files"),
            None
        );
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
    }
}
