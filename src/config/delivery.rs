//! The delivery section: how events reach subscribers. Read straight into
//! [`notify::Delivery`](crate::notify::Delivery), the settings the delivery engine takes.

use std::time::Duration;

use super::*;

/// How long a subscriber has to acknowledge an event before it is delivered again, e.g. `30s`.
pub const ENV_ACK_DEADLINE: &str = "TRUSTLY_SIDECAR_ACK_DEADLINE";
pub const DEFAULT_ACK_DEADLINE: Duration = Duration::from_secs(30);
/// Deliveries of an event to a group before it moves to the group's dead letters.
pub const ENV_MAX_DELIVERIES: &str = "TRUSTLY_SIDECAR_MAX_DELIVERIES";
pub const DEFAULT_MAX_DELIVERIES: u64 = 10;
/// How often an idle notification stream gets a heartbeat, e.g. `15s`: under the common 30–60 s
/// idle timeouts of proxies and load balancers.
pub const ENV_HEARTBEAT_INTERVAL: &str = "TRUSTLY_SIDECAR_HEARTBEAT_INTERVAL";
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

pub(super) fn read(r: &mut Reader<'_>) -> Option<Delivery> {
    let ack_deadline = r.duration(ENV_ACK_DEADLINE, DEFAULT_ACK_DEADLINE);
    let heartbeat_interval = r.duration(ENV_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_INTERVAL);
    let max_deliveries = r.value(ENV_MAX_DELIVERIES, DEFAULT_MAX_DELIVERIES, |v| {
        v.parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{v:?} is not a whole number >= 1"))
    });
    Some(Delivery {
        ack_deadline: ack_deadline?,
        max_deliveries: max_deliveries?,
        heartbeat_interval: heartbeat_interval?,
    })
}
