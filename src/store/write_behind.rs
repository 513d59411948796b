//! Store writes that follow the answer (issue 17: one store round trip on a call's critical
//! path). An idempotent call must reserve its key before it sends; its outcome and the order-state
//! fact of its answer need not delay the answer, so they are written here after it.
//!
//! What keeps every guarantee:
//! - **Shutdown drains them**: [`WriteBehind::drain`] runs after the gRPC server stopped. Each
//!   write is bounded by the store's timeout, and so is every wait for one.
//! - **Read your writes in this process**: a reader that must see them (the same idempotency key
//!   again, an order read) first waits for the writes already issued ([`WriteBehind::settled`],
//!   [`WriteBehind::settled_key`]), so a replica answers as if they had been written before.
//! - **Across replicas the lease covers the gap**: until the outcome lands, the same key on another
//!   replica answers "in progress", as it does while the first call is in flight.
//! - **A crash loses nothing**: a process that dies before the outcome lands leaves the lease to
//!   expire, and the next call with the key resends the stored signed request byte for byte, as
//!   after a crash during the send.

use std::{collections::BTreeMap, future::Future, sync::Arc};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

/// Writes in flight after their call answered. Cloning shares them.
#[derive(Clone, Default)]
pub struct WriteBehind {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    tasks: TaskTracker,
    in_flight: Mutex<InFlight>,
    /// Notified whenever a write ends.
    ended: Notify,
}

#[derive(Default)]
struct InFlight {
    next: u64,
    /// Issue number → the key the write is for (an idempotency record's id), if any.
    writes: BTreeMap<u64, Option<String>>,
}

impl WriteBehind {
    /// Runs `write` in the background, tracked until it ends; `key` names the record it writes so
    /// that [`WriteBehind::settled_key`] can wait for it alone.
    pub fn spawn<F>(&self, key: Option<String>, write: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let number = {
            let mut in_flight = self.inner.in_flight.lock();
            let number = in_flight.next;
            in_flight.next += 1;
            in_flight.writes.insert(number, key);
            number
        };
        let inner = Arc::clone(&self.inner);
        self.inner.tasks.spawn(async move {
            write.await;
            inner.in_flight.lock().writes.remove(&number);
            inner.ended.notify_waiters();
        });
    }

    /// Waits for every write issued before this call.
    pub async fn settled(&self) {
        self.settled_where(|_| true).await;
    }

    /// Waits for the writes for `key` issued before this call.
    pub async fn settled_key(&self, key: &str) {
        self.settled_where(|written| written.as_deref() == Some(key))
            .await;
    }

    async fn settled_where(&self, matches: impl Fn(&Option<String>) -> bool) {
        let before = self.inner.in_flight.lock().next;
        loop {
            let ended = self.inner.ended.notified();
            tokio::pin!(ended);
            // Registered before looking, so an end between the look and the wait is not missed.
            ended.as_mut().enable();
            let pending = self
                .inner
                .in_flight
                .lock()
                .writes
                .range(..before)
                .any(|(_, key)| matches(key));
            if !pending {
                return;
            }
            ended.await;
        }
    }

    /// Waits for every write to end (at shutdown, once no call can issue more).
    pub async fn drain(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    /// A write that ends when the test says so, and a flag that says it ran to its end.
    fn gated(
        behind: &WriteBehind,
        key: Option<&str>,
    ) -> (oneshot::Sender<()>, Arc<std::sync::atomic::AtomicBool>) {
        let (open, gate) = oneshot::channel::<()>();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&done);
        behind.spawn(key.map(str::to_owned), async move {
            let _ = gate.await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        (open, done)
    }

    /// Polls `future` once: whether it is already complete.
    async fn ready_now(future: impl Future<Output = ()>) -> bool {
        tokio::time::timeout(Duration::ZERO, future).await.is_ok()
    }

    #[tokio::test]
    async fn a_reader_waits_for_the_writes_issued_before_it_and_no_others() {
        let behind = WriteBehind::default();
        assert!(ready_now(behind.settled()).await, "nothing in flight");

        let (open_a, a_done) = gated(&behind, Some("a"));
        let (open_b, b_done) = gated(&behind, Some("b"));
        assert!(!ready_now(behind.settled()).await);
        assert!(!ready_now(behind.settled_key("a")).await);
        assert!(ready_now(behind.settled_key("c")).await, "no write for c");

        let waiting_for_a = tokio::spawn({
            let behind = behind.clone();
            async move { behind.settled_key("a").await }
        });
        tokio::task::yield_now().await; // the reader begins
        // Issued after the reader began: the reader does not wait for it.
        let (_open_later, _) = gated(&behind, Some("a"));
        open_a.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiting_for_a)
            .await
            .expect("the reader of a returns once a's earlier write ended")
            .unwrap();
        assert!(a_done.load(std::sync::atomic::Ordering::SeqCst));
        assert!(!b_done.load(std::sync::atomic::Ordering::SeqCst));

        open_b.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), behind.settled_key("b"))
            .await
            .expect("b's write ended");
        assert!(b_done.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn drain_waits_for_every_write() {
        let behind = WriteBehind::default();
        let (open, done) = gated(&behind, None);
        let drained = tokio::spawn({
            let behind = behind.clone();
            async move { behind.drain().await }
        });
        tokio::task::yield_now().await;
        assert!(!drained.is_finished());
        open.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), drained)
            .await
            .expect("drained once the write ended")
            .unwrap();
        assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    }
}
