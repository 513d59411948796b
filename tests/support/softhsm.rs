//! A fresh SoftHSM2 token in a temporary directory, with fixture keys imported into it.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, when the module is initialised, and the variable is
//! process-wide: a token is only ever used by a child process given it (the sidecar binary, or
//! this test binary re-run on one test), never by the test process itself.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use rsa::pkcs8::{EncodePrivateKey, LineEnding};

use super::private_key;

/// Debian's (package softhsm2) SoftHSM2 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The token's label and user PIN.
pub const TOKEN_LABEL: &str = "T";
pub const PIN: &str = "5678";
const SO_PIN: &str = "1234";

/// A token initialised in its own directory; dropped with it.
pub struct SoftHsm {
    dir: tempfile::TempDir,
    /// The `softhsm2.conf` pointing at the token directory: a child's `SOFTHSM2_CONF`.
    pub conf: PathBuf,
    /// A file holding [`PIN`] and a newline (the way a mounted Secret usually ends).
    pub pin_path: PathBuf,
}

impl SoftHsm {
    /// Initialises a token and imports each `(label, fixture key file)` (converted to PKCS#8).
    /// Fails, saying how to install it, when SoftHSM2 is missing.
    pub fn with_keys(keys: &[(&str, &str)]) -> Self {
        assert!(
            Path::new(MODULE).exists() && which("softhsm2-util"),
            "SoftHSM2 is not installed ({MODULE}, softhsm2-util): `bash .ci/setup` installs it \
             (Debian package softhsm2)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("token dir");
        let conf = dir.path().join("softhsm2.conf");
        let text = format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
             slots.removable = false\n",
            tokens.display()
        );
        std::fs::write(&conf, text).expect("softhsm2.conf");
        let pin_path = dir.path().join("pin");
        std::fs::write(&pin_path, format!("{PIN}\n")).expect("pin file");
        let hsm = Self {
            dir,
            conf,
            pin_path,
        };
        hsm.util(&[
            "--init-token",
            "--free",
            "--label",
            TOKEN_LABEL,
            "--so-pin",
            SO_PIN,
            "--pin",
            PIN,
        ]);
        for (index, (label, fixture)) in keys.iter().enumerate() {
            hsm.import(label, fixture, index + 1);
        }
        hsm
    }

    /// Imports a fixture private key under `label` (object id `id`).
    pub fn import(&self, label: &str, fixture: &str, id: usize) {
        let pem = private_key(fixture)
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8");
        let file = self.dir.path().join(format!("{label}.pem"));
        std::fs::write(&file, pem.as_bytes()).expect("key file");
        let id = format!("{id:02x}");
        let file = file.display().to_string();
        self.util(&[
            "--import",
            &file,
            "--token",
            TOKEN_LABEL,
            "--label",
            label,
            "--id",
            &id,
            "--pin",
            PIN,
        ]);
        std::fs::remove_file(&file).expect("the plain key file is removed");
    }

    /// The sidecar's variables for signing with `key_label` in this token (and no key file).
    pub fn sidecar_vars(&self, key_label: &str) -> Vec<(String, String)> {
        [
            ("SOFTHSM2_CONF", self.conf.display().to_string()),
            ("TRUSTLY_SIDECAR_SIGNING_BACKEND", "pkcs11".to_owned()),
            ("TRUSTLY_SIDECAR_PKCS11_MODULE", MODULE.to_owned()),
            ("TRUSTLY_SIDECAR_PKCS11_TOKEN_LABEL", TOKEN_LABEL.to_owned()),
            ("TRUSTLY_SIDECAR_PKCS11_KEY_LABEL", key_label.to_owned()),
            (
                "TRUSTLY_SIDECAR_PKCS11_PIN_PATH",
                self.pin_path.display().to_string(),
            ),
            // Blank is unset: the harness's default key file must not be configured.
            ("TRUSTLY_SIDECAR_PRIVATE_KEY_PATH", String::new()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn util(&self, args: &[&str]) {
        let output = Command::new("softhsm2-util")
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .expect("softhsm2-util runs");
        assert!(
            output.status.success(),
            "softhsm2-util {}: {}{}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn which(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
