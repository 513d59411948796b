//! The facts of each order's state (what `orders` folds), shared by every replica: per order a
//! set of facts keyed by fact id, written first-write-wins (so a duplicate or a replay changes
//! nothing and replicas never overwrite each other), a MessageID → order id index, and an index
//! of orders by their earliest fact time for listing. On Redis everything is kept as long as the
//! notification log keeps events, counted from the order's last fact; the memory side prunes
//! by the same retention as facts are added.
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

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use super::{Backend, Error, Expiring, Log, WriteBehind, now_ms, redis_ttl_secs};

/// Orders per `ZRANGE` while paging the time index (a page skips at most the orders sharing the
/// cursor's millisecond; 256 keeps each call small).
const SCAN_BATCH: usize = 256;

/// One position in the time index: (earliest fact time in ms, order id).
pub type Position = (u64, String);

/// Orders pruned at most per fact added to the memory side: each add creates at most one order,
/// so pruning more than one keeps the memory bounded by the retention, and 8 catches up after a
/// burst without making one add walk a long list while holding the lock.
const PRUNE_PER_ADD: usize = 8;

/// One order on the memory side.
#[derive(Default)]
struct MemoryOrder {
    facts: BTreeMap<String, String>,
    /// The MessageIDs its facts named (dropped from the index with the order).
    message_ids: BTreeSet<String>,
    /// Earliest fact time (the time index).
    first_ms: u64,
    /// When its last fact was written (the retention counts from it).
    written_ms: u64,
}

/// The memory side: facts per order, the MessageID index and the time index. Kept as the Redis
/// side keeps them: an order is dropped once `retention` has passed since its last fact was
/// written, pruned a few at a time on each add from the oldest end of `by_written`.
pub struct Memory {
    orders: HashMap<String, MemoryOrder>,
    messages: HashMap<String, String>,
    index: BTreeSet<Position>,
    /// (last write in ms, order id): the pruning order.
    by_written: BTreeSet<Position>,
    retention: Duration,
}

impl Memory {
    /// An empty memory side keeping orders `retention` after their last fact.
    pub(super) fn new(retention: Duration) -> Self {
        Self {
            orders: HashMap::new(),
            messages: HashMap::new(),
            index: BTreeSet::new(),
            by_written: BTreeSet::new(),
            retention,
        }
    }

    /// [`OrderStates::add`] at `now_ms`.
    fn add(
        &mut self,
        order_id: &str,
        fact_id: &str,
        fact: &str,
        at_ms: u64,
        message_id: &str,
        now_ms: u64,
    ) {
        self.prune(now_ms);
        let order = self
            .orders
            .entry(order_id.to_owned())
            .or_insert_with(|| MemoryOrder {
                first_ms: at_ms,
                written_ms: now_ms,
                ..MemoryOrder::default()
            });
        order
            .facts
            .entry(fact_id.to_owned())
            .or_insert_with(|| fact.to_owned());
        if !message_id.is_empty() {
            let owner = self
                .messages
                .entry(message_id.to_owned())
                .or_insert_with(|| order_id.to_owned());
            if owner == order_id {
                order.message_ids.insert(message_id.to_owned());
            }
        }
        self.index.remove(&(order.first_ms, order_id.to_owned()));
        order.first_ms = order.first_ms.min(at_ms);
        self.index.insert((order.first_ms, order_id.to_owned()));
        self.by_written
            .remove(&(order.written_ms, order_id.to_owned()));
        order.written_ms = order.written_ms.max(now_ms);
        self.by_written
            .insert((order.written_ms, order_id.to_owned()));
    }

    /// Drops up to [`PRUNE_PER_ADD`] orders whose last fact is older than the retention.
    fn prune(&mut self, now_ms: u64) {
        let retention_ms = u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX);
        let oldest = now_ms.saturating_sub(retention_ms);
        for _ in 0..PRUNE_PER_ADD {
            match self.by_written.first() {
                Some((written_ms, _)) if *written_ms < oldest => {}
                _ => return,
            }
            let Some((_, order_id)) = self.by_written.pop_first() else {
                return;
            };
            let Some(order) = self.orders.remove(&order_id) else {
                continue;
            };
            self.index.remove(&(order.first_ms, order_id));
            for message_id in order.message_ids {
                self.messages.remove(&message_id);
            }
        }
    }
}

/// The order facts of the configured backend, and the change feed. Cloning shares them.
#[derive(Clone)]
pub struct OrderStates {
    pub(super) facts: Backend<Memory, Expiring>,
    /// One event per fact added (event `notification_id` = the fact id, so the log's dedupe
    /// makes it one per fact).
    pub(super) changes: Log,
    /// Facts written after their call answered: every read here waits for those already issued,
    /// so an order read after an answer sees it.
    pub(super) pending: WriteBehind,
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
                memory
                    .lock()
                    .add(order_id, fact_id, fact, at_ms, message_id, now_ms());
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
        self.pending.settled().await;
        match &self.facts {
            Backend::Memory(memory) => Ok(memory
                .lock()
                .orders
                .get(order_id)
                .map(|order| order.facts.values().cloned().collect())
                .unwrap_or_default()),
            Backend::Redis(Expiring { at, .. }) => {
                let key = at.key(format_args!("{{order_states}}:facts:{order_id}"));
                at.query(&redis::Cmd::hvals(key)).await
            }
        }
    }

    /// The order a MessageID names, if any fact carried it.
    pub async fn order_for_message(&self, message_id: &str) -> Result<Option<String>, Error> {
        self.pending.settled().await;
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
        self.pending.settled().await;
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

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: u64 = 3_600_000;

    fn memory() -> Memory {
        Memory::new(Duration::from_secs(24 * 3600))
    }

    #[test]
    fn an_order_is_dropped_once_the_retention_passed_since_its_last_fact() {
        let mut memory = memory();
        memory.add("o-old", "n:1", "a", 5, "m-old", 0);
        memory.add("o-kept", "n:2", "b", 6, "m-kept", 0);
        // A later fact keeps o-kept: the retention counts from its last fact.
        memory.add("o-kept", "n:3", "c", 7, "", 20 * HOUR_MS);
        memory.add("o-new", "n:4", "d", 8, "m-new", 25 * HOUR_MS);
        assert_eq!(
            memory
                .orders
                .keys()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            BTreeSet::from(["o-kept", "o-new"])
        );
        assert_eq!(
            memory
                .index
                .iter()
                .map(|(_, id)| id.as_str())
                .collect::<Vec<_>>(),
            ["o-kept", "o-new"]
        );
        assert!(!memory.messages.contains_key("m-old"));
        assert_eq!(
            memory.messages.get("m-kept").map(String::as_str),
            Some("o-kept")
        );
        assert_eq!(memory.by_written.len(), 2);
    }

    #[test]
    fn pruning_is_amortized_over_the_adds() {
        let mut memory = memory();
        let old = PRUNE_PER_ADD * 2 + 1;
        for i in 0..old {
            memory.add(&format!("o-{i}"), "n:1", "a", 1, &format!("m-{i}"), 0);
        }
        let later = 48 * HOUR_MS;
        memory.add("o-new", "n:2", "b", later, "", later);
        assert_eq!(memory.orders.len(), old - PRUNE_PER_ADD + 1);
        memory.add("o-new", "n:3", "b", later, "", later);
        memory.add("o-new", "n:4", "b", later, "", later);
        assert_eq!(
            memory.orders.len(),
            1,
            "every expired order gone after three adds"
        );
        assert_eq!((memory.index.len(), memory.messages.len()), (1, 0));
    }
}
