//! Trustly's polling limit: Balance and GetWithdrawals (per order) are called at most once per
//! window across the fleet; inside the window the last answer is returned with its age. The
//! shared record lives in `store::polls`; this module only decides.

use serde_json::Value;
use tracing::warn;

use super::{Answer, Error, Payments, Prepared, execute::typed, identifier};
use crate::{
    store::{self, polls::PollBegin},
    trustly::methods::Withdrawal,
};

impl Payments {
    /// Calls a rate-limited method at most once per window: inside the window the last answer is
    /// returned, with its age. While the window's first call is still in flight and there is no
    /// earlier answer: [`Error::RequestInProgress`], retry shortly.
    pub(super) async fn polled(
        &self,
        name: &str,
        prepared: Prepared,
    ) -> Result<Answer<Value>, Error> {
        if self.poll_window.is_zero() {
            return self.execute(prepared).await;
        }
        match self.polls.begin(name, self.poll_window).await? {
            PollBegin::Call => {
                let result = self.execute(prepared).await;
                let answer = result.as_ref().ok().map(|a| a.value.to_string());
                if let Err(error) = self.polls.finish(name, answer.as_deref()).await {
                    warn!(%error, poll = name, "could not store a poll answer; the next call asks Trustly once its window ends");
                }
                result
            }
            PollBegin::Cached { data, received_ms } => {
                let age = store::now_ms().saturating_sub(received_ms) / 1000;
                tracing::debug!(
                    poll = name,
                    age_seconds = age,
                    "answered from the last poll, inside Trustly's window"
                );
                let value = serde_json::from_str(&data)
                    .map_err(|_| Error::Store(store::Error::Protocol("stored poll answer")))?;
                Ok(Answer {
                    value,
                    replayed: false,
                    age: Some(age),
                })
            }
            PollBegin::Pending => Err(Error::RequestInProgress),
        }
    }

    /// GetWithdrawals of one order, inside Trustly's polling window.
    pub async fn withdrawals(&self, prepared: Prepared) -> Result<Answer<Vec<Withdrawal>>, Error> {
        let order = prepared
            .data
            .get("OrderID")
            .map(identifier)
            .unwrap_or_default();
        self.polled(&format!("GetWithdrawals:{order}"), prepared)
            .await?
            .try_map(typed)
    }
}
