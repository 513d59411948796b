//! Idempotency records (design §4): for each (merchant, method, key) the request fingerprint, the
//! JSON-RPC UUID, the exact signed request, a lease while a call is in flight, and the outcome.
//! The signed request is kept only until the outcome is known: a finished record answers from its
//! outcome and never sends again, so [`Idempotency::finish`] drops it with the final outcome (a
//! finished AccountPayout record takes ~0.4 KB of Redis memory instead of ~1.7 KB; see the
//! `cost` benchmark). Records written before that kept it; they read the same.
//!
//! [`Idempotency::begin`] decides atomically what a call may do:
//! - `Proceed`: first use: the key is reserved under a lease; send the request.
//! - `Replay`: an earlier attempt ended ambiguously or its process died (lease expired): send the
//!   **stored** signed request again, byte for byte, never a new one.
//! - `Finished`: the stored outcome; send nothing.
//! - `InProgress`: another call holds the lease.
//! - `Reused`: the key was used for a different request.

use std::{collections::HashMap, time::Duration};

use bytes::Bytes;
use redis::Script;

use super::{Backend, Connection, RedisAt};
use serde::{Deserialize, Serialize};

use super::{Error, now_ms};

/// What an idempotent call may do.
#[derive(Clone, Debug, PartialEq)]
pub enum Begin {
    Proceed,
    Replay { request: Bytes },
    Finished(Outcome),
    InProgress,
    Reused,
}

/// A stored, final outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// Trustly's verified answer data, as JSON text.
    Success { data: String },
    /// A verified Trustly error.
    Rejected { code: i64, message: String },
}

/// What a finished attempt stores.
#[derive(Clone, Debug, PartialEq)]
pub enum Finish {
    Final(Outcome),
    /// The outcome is unknown: keep the request for a byte-identical replay.
    Ambiguous,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Record {
    fingerprint: String,
    uuid: String,
    /// The signed request, until the outcome is known (then empty, and absent in Redis).
    #[serde(with = "text_bytes", default, skip_serializing_if = "Vec::is_empty")]
    request: Vec<u8>,
    /// In flight until this time (ms since epoch); 0 when not in flight.
    lease_until: u64,
    outcome: Option<Outcome>,
}

/// Signed requests are JSON text; stored as a string so the record stays readable JSON.
mod text_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(bytes))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

/// Decides and updates atomically in Redis. ARGV: now, fingerprint, new-record JSON, lease_until,
/// retention seconds. Returns {verdict, payload}.
const BEGIN: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[5])
  return {'proceed', ''}
end
local record = cjson.decode(raw)
if record.fingerprint ~= ARGV[2] then return {'reused', ''} end
if record.outcome and record.outcome ~= cjson.null then return {'finished', cjson.encode(record.outcome)} end
if tonumber(record.lease_until) > tonumber(ARGV[1]) then return {'in_progress', ''} end
record.lease_until = tonumber(ARGV[4])
redis.call('SET', KEYS[1], cjson.encode(record), 'KEEPTTL')
return {'replay', record.request}
";

/// Ends an ambiguous attempt: clears the lease and keeps the signed request for a replay. (A final
/// outcome needs no script: see [`Idempotency::finish`].)
const CLEAR_LEASE: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local record = cjson.decode(raw)
record.lease_until = 0
redis.call('SET', KEYS[1], cjson.encode(record), 'KEEPTTL')
return 1
";

/// The idempotency store of the configured backend.
#[derive(Clone)]
pub struct Idempotency(Backend<MemoryRecords>);

/// How often the memory backend drops expired records. Sweeping on every call made each call
/// O(records) (it showed up as 8% of a core in the gateway benchmark); expired records are ignored
/// on lookup in between.
const MEMORY_SWEEP_INTERVAL_MS: u64 = 60_000;

/// Most records the memory backend keeps: a memory bound for a long-running sandbox (a record
/// holds its signed request, ~2 KB, until its outcome is known). Past it the records closest to expiry are dropped first, a
/// tenth at a time; the memory backend promises nothing across restarts anyway.
const MAX_MEMORY_RECORDS: usize = 100_000;

#[derive(Default)]
struct MemoryRecords {
    /// Record and its expiry (ms since epoch).
    records: HashMap<String, (Record, u64)>,
    next_sweep: u64,
}

impl MemoryRecords {
    /// The live record of `id`, if any (expired ones are dropped).
    fn live(&mut self, id: &str, now: u64) -> Option<&mut Record> {
        if now >= self.next_sweep {
            self.records.retain(|_, (_, expires)| *expires > now);
            self.next_sweep = now + MEMORY_SWEEP_INTERVAL_MS;
        }
        if self
            .records
            .get(id)
            .is_some_and(|(_, expires)| *expires <= now)
        {
            self.records.remove(id);
        }
        self.records.get_mut(id).map(|(record, _)| record)
    }

    fn insert(&mut self, id: String, record: Record, expires: u64) {
        if self.records.len() >= MAX_MEMORY_RECORDS {
            let mut by_expiry: Vec<(u64, String)> = self
                .records
                .iter()
                .map(|(id, (_, expires))| (*expires, id.clone()))
                .collect();
            by_expiry.sort_unstable();
            for (_, id) in by_expiry.into_iter().take(MAX_MEMORY_RECORDS / 10) {
                self.records.remove(&id);
            }
        }
        self.records.insert(id, (record, expires));
    }
}

/// A call's identity: (merchant, method, key), hashed into the record key.
pub struct Scope<'a> {
    pub merchant: &'a str,
    pub method: &'a str,
    pub key: &'a str,
}

impl Scope<'_> {
    /// The record's id: a digest of the scope.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        use std::fmt::Write;
        let digest = Sha256::digest(format!("{}\n{}\n{}", self.merchant, self.method, self.key));
        digest.iter().fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
    }
}

impl Idempotency {
    pub fn memory() -> Self {
        Idempotency(Backend::memory())
    }

    /// Redis records under `prefix`, on the shared connection of the notification log.
    pub fn redis(conn: Connection, prefix: &str, timeout: Duration) -> Self {
        Idempotency(Backend::Redis(RedisAt::new(conn, prefix, timeout)))
    }

    fn key(at: &RedisAt, scope: &Scope<'_>) -> String {
        // One key per record: no cross-key operations, so any Cluster slot will do.
        at.key(format_args!("idempotency:{}", scope.id()))
    }

    /// Reserves the key (or decides otherwise, see [`Begin`]) for a request with this fingerprint,
    /// UUID and signed body; `lease` bounds how long an attempt may hold it; records live for
    /// `retention`.
    pub async fn begin(
        &self,
        scope: &Scope<'_>,
        fingerprint: &str,
        uuid: &str,
        request: &Bytes,
        lease: Duration,
        retention: Duration,
    ) -> Result<Begin, Error> {
        let now = now_ms();
        let lease_until = now + u64::try_from(lease.as_millis()).unwrap_or(u64::MAX / 2);
        let fresh = Record {
            fingerprint: fingerprint.to_owned(),
            uuid: uuid.to_owned(),
            request: request.to_vec(),
            lease_until,
            outcome: None,
        };
        match &self.0 {
            Backend::Memory(records) => {
                let mut records = records.lock();
                let id = scope.id();
                let expires = now + u64::try_from(retention.as_millis()).unwrap_or(u64::MAX / 2);
                let Some(record) = records.live(&id, now) else {
                    records.insert(id, fresh, expires);
                    return Ok(Begin::Proceed);
                };
                Ok(if record.fingerprint != fingerprint {
                    Begin::Reused
                } else if let Some(outcome) = &record.outcome {
                    Begin::Finished(outcome.clone())
                } else if record.lease_until > now {
                    Begin::InProgress
                } else {
                    record.lease_until = lease_until;
                    Begin::Replay {
                        request: Bytes::from(record.request.clone()),
                    }
                })
            }
            Backend::Redis(at) => {
                let json = serde_json::to_string(&fresh)
                    .map_err(|_| Error::Protocol("record encoding"))?;
                let script = Script::new(BEGIN);
                let mut invocation = script.prepare_invoke();
                invocation
                    .key(Self::key(at, scope))
                    .arg(now)
                    .arg(fingerprint)
                    .arg(json)
                    .arg(lease_until)
                    .arg(retention.as_secs().max(1));
                let (verdict, payload): (String, Vec<u8>) = at
                    .run(|mut conn| async move { invocation.invoke_async(&mut conn).await })
                    .await?;
                match verdict.as_str() {
                    "proceed" => Ok(Begin::Proceed),
                    "reused" => Ok(Begin::Reused),
                    "in_progress" => Ok(Begin::InProgress),
                    "replay" => Ok(Begin::Replay {
                        request: Bytes::from(payload),
                    }),
                    "finished" => serde_json::from_slice(&payload)
                        .map(Begin::Finished)
                        .map_err(|_| Error::Protocol("stored outcome")),
                    _ => Err(Error::Protocol("idempotency verdict")),
                }
            }
        }
    }

    /// Ends the attempt that [`Idempotency::begin`] let proceed (or replay) with this
    /// `fingerprint` and `uuid`. A final outcome replaces the signed request (no replay will need
    /// it).
    pub async fn finish(
        &self,
        scope: &Scope<'_>,
        fingerprint: &str,
        uuid: &str,
        finish: &Finish,
    ) -> Result<(), Error> {
        let outcome = match finish {
            Finish::Final(outcome) => Some(outcome),
            Finish::Ambiguous => None,
        };
        match &self.0 {
            Backend::Memory(records) => {
                if let Some(record) = records.lock().live(&scope.id(), now_ms()) {
                    record.lease_until = 0;
                    if let Some(outcome) = outcome {
                        record.outcome = Some(outcome.clone());
                        record.request = Vec::new();
                    }
                }
                Ok(())
            }
            Backend::Redis(at) => {
                let key = Self::key(at, scope);
                let Some(outcome) = outcome else {
                    let script = Script::new(CLEAR_LEASE);
                    let mut invocation = script.prepare_invoke();
                    invocation.key(key);
                    at.run(
                        |mut conn| async move { invocation.invoke_async::<i64>(&mut conn).await },
                    )
                    .await?;
                    return Ok(());
                };
                // The finished record is known whole here, so a plain SET replaces it (only while
                // it exists, keeping its expiry): no script decodes and re-encodes the stored one
                // with its signed request, on a Redis every replica shares.
                let finished = Record {
                    fingerprint: fingerprint.to_owned(),
                    uuid: uuid.to_owned(),
                    request: Vec::new(),
                    lease_until: 0,
                    outcome: Some(outcome.clone()),
                };
                let json = serde_json::to_string(&finished)
                    .map_err(|_| Error::Protocol("record encoding"))?;
                let mut set = redis::cmd("SET");
                set.arg(key).arg(json).arg("XX").arg("KEEPTTL");
                at.query::<Option<String>>(&set).await?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(uuid: &str) -> Record {
        Record {
            fingerprint: "f".into(),
            uuid: uuid.into(),
            request: Vec::new(),
            lease_until: 0,
            outcome: None,
        }
    }

    #[tokio::test]
    async fn a_final_outcome_drops_the_signed_request_and_an_ambiguous_one_keeps_it() {
        let store = Idempotency::memory();
        let (lease, retention) = (Duration::ZERO, Duration::from_secs(60));
        let request = Bytes::from_static(b"{\"method\":\"AccountPayout\"}");
        let other = Bytes::from_static(b"{}");
        let scope = Scope {
            merchant: "m",
            method: "AccountPayout",
            key: "k",
        };
        let begin = store.begin(&scope, "f", "u", &request, lease, retention);
        assert_eq!(begin.await.unwrap(), Begin::Proceed);
        store
            .finish(&scope, "f", "u", &Finish::Ambiguous)
            .await
            .unwrap();
        let begin = store.begin(&scope, "f", "u", &other, lease, retention);
        assert_eq!(
            begin.await.unwrap(),
            Begin::Replay {
                request: request.clone()
            },
            "kept for a byte-identical replay"
        );

        let outcome = Outcome::Success {
            data: r#"{"orderid":"1"}"#.into(),
        };
        let finish = Finish::Final(outcome.clone());
        store.finish(&scope, "f", "u", &finish).await.unwrap();
        let Backend::Memory(records) = &store.0 else {
            unreachable!()
        };
        let kept = records.lock().live(&scope.id(), now_ms()).cloned().unwrap();
        assert!(kept.request.is_empty(), "dropped with the outcome");
        let begin = store.begin(&scope, "f", "u", &other, lease, retention);
        assert_eq!(begin.await.unwrap(), Begin::Finished(outcome));
    }

    #[test]
    fn a_record_written_with_its_request_or_without_reads_the_same() {
        let old = r#"{"fingerprint":"f","uuid":"u","request":"{}","lease_until":0,"outcome":null}"#;
        let slim = r#"{"fingerprint":"f","uuid":"u","lease_until":0,"outcome":null}"#;
        let old: Record = serde_json::from_str(old).unwrap();
        let slim: Record = serde_json::from_str(slim).unwrap();
        assert_eq!(old.request, b"{}");
        assert!(slim.request.is_empty());
        assert_eq!((old.fingerprint, old.uuid), (slim.fingerprint, slim.uuid));
    }

    #[test]
    fn memory_records_expire_and_stay_bounded() {
        let mut memory = MemoryRecords::default();
        memory.insert("old".into(), record("old"), 1_000);
        assert!(memory.live("old", 999).is_some());
        assert!(memory.live("old", 1_000).is_none(), "expired at its time");
        assert!(memory.records.is_empty(), "and dropped");

        for i in 0..MAX_MEMORY_RECORDS {
            memory.insert(format!("k{i}"), record("r"), 10_000 + i as u64);
        }
        memory.insert("newest".into(), record("n"), u64::MAX);
        assert_eq!(
            memory.records.len(),
            MAX_MEMORY_RECORDS - MAX_MEMORY_RECORDS / 10 + 1
        );
        assert!(
            memory.live("k0", 0).is_none(),
            "the closest to expiry went first"
        );
        assert!(
            memory
                .live(&format!("k{}", MAX_MEMORY_RECORDS - 1), 0)
                .is_some()
        );
        assert!(memory.live("newest", 0).is_some());
    }
}
