//! Two in-process replicas on one Redis that never poll for each other's writes (they look only
//! every [`NO_POLLING`]), so anything that reaches one from the other within [`WOKEN_WITHIN`]
//! came through the wake-ups. Notifications are posted straight to an intake, signed as Trustly.

use std::{net::SocketAddr, time::Duration};

use tonic::Streaming;
use trustly_sidecar::{
    pb::{self, notification_service_client::NotificationServiceClient},
    trustly::{canonical, sign::Backend, wire},
};

use super::{app::Sidecar, sim::SimHarness, *};

/// How often the replicas look for each other's writes by themselves: far longer than any wait
/// of these tests.
pub const NO_POLLING: Duration = Duration::from_secs(60);
/// How long a test waits for a wake-up to bring what it waits for.
pub const WOKEN_WITHIN: Duration = Duration::from_secs(10);

/// Replica A and replica B on the Redis of `vars` (URL, prefix, ...). Intake waits a minute for
/// a decision: only the decision's wake-up can end its wait within [`WOKEN_WITHIN`].
pub async fn pair(h: &SimHarness, vars: &[(&str, &str)]) -> (Sidecar, Sidecar) {
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let (mut vars, files) = app::vars_for(h, vars);
        vars.insert("TRUSTLY_SIDECAR_DECISION_DEADLINE".into(), "60s".into());
        replicas.push(
            app::spawn_adjusted(vars, files, |config| {
                config.store.test_poll_every = Some(NO_POLLING);
            })
            .await,
        );
    }
    let b = replicas.pop().expect("b");
    (replicas.pop().expect("a"), b)
}

/// A `method` notification signed with "Trustly's" test key, as its intake receives it.
pub fn signed(method: &str, notification_id: &str) -> String {
    let trustly = signer(Backend::RustCrypto, TRUSTLY_PRIVATE);
    let uuid = uuid::Uuid::new_v4().to_string();
    let data = serde_json::json!({
        "orderid": "1234567890", "messageid": "m-wake", "notificationid": notification_id,
        "enduserid": "user-1", "amount": "5.00", "currency": "EUR",
        "timestamp": "2026-11-21 10:00:00.123456+00", "attributes": {}
    });
    let signature = trustly
        .sign(canonical::plaintext(method, &uuid, &data).as_bytes())
        .expect("sign");
    wire::notification(method, &uuid, &signature, data).to_string()
}

/// Posts `body` to a replica's intake (its `intake_addr`); the status and the answer.
pub async fn post(intake: SocketAddr, body: String) -> (u16, String) {
    let url = format!("http://{intake}/trustly/notifications");
    let response = reqwest::Client::new()
        .post(url)
        .body(body)
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    (status, response.text().await.expect("answer"))
}

/// A subscriber of `group` on the replica, from the group's position.
pub async fn subscribe(
    replica: &Sidecar,
    group: &str,
) -> Streaming<pb::StreamNotificationsResponse> {
    NotificationServiceClient::new(replica.channel.clone())
        .stream_notifications(pb::StreamNotificationsRequest {
            consumer_group: group.into(),
            ..Default::default()
        })
        .await
        .expect("subscribed")
        .into_inner()
}

/// The next notification within [`WOKEN_WITHIN`] (heartbeats skipped).
pub async fn woken(stream: &mut Streaming<pb::StreamNotificationsResponse>) -> pb::Notification {
    tokio::time::timeout(WOKEN_WITHIN, async {
        loop {
            let item = stream.message().await.expect("stream ok").expect("open");
            if let Some(pb::stream_notifications_response::Item::Notification(n)) = item.item {
                return n;
            }
        }
    })
    .await
    .expect("woken by the other replica's append, not by polling")
}

/// Trustly posts a kyc to replica A, whose answer waits for a decision; a subscriber on replica
/// B receives it and decides CONTINUE; A's intake answers it at once.
pub async fn decision_on_b_answers_intake_on_a(a: &Sidecar, b: &Sidecar, notification_id: &str) {
    let mut on_b = subscribe(b, "decisions").await;
    let answer = tokio::spawn(post(a.intake_addr, signed("kyc", notification_id)));
    // The group starts at the oldest event: earlier ones are skipped.
    let mut kyc = woken(&mut on_b).await;
    while kyc.notification_id != notification_id {
        kyc = woken(&mut on_b).await;
    }
    assert!(kyc.decision_required, "{kyc:?}");
    let acknowledged = NotificationServiceClient::new(b.channel.clone())
        .acknowledge_notification(pb::AcknowledgeNotificationRequest {
            consumer_group: "decisions".into(),
            event_id: kyc.event_id.clone(),
            decision: pb::Decision::Continue as i32,
            notification_id: kyc.notification_id.clone(),
            ..Default::default()
        })
        .await
        .expect("ack")
        .into_inner()
        .acknowledged;
    assert!(acknowledged);
    let (status, body) = tokio::time::timeout(WOKEN_WITHIN, answer)
        .await
        .expect("replica A's intake was woken by the decision made on B")
        .expect("post task");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("CONTINUE"), "{body}");
}
