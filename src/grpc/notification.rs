//! `trustly.v1.NotificationService`: the gRPC adapter of [`notify::delivery`]. It validates
//! requests, maps the engine's typed items to `pb` messages and its errors to `Status` (through
//! `status.rs`). The delivery logic (claims, redelivery, dead letters, the bounded per-subscriber
//! buffer) lives in the engine, not here.

use std::pin::Pin;

use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};
use tracing::warn;

use super::convert::timestamp;
use crate::{
    metrics,
    money::Amount,
    notify::{
        Decision, Deliveries,
        delivery::{Closed, Item, MAX_PAGE, Notification},
    },
    pb::{self, notification_service_server::NotificationService},
    store::{self, Start},
    trustly::notification::{Kind, Transaction},
};

/// The `NotificationService` implementation.
#[derive(Clone)]
pub struct Notifications {
    deliveries: Deliveries,
}

impl Notifications {
    pub fn new(deliveries: Deliveries) -> Self {
        Self { deliveries }
    }
}

/// The stream type of `StreamNotifications`.
pub type NotificationStream =
    Pin<Box<dyn Stream<Item = Result<pb::StreamNotificationsResponse, Status>> + Send>>;

fn store_status(error: store::Error) -> Status {
    warn!(%error, "notification store unavailable");
    metrics::global().store_errors.inc();
    super::Error::Store(error).into()
}

/// The request, once the consumer group it names (`group`) is valid.
fn in_group<T>(request: Request<T>, group: fn(&T) -> &str) -> Result<T, Status> {
    let request = request.into_inner();
    check_group(group(&request))?;
    Ok(request)
}

/// A consumer group name (of notifications, or of order changes).
pub(super) fn check_group(group: &str) -> Result<(), Status> {
    let valid = (1..=64).contains(&group.len())
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "consumer_group",
            "must be 1 to 64 characters from [A-Za-z0-9_.-]",
        ))
    }
}

fn invalid(field: &str, description: &str) -> Status {
    super::Error::invalid(field, description).into()
}

/// Where a subscription starts, from the request.
fn start(request: &pb::StreamNotificationsRequest) -> Result<Start, Status> {
    Ok(
        match pb::StartPosition::try_from(request.start).unwrap_or(pb::StartPosition::Unspecified) {
            pb::StartPosition::New => Start::New,
            pb::StartPosition::Unspecified | pb::StartPosition::Group => Start::GroupPosition,
            pb::StartPosition::AfterEvent if !request.after_event_id.is_empty() => {
                Start::AfterEvent(request.after_event_id.clone())
            }
            pb::StartPosition::AfterEvent => {
                return Err(invalid(
                    "after_event_id",
                    "is required with START_POSITION_AFTER_EVENT",
                ));
            }
            pb::StartPosition::FromTime => match request.from_time {
                Some(time) if time.seconds >= 0 => Start::FromTime(
                    u64::try_from(time.seconds).unwrap_or(0) * 1000
                        + u64::try_from(time.nanos / 1_000_000).unwrap_or(0),
                ),
                _ => {
                    return Err(invalid(
                        "from_time",
                        "is required with START_POSITION_FROM_TIME",
                    ));
                }
            },
        },
    )
}

/// The decision of an acknowledgement, if any, with its notification id.
fn decision(request: &pb::AcknowledgeNotificationRequest) -> Result<Option<Decision>, Status> {
    let decision =
        match pb::Decision::try_from(request.decision).unwrap_or(pb::Decision::Unspecified) {
            pb::Decision::Unspecified => None,
            pb::Decision::Ok => Some("OK"),
            pb::Decision::Failed => Some("FAILED"),
            pb::Decision::Continue => Some("CONTINUE"),
            pb::Decision::Finish => Some("FINISH"),
        };
    let limit = match (request.limit.as_str(), decision) {
        ("", _) => None,
        (text, Some("CONTINUE")) => Some(
            text.parse::<Amount>()
                .map_err(|e| invalid("limit", &e.to_string()))?,
        ),
        (_, _) => return Err(invalid("limit", "is only allowed with DECISION_CONTINUE")),
    };
    match decision {
        Some(_) if request.notification_id.is_empty() => {
            Err(invalid("notification_id", "is required with a decision"))
        }
        Some(decision) => Ok(Some(Decision::new(decision, limit))),
        None => Ok(None),
    }
}

#[tonic::async_trait]
impl NotificationService for Notifications {
    type StreamNotificationsStream = NotificationStream;

    async fn stream_notifications(
        &self,
        request: Request<pb::StreamNotificationsRequest>,
    ) -> Result<Response<Self::StreamNotificationsStream>, Status> {
        let request = in_group(request, |r| &r.consumer_group)?;
        let start = start(&request)?;
        let rx = self
            .deliveries
            .subscribe(request.consumer_group, &start, request.methods)
            .await
            .map_err(store_status)?;
        let stream = ReceiverStream::new(rx).map(|item| match item {
            Ok(item) => Ok(message(item)),
            Err(closed) => Err(closed_status(closed)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn acknowledge_notification(
        &self,
        request: Request<pb::AcknowledgeNotificationRequest>,
    ) -> Result<Response<pb::AcknowledgeNotificationResponse>, Status> {
        let request = request.into_inner();
        let span = tracing::Span::current();
        span.record("event_id", request.event_id.as_str());
        if !request.notification_id.is_empty() {
            span.record("notificationid", request.notification_id.as_str());
        }
        check_group(&request.consumer_group)?;
        if request.event_id.is_empty() {
            return Err(invalid("event_id", "is required"));
        }
        let decision = decision(&request)?;
        let acknowledged = self
            .deliveries
            .acknowledge(
                &request.consumer_group,
                &request.event_id,
                decision
                    .as_ref()
                    .map(|d| (request.notification_id.as_str(), d)),
            )
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::AcknowledgeNotificationResponse {
            acknowledged,
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let request = in_group(request, |r| &r.consumer_group)?;
        let size = match request.page_size {
            0 => 100,
            n if n < 0 => return Err(invalid("page_size", "must not be negative")),
            n => usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
        };
        let notifications = self
            .deliveries
            .dead_letters(&request.consumer_group, size)
            .await
            .map_err(store_status)?
            .into_iter()
            .map(notification)
            .collect();
        Ok(Response::new(pb::ListDeadLettersResponse { notifications }))
    }

    async fn replay_dead_letter(
        &self,
        request: Request<pb::ReplayDeadLetterRequest>,
    ) -> Result<Response<pb::ReplayDeadLetterResponse>, Status> {
        let request = in_group(request, |r| &r.consumer_group)?;
        if self
            .deliveries
            .replay_dead_letter(&request.consumer_group, &request.event_id)
            .await
            .map_err(store_status)?
        {
            Ok(Response::new(pb::ReplayDeadLetterResponse {}))
        } else {
            Err(super::Error::NotFound("dead letter in this group").into())
        }
    }
}

/// An engine item as the stream's message.
fn message(item: Item) -> pb::StreamNotificationsResponse {
    use pb::stream_notifications_response::Item as Message;
    let item = match item {
        Item::Notification(n) => Message::Notification(notification(*n)),
        Item::Heartbeat(time) => Message::Heartbeat(pb::Heartbeat {
            time: Some(prost_types::Timestamp::from(time)),
        }),
    };
    pb::StreamNotificationsResponse { item: Some(item) }
}

/// The status that ends a stream: RESOURCE_EXHAUSTED for a subscriber that fell behind,
/// UNAVAILABLE when the store failed or the sidecar shuts down; the subscriber reconnects and
/// resumes from the group.
fn closed_status(closed: Closed) -> Status {
    match closed {
        Closed::TooSlow => super::Error::SubscriberTooSlow.into(),
        Closed::Store(error) => super::Error::Store(error).into(),
        Closed::ShuttingDown => super::Error::ShuttingDown.into(),
    }
}

/// A notification as the typed message subscribers receive.
fn notification(n: Notification) -> pb::Notification {
    pb::Notification {
        payload: Some(payload(n.kind)),
        event_id: n.event_id,
        notification_id: n.notification_id,
        method: n.method,
        order_id: n.order_id,
        message_id: n.message_id,
        receive_time: Some(prost_types::Timestamp::from(n.received)),
        delivery_count: n.delivery_count,
        decision_required: n.decision_required,
    }
}

fn money(amount: String, currency_code: String) -> Option<pb::Money> {
    Some(pb::Money {
        amount,
        currency_code,
    })
}

fn transaction(t: Transaction) -> pb::TransactionNotification {
    pb::TransactionNotification {
        end_user_id: t.end_user_id,
        amount: money(t.amount, t.currency),
        time: timestamp(&t.timestamp),
        attributes: t.attributes,
    }
}

fn payload(kind: Kind) -> pb::notification::Payload {
    use pb::notification::Payload;
    match kind {
        Kind::Credit(t) => Payload::Credit(transaction(t)),
        Kind::Debit(t) => Payload::Debit(transaction(t)),
        Kind::Pending(t) => Payload::Pending(transaction(t)),
        Kind::PayoutConfirmation(t) => Payload::PayoutConfirmation(transaction(t)),
        Kind::Cancel(c) => Payload::Cancel(pb::CancelNotification {
            end_user_id: c.end_user_id,
            time: timestamp(&c.timestamp),
            attributes: c.attributes,
        }),
        Kind::Account(a) => Payload::Account(pb::AccountNotification {
            account_id: a.account_id,
            verified: a.verified,
            clearing_house: a.clearing_house,
            bank: a.bank,
            descriptor: a.descriptor,
            last_digits: a.last_digits,
            direct_debit_mandate: a.direct_debit_mandate,
            attributes: a.attributes,
        }),
        Kind::PayoutFailed(f) => Payload::PayoutFailed(pb::PayoutFailedNotification {
            end_user_id: f.transaction.end_user_id,
            amount: money(f.transaction.amount, f.transaction.currency),
            time: timestamp(&f.transaction.timestamp),
            error_code: f.error_code,
            error_message: f.error_message,
            attributes: f.transaction.attributes,
        }),
        Kind::Kyc(k) => Payload::Kyc(pb::KycNotification {
            kyc_entity_id: k.kyc_entity_id,
            abort: k.abort,
            abort_message: k.abort_message,
            attributes: k.attributes,
        }),
        Kind::Unknown { data_json } => Payload::Unknown(pb::UnknownNotification { data_json }),
    }
}
