//! Is the machine quiet enough for the figures to mean something? Before measuring, and after
//! every measured window, the benchmark looks at the 1-minute load average (minus the load it
//! makes itself), at the CPU time other processes took during the window (`/proc/stat` minus this
//! process and its children) and at steal time (another guest on the host). Beyond a threshold it
//! refuses to report, or with `--force` carries on and marks the output UNRELIABLE.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use parking_lot::Mutex;

/// Most the 1-minute load average may exceed the benchmark's own before it starts: half a core
/// of other runnable work already skews a two-core measurement.
pub const MAX_FOREIGN_LOAD: f64 = 0.5;
/// The load the benchmark itself may put on the machine while it runs: the load average counts
/// runnable threads, and at saturation two sidecars (async worker + RSA thread each), the load
/// generator, the simulator, the in-process client and Redis can all be runnable on the two
/// cores. An upper bound, so a quiet machine is never refused: between windows the sharp test is
/// the CPU other processes took (`MAX_FOREIGN_CPU`), the load average the coarse one.
pub const OWN_LOAD: f64 = 6.0;
/// Most CPU other processes may take during a measured window, in cores: 10% of one of the two.
pub const MAX_FOREIGN_CPU: f64 = 0.10;
/// Most steal time (the hypervisor running another guest) during a window, in cores.
pub const MAX_STEAL: f64 = 0.02;
/// Before the first window: how long the load average may take to settle while the CPUs are idle
/// (a `cargo bench` that just compiled leaves 2-4; it decays by 1/e a minute: 4 -> 0.5 in
/// about 125 s), polled every `SETTLE_POLL`.
pub const SETTLE_MAX: Duration = Duration::from_secs(180);
pub const SETTLE_POLL: Duration = Duration::from_secs(5);
/// Length of the CPU sample taken before the first window, with nothing of ours running.
pub const IDLE_SAMPLE: Duration = Duration::from_secs(2);
/// Clock ticks per second of `/proc/stat` and `/proc/PID/stat` (USER_HZ: 100 on Linux x86 and
/// arm64, whatever the kernel's HZ).
const USER_HZ: f64 = 100.0;
/// How a load-average reason starts (told apart from CPU and steal ones).
const LOAD_REASON: &str = "1-minute load average";

struct Settings {
    runs: usize,
    force: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();
/// Why the figures are unreliable (only with `--force`).
static UNRELIABLE: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// This process's children still running (Redis, sidecars): their CPU is ours.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub fn init(runs: usize, force: bool) {
    let _ = SETTINGS.set(Settings { runs, force });
}

/// Measured windows per figure.
pub fn runs() -> usize {
    SETTINGS.get().map_or(3, |s| s.runs)
}

pub fn mark_unreliable(reason: String) {
    eprintln!("UNRELIABLE (--force): {reason}");
    UNRELIABLE.lock().push(reason);
}

pub fn unreliable() -> Vec<String> {
    UNRELIABLE.lock().clone()
}

pub fn child_started(pid: u32) {
    CHILDREN.lock().push(pid);
}

/// Call once the child has been waited for (its CPU then counts in our `cutime`).
pub fn child_reaped(pid: u32) {
    CHILDREN.lock().retain(|&p| p != pid);
}

/// CPU counters at one instant.
pub struct Sample {
    at: Instant,
    /// Busy ticks of every core: user, nice, system. Interrupt and softirq time are left out:
    /// the kernel books them to no process, and most of it is our own loopback traffic.
    busy: u64,
    steal: u64,
    /// This process, its reaped children and its running ones.
    own: u64,
}

impl Sample {
    pub fn now() -> Self {
        let (busy, steal) = machine_ticks();
        Self {
            at: Instant::now(),
            busy,
            steal,
            own: own_ticks(),
        }
    }
}

fn forced() -> bool {
    SETTINGS.get().is_some_and(|s| s.force)
}

/// Before anything is measured: samples the idle machine for [`IDLE_SAMPLE`]. Other processes
/// on the CPUs or steal: refused at once. A load average that is high while the CPUs are idle
/// (what a `cargo bench` that just compiled leaves) decays: waited for, up to [`SETTLE_MAX`]
/// (not with `--force`).
pub async fn check_start() -> anyhow::Result<()> {
    let began = Instant::now();
    loop {
        let sample = Sample::now();
        tokio::time::sleep(IDLE_SAMPLE).await;
        let reasons = busy_reasons(&sample, 0.0);
        let cpus_idle = reasons.iter().all(|r| r.starts_with(LOAD_REASON));
        if reasons.is_empty() || forced() || !cpus_idle || began.elapsed() >= SETTLE_MAX {
            return verdict(reasons);
        }
        eprintln!(
            "waiting for the 1-minute load average ({:.2}) to fall to {MAX_FOREIGN_LOAD}",
            load1()
        );
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

/// After a measured window that began at `sample`.
pub fn check(sample: &Sample) -> anyhow::Result<()> {
    verdict(busy_reasons(sample, OWN_LOAD))
}

fn busy_reasons(sample: &Sample, own_load: f64) -> Vec<String> {
    let now = Sample::now();
    let seconds = now.at.duration_since(sample.at).as_secs_f64().max(1e-3);
    let cores = |ticks: u64| ticks as f64 / USER_HZ / seconds;
    let foreign = cores(
        now.busy
            .saturating_sub(sample.busy)
            .saturating_sub(now.own.saturating_sub(sample.own)),
    );
    let steal = cores(now.steal.saturating_sub(sample.steal));
    let load = load1();
    let mut reasons = Vec::new();
    if load - own_load > MAX_FOREIGN_LOAD {
        reasons.push(format!(
            "{LOAD_REASON} {load:.2} is {:.2} above the benchmark's own {own_load:.1} \
             (limit {MAX_FOREIGN_LOAD})",
            load - own_load
        ));
    }
    if foreign > MAX_FOREIGN_CPU {
        reasons.push(format!(
            "other processes used {foreign:.2} cores over {seconds:.1} s (limit {MAX_FOREIGN_CPU})"
        ));
    }
    if steal > MAX_STEAL {
        reasons.push(format!(
            "steal time {steal:.3} cores over {seconds:.1} s (limit {MAX_STEAL})"
        ));
    }
    reasons
}

fn verdict(reasons: Vec<String>) -> anyhow::Result<()> {
    if reasons.is_empty() {
        return Ok(());
    }
    let reasons = reasons.join("; ");
    if forced() {
        mark_unreliable(format!("the machine is busy: {reasons}"));
        return Ok(());
    }
    anyhow::bail!(
        "the machine is busy, refusing to report: {reasons}. Run on a quiet machine, or pass \
         --force to measure anyway (the output is then marked UNRELIABLE)"
    )
}

/// The 1-minute load average (`/proc/loadavg`).
pub fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|l| l.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// (busy, steal) ticks over every core, from the `cpu` line of `/proc/stat`.
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let field = |i: usize| fields.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    (field(0) + field(1) + field(2), field(7))
}

/// One core's tick counters at one instant: how busy the core was between two of them is
/// [`CoreTicks::busy_until`]. Busy is everything but idle and iowait, interrupts and softirqs
/// included: on the sidecar's core they are mostly its own loopback traffic.
pub struct CoreTicks {
    busy: u64,
    all: u64,
}

impl CoreTicks {
    pub fn now(core: &str) -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let name = format!("cpu{core} ");
        let fields: Vec<u64> = stat
            .lines()
            .find(|l| l.starts_with(&name))
            .map(|line| {
                // user nice system idle iowait irq softirq steal
                let fields = line.split_whitespace().skip(1).take(8);
                fields.map(|f| f.parse().unwrap_or(0)).collect()
            })
            .unwrap_or_default();
        let all: u64 = fields.iter().sum();
        let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
        Self {
            busy: all.saturating_sub(idle),
            all,
        }
    }

    /// The busy fraction (0-1) of the core from this sample to `later`.
    pub fn busy_until(&self, later: &CoreTicks) -> f64 {
        let busy = later.busy.saturating_sub(self.busy) as f64;
        busy / later.all.saturating_sub(self.all).max(1) as f64
    }
}

/// utime + stime (+ cutime + cstime with `children`) of a process, in ticks.
fn process_ticks(pid: &str, children: bool) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: the fields start after its closing parenthesis.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<u64> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // Field n of proc(5) is rest[n - 3]: utime 14, stime 15, cutime 16, cstime 17.
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0);
    let own = field(14) + field(15);
    if children {
        own + field(16) + field(17)
    } else {
        own
    }
}

fn own_ticks() -> u64 {
    let children: u64 = CHILDREN
        .lock()
        .iter()
        .map(|pid| process_ticks(&pid.to_string(), false))
        .sum();
    process_ticks("self", true) + children
}
