//! The notification path: intake throughput (Redis, signed replies) and intake -> subscriber
//! latency at a fixed rate, on the same replica and across two.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use rsa::RsaPrivateKey;
use serde_json::json;
use trustly_sidecar::{
    pb::{self, notification_service_client::NotificationServiceClient},
    trustly::{
        canonical,
        sign::{Backend, Signer},
    },
};

use crate::{
    INTAKE_CONNECTIONS, NOTIFICATION_RATE, SIDECAR_CORE, fastest_backend,
    load::{Figure, WARM_UP, measure, stats},
    procs::{Env, SidecarProcess, Store},
    quiet,
    report::MemoryFigures,
};

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct NotificationFigures {
    pub intake: Figure,
    /// Intake → subscriber on the same replica at NOTIFICATION_RATE per second.
    pub delivery: Figure,
    /// Intake on one replica → subscriber on another (two processes, one Redis), same rate.
    pub cross_replica: Figure,
}

/// Pre-signed notifications (each notificationid posted once) and where the next one is.
struct Bodies {
    bodies: Vec<(String, Vec<u8>)>,
    next: AtomicU64,
}

impl Bodies {
    fn take(&self) -> Option<&(String, Vec<u8>)> {
        self.bodies
            .get(self.next.fetch_add(1, Ordering::Relaxed) as usize)
    }
}

/// Pre-signed notifications per second of measured intake, per signature per second of the
/// backend's ceiling: intake signs one reply per notification, so it cannot run faster than the
/// ceiling; twice that leaves room for a run faster than the ceiling's.
const BODIES_PER_CEILING: f64 = 2.0;
/// At least this many pre-signed notifications per second of intake window (a tiny ceiling).
const MIN_BODIES_PER_SECOND: f64 = 1000.0;

pub async fn notification_path(
    env: &Env,
    backend: Backend,
    trustly_key: &RsaPrivateKey,
    (window, ceiling): (Duration, f64),
    memory: &mut MemoryFigures,
) -> anyhow::Result<NotificationFigures> {
    let sidecar = SidecarProcess::start(env, backend, Store::Redis).await;
    let sampler = sidecar.sample_rss();
    // Pre-signed with the simulator's ("Trustly's") key, so posting costs the generator nothing.
    let trustly = fastest_backend()
        .signer(trustly_key.clone())
        .expect("signer");
    // Enough for the warm-up and the windows of intake at twice the backend's ceiling, plus the
    // fixed-rate runs.
    let runs = quiet::runs() as f64;
    let intake_seconds = (window.as_secs_f64() * runs + WARM_UP.as_secs_f64()) * 1.1;
    let budget = (intake_seconds * (ceiling * BODIES_PER_CEILING).max(MIN_BODIES_PER_SECOND))
        as usize
        + 2 * (runs * window.as_secs_f64() * f64::from(NOTIFICATION_RATE)) as usize;
    let bodies = Arc::new(Bodies {
        bodies: tokio::task::spawn_blocking(move || {
            (0..budget)
                .map(|i| {
                    let id = format!("{}", 7_000_000_000u64 + i as u64);
                    (id.clone(), notification(&id, trustly.as_ref()))
                })
                .collect()
        })
        .await
        .expect("pre-sign"),
        next: AtomicU64::new(0),
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(INTAKE_CONNECTIONS)
        .build()
        .expect("http client");
    let url = format!("http://{}/trustly/notifications", sidecar.intake);

    // Throughput: closed loop over the pre-signed bodies.
    let intake = {
        let (http, url, bodies) = (http.clone(), url.clone(), Arc::clone(&bodies));
        measure(INTAKE_CONNECTIONS, window, move |_| {
            let post = bodies
                .take()
                .map(|(_, body)| http.post(url.clone()).body(body.clone()).send());
            async move {
                match post {
                    None => Err("out of pre-signed notifications".to_owned()),
                    Some(post) => match post.await {
                        Ok(response) if response.status() == 200 => response
                            .bytes()
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                        Ok(response) => Err(format!("status {}", response.status())),
                        Err(error) => Err(error.to_string()),
                    },
                }
            }
        })
        .await?
    };

    let delivery = deliveries((&sidecar, &sidecar), &http, &bodies, window).await?;
    // A second replica on the same Redis (and core): its subscriber hears the first's appends.
    let replica = SidecarProcess::start_sharing(env, backend, sidecar.prefix.clone()).await;
    let cross_replica = deliveries((&sidecar, &replica), &http, &bodies, window).await?;
    replica.stop().await;
    memory.peak_kib = memory.peak_kib.max(sampler.stop().await);
    sidecar.stop().await;
    Ok(NotificationFigures {
        intake,
        delivery,
        cross_replica,
    })
}

/// `--runs` windows of [`fixed_rate_delivery`] from `intake` to `subscriber`.
async fn deliveries(
    (intake, subscriber): (&SidecarProcess, &SidecarProcess),
    http: &reqwest::Client,
    bodies: &Bodies,
    window: Duration,
) -> anyhow::Result<Figure> {
    let mut runs = Vec::new();
    for _ in 0..quiet::runs() {
        let sample = quiet::Sample::now();
        runs.push(fixed_rate_delivery(intake, subscriber, http, bodies, window).await);
        quiet::check(&sample)?;
    }
    Ok(Figure::of(runs))
}

/// Latency: a subscriber on `subscriber`, notifications posted to `intake` at a fixed rate
/// (open loop).
async fn fixed_rate_delivery(
    intake: &SidecarProcess,
    subscriber: &SidecarProcess,
    http: &reqwest::Client,
    bodies: &Bodies,
    window: Duration,
) -> crate::load::Stats {
    let group = format!("bench-latency-{}", uuid::Uuid::new_v4());
    let mut stream = NotificationServiceClient::new(subscriber.channel().await)
        .stream_notifications(pb::StreamNotificationsRequest {
            consumer_group: group.clone(),
            start: pb::StartPosition::New as i32,
            ..Default::default()
        })
        .await
        .expect("subscribe")
        .into_inner();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let ack_channel = subscriber.channel().await;
    let receiver = {
        let (sent, latencies) = (Arc::clone(&sent), Arc::clone(&latencies));
        tokio::spawn(async move {
            while let Ok(Some(item)) = stream.message().await {
                let Some(pb::stream_notifications_response::Item::Notification(n)) = item.item
                else {
                    continue;
                };
                if let Some(began) = sent.lock().get(&n.notification_id) {
                    latencies.lock().push(began.elapsed());
                }
                let mut acks = NotificationServiceClient::new(ack_channel.clone());
                let group = group.clone();
                tokio::spawn(async move {
                    let _ = acks
                        .acknowledge_notification(pb::AcknowledgeNotificationRequest {
                            consumer_group: group,
                            event_id: n.event_id,
                            ..Default::default()
                        })
                        .await;
                });
            }
        })
    };
    let url = format!("http://{}/trustly/notifications", intake.intake);
    let count = (window.as_secs_f64() * f64::from(NOTIFICATION_RATE)) as usize;
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / NOTIFICATION_RATE);
    let began = Instant::now();
    let core = quiet::CoreTicks::now(SIDECAR_CORE);
    let mut posts = Vec::new();
    for _ in 0..count {
        let Some((id, body)) = bodies.take() else {
            break;
        };
        ticks.tick().await;
        sent.lock().insert(id.clone(), Instant::now());
        posts.push(tokio::spawn(
            http.post(url.clone()).body(body.clone()).send(),
        ));
    }
    let posting = began.elapsed();
    let sidecar_core_busy = core.busy_until(&quiet::CoreTicks::now(SIDECAR_CORE));
    let mut errors = 0;
    for post in posts {
        if !matches!(post.await, Ok(Ok(response)) if response.status() == 200) {
            errors += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // the last deliveries
    receiver.abort();
    let delivered = std::mem::take(&mut *latencies.lock());
    let delivered_count = delivered.len() as u64;
    let mut delivery = stats(delivered, errors, posting);
    delivery.errors += count as u64 - delivered_count.min(count as u64);
    delivery.sidecar_core_busy = sidecar_core_busy;
    delivery
}

/// A signed `credit` notification as Trustly would post it.
fn notification(notification_id: &str, trustly: &dyn Signer) -> Vec<u8> {
    let uuid = uuid::Uuid::new_v4().to_string();
    let data = json!({
        "orderid": "1234567890", "messageid": format!("bench-{notification_id}"),
        "notificationid": notification_id, "enduserid": "bench-user", "amount": "5.00",
        "currency": "EUR", "timestamp": "2026-11-21 10:00:00.123456+00", "attributes": {}
    });
    let signature = trustly
        .sign(canonical::plaintext("credit", &uuid, &data).as_bytes())
        .expect("sign");
    json!({
        "method": "credit",
        "params": {"signature": signature, "uuid": uuid, "data": data},
        "version": "1.1"
    })
    .to_string()
    .into_bytes()
}
