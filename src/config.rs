//! Sidecar configuration from flags and `TRUSTLY_SIDECAR_*` environment variables.
//!
//! [`Config::from_lookup`] is the only parser: the environment and the command line are both
//! just lookups, and tests pass a map (no `set_var`). Every variable is parsed, every problem is
//! reported, and `main` exits with code 64 before binding anything.
//!
//! The configuration is a set of sections; each section's file holds its variables (the
//! documented `ENV_*` constants and their defaults), its struct and the function reading it.

use std::path::PathBuf;

mod cli;
mod delivery;
mod grpc;
mod intake;
mod payments;
mod reader;
mod sandbox;
mod settings;
mod store;
mod telemetry;
mod tls;
mod trustly;
pub use cli::{command, from_args};
use reader::Reader;
pub use reader::parse_duration;
pub use settings::{SETTINGS, Setting, named};
// Each section with its variables: `config::ENV_REDIS_URL`, `config::Store`.
pub use self::{
    delivery::*, grpc::*, intake::*, payments::*, sandbox::*, store::*, telemetry::*, trustly::*,
};

pub use crate::secret::Secret;
// The types of settings live with the module that uses them; config only reads them.
pub use crate::{notify::DecisionFallback, ops::telemetry::LogFormat};
use crate::{notify::Delivery, trustly::keys::KeyError};

/// Every problem found in the configuration, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct Error(pub Vec<Problem>);

impl Error {
    /// The problems, led by a pointer to `--sandbox` when nothing at all was configured: that is
    /// a first run, not a broken deployment.
    fn with_hint(mut problems: Vec<Problem>, anything_set: bool) -> Self {
        if !anything_set {
            problems.insert(0, Problem::NothingConfigured);
        }
        Error(problems)
    }
}

/// One configuration problem, naming the setting (flag and variable) or file.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error(
        "nothing is configured; to try the gateway on embedded defaults (test keys, in-memory store, \
         built-in Trustly simulator) run it with --sandbox (from a clone: cargo run --release -- --sandbox)"
    )]
    NothingConfigured,
    #[error("{}: {message}", settings::named(.var))]
    Invalid { var: &'static str, message: String },
    #[error("{} is required", settings::named(.var))]
    Missing { var: &'static str },
    #[error("{}: {source}", settings::named(.var))]
    Key {
        var: &'static str,
        #[source]
        source: KeyError,
    },
    #[error("{}: file {path}: {source}", settings::named(.var))]
    SecretFile {
        var: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The validated configuration, section by section. Keys are already loaded and checked; the
/// `Debug` output redacts every secret.
#[derive(Clone, Debug)]
pub struct Config {
    pub sandbox: Sandbox,
    pub telemetry: Telemetry,
    pub grpc: Grpc,
    pub intake: Intake,
    pub store: Store,
    pub delivery: Delivery,
    pub trustly: Trustly,
    pub payments: Payments,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Parses everything `lookup` provides, section by section, collecting every problem.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let mut r = Reader::new(&lookup);
        match Self::read(&mut r) {
            Some(config) if r.problems.is_empty() => Ok(config),
            _ => Err(Error::with_hint(r.problems, r.anything_set)),
        }
    }

    /// Reads every section (all of them, so every problem is recorded); `None` if one is missing
    /// a value. The order is the order problems are reported in.
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        let (sandboxed, sandbox) = Sandbox::read(r);
        let telemetry = Telemetry::read(r);
        let grpc = Grpc::read(r, sandboxed);
        let intake = Intake::read(r, sandboxed);
        let store = Store::read(r);
        let delivery = delivery::read(r);
        let trustly = Trustly::read(r, sandboxed);
        let payments = Payments::read(r);
        Some(Self {
            sandbox: sandbox?,
            telemetry: telemetry?,
            grpc: grpc?,
            intake: intake?,
            store: store?,
            delivery: delivery?,
            trustly: trustly?,
            payments: payments?,
        })
    }
}

#[cfg(test)]
mod tests;
