//! Notification delivery as Trustly does it: POST the signed notification to the order's
//! NotificationURL, and resend the same bytes (same `notificationid`, same `uuid`) with growing
//! intervals until the merchant answers with a valid signed status that echoes `uuid` and
//! `method`. Every attempt is recorded for the admin API.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use bytes::Bytes;

use super::{
    Sim, api,
    clock::Timestamp,
    scenario,
    state::{DeliveryAttempt, MAX_LOGGED_ANSWER_CHARS, NotificationRecord},
};
use crate::trustly::{
    canonical,
    client::{BodyReadError, read_body_limited},
    wire,
};

/// How the simulator resends. Trustly documents only that intervals grow (spec §4.4); the
/// defaults are ours.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Wait before the second attempt; doubled after each failure.
    pub initial_interval: Duration,
    /// Longest wait between attempts.
    pub max_interval: Duration,
    /// Attempts before giving up (recorded as `gave_up`; resend by hand from the admin API).
    pub max_attempts: u32,
    /// Time the merchant has to answer one attempt.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(60),
            max_attempts: 15,
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// Largest notification answer read; a signed `{"status":"OK"}` is well under 1 KiB.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// One step of a delivery sequence: wait `after`, then deliver the notification until it is
/// acknowledged. A notification may appear twice (a duplicate, as Trustly may send).
#[derive(Clone, Debug)]
pub struct Step {
    pub notification_id: String,
    pub after: Duration,
}

impl Step {
    pub fn now(notification_id: &str) -> Self {
        Self {
            notification_id: notification_id.to_owned(),
            after: Duration::ZERO,
        }
    }
}

/// Signs `records`, stores them, and delivers them in order in the background.
pub async fn deliver(sim: &Arc<Sim>, records: Vec<NotificationRecord>) {
    let steps = records
        .iter()
        .map(|r| Step::now(&r.notification_id))
        .collect();
    deliver_steps(sim, records, steps).await;
}

/// Signs `records`, stores them, and delivers them as `steps` say, in the background. The
/// notifications of an order with `HoldNotifications` are only stored: they wait for
/// [`release`].
pub async fn deliver_steps(sim: &Arc<Sim>, records: Vec<NotificationRecord>, steps: Vec<Step>) {
    if records.is_empty() {
        return;
    }
    let held = sign_and_store(sim, records).await;
    let steps: VecDeque<Step> = steps
        .into_iter()
        .filter(|step| !held.contains(&step.notification_id))
        .collect();
    if steps.is_empty() {
        return;
    }
    let task_sim = Arc::clone(sim);
    sim.tasks
        .spawn(async move { run_sequence(task_sim, steps, true).await });
}

/// Sends a notification once more, unchanged (a duplicate, as Trustly may send). A held one is
/// released by this: it is delivered, and the merchant's answer counts as for a first delivery.
pub fn resend(sim: &Arc<Sim>, notification_id: String) {
    let was_held = sim
        .state
        .lock()
        .notifications
        .get_mut(&notification_id)
        .is_some_and(|n| std::mem::take(&mut n.held));
    let task_sim = Arc::clone(sim);
    let steps = VecDeque::from([Step::now(&notification_id)]);
    sim.tasks
        .spawn(async move { run_sequence(task_sim, steps, was_held).await });
}

/// Delivers every held notification of `order_id`, in the order they were made; returns their
/// ids (`None` for an unknown order). Later notifications of the order are held again.
pub fn release(sim: &Arc<Sim>, order_id: &str) -> Option<Vec<String>> {
    let released: Vec<String> = {
        let mut state = sim.state.lock();
        let ids = state.orders.get(order_id)?.notification_ids.clone();
        ids.into_iter()
            .filter(|id| {
                state
                    .notifications
                    .get_mut(id)
                    .is_some_and(|n| std::mem::take(&mut n.held))
            })
            .collect()
    };
    if !released.is_empty() {
        let steps = released.iter().map(|id| Step::now(id)).collect();
        let task_sim = Arc::clone(sim);
        sim.tasks
            .spawn(async move { run_sequence(task_sim, steps, true).await });
    }
    Some(released)
}

/// Signs and stores `records`; returns the ids of those held for release by hand.
async fn sign_and_store(sim: &Arc<Sim>, records: Vec<NotificationRecord>) -> Vec<String> {
    let mut held = Vec::new();
    for mut record in records {
        let signature = sim
            .sign(canonical::plaintext(
                &record.method,
                &record.uuid,
                &record.data,
            ))
            .await;
        record.body = api::encode(&wire::notification(
            &record.method,
            &record.uuid,
            &signature,
            record.data.clone(),
        ));
        if record.held {
            held.push(record.notification_id.clone());
        }
        sim.state
            .lock()
            .notifications
            .insert(record.notification_id.clone(), record);
    }
    held
}

/// Delivers notifications one after another; an answer may add follow-ups (a Withdraw `debit`
/// answered FAILED is followed by `cancel`), which are held like the rest of a held order's.
/// Stops if one is never acknowledged.
async fn run_sequence(sim: Arc<Sim>, mut queue: VecDeque<Step>, follow_up: bool) {
    while let Some(step) = queue.pop_front() {
        if !step.after.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(step.after) => {}
                () = sim.shutdown.cancelled() => return,
            }
        }
        let id = step.notification_id;
        let Some((status, limit)) = deliver_until_acknowledged(&sim, &id).await else {
            return;
        };
        if !follow_up {
            continue;
        }
        let next = {
            let mut state = sim.state.lock();
            scenario::after_answer(&mut state, &id, &status, limit.as_deref())
        };
        let next_ids: Vec<String> = next.iter().map(|n| n.notification_id.clone()).collect();
        let held = sign_and_store(&sim, next).await;
        for id in next_ids.iter().rev().filter(|id| !held.contains(id)) {
            queue.push_front(Step::now(id));
        }
    }
}

/// Delivers one notification until it is acknowledged; returns the answer's status and limit.
async fn deliver_until_acknowledged(sim: &Arc<Sim>, id: &str) -> Option<(String, Option<String>)> {
    let policy = &sim.config.retry;
    let mut interval = policy.initial_interval;
    for _ in 0..policy.max_attempts {
        let record = sim.state.lock().notifications.get_mut(id).map(|n| {
            n.attempts += 1;
            n.clone()
        })?;
        let attempt = tokio::select! {
            attempt = attempt_delivery(sim, &record) => attempt,
            () = sim.shutdown.cancelled() => return None,
        };
        let acknowledged = attempt
            .status
            .clone()
            .filter(|_| attempt.outcome == "acknowledged")
            .map(|status| (status, attempt.limit.clone()));
        {
            let mut state = sim.state.lock();
            if let (Some((status, _)), Some(n)) = (&acknowledged, state.notifications.get_mut(id)) {
                n.answered_status.get_or_insert_with(|| status.clone());
            }
            state.log_delivery(attempt);
        }
        if acknowledged.is_some() {
            return acknowledged;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = sim.shutdown.cancelled() => return None,
        }
        interval = (interval * 2).min(policy.max_interval);
    }
    if let Some(n) = sim.state.lock().notifications.get_mut(id) {
        n.gave_up = true;
    }
    None
}

/// One POST, and what the answer was worth.
async fn attempt_delivery(sim: &Arc<Sim>, record: &NotificationRecord) -> DeliveryAttempt {
    let mut attempt = DeliveryAttempt {
        at: Timestamp::now().trustly(),
        notification_id: record.notification_id.clone(),
        method: record.method.clone(),
        order_id: record.order_id.clone(),
        attempt: record.attempts,
        http_status: None,
        outcome: String::new(),
        status: None,
        limit: None,
        answer: None,
    };
    let answered = match post(sim, record, &mut attempt.http_status).await {
        Ok(body) => {
            attempt.answer = Some(logged_answer(&body));
            verified_answer(sim, record, &body).await
        }
        Err(outcome) => Err(outcome),
    };
    attempt.outcome = match answered {
        Ok(answer) => {
            let outcome = judge(&record.method, &answer);
            attempt.status = Some(answer.status);
            attempt.limit = answer.limit;
            outcome
        }
        Err(outcome) => outcome,
    }
    .into();
    attempt
}

/// POSTs the signed notification; the answer's body, or the outcome that says why there is none.
/// The HTTP status goes to `http_status` as soon as there is one.
async fn post(
    sim: &Sim,
    record: &NotificationRecord,
    http_status: &mut Option<u16>,
) -> Result<Bytes, &'static str> {
    let response = sim
        .http
        .post(&record.url)
        .header(
            http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .timeout(sim.config.retry.attempt_timeout)
        .body(record.body.clone())
        .send()
        .await
        .map_err(|error| transport_outcome(&error))?;
    *http_status = Some(response.status().as_u16());
    read_body_limited(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|error| match error {
            BodyReadError::TooLarge => "answer_too_large",
            BodyReadError::Transport(error) => transport_outcome(&error),
        })
}

/// The answer as text for the log, cut at [`MAX_LOGGED_ANSWER_CHARS`].
fn logged_answer(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(MAX_LOGGED_ANSWER_CHARS)
        .collect()
}

/// The status (and `limit`) a merchant answered with.
struct Answer {
    status: String,
    limit: Option<String>,
}

/// Reads the merchant's answer: signed with the merchant's key, echoing this notification's
/// `uuid` and `method`. A valid signed body counts whatever the HTTP status (Java/JS/.NET answer
/// FAILED with 500).
async fn verified_answer(
    sim: &Sim,
    record: &NotificationRecord,
    body: &[u8],
) -> Result<Answer, &'static str> {
    let answer =
        wire::parse_notification_response(body).map_err(|_| "not_a_notification_answer")?;
    if !sim.verify_merchant(answer.clone()).await {
        return Err("bad_signature");
    }
    if answer.uuid != record.uuid {
        return Err("wrong_uuid");
    }
    if answer.method != record.method {
        return Err("wrong_method");
    }
    let status = answer
        .data
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned();
    let limit = answer.data.get("limit").map(|limit| match limit {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    });
    Ok(Answer { status, limit })
}

/// Whether `method` may be answered so: `acknowledged`, or why not.
fn judge(method: &str, answer: &Answer) -> &'static str {
    if !allowed_statuses(method).contains(&answer.status.as_str()) {
        "status_not_allowed"
    } else if answer
        .limit
        .as_deref()
        .is_some_and(|limit| !limit_allowed(method, &answer.status, limit))
    {
        "limit_not_allowed"
    } else {
        "acknowledged"
    }
}

/// A `limit` is allowed only beside a `kyc` CONTINUE (Trustly's 2024 schema types it as a string;
/// the simulator, like the sidecar, takes it as an amount: > 0 with two decimals).
fn limit_allowed(method: &str, status: &str, limit: &str) -> bool {
    method == "kyc" && status == "CONTINUE" && limit.parse::<crate::money::Amount>().is_ok()
}

fn transport_outcome(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else {
        "transport_error"
    }
}

/// Statuses a merchant may answer (spec §4.2): only `debit` may fail, `kyc` decides.
fn allowed_statuses(method: &str) -> &'static [&'static str] {
    match method {
        "debit" => &["OK", "FAILED"],
        "kyc" => &["CONTINUE", "FINISH", "OK"],
        _ => &["OK"],
    }
}
