//! `grpc.health.v1.Health` over the sidecar's readiness: "" (the server) and every `trustly.v1`
//! service are SERVING exactly when `/readyz` says ready. `Watch` sends each change; at shutdown
//! it sends NOT_SERVING and then ends with UNAVAILABLE, so watchers move to another replica and
//! the server's drain does not wait for streams that would otherwise never end.

use std::pin::Pin;

use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt, wrappers::WatchStream};
use tonic::{Request, Response, Status};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
    health_server::Health,
};

use crate::{ops::health::State, pb};

/// The services whose health is reported: the server as a whole and each `trustly.v1` service
/// (every one `server.rs` serves).
const SERVICES: [&str; 5] = [
    "",
    pb::payment_service_server::SERVICE_NAME,
    pb::notification_service_server::SERVICE_NAME,
    pb::account_service_server::SERVICE_NAME,
    pb::order_service_server::SERVICE_NAME,
];

/// The health service; every service shares one readiness.
pub struct HealthService {
    state: watch::Receiver<State>,
}

impl HealthService {
    pub fn new(state: watch::Receiver<State>) -> Self {
        Self { state }
    }
}

/// The stream type of `Watch`.
pub type WatchResponses = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

fn response(state: &State) -> HealthCheckResponse {
    let status = if state.ready() {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    HealthCheckResponse {
        status: status as i32,
    }
}

/// Whether the request names one of our services (NOT_FOUND otherwise, as the protocol asks).
fn known(request: &Request<HealthCheckRequest>) -> Result<(), Status> {
    if SERVICES.contains(&request.get_ref().service.as_str()) {
        Ok(())
    } else {
        Err(super::Error::NotFound("service").into())
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        known(&request)?;
        Ok(Response::new(response(&self.state.borrow())))
    }

    type WatchStream = WatchResponses;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        known(&request)?;
        // The current status, then each change of it; the state may change without changing
        // the status (the store fails while not started), which is not news to a watcher.
        let mut last = None;
        let changes = WatchStream::new(self.state.clone())
            .take_while(|state| !state.draining)
            .filter_map(move |state| {
                let status = response(&state);
                (last.replace(status.status) != Some(status.status)).then_some(Ok(status))
            });
        // Then, at shutdown: NOT_SERVING (once more for a watcher already told; harmless) and
        // UNAVAILABLE, which ends the stream.
        let end = tokio_stream::iter([
            Ok(response(&State {
                draining: true,
                ..State::default()
            })),
            Err(super::Error::ShuttingDown.into()),
        ]);
        Ok(Response::new(Box::pin(changes.chain(end))))
    }
}
