//! The Redis notification log: a Redis Stream with consumer groups, shared by every replica.
//!
//! Every key of the family carries the hash tag `{notifications}`, so on Redis Cluster they share
//! one slot and the Lua scripts that touch several of them stay atomic. Every call is bounded by a
//! timeout; the connection manager reconnects after a Redis restart.

use std::{collections::HashMap, time::Duration};

use bytes::Bytes;
use redis::{AsyncCommands, Script, Value};

use super::{Event, GroupBacklog, NewEvent, Reader, Recorded, Start};
mod entries;

use entries::{
    decode_event, decode_reply, encode_event, parse_entry, parse_group_info, stream_order,
};

use crate::store::{
    Error,
    connection::{Connection, bounded},
    wake::Wakes,
};

/// Appends unless the notificationid is known, and stores the reply, atomically; an append is
/// announced on the wake channel (ARGV[11], message ARGV[12]) in the same step, so other
/// replicas' subscribers wake without polling and intake pays no extra round trip. `pcall`: a
/// user without pub/sub rights loses only the wake-ups (replicas then poll), never an append.
/// Reply values are `R<bytes>` (answered) or `P` (awaiting a decision). The `decision` field
/// (`1`/`0`, whether the event awaits a subscriber's decision) was added after the first release:
/// entries without it read as `decision_required: None`.
const RECORD: &str = r"
local existing = redis.call('GET', KEYS[2])
if existing then return {0, existing} end
local id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*',
  'notificationid', ARGV[3], 'method', ARGV[4], 'orderid', ARGV[5], 'messageid', ARGV[6],
  'received', ARGV[7], 'body', ARGV[8], 'decision', ARGV[10])
redis.call('SET', KEYS[2], ARGV[9], 'EX', ARGV[2])
if ARGV[6] ~= '' and ARGV[5] ~= '' then redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[2]) end
redis.pcall('PUBLISH', ARGV[11], ARGV[12])
return {1, id}
";

/// Moves a pending entry to the group's dead letters and acknowledges it, atomically.
const DEAD_LETTER: &str = r"
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
";

/// Keys of the notification family under a configurable prefix.
#[derive(Clone, Debug)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn stream(&self) -> String {
        format!("{}:{{notifications}}:log", self.prefix)
    }
    fn reply(&self, notification_id: &str) -> String {
        format!("{}:{{notifications}}:reply:{notification_id}", self.prefix)
    }
    fn dead(&self, group: &str) -> String {
        format!("{}:{{notifications}}:dead:{group}", self.prefix)
    }
    fn message(&self, message_id: &str) -> String {
        format!("{}:{{notifications}}:message:{message_id}", self.prefix)
    }
}

/// The Redis log. Cloning shares the connection.
#[derive(Clone)]
pub struct Log {
    conn: Connection,
    keys: Keys,
    retention: Duration,
    timeout: Duration,
    /// Wakes this process's subscribers when it appends (the others hear the announcement).
    wakes: Wakes,
}

impl Log {
    /// The log on `conn` under `prefix`; `retention` is how long events and dedupe records live.
    pub(crate) fn new(
        conn: Connection,
        prefix: &str,
        retention: Duration,
        timeout: Duration,
        wakes: Wakes,
    ) -> Self {
        Self {
            conn,
            keys: Keys {
                prefix: prefix.to_owned(),
            },
            retention,
            timeout,
            wakes,
        }
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Error> {
        bounded(self.timeout, call).await
    }

    /// Runs one command on the shared connection, bounded by the timeout.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Error> {
        let mut conn = self.conn.clone();
        self.bounded(cmd.query_async(&mut conn)).await
    }

    pub(super) async fn record(
        &self,
        event: &NewEvent,
        reply: Option<&Bytes>,
    ) -> Result<Recorded, Error> {
        let n = &event.notification;
        let min_id = n
            .received_ms
            .saturating_sub(self.retention.as_millis() as u64);
        let mut stored_reply = Vec::with_capacity(reply.map_or(1, |r| r.len() + 1));
        match reply {
            Some(reply) => {
                stored_reply.push(b'R');
                stored_reply.extend_from_slice(reply);
            }
            None => stored_reply.push(b'P'),
        }
        let script = Script::new(RECORD);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.keys.stream())
            .key(self.keys.reply(&n.notification_id))
            .key(self.keys.message(&n.message_id))
            .arg(min_id)
            .arg(self.retention.as_secs().max(1))
            .arg(&n.notification_id)
            .arg(&n.method)
            .arg(&n.order_id)
            .arg(&n.message_id)
            .arg(n.received_ms)
            .arg(n.body.as_ref())
            .arg(stored_reply)
            .arg(if event.decision_required { "1" } else { "0" })
            .arg(self.wakes.channel())
            .arg(self.wakes.append_message());
        let mut conn = self.conn.clone();
        let (fresh, value): (i64, Vec<u8>) =
            self.bounded(invocation.invoke_async(&mut conn)).await?;
        if fresh == 1 {
            let event_id =
                String::from_utf8(value).map_err(|_| Error::Protocol("stream id is not text"))?;
            self.wakes.appended();
            return Ok(Recorded::New { event_id });
        }
        Ok(Recorded::Duplicate {
            reply: decode_reply(&value),
        })
    }

    pub(super) fn wakes(&self) -> &Wakes {
        &self.wakes
    }

    pub(super) async fn set_reply(
        &self,
        notification_id: &str,
        reply: &Bytes,
    ) -> Result<(), Error> {
        let mut value = Vec::with_capacity(reply.len() + 1);
        value.push(b'R');
        value.extend_from_slice(reply);
        let mut conn = self.conn.clone();
        let key = self.keys.reply(notification_id);
        let ttl = self.retention.as_secs().max(1);
        self.bounded(conn.set_ex::<_, _, ()>(key, value, ttl)).await
    }

    /// One `MGET`: the reply keys share the `{notifications}` slot.
    pub(super) async fn replies(
        &self,
        notification_ids: &[&str],
    ) -> Result<Vec<Option<Bytes>>, Error> {
        if notification_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut mget = redis::cmd("MGET");
        for id in notification_ids {
            mget.arg(self.keys.reply(id));
        }
        let stored: Vec<Option<Vec<u8>>> = self.query(&mget).await?;
        if stored.len() != notification_ids.len() {
            return Err(Error::Protocol("MGET reply"));
        }
        Ok(stored
            .iter()
            .map(|value| value.as_deref().and_then(decode_reply))
            .collect())
    }

    pub(super) async fn join(&self, group: &str, start: &Start) -> Result<(), Error> {
        let (create_at, reposition) = match start {
            Start::New => ("$".to_owned(), false),
            Start::GroupPosition => ("0".to_owned(), false),
            Start::AfterEvent(id) => (id.clone(), true),
            Start::FromTime(ms) => (format!("{}-{}", ms.saturating_sub(1), u64::MAX), true),
        };
        let mut conn = self.conn.clone();
        let created: redis::RedisResult<()> = self
            .bounded(async {
                Ok(redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(self.keys.stream())
                    .arg(group)
                    .arg(&create_at)
                    .arg("MKSTREAM")
                    .query_async(&mut conn)
                    .await)
            })
            .await?;
        match created {
            Ok(()) => Ok(()),
            Err(error) if error.code() == Some("BUSYGROUP") => {
                if reposition {
                    self.query::<()>(
                        redis::cmd("XGROUP")
                            .arg("SETID")
                            .arg(self.keys.stream())
                            .arg(group)
                            .arg(&create_at),
                    )
                    .await?;
                }
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Non-blocking read: a blocking XREADGROUP would stall the shared multiplexed connection, so
    /// callers wait on the wake-ups between reads (see `notify::delivery`).
    pub(super) async fn read_new(&self, reader: Reader<'_>) -> Result<Vec<Event>, Error> {
        let reply: Value = self
            .query(
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(reader.group)
                    .arg(reader.consumer)
                    .arg("COUNT")
                    .arg(reader.count)
                    .arg("STREAMS")
                    .arg(self.keys.stream())
                    .arg(">"),
            )
            .await?;
        // XREADGROUP: nil, or [[stream, [[id, [field, value, ...]], ...]]].
        let Value::Array(streams) = reply else {
            return Ok(Vec::new());
        };
        let mut events = Vec::new();
        for stream in streams {
            if let Value::Array(mut parts) = stream
                && parts.len() == 2
                && let Value::Array(entries) = parts.remove(1)
            {
                events.extend(
                    entries
                        .into_iter()
                        .filter_map(|entry| parse_entry(entry, 1)),
                );
            }
        }
        Ok(events)
    }

    pub(super) async fn claim_stale(
        &self,
        reader: Reader<'_>,
        idle: Duration,
    ) -> Result<Vec<Event>, Error> {
        let reply: Value = self
            .query(
                redis::cmd("XAUTOCLAIM")
                    .arg(self.keys.stream())
                    .arg(reader.group)
                    .arg(reader.consumer)
                    .arg(idle.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(reader.count),
            )
            .await?;
        // XAUTOCLAIM: [next-id, [[id, fields], ...], [deleted ids]].
        let Value::Array(mut parts) = reply else {
            return Err(Error::Protocol("XAUTOCLAIM reply"));
        };
        if parts.len() < 2 {
            return Err(Error::Protocol("XAUTOCLAIM reply"));
        }
        let Value::Array(entries) = parts.remove(1) else {
            return Ok(Vec::new());
        };
        let mut claimed = Vec::new();
        for entry in entries {
            let Some(mut event) = parse_entry(entry, 0) else {
                continue;
            };
            event.delivery_count = self.delivery_count(reader.group, &event.id).await?;
            claimed.push(event);
        }
        Ok(claimed)
    }

    async fn delivery_count(&self, group: &str, event_id: &str) -> Result<u64, Error> {
        let reply: Value = self
            .query(
                redis::cmd("XPENDING")
                    .arg(self.keys.stream())
                    .arg(group)
                    .arg(event_id)
                    .arg(event_id)
                    .arg(1),
            )
            .await?;
        // [[id, consumer, idle-ms, deliveries]]
        if let Value::Array(rows) = reply
            && let Some(Value::Array(row)) = rows.into_iter().next()
            && let Some(Value::Int(count)) = row.get(3)
        {
            return Ok(u64::try_from(*count).unwrap_or(1));
        }
        Ok(1)
    }

    pub(super) async fn ack(&self, group: &str, event_id: &str) -> Result<bool, Error> {
        let mut conn = self.conn.clone();
        let acked: i64 = self
            .bounded(conn.xack(self.keys.stream(), group, &[event_id]))
            .await?;
        Ok(acked == 1)
    }

    pub(super) async fn dead_letter(&self, group: &str, event: &Event) -> Result<(), Error> {
        let script = Script::new(DEAD_LETTER);
        let mut invocation = script.prepare_invoke();
        invocation
            .key(self.keys.stream())
            .key(self.keys.dead(group))
            .arg(group)
            .arg(&event.id)
            .arg(encode_event(event));
        let mut conn = self.conn.clone();
        self.bounded(invocation.invoke_async::<i64>(&mut conn))
            .await
            .map(|_| ())
    }

    pub(super) async fn dead_letters(
        &self,
        group: &str,
        count: usize,
    ) -> Result<Vec<Event>, Error> {
        let mut conn = self.conn.clone();
        let all: HashMap<String, Vec<u8>> =
            self.bounded(conn.hgetall(self.keys.dead(group))).await?;
        let mut events: Vec<Event> = all
            .into_values()
            .filter_map(|bytes| decode_event(&bytes))
            .collect();
        events.sort_by_key(|event| stream_order(&event.id));
        events.truncate(count);
        Ok(events)
    }

    pub(super) async fn replay_dead_letter(
        &self,
        group: &str,
        event_id: &str,
    ) -> Result<bool, Error> {
        let mut conn = self.conn.clone();
        let removed: i64 = self
            .bounded(conn.hdel(self.keys.dead(group), event_id))
            .await?;
        if removed == 0 {
            return Ok(false);
        }
        // Pending again, marked long idle with no deliveries: the next claim hands it out at once.
        let _: Value = self
            .query(
                redis::cmd("XCLAIM")
                    .arg(self.keys.stream())
                    .arg(group)
                    .arg("dead-letter-replay")
                    .arg(0)
                    .arg(event_id)
                    .arg("IDLE")
                    .arg(3_600_000)
                    .arg("RETRYCOUNT")
                    .arg(0)
                    .arg("FORCE")
                    .arg("JUSTID"),
            )
            .await?;
        Ok(true)
    }

    pub(super) async fn backlogs(&self) -> Result<Vec<GroupBacklog>, Error> {
        let reply = self
            .query::<Value>(redis::cmd("XINFO").arg("GROUPS").arg(self.keys.stream()))
            .await;
        let groups = match reply {
            Ok(Value::Array(groups)) => groups,
            Ok(_) => return Err(Error::Protocol("XINFO GROUPS")),
            // No event yet: no stream, so no groups.
            Err(Error::Redis(error)) if error.to_string().contains("no such key") => {
                return Ok(Vec::new());
            }
            Err(error) => return Err(error),
        };
        Ok(groups.into_iter().filter_map(parse_group_info).collect())
    }

    pub(super) async fn ping(&self) -> Result<(), Error> {
        self.query::<String>(&redis::cmd("PING")).await.map(|_| ())
    }
}
