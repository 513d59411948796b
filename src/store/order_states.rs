//! The facts of each order's state (what `orders` folds), shared by every replica: per order a
//! set of facts keyed by fact id, written first-write-wins (so a duplicate or a replay changes
//! nothing and replicas never overwrite each other), a MessageID → order id index, and an index
//! of orders by their earliest fact time for listing. On Redis everything is kept as long as the
//! notification log keeps events, counted from the order's last fact.
//!
//! Every key carries the hash tag `{order_states}`: one Redis Cluster slot, so the pipeline that
//! adds a fact (facts, MessageID index, time index) goes to one node.
//!
//! Beside the facts, the order **change feed**: a second [`Log`] (its own stream and dedupe
//! records, under `<prefix>:order-changes`) on which the order book announces every fact it adds,
//! so `WatchOrders` reads changes with the consumer groups, wake-ups and retention of the
//! notification log.
//!
//! Distinct from [`super::orders`] (the Withdraw registry). Knows nothing of what a fact means.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Backend, Error, Expiring, Log, now_ms, redis_ttl_secs};

/// Orders per `ZRANGE` while paging the time index (a page skips at most the orders sharing the
/// cursor's millisecond; 256 keeps each call small).
const SCAN_BATCH: usize = 256;

/// One position in the time index: (earliest fact time in ms, order id).
pub type Position = (u64, String);

/// The memory side: facts per order, the MessageID index and the time index.
#[derive(Default)]
pub struct Memory {
    facts: HashMap<String, BTreeMap<String, String>>,
    messages: HashMap<String, String>,
    first_ms: HashMap<String, u64>,
    index: BTreeSet<Position>,
}

/// The order facts of the configured backend, and the change feed. Cloning shares them.
#[derive(Clone)]
pub struct OrderStates {
    pub(super) facts: Backend<Memory, Expiring>,
    /// One event per fact added (event `notification_id` = the fact id, so the log's dedupe
    /// makes it one per fact).
    pub(super) changes: Log,
}

impl OrderStates {
    /// The change feed (see the module docs).
    pub fn changes(&self) -> &Log {
        &self.changes
    }

    /// Adds one fact (as encoded by its reader) to an order, unless a fact with its id is there.
    pub async fn add(
        &self,
        order_id: &str,
        fact_id: &str,
        fact: &str,
        at_ms: u64,
        message_id: &str,
    ) -> Result<(), Error> {
        match &self.facts {
            Backend::Memory(memory) => {
                let mut memory = memory.lock();
                let memory = &mut *memory;
                let facts = memory.facts.entry(order_id.to_owned()).or_default();
                facts
                    .entry(fact_id.to_owned())
                    .or_insert_with(|| fact.to_owned());
                if !message_id.is_empty() {
                    memory
                        .messages
                        .entry(message_id.to_owned())
                        .or_insert_with(|| order_id.to_owned());
                }
                let first = memory.first_ms.entry(order_id.to_owned()).or_insert(at_ms);
                memory.index.remove(&(*first, order_id.to_owned()));
                *first = (*first).min(at_ms);
                memory.index.insert((*first, order_id.to_owned()));
                Ok(())
            }
            Backend::Redis(Expiring { at, ttl }) => {
                let ttl_secs = redis_ttl_secs(*ttl);
                let expiry = i64::try_from(ttl_secs).unwrap_or(i64::MAX);
                let facts = at.key(format_args!("{{order_states}}:facts:{order_id}"));
                let index = at.key("{order_states}:index");
                let oldest = now_ms().saturating_sub(ttl_secs.saturating_mul(1000));
                let mut pipe = redis::pipe();
                pipe.cmd("HSETNX")
                    .arg(&facts)
                    .arg(fact_id)
                    .arg(fact)
                    .ignore();
                pipe.expire(&facts, expiry).ignore();
                if !message_id.is_empty() {
                    let message = at.key(format_args!("{{order_states}}:message:{message_id}"));
                    pipe.cmd("SET")
                        .arg(message)
                        .arg(order_id)
                        .arg("NX")
                        .arg("EX")
                        .arg(ttl_secs)
                        .ignore();
                }
                // LT keeps the earliest time whichever replica wrote first.
                pipe.cmd("ZADD")
                    .arg(&index)
                    .arg("LT")
                    .arg(at_ms)
                    .arg(order_id)
                    .ignore();
                pipe.cmd("ZREMRANGEBYSCORE")
                    .arg(&index)
                    .arg("-inf")
                    .arg(format!("({oldest}"))
                    .ignore();
                pipe.expire(&index, expiry).ignore();
                at.run(|mut conn| async move { pipe.query_async::<()>(&mut conn).await })
                    .await
            }
        }
    }

    /// The encoded facts of an order (empty when unknown).
    pub async fn facts(&self, order_id: &str) -> Result<Vec<String>, Error> {
        match &self.facts {
            Backend::Memory(memory) => Ok(memory
                .lock()
                .facts
                .get(order_id)
                .map(|facts| facts.values().cloned().collect())
                .unwrap_or_default()),
            Backend::Redis(Expiring { at, .. }) => {
                let key = at.key(format_args!("{{order_states}}:facts:{order_id}"));
                at.query(&redis::Cmd::hvals(key)).await
            }
        }
    }

    /// The order a MessageID names, if any fact carried it.
    pub async fn order_for_message(&self, message_id: &str) -> Result<Option<String>, Error> {
        match &self.facts {
            Backend::Memory(memory) => Ok(memory.lock().messages.get(message_id).cloned()),
            Backend::Redis(Expiring { at, .. }) => {
                let key = at.key(format_args!("{{order_states}}:message:{message_id}"));
                at.query(&redis::Cmd::get(key)).await
            }
        }
    }

    /// Up to `limit` orders after `after` (or from `from_ms`) with an earliest fact time before
    /// `to_ms`, in (time, order id) order.
    pub async fn scan(
        &self,
        after: Option<&Position>,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<Position>, Error> {
        let start = after.map_or(from_ms, |(ms, _)| (*ms).max(from_ms));
        let past = |position: &Position| after.is_none_or(|after| position > after);
        match &self.facts {
            Backend::Memory(memory) => Ok(memory
                .lock()
                .index
                .range((start, String::new())..)
                .take_while(|(ms, _)| *ms < to_ms)
                .filter(|p| past(p))
                .take(limit)
                .cloned()
                .collect()),
            Backend::Redis(Expiring { at, .. }) => {
                let index = at.key("{order_states}:index");
                let mut found = Vec::new();
                let mut offset = 0;
                while found.len() < limit {
                    let mut range = redis::cmd("ZRANGE");
                    range
                        .arg(&index)
                        .arg(start)
                        .arg(format!("({to_ms}"))
                        .arg("BYSCORE")
                        .arg("LIMIT")
                        .arg(offset)
                        .arg(SCAN_BATCH)
                        .arg("WITHSCORES");
                    let batch: Vec<(String, u64)> = at.query(&range).await?;
                    offset += batch.len();
                    let done = batch.len() < SCAN_BATCH;
                    found.extend(
                        batch
                            .into_iter()
                            .map(|(order_id, ms)| (ms, order_id))
                            .filter(|p| past(p)),
                    );
                    if done {
                        break;
                    }
                }
                found.truncate(limit);
                Ok(found)
            }
        }
    }
}
