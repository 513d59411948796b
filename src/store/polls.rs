//! The last answer of Trustly's rate-limited polls (Balance; GetWithdrawals per order), shared by
//! every replica, so the fleet calls each at most once per window (spec §5.13, §5.14: once per 15
//! minutes). [`Polls::begin`] decides atomically:
//! - `Call`: this caller has the window's turn: call Trustly, then [`Polls::finish`].
//! - `Cached`: the turn is taken: here is the last answer and when it was received.
//! - `Pending`: the turn is taken and no answer has been stored yet (the first call is in flight).

use std::{collections::HashMap, time::Duration};

use redis::Script;

use super::{Backend, Error, RedisAt, now_ms};

/// What a poll may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollBegin {
    Call,
    Cached { data: String, received_ms: u64 },
    Pending,
}

/// A record outlives its window by this many windows, so the last answer can still be served
/// while a new turn's call is in flight; after that it expires on its own.
const RETENTION_WINDOWS: u32 = 2;
/// Most records the memory backend keeps (one per polled order): a memory bound; expired records
/// are dropped first when it is reached.
const MAX_MEMORY_RECORDS: usize = 10_000;

/// Takes the turn or reads the last answer. KEYS[1]: the record; ARGV: now, window, retention
/// (ms). Returns {verdict, data, received_ms}.
const BEGIN: &str = r"
local now = tonumber(ARGV[1])
local turn = tonumber(redis.call('HGET', KEYS[1], 'turn_until') or '0')
if turn > now then
  local data = redis.call('HGET', KEYS[1], 'data')
  if data then return {'cached', data, redis.call('HGET', KEYS[1], 'at') or '0'} end
  return {'pending', '', '0'}
end
redis.call('HSET', KEYS[1], 'turn_until', now + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'call', '', '0'}
";

/// Ends a turn: stores the answer (ARGV[1], with ARGV[2] = now), or with ARGV[1] = '' gives the
/// turn back so the next caller may try (a failed call is not an answer).
const FINISH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then
  redis.call('HSET', KEYS[1], 'turn_until', 0)
else
  redis.call('HSET', KEYS[1], 'data', ARGV[1], 'at', ARGV[2])
end
return 1
";

#[derive(Clone, Debug, Default)]
pub(super) struct Record {
    turn_until: u64,
    expires: u64,
    last: Option<(String, u64)>,
}

/// The poll records of the configured backend.
#[derive(Clone)]
pub struct Polls(pub(super) Backend<HashMap<String, Record>>);

impl Polls {
    /// Takes the turn of `name` for `window`, or says what the last answer was.
    pub async fn begin(&self, name: &str, window: Duration) -> Result<PollBegin, Error> {
        let now = now_ms();
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX / 4);
        let retention_ms = window_ms.saturating_mul(u64::from(RETENTION_WINDOWS + 1));
        match &self.0 {
            Backend::Memory(records) => {
                let mut records = records.lock();
                if records.len() >= MAX_MEMORY_RECORDS {
                    records.retain(|_, record| record.expires > now);
                }
                let record = records.entry(name.to_owned()).or_default();
                if record.expires <= now {
                    *record = Record::default();
                }
                if record.turn_until > now {
                    return Ok(match &record.last {
                        Some((data, received_ms)) => PollBegin::Cached {
                            data: data.clone(),
                            received_ms: *received_ms,
                        },
                        None => PollBegin::Pending,
                    });
                }
                record.turn_until = now.saturating_add(window_ms);
                record.expires = now.saturating_add(retention_ms);
                Ok(PollBegin::Call)
            }
            Backend::Redis(at) => {
                let script = Script::new(BEGIN);
                let mut invocation = script.prepare_invoke();
                invocation
                    .key(key(at, name))
                    .arg(now)
                    .arg(window_ms.max(1))
                    .arg(retention_ms.max(1));
                let (verdict, data, received): (String, String, String) = at
                    .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
                    .await?;
                match verdict.as_str() {
                    "call" => Ok(PollBegin::Call),
                    "pending" => Ok(PollBegin::Pending),
                    "cached" => Ok(PollBegin::Cached {
                        data,
                        received_ms: received.parse().map_err(|_| Error::Protocol("poll time"))?,
                    }),
                    _ => Err(Error::Protocol("poll verdict")),
                }
            }
        }
    }

    /// Ends the turn of `name`: stores `answer` (the verified data as JSON text), or with `None`
    /// gives the turn back.
    pub async fn finish(&self, name: &str, answer: Option<&str>) -> Result<(), Error> {
        let now = now_ms();
        match &self.0 {
            Backend::Memory(records) => {
                if let Some(record) = records.lock().get_mut(name) {
                    match answer {
                        Some(data) => record.last = Some((data.to_owned(), now)),
                        None => record.turn_until = 0,
                    }
                }
                Ok(())
            }
            Backend::Redis(at) => {
                let script = Script::new(FINISH);
                let mut invocation = script.prepare_invoke();
                invocation
                    .key(key(at, name))
                    .arg(answer.unwrap_or_default())
                    .arg(now);
                at.run(|mut conn| async move { invocation.invoke_async::<i64>(&mut conn).await })
                    .await?;
                Ok(())
            }
        }
    }
}

fn key(at: &RedisAt, name: &str) -> String {
    // One key per record: no cross-key operations, so any Cluster slot will do.
    at.key(format_args!("polls:{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_call_per_window_then_the_last_answer() {
        let polls = Polls(Backend::memory());
        let window = Duration::from_secs(60);
        assert_eq!(
            polls.begin("Balance", window).await.unwrap(),
            PollBegin::Call
        );
        assert_eq!(
            polls.begin("Balance", window).await.unwrap(),
            PollBegin::Pending
        );
        polls.finish("Balance", Some("[1]")).await.unwrap();
        assert!(matches!(
            polls.begin("Balance", window).await.unwrap(),
            PollBegin::Cached { data, .. } if data == "[1]"
        ));
        // Another name has its own window; a failed call gives the turn back.
        assert_eq!(
            polls.begin("GetWithdrawals:1", window).await.unwrap(),
            PollBegin::Call
        );
        polls.finish("GetWithdrawals:1", None).await.unwrap();
        assert_eq!(
            polls.begin("GetWithdrawals:1", window).await.unwrap(),
            PollBegin::Call
        );
        // A zero window never holds the turn.
        assert_eq!(
            polls.begin("x", Duration::ZERO).await.unwrap(),
            PollBegin::Call
        );
        assert_eq!(
            polls.begin("x", Duration::ZERO).await.unwrap(),
            PollBegin::Call
        );
    }
}
