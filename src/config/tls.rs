//! TLS settings, read the same way for each listener (gRPC, intake, ops): a certificate and key
//! (both or neither) and an optional client CA for mTLS. The files are loaded once here, so a bad
//! set stops the start with exit 64 naming the setting.

use super::*;
use crate::ops::tls::{self, Protocol, TlsFiles};

/// The variables of one listener's TLS.
pub(super) struct Vars {
    pub cert: &'static str,
    pub key: &'static str,
    pub client_ca: &'static str,
}

/// What was asked for: whether any TLS variable is set, and the files when they are usable.
pub(super) struct Read {
    pub requested: bool,
    pub files: Option<TlsFiles>,
}

pub(super) fn read(r: &mut Reader<'_>, vars: &Vars, protocol: Protocol) -> Read {
    let cert = r.get(vars.cert);
    let key = r.get(vars.key);
    let client_ca = r.get(vars.client_ca);
    let requested = cert.is_some() || key.is_some() || client_ca.is_some();
    let (Some(cert), Some(key)) = (cert, key) else {
        if requested {
            r.invalid(
                vars.cert,
                format!(
                    "TLS needs both {} and {}",
                    settings::named(vars.cert),
                    settings::named(vars.key)
                ),
            );
        }
        return Read {
            requested,
            files: None,
        };
    };
    let files = TlsFiles {
        cert: cert.into(),
        key: key.into(),
        client_ca: client_ca.map(Into::into),
    };
    let files = match tls::check(&files, protocol) {
        Ok(()) => Some(files),
        Err(error) => {
            r.invalid(vars.cert, error.to_string());
            None
        }
    };
    Read { requested, files }
}
