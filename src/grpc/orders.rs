//! `trustly.v1.OrderService`: reads of the order state (`crate::orders`), and the stream of its
//! changes ([`watch`]).

mod watch;

mod reconcile;

use std::time::{Duration, UNIX_EPOCH};

use rust_decimal::Decimal;
use tonic::{Request, Response, Status};
use tracing::warn;

use crate::{
    orders::{
        self, Contradiction, Kind, Order, OrderBook, Query, State, Transition, Watches,
        WithdrawDecision, reconcile::Reconciler,
    },
    pb::{self, order_service_server::OrderService},
};

/// The `OrderService` implementation.
#[derive(Clone)]
pub struct Orders {
    book: OrderBook,
    watches: Watches,
    reconciler: Reconciler,
}

impl Orders {
    pub fn new(book: OrderBook, watches: Watches, reconciler: Reconciler) -> Self {
        Self {
            book,
            watches,
            reconciler,
        }
    }
}

/// The order book failed: logged here, mapped by `status.rs`.
fn failed(error: orders::Error) -> Status {
    match error {
        orders::Error::Store(error) => {
            warn!(%error, "order store unavailable");
            super::Error::Store(error).into()
        }
        orders::Error::PageToken => super::Error::invalid("page_token", &error.to_string()).into(),
    }
}

#[tonic::async_trait]
impl OrderService for Orders {
    type WatchOrdersStream = watch::ChangeStream;
    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::GetOrderResponse>, Status> {
        let request = request.into_inner();
        let found = match (request.order_id.is_empty(), request.message_id.is_empty()) {
            (false, true) => self.book.get(&request.order_id).await,
            (true, false) => self.book.get_by_message(&request.message_id).await,
            _ => {
                return Err(super::Error::invalid(
                    "order_id",
                    "exactly one of order_id and message_id is required",
                )
                .into());
            }
        };
        match found.map_err(failed)? {
            Some(order) => Ok(Response::new(pb::GetOrderResponse {
                order: Some(order_message(order)),
            })),
            None => Err(super::Error::NotFound("order").into()),
        }
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let request = request.into_inner();
        let query = query(request)?;
        let page = self.book.list(&query).await.map_err(failed)?;
        Ok(Response::new(pb::ListOrdersResponse {
            orders: page.orders.into_iter().map(order_message).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn watch_orders(
        &self,
        request: Request<pb::WatchOrdersRequest>,
    ) -> Result<Response<Self::WatchOrdersStream>, Status> {
        watch::watch(&self.watches, request.into_inner()).await
    }

    async fn reconcile(
        &self,
        request: Request<pb::ReconcileRequest>,
    ) -> Result<Response<pb::ReconcileResponse>, Status> {
        reconcile::reconcile(&self.reconciler, request.into_inner())
            .await
            .map(Response::new)
    }
}

/// The book's query from a ListOrders request.
fn query(request: pb::ListOrdersRequest) -> Result<Query, Status> {
    let invalid = |field: &str, why: &str| -> Status { super::Error::invalid(field, why).into() };
    let from_ms = match &request.start_time {
        Some(time) => millis(time).ok_or_else(|| invalid("start_time", "must be after 1970"))?,
        None => 0,
    };
    let to_ms = match &request.end_time {
        Some(time) => Some(millis(time).ok_or_else(|| invalid("end_time", "must be after 1970"))?),
        None => None,
    };
    if to_ms.is_some_and(|to| to < from_ms) {
        return Err(invalid("end_time", "must not be before start_time"));
    }
    let page_size = usize::try_from(request.page_size)
        .map_err(|_| invalid("page_size", "must not be negative"))?;
    Ok(Query {
        kind: kind_filter(request.kind()),
        state: state_filter(request.state()),
        end_user_id: request.end_user_id,
        from_ms,
        to_ms,
        page_size,
        page_token: request.page_token,
    })
}

fn millis(time: &prost_types::Timestamp) -> Option<u64> {
    let ms = i128::from(time.seconds) * 1000 + i128::from(time.nanos) / 1_000_000;
    u64::try_from(ms).ok()
}

fn timestamp(ms: u64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp::from(
        UNIX_EPOCH + Duration::from_millis(ms),
    ))
}

/// A total as the API shows it: two decimals.
fn amount(value: Decimal) -> String {
    let mut value = value;
    value.rescale(crate::money::AMOUNT_SCALE);
    value.to_string()
}

fn order_message(order: Order) -> pb::Order {
    pb::Order {
        kind: kind_message(order.kind).into(),
        state: state_message(order.state).into(),
        requested_amount: order.requested.map(amount).unwrap_or_default(),
        credited_amount: amount(order.credited),
        debited_amount: amount(order.debited),
        refunded_amount: amount(order.refunded),
        paid_out_amount: amount(order.paid_out),
        withdraw_decision: decision_message(order.withdraw_decision).into(),
        create_time: timestamp(order.created_ms),
        update_time: timestamp(order.updated_ms),
        transitions: order.transitions.into_iter().map(transition).collect(),
        contradictions: order.contradictions.iter().map(contradiction).collect(),
        order_id: order.order_id,
        message_id: order.message_id,
        currency_code: order.currency,
        end_user_id: order.end_user_id,
        notification_ids: order.notification_ids,
        rpcs: order.rpcs,
    }
}

fn decision_message(decision: Option<WithdrawDecision>) -> pb::WithdrawDecision {
    match decision {
        None => pb::WithdrawDecision::Unspecified,
        Some(WithdrawDecision::Awaited) => pb::WithdrawDecision::Awaited,
        Some(WithdrawDecision::Approved) => pb::WithdrawDecision::Approved,
        Some(WithdrawDecision::Rejected) => pb::WithdrawDecision::Rejected,
    }
}

fn transition(transition: Transition) -> pb::OrderTransition {
    pb::OrderTransition {
        from_state: state_message(transition.from).into(),
        to_state: state_message(transition.to).into(),
        time: timestamp(transition.at_ms),
        fact_id: transition.fact_id,
    }
}

fn contradiction(contradiction: &Contradiction) -> pb::OrderContradiction {
    pb::OrderContradiction {
        code: contradiction.code().to_owned(),
        detail: contradiction.detail(),
    }
}

/// The kinds in both directions, one table.
const KINDS: [(Kind, pb::OrderKind); 7] = [
    (Kind::Unknown, pb::OrderKind::Unknown),
    (Kind::Deposit, pb::OrderKind::Deposit),
    (Kind::Withdraw, pb::OrderKind::Withdraw),
    (Kind::AccountPayout, pb::OrderKind::AccountPayout),
    (
        Kind::RegisterAccountPayout,
        pb::OrderKind::RegisterAccountPayout,
    ),
    (Kind::Refund, pb::OrderKind::Refund),
    (Kind::Charge, pb::OrderKind::Charge),
];

/// The states in both directions, one table.
const STATES: [(State, pb::OrderState); 9] = [
    (State::Created, pb::OrderState::Created),
    (State::Accepted, pb::OrderState::Accepted),
    (State::Pending, pb::OrderState::Pending),
    (State::Credited, pb::OrderState::Credited),
    (State::Debited, pb::OrderState::Debited),
    (State::Confirmed, pb::OrderState::Confirmed),
    (State::Returned, pb::OrderState::Returned),
    (State::Cancelled, pb::OrderState::Cancelled),
    (State::Failed, pb::OrderState::Failed),
];

fn kind_message(kind: Kind) -> pb::OrderKind {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(pb::OrderKind::Unspecified, |(_, m)| *m)
}

fn state_message(state: State) -> pb::OrderState {
    STATES
        .iter()
        .find(|(s, _)| *s == state)
        .map_or(pb::OrderState::Unspecified, |(_, m)| *m)
}

fn kind_filter(kind: pb::OrderKind) -> Option<Kind> {
    KINDS.iter().find(|(_, m)| *m == kind).map(|(k, _)| *k)
}

fn state_filter(state: pb::OrderState) -> Option<State> {
    STATES.iter().find(|(_, m)| *m == state).map(|(s, _)| *s)
}
