//! `trustly.v1.NotificationService`: subscribers read the notification log through consumer
//! groups; at-least-once delivery with acks, redelivery after the ack deadline, dead letters, and
//! decisions for notifications that need one.
//!
//! A slow subscriber never slows intake: each has a bounded buffer, and one that overflows is
//! closed with RESOURCE_EXHAUSTED (its events stay pending and are redelivered).

use std::{collections::HashMap, pin::Pin, time::Duration};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::{Request, Response, Status};
use tracing::{debug, warn};

use super::convert::{extra_fields, timestamp};
use crate::{
    metrics,
    money::Amount,
    notify,
    pb::{self, notification_service_server::NotificationService},
    store::{self, Event, Start, Store},
    trustly::wire,
};

/// Events a subscriber may have in flight in its buffer before it counts as too slow.
pub const SUBSCRIBER_BUFFER: usize = 256;
/// Events read from the log per round trip.
const READ_BATCH: usize = 64;
/// Longest wait for events appended by other replicas (this replica's wake subscribers at once).
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest time between two looks for events whose ack deadline passed (redelivery is at most
/// this late, or a quarter of the ack deadline when that is shorter).
const MAX_CLAIM_INTERVAL: Duration = Duration::from_secs(1);
/// Most dead letters listed at once.
const MAX_PAGE: usize = 1000;

/// Delivery settings.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub ack_deadline: Duration,
    pub max_deliveries: u64,
    /// An idle stream gets a heartbeat this often, so proxies and load balancers keep it open.
    pub heartbeat_interval: Duration,
}

/// The `NotificationService` implementation.
#[derive(Clone)]
pub struct Notifications {
    store: Store,
    delivery: Delivery,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Notifications {
    pub fn new(
        store: Store,
        delivery: Delivery,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            delivery,
            tasks,
            shutdown,
        }
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

fn check_group(group: &str) -> Result<(), Status> {
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
    Status::from(super::Error::InvalidArgument(vec![super::FieldViolation {
        field: field.into(),
        description: description.into(),
    }]))
}

#[tonic::async_trait]
impl NotificationService for Notifications {
    type StreamNotificationsStream = NotificationStream;

    async fn stream_notifications(
        &self,
        request: Request<pb::StreamNotificationsRequest>,
    ) -> Result<Response<Self::StreamNotificationsStream>, Status> {
        let request = request.into_inner();
        check_group(&request.consumer_group)?;
        let start = match pb::StartPosition::try_from(request.start)
            .unwrap_or(pb::StartPosition::Unspecified)
        {
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
        };
        self.store
            .log
            .join(&request.consumer_group, &start)
            .await
            .map_err(store_status)?;
        // One slot more than the buffer: it is kept for the RESOURCE_EXHAUSTED that closes a
        // subscriber that fell behind.
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER + 1);
        let subscriber = Subscriber {
            store: self.store.clone(),
            delivery: self.delivery.clone(),
            group: request.consumer_group,
            consumer: uuid::Uuid::new_v4().to_string(),
            methods: request.methods,
            tx,
            shutdown: self.shutdown.clone(),
        };
        self.tasks.spawn(subscriber.run());
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
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
        if let Some(decision) = decision {
            if request.notification_id.is_empty() {
                return Err(invalid("notification_id", "is required with a decision"));
            }
            self.store
                .decisions
                .set(
                    &request.notification_id,
                    &notify::Decision::new(decision, limit).encode(),
                )
                .await
                .map_err(store_status)?;
        }
        let acknowledged = self
            .store
            .log
            .ack(&request.consumer_group, &request.event_id)
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
        let request = request.into_inner();
        check_group(&request.consumer_group)?;
        let size = match request.page_size {
            0 => 100,
            n if n < 0 => return Err(invalid("page_size", "must not be negative")),
            n => usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE),
        };
        let events = self
            .store
            .log
            .dead_letters(&request.consumer_group, size)
            .await
            .map_err(store_status)?;
        let mut notifications = Vec::with_capacity(events.len());
        for event in events {
            notifications.push(notification(&self.store, event).await);
        }
        Ok(Response::new(pb::ListDeadLettersResponse { notifications }))
    }

    async fn replay_dead_letter(
        &self,
        request: Request<pb::ReplayDeadLetterRequest>,
    ) -> Result<Response<pb::ReplayDeadLetterResponse>, Status> {
        let request = request.into_inner();
        check_group(&request.consumer_group)?;
        if self
            .store
            .log
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

/// One subscription: the producer side of its stream.
struct Subscriber {
    store: Store,
    delivery: Delivery,
    group: String,
    consumer: String,
    methods: Vec<String>,
    tx: mpsc::Sender<Result<pb::StreamNotificationsResponse, Status>>,
    shutdown: CancellationToken,
}

/// Why a subscription ended.
enum End {
    Gone,
    TooSlow,
    Store(store::Error),
}

impl Subscriber {
    async fn run(self) {
        metrics::global().subscribers.inc();
        self.serve().await;
        metrics::global().subscribers.dec();
    }

    async fn serve(&self) {
        let mut last_sent = tokio::time::Instant::now();
        let mut appends = self.store.log.watch_appends();
        // Stale events only exist after an ack deadline: looking for them on every round would
        // add a Redis round trip to every delivery for nothing.
        let claim_every = (self.delivery.ack_deadline / 4).min(MAX_CLAIM_INTERVAL);
        let mut next_claim = tokio::time::Instant::now();
        loop {
            if self.tx.is_closed() || self.shutdown.is_cancelled() {
                return;
            }
            let claim = tokio::time::Instant::now() >= next_claim;
            if claim {
                next_claim = tokio::time::Instant::now() + claim_every;
            }
            match self.round(claim).await {
                Ok(0) => {}
                Ok(_) => {
                    last_sent = tokio::time::Instant::now();
                    // More may be waiting (a backlog drains a batch per round): read again as
                    // soon as the stream has room for a whole batch, instead of sleeping.
                    tokio::select! {
                        room = self.tx.reserve_many(READ_BATCH.min(self.tx.max_capacity())) => match room {
                            Ok(_) => continue,
                            Err(_) => return,
                        },
                        () = self.shutdown.cancelled() => return,
                    }
                }
                Err(end) => return self.close(end),
            }
            if last_sent.elapsed() >= self.delivery.heartbeat_interval {
                let heartbeat = pb::StreamNotificationsResponse {
                    item: Some(pb::stream_notifications_response::Item::Heartbeat(
                        pb::Heartbeat {
                            time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
                        },
                    )),
                };
                if let Err(end) = self.send(heartbeat) {
                    return self.close(end);
                }
                last_sent = tokio::time::Instant::now();
            }
            tokio::select! {
                () = appends.wait(POLL_INTERVAL) => {}
                () = self.shutdown.cancelled() => return,
                () = self.tx.closed() => return,
            }
        }
    }

    /// Ends the stream: with RESOURCE_EXHAUSTED for a subscriber that fell behind, UNAVAILABLE
    /// when the store failed; the subscriber reconnects and resumes from the group.
    fn close(&self, end: End) {
        match end {
            End::Gone => {}
            End::TooSlow => {
                warn!(group = %self.group, consumer = %self.consumer, "subscriber too slow; closing its stream (it resumes from the group)");
                let _ = self
                    .tx
                    .try_send(Err(super::Error::SubscriberTooSlow.into()));
            }
            End::Store(error) => {
                debug!(%error, "notification store failed; closing the stream");
                let _ = self.tx.try_send(Err(super::Error::Store(error).into()));
            }
        }
    }

    /// One pass: redeliver what went stale (when `claim`), then what is new. Returns how many
    /// were sent.
    async fn round(&self, claim: bool) -> Result<usize, End> {
        let stale = if claim {
            self.store
                .log
                .claim_stale(
                    &self.group,
                    &self.consumer,
                    self.delivery.ack_deadline,
                    READ_BATCH,
                )
                .await
                .map_err(End::Store)?
        } else {
            Vec::new()
        };
        let fresh = self
            .store
            .log
            .read_new(&self.group, &self.consumer, READ_BATCH, Duration::ZERO)
            .await
            .map_err(End::Store)?;
        let mut sent = 0;
        for event in stale.into_iter().chain(fresh) {
            if event.delivery_count > self.delivery.max_deliveries {
                warn!(group = %self.group, event_id = %event.id, notification_id = %event.notification_id, deliveries = event.delivery_count, "moving event to dead letters");
                self.store
                    .log
                    .dead_letter(&self.group, &event)
                    .await
                    .map_err(End::Store)?;
                continue;
            }
            if !self.methods.is_empty() && !self.methods.contains(&event.method) {
                self.store
                    .log
                    .ack(&self.group, &event.id)
                    .await
                    .map_err(End::Store)?;
                continue;
            }
            let redelivery = event.delivery_count > 1;
            let message = pb::StreamNotificationsResponse {
                item: Some(pb::stream_notifications_response::Item::Notification(
                    notification(&self.store, event).await,
                )),
            };
            self.send(message)?;
            metrics::global().deliveries.inc();
            if redelivery {
                metrics::global().redeliveries.inc();
            }
            sent += 1;
        }
        Ok(sent)
    }

    fn send(&self, message: pb::StreamNotificationsResponse) -> Result<(), End> {
        // Keep the last slot for the closing status.
        if self.tx.capacity() <= 1 {
            return Err(End::TooSlow);
        }
        self.tx.try_send(Ok(message)).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => End::TooSlow,
            mpsc::error::TrySendError::Closed(_) => End::Gone,
        })
    }
}

/// An event as the typed message subscribers receive.
async fn notification(store: &Store, event: Event) -> pb::Notification {
    let data = wire::parse_notification(&event.body)
        .map(|n| n.data)
        .unwrap_or(Value::Null);
    let decision_required = match (event.decision_required, event.method.as_str()) {
        (Some(required), _) => required,
        // Stored before intake recorded the flag: the rule, applied here.
        (None, "kyc") => true,
        (None, "debit") => store
            .orders
            .is_withdraw(&event.order_id)
            .await
            .unwrap_or(false),
        (None, _) => false,
    };
    let receive_time = std::time::UNIX_EPOCH + Duration::from_millis(event.received_ms);
    pb::Notification {
        payload: Some(payload(&event.method, &data)),
        event_id: event.id,
        notification_id: event.notification_id,
        method: event.method,
        order_id: event.order_id,
        message_id: event.message_id,
        receive_time: Some(prost_types::Timestamp::from(receive_time)),
        delivery_count: event.delivery_count,
        decision_required,
    }
}

fn payload(method: &str, data: &Value) -> pb::notification::Payload {
    use pb::notification::Payload;
    let text = |name: &str| match data.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let attributes = || -> HashMap<String, String> {
        match data.get("attributes") {
            Some(Value::Object(map)) => extra_fields(map.clone().into_iter().collect()),
            _ => HashMap::new(),
        }
    };
    let transaction = || pb::TransactionNotification {
        end_user_id: text("enduserid"),
        amount: Some(pb::Money {
            amount: text("amount"),
            currency_code: text("currency"),
        }),
        time: timestamp(&text("timestamp")),
        attributes: attributes(),
    };
    match method {
        "credit" => Payload::Credit(transaction()),
        "debit" => Payload::Debit(transaction()),
        "pending" => Payload::Pending(transaction()),
        "payoutconfirmation" => Payload::PayoutConfirmation(transaction()),
        "cancel" => Payload::Cancel(pb::CancelNotification {
            end_user_id: text("enduserid"),
            time: timestamp(&text("timestamp")),
            attributes: attributes(),
        }),
        "account" => {
            let mut rest = attributes();
            let mut take = |key: &str| rest.remove(key).unwrap_or_default();
            let (clearing_house, bank, descriptor, last_digits, mandate) = (
                take("clearinghouse"),
                take("bank"),
                take("descriptor"),
                take("lastdigits"),
                take("directdebitmandate"),
            );
            Payload::Account(pb::AccountNotification {
                account_id: text("accountid"),
                verified: text("verified") == "1",
                clearing_house,
                bank,
                descriptor,
                last_digits,
                direct_debit_mandate: mandate == "1",
                attributes: rest,
            })
        }
        "payoutfailed" => Payload::PayoutFailed(pb::PayoutFailedNotification {
            end_user_id: text("enduserid"),
            amount: Some(pb::Money {
                amount: text("amount"),
                currency_code: text("currency"),
            }),
            time: timestamp(&text("timestamp")),
            error_code: text("errorcode"),
            error_message: text("errormessage"),
            attributes: attributes(),
        }),
        "kyc" => Payload::Kyc(pb::KycNotification {
            kyc_entity_id: text("kycentityid"),
            abort: text("abort") == "1",
            abort_message: text("abortmessage"),
            attributes: attributes(),
        }),
        _ => Payload::Unknown(pb::UnknownNotification {
            data_json: data.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewEvent;
    use bytes::Bytes;

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_closed_with_resource_exhausted_and_loses_nothing() {
        let store = Store::memory();
        let log = store.log.clone();
        log.join("g", &Start::GroupPosition).await.expect("join");
        for i in 0..10u64 {
            let event = NewEvent {
                notification_id: format!("n{i}"),
                method: "credit".into(),
                order_id: "1".into(),
                message_id: "m".into(),
                received_ms: 1_000 + i,
                body: Bytes::from_static(b"{}"),
                decision_required: false,
            };
            log.record(&event, Some(&Bytes::from_static(b"ok")))
                .await
                .expect("record");
        }
        // A buffer of 3 + the slot kept for the closing status; nobody reads it.
        let (tx, mut rx) = mpsc::channel(4);
        let subscriber = Subscriber {
            store,
            delivery: Delivery {
                ack_deadline: Duration::from_millis(1),
                max_deliveries: 10,
                heartbeat_interval: Duration::from_secs(3600),
            },
            group: "g".into(),
            consumer: "slow".into(),
            methods: Vec::new(),
            tx,
            shutdown: CancellationToken::new(),
        };
        tokio::time::timeout(Duration::from_secs(5), subscriber.run())
            .await
            .expect("the subscriber is closed, not blocked");
        let mut items = Vec::new();
        while let Ok(item) = rx.try_recv() {
            items.push(item);
        }
        assert_eq!(
            items.len(),
            4,
            "three notifications, then the closing status"
        );
        assert!(items[..3].iter().all(Result::is_ok));
        assert_eq!(
            items[3].as_ref().err().map(Status::code),
            Some(tonic::Code::ResourceExhausted)
        );
        // Everything it was handed but never acknowledged is still pending for the group.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let pending = log
            .claim_stale("g", "next", Duration::from_millis(1), 100)
            .await
            .expect("claim");
        let unread = log
            .read_new("g", "next", 100, Duration::ZERO)
            .await
            .expect("read");
        assert_eq!(pending.len() + unread.len(), 10, "no event lost");
    }
}
