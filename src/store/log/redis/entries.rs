//! The Redis log's stored forms: stream entries, dead letters (JSON in a hash), dedupe replies
//! and `XINFO GROUPS` rows, read back into the log's types. Every reader tolerates a missing field
//! (entries written by an older release read as before).

use std::collections::HashMap;

use bytes::Bytes;
use redis::Value;

use super::super::{Event, GroupBacklog, Notification};

/// One group of `XINFO GROUPS` (a flat name/value array in RESP2, a map in RESP3).
pub(super) fn parse_group_info(group: Value) -> Option<GroupBacklog> {
    let pairs: Vec<(Value, Value)> = match group {
        Value::Array(flat) => {
            let mut flat = flat.into_iter();
            std::iter::from_fn(|| Some((flat.next()?, flat.next()?))).collect()
        }
        Value::Map(pairs) => pairs,
        _ => return None,
    };
    let (mut name, mut pending, mut undelivered) = (None, 0, None);
    for (field, value) in pairs {
        match (text(field).as_deref(), value) {
            (Some("name"), value) => name = text(value),
            (Some("pending"), Value::Int(n)) => pending = u64::try_from(n).unwrap_or(0),
            (Some("lag"), Value::Int(n)) => undelivered = u64::try_from(n).ok(),
            _ => {}
        }
    }
    Some(GroupBacklog {
        group: name?,
        undelivered,
        pending,
    })
}

pub(super) fn decode_reply(stored: &[u8]) -> Option<Bytes> {
    match stored.split_first() {
        Some((b'R', reply)) => Some(Bytes::copy_from_slice(reply)),
        _ => None,
    }
}

/// (ms, seq) of a stream id, for ordering.
pub(super) fn stream_order(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

/// A stream entry `[id, [field, value, ...]]` as an event.
pub(super) fn parse_entry(entry: Value, delivery_count: u64) -> Option<Event> {
    let Value::Array(mut parts) = entry else {
        return None;
    };
    if parts.len() != 2 {
        return None;
    }
    let Value::Array(fields) = parts.pop()? else {
        return None;
    };
    let id = text(parts.pop()?)?;
    let mut map: HashMap<String, Vec<u8>> = HashMap::new();
    let mut fields = fields.into_iter();
    while let (Some(key), Some(value)) = (fields.next(), fields.next()) {
        map.insert(text(key)?, bytes(value)?);
    }
    let field = |name: &str| {
        map.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    Some(Event {
        id,
        notification: Notification {
            notification_id: field("notificationid"),
            method: field("method"),
            order_id: field("orderid"),
            message_id: field("messageid"),
            received_ms: field("received").parse().unwrap_or(0),
            body: Bytes::from(map.get("body").cloned().unwrap_or_default()),
        },
        delivery_count,
        decision_required: map.get("decision").map(|flag| flag.as_slice() == b"1"),
    })
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        _ => None,
    }
}

fn text(value: Value) -> Option<String> {
    bytes(value).and_then(|b| String::from_utf8(b).ok())
}

/// Dead letters are kept as JSON objects in a hash keyed by event id.
pub(super) fn encode_event(event: &Event) -> Vec<u8> {
    let n = &event.notification;
    serde_json::to_vec(&serde_json::json!({
        "id": event.id,
        "notificationid": n.notification_id,
        "method": n.method,
        "orderid": n.order_id,
        "messageid": n.message_id,
        "received": n.received_ms,
        "body": String::from_utf8_lossy(&n.body),
        "deliveries": event.delivery_count,
        "decision": event.decision_required,
    }))
    .unwrap_or_default()
}

pub(super) fn decode_event(bytes: &[u8]) -> Option<Event> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let text = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let number = |name: &str| value.get(name).and_then(|v| v.as_u64()).unwrap_or_default();
    Some(Event {
        id: text("id"),
        notification: Notification {
            notification_id: text("notificationid"),
            method: text("method"),
            order_id: text("orderid"),
            message_id: text("messageid"),
            received_ms: number("received"),
            body: Bytes::from(text("body")),
        },
        delivery_count: number("deliveries"),
        decision_required: value.get("decision").and_then(serde_json::Value::as_bool),
    })
}
