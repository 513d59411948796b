//! The order book: records facts in the store and answers with folded orders (by order id, by
//! MessageID, or listed by end user, kind, state and time, a page at a time).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use tracing::warn;

use super::{Fact, Kind, Order, State, fold};
use crate::store::{self, Log, NewEvent, OrderStates, log::Notification, order_states::Position};

/// Most orders returned per page (AIP-158: larger page sizes are coerced down).
pub const MAX_PAGE_SIZE: usize = 100;
/// Page size when the caller names none.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Most orders folded per page: a filter matching few orders returns a short page (with a token)
/// instead of reading the whole index in one call. 1000 folds stay well under a second.
const MAX_SCANNED_PER_PAGE: usize = 1000;

/// Why the book could not answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("order store unavailable")]
    Store(#[from] store::Error),
    #[error("the page token is not one this service issued")]
    PageToken,
}

/// What `ListOrders` filters on (empty / `None`: any).
#[derive(Clone, Debug, Default)]
pub struct Query {
    pub end_user_id: String,
    pub kind: Option<Kind>,
    pub state: Option<State>,
    /// Earliest fact time, inclusive, in ms.
    pub from_ms: u64,
    /// Earliest fact time, exclusive, in ms (`None`: no bound).
    pub to_ms: Option<u64>,
    pub page_size: usize,
    pub page_token: String,
}

/// One page of orders and the token of the next (empty on the last page).
#[derive(Debug, Default)]
pub struct Page {
    pub orders: Vec<Order>,
    pub next_page_token: String,
}

/// Orders folded from the stored facts. Cloning shares the store.
#[derive(Clone)]
pub struct OrderBook {
    states: OrderStates,
}

impl OrderBook {
    pub fn new(states: OrderStates) -> Self {
        Self { states }
    }

    /// Adds a fact to its order (idempotent: a fact id counts once), then announces it on the
    /// change feed. The feed dedupes on the fact id, so it is announced every time: a replay of
    /// the notification log fills in an announcement lost with a replica killed in between.
    pub async fn record(&self, fact: &Fact) -> Result<(), Error> {
        let encoded = serde_json::to_string(fact).unwrap_or_default();
        self.states
            .add(
                &fact.order_id,
                &fact.id,
                &encoded,
                fact.at_ms,
                &fact.message_id,
            )
            .await?;
        let change = NewEvent {
            notification: Notification {
                notification_id: fact.id.clone(),
                method: fact.method.clone(),
                order_id: fact.order_id.clone(),
                // Empty: the feed keeps no MessageID index (the order has one).
                message_id: String::new(),
                // When the sidecar learned it (the event id's time); the fact's own time is in
                // the body.
                received_ms: store::now_ms(),
                body: Bytes::from(encoded),
            },
            decision_required: false,
        };
        self.changes().record(&change, Some(&Bytes::new())).await?;
        Ok(())
    }

    /// The change feed: one event per fact, `notification_id` being the fact id.
    pub fn changes(&self) -> &Log {
        self.states.changes()
    }

    /// The order with this id, folded from its facts.
    pub async fn get(&self, order_id: &str) -> Result<Option<Order>, Error> {
        Ok(fold(self.facts(order_id).await?))
    }

    /// The readable facts of an order (reconciliation reads each fact's time and amount).
    pub async fn facts(&self, order_id: &str) -> Result<Vec<Fact>, Error> {
        let facts = self.states.facts(order_id).await?;
        Ok(facts
            .iter()
            .filter_map(|encoded| {
                serde_json::from_str::<Fact>(encoded)
                    .inspect_err(
                        |error| warn!(%error, order_id, "an unreadable order fact; skipped"),
                    )
                    .ok()
            })
            .collect())
    }

    /// The order a MessageID names.
    pub async fn get_by_message(&self, message_id: &str) -> Result<Option<Order>, Error> {
        match self.states.order_for_message(message_id).await? {
            Some(order_id) => self.get(&order_id).await,
            None => Ok(None),
        }
    }

    /// One page of the orders matching `query`, oldest first.
    pub async fn list(&self, query: &Query) -> Result<Page, Error> {
        let size = match query.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let after = decode_token(&query.page_token)?;
        let to_ms = query.to_ms.unwrap_or(u64::MAX);
        let mut page = Page::default();
        let mut cursor = after;
        let mut scanned = 0;
        while page.orders.len() < size && scanned < MAX_SCANNED_PER_PAGE {
            let batch = (size - page.orders.len()).max(1);
            let positions = self
                .states
                .scan(cursor.as_ref(), query.from_ms, to_ms, batch)
                .await?;
            let exhausted = positions.len() < batch;
            for position in positions {
                scanned += 1;
                if let Some(order) = self.get(&position.1).await?
                    && matches(query, &order)
                {
                    page.orders.push(order);
                }
                cursor = Some(position);
            }
            if exhausted {
                return Ok(page);
            }
        }
        page.next_page_token = cursor.map(|c| encode_token(&c)).unwrap_or_default();
        Ok(page)
    }
}

fn matches(query: &Query, order: &Order) -> bool {
    (query.end_user_id.is_empty() || query.end_user_id == order.end_user_id)
        && query.kind.is_none_or(|kind| kind == order.kind)
        && query.state.is_none_or(|state| state == order.state)
}

/// A page token: the last position returned, `<ms>:<order id>` (opaque to clients).
fn encode_token((ms, order_id): &Position) -> String {
    URL_SAFE_NO_PAD.encode(format!("{ms}:{order_id}"))
}

fn decode_token(token: &str) -> Result<Option<Position>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let decoded = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(Error::PageToken)?;
    let (ms, order_id) = decoded.split_once(':').ok_or(Error::PageToken)?;
    let ms = ms.parse().map_err(|_| Error::PageToken)?;
    Ok(Some((ms, order_id.to_owned())))
}
