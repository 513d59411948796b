//! The logs the admin API reads: every JSON-RPC request and every notification delivery
//! attempt, each bounded.

use std::collections::VecDeque;

use serde::Serialize;
use serde_json::Value;

use super::State;

/// Entries kept in each admin log (requests, delivery attempts) before the oldest are dropped:
/// enough for any test or a long manual session, bounded so a soak test cannot exhaust memory.
pub const MAX_LOG_ENTRIES: usize = 10_000;

/// One JSON-RPC request as the simulator saw it.
#[derive(Clone, Debug, Serialize)]
pub struct RequestRecord {
    pub at: String,
    pub method: Option<String>,
    pub uuid: Option<String>,
    pub signature_valid: bool,
    /// `OK`, or the error name answered.
    pub outcome: String,
    pub error_code: Option<i64>,
    /// Answered from the UUID replay record, without acting.
    pub replayed: bool,
    /// The fault injected into this exchange, if any.
    pub fault: Option<String>,
    /// The request's `Data` as received, with the Password redacted (what the merchant sent).
    pub data: Option<Value>,
}

/// One delivery attempt of a notification.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryAttempt {
    pub at: String,
    pub notification_id: String,
    pub method: String,
    pub order_id: String,
    pub attempt: u32,
    pub http_status: Option<u16>,
    /// `acknowledged`, `transport_error`, `timeout`, `bad_signature`, `wrong_uuid`, ...
    pub outcome: String,
    pub status: Option<String>,
    /// The `limit` a `kyc` answer gave with CONTINUE (Trustly's 2024 schema), as sent.
    pub limit: Option<String>,
    /// The merchant's answer body as text, cut at [`MAX_LOGGED_ANSWER_CHARS`]: what the console
    /// shows beside a delivery that was not acknowledged.
    pub answer: Option<String>,
}

/// Characters of a merchant's answer kept per delivery attempt: a signed answer is well under
/// 1 KiB, and an error page's first 2 KiB say what went wrong without filling the log.
pub const MAX_LOGGED_ANSWER_CHARS: usize = 2048;

impl State {
    pub fn log_request(&mut self, record: RequestRecord) {
        push_bounded(&mut self.requests, record);
    }

    pub fn log_delivery(&mut self, attempt: DeliveryAttempt) {
        push_bounded(&mut self.deliveries, attempt);
    }
}

fn push_bounded<T>(log: &mut VecDeque<T>, entry: T) {
    if log.len() == MAX_LOG_ENTRIES {
        log.pop_front();
    }
    log.push_back(entry);
}
