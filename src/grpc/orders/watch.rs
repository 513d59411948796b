//! `OrderService.WatchOrders`: the gRPC adapter of [`orders::watch`]. It validates the request,
//! maps the use case's items to `pb` messages and its errors to `Status` (through `status.rs`).

use std::pin::Pin;

use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Response, Status};
use tracing::warn;

use super::{failed, kind_filter, order_message, transition};
use crate::{
    grpc, metrics,
    orders::{
        Watches,
        watch::{Change, Error, Filter, Item},
    },
    pb,
};

/// The stream type of `WatchOrders`.
pub type ChangeStream = Pin<Box<dyn Stream<Item = Result<pb::WatchOrdersResponse, Status>> + Send>>;

/// Starts a watch of the request's group.
pub(super) async fn watch(
    watches: &Watches,
    request: pb::WatchOrdersRequest,
) -> Result<Response<ChangeStream>, Status> {
    grpc::notification::check_group(&request.consumer_group)?;
    let filter = Filter {
        kind: kind_filter(request.kind()),
        end_user_id: request.end_user_id,
    };
    let rx = watches
        .watch(request.consumer_group, &request.resume_token, filter)
        .await
        .map_err(status)?;
    let stream = ReceiverStream::new(rx).map(|item| match item {
        Ok(item) => Ok(message(item)),
        Err(error) => Err(status(error)),
    });
    Ok(Response::new(Box::pin(stream)))
}

/// INVALID_ARGUMENT for a bad token; UNAVAILABLE when the store failed or the sidecar drains;
/// RESOURCE_EXHAUSTED for a watcher that fell behind (it resumes when it reconnects).
fn status(error: Error) -> Status {
    match error {
        Error::ResumeToken => grpc::Error::invalid("resume_token", &error.to_string()).into(),
        Error::Store(error) => {
            warn!(%error, "order change feed unavailable");
            metrics::global().store_errors.inc();
            grpc::Error::Store(error).into()
        }
        Error::Book(error) => failed(error),
        Error::TooSlow => grpc::Error::SubscriberTooSlow.into(),
        Error::ShuttingDown => grpc::Error::ShuttingDown.into(),
    }
}

/// A use-case item as the stream's message.
fn message(item: Item) -> pb::WatchOrdersResponse {
    use pb::watch_orders_response::Item as Message;
    let item = match item {
        Item::Change(change) => Message::Change(change_message(*change)),
        Item::Heartbeat(time) => Message::Heartbeat(pb::Heartbeat {
            time: Some(prost_types::Timestamp::from(time)),
        }),
    };
    pb::WatchOrdersResponse { item: Some(item) }
}

fn change_message(change: Change) -> pb::OrderChange {
    pb::OrderChange {
        resume_token: change.resume_token,
        fact_id: change.fact_id,
        order: Some(order_message(change.order)),
        transition: change.transition.map(transition),
    }
}
