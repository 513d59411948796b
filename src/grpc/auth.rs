//! The bearer-token check on every gRPC call (required when the API listens beyond loopback).

use tonic::{Request, Status, service::Interceptor};

use crate::secret::Secret;

/// Accepts a call only if it carries `authorization: Bearer <token>`; with no token configured,
/// every call passes (the API is then bound to loopback, enforced by the config).
#[derive(Clone, Debug)]
pub struct BearerToken(Option<Secret<String>>);

impl BearerToken {
    pub fn new(token: Option<Secret<String>>) -> Self {
        Self(token)
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.0 else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if constant_time_eq(presented.as_bytes(), expected.expose().as_bytes()) {
            Ok(request)
        } else {
            Err(super::Error::Unauthenticated.into())
        }
    }
}

/// Compares without an early exit, so the time taken does not reveal how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(token: Option<&str>, header: Option<&str>) -> Result<(), tonic::Code> {
        let mut interceptor = BearerToken::new(token.map(|t| Secret::new(t.to_owned())));
        let mut request = Request::new(());
        if let Some(header) = header {
            request
                .metadata_mut()
                .insert("authorization", header.parse().expect("ascii"));
        }
        interceptor.call(request).map(|_| ()).map_err(|s| s.code())
    }

    #[test]
    fn checks_the_bearer_token() {
        assert_eq!(call(None, None), Ok(()));
        assert_eq!(call(Some("t0ken"), Some("Bearer t0ken")), Ok(()));
        assert_eq!(call(Some("t0ken"), None), Err(tonic::Code::Unauthenticated));
        assert_eq!(
            call(Some("t0ken"), Some("Bearer t0ke")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(
            call(Some("t0ken"), Some("t0ken")),
            Err(tonic::Code::Unauthenticated)
        );
    }
}
