//! The command line: one `--flag` per setting of [`SETTINGS`](super::SETTINGS), each also read
//! from its `TRUSTLY_SIDECAR_*` variable through clap's `env` feature (a flag wins), so `--help`
//! lists every setting with its variable. Knows nothing of what the values mean.

use clap::{Arg, ArgAction, Command};

use super::{Config, ENV_SANDBOX, Error, SETTINGS};

/// The sidecar's command line.
pub fn command() -> Command {
    let mut command = Command::new("trustly-sidecar")
        .version(env!("CARGO_PKG_VERSION"))
        .about("gRPC payment-gateway sidecar for Trustly's merchant API")
        .after_help(
            "Durations are written like 250ms, 10s, 15m, 72h, 7d. Secrets are always file paths.",
        );
    for setting in SETTINGS {
        let mut arg = Arg::new(setting.var)
            .long(setting.flag)
            .env(setting.var)
            .help(setting.help)
            .value_name(value_name(setting.flag))
            .action(ArgAction::Set);
        if setting.var == ENV_SANDBOX {
            // `--sandbox` alone means true; `--sandbox=false` and the variable's 0/1 still work.
            arg = arg
                .num_args(0..=1)
                .default_missing_value("true")
                .value_name("BOOL");
        }
        command = command.arg(arg);
    }
    command
}

/// Parses the process's arguments and environment (`--help` and `--version` exit here).
pub fn from_args() -> Result<Config, Error> {
    let flags = command().get_matches();
    Config::from_lookup(|var| flags.get_one::<String>(var).cloned())
}

/// What `--help` shows as the flag's value.
fn value_name(flag: &str) -> &'static str {
    match flag.rsplit('-').next() {
        Some("path") => "FILE",
        Some("listen") => "ADDR",
        Some("url" | "endpoint") => "URL",
        Some("timeout" | "interval" | "retention" | "deadline") => "DURATION",
        _ => "VALUE",
    }
}
