//! Redis bytes per record: idempotency records, stored notifications and orders, written through
//! the sidecar's own store API.

use std::{
    future::Future,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;

use super::usage::{prefix_usage, raw, used_memory, value_bytes};
use serde_json::{Map, Value, json};
use trustly_sidecar::{
    orders::{Fact, OrderBook, OrderRequest},
    secret::Secret,
    store::{
        self, NewEvent, Store,
        idempotency::{Begin, Finish, Idempotency, Outcome, Scope},
        log::Notification,
    },
    trustly::{
        Client, ClientConfig, canonical, keys,
        sign::{Backend, CryptoPool},
        wire,
    },
};

/// Writes in flight at once: enough to keep Redis busy over one connection.
const CONCURRENCY: usize = 64;
/// Distinct signed messages; records reuse them with their own identifiers (see the crate docs).
const TEMPLATES: usize = 32;
/// Bound on every store call, as the sidecar's default.
const TIMEOUT: Duration = Duration::from_secs(5);
/// Retention of every record: long enough to outlive the run, short enough that a crashed run's
/// keys go away on their own.
const RETENTION: Duration = Duration::from_secs(3600);
/// How long an attempt holds its key, as the sidecar's default order of magnitude (the record's
/// size does not depend on it).
const LEASE: Duration = Duration::from_secs(30);
const USERNAME: &str = "bench-merchant";

/// What one family of records costs.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub records: usize,
    /// Keys the prefix gained.
    pub keys: u64,
    /// `MEMORY USAGE` bytes the prefix gained.
    pub bytes: u64,
    /// `INFO memory` `used_memory` gained.
    pub used_memory: i64,
    /// Average stored value length, where one value is one record.
    pub value_bytes: Option<f64>,
}

/// Writes `n` records of each family under `prefix` and measures each.
pub async fn measure(url: &str, prefix: &str, n: usize) -> anyhow::Result<Vec<Family>> {
    let mut raw = raw(url).await?;
    let conn = conn_for(url).await?;
    let store = Store::redis(conn.clone(), prefix, RETENTION, TIMEOUT);
    let idempotency = Idempotency::redis(conn, prefix, TIMEOUT);
    let client = signing_client()?;
    let templates = Templates::sign(&client).await?;

    let mut families = Vec::new();
    let idem = Arc::new((idempotency, templates.clone()));
    let ended = Arc::clone(&idem);
    families.push(
        family(&mut raw, prefix, "idempotency record", n, move |i| {
            let idem = Arc::clone(&ended);
            async move { idempotency_record(&idem.0, &idem.1, i, true).await }
        })
        .await?,
    );
    families[0].value_bytes =
        Some(value_bytes(&mut raw, &format!("{prefix}:idempotency:*")).await?);
    // For comparison, fewer: records whose outcome is unknown keep the signed request for a
    // replay (every record did, before the request was dropped with the outcome).
    let (m, unknown) = ((n / 10).max(1), format!("{prefix}:unknown"));
    let idem = Arc::new((
        Idempotency::redis(conn_for(url).await?, &unknown, TIMEOUT),
        idem.1.clone(),
    ));
    let mut kept = family(
        &mut raw,
        &unknown,
        "idem. record, request kept",
        m,
        move |i| {
            let idem = Arc::clone(&idem);
            async move { idempotency_record(&idem.0, &idem.1, n + i, false).await }
        },
    )
    .await?;
    kept.value_bytes = Some(value_bytes(&mut raw, &format!("{unknown}:idempotency:*")).await?);
    families.push(kept);
    let log = Arc::new((store.log.clone(), templates));
    families.push(
        family(&mut raw, prefix, "stored notification", n, move |i| {
            let log = Arc::clone(&log);
            async move { notification(&log.0, &log.1, i).await }
        })
        .await?,
    );
    let book = OrderBook::new(store.order_states.clone());
    families.push(
        family(&mut raw, prefix, "order (3 facts + feed)", n, move |i| {
            let book = book.clone();
            async move { order(&book, i).await }
        })
        .await?,
    );
    Ok(families)
}

async fn conn_for(url: &str) -> anyhow::Result<store::Connection> {
    Ok(store::connection::connect(&[url.to_owned()], false, None, TIMEOUT).await?)
}

/// Runs `write` for 0..n, [`CONCURRENCY`] at a time, and measures what the prefix gained.
async fn family<F, Fut>(
    raw: &mut MultiplexedConnection,
    prefix: &str,
    name: &'static str,
    n: usize,
    write: F,
) -> anyhow::Result<Family>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let (keys_before, bytes_before) = prefix_usage(raw, prefix).await?;
    let used_before = used_memory(raw).await?;
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let write = Arc::new(write);
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (next, write) = (Arc::clone(&next), Arc::clone(&write));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>(());
                    }
                    write(i).await?;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    let used_after = used_memory(raw).await?;
    let (keys_after, bytes_after) = prefix_usage(raw, prefix).await?;
    eprintln!(
        "   {name}: {n} written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(Family {
        name,
        records: n,
        keys: keys_after - keys_before,
        bytes: bytes_after - bytes_before,
        used_memory: used_after - used_before,
        value_bytes: None,
    })
}

/// One AccountPayout through the idempotency protocol: reserved, then finished with its answer
/// (`answered`) or with an unknown outcome.
async fn idempotency_record(
    idempotency: &Idempotency,
    templates: &Templates,
    i: usize,
    answered: bool,
) -> anyhow::Result<()> {
    let message_id = message_id(i);
    let uuid = uuid::Uuid::new_v4().to_string();
    let template = &templates.payouts[i % TEMPLATES];
    let body = template.with(&message_id, &uuid);
    let mut data = payout_data(&message_id);
    data.insert("Username".into(), USERNAME.into());
    let fingerprint = sha256_hex(&serde_json::to_vec(&data)?);
    let scope = Scope {
        merchant: USERNAME,
        method: "AccountPayout",
        key: &message_id,
    };
    let begin = idempotency
        .begin(
            &scope,
            &fingerprint,
            &uuid,
            &Bytes::from(body),
            LEASE,
            RETENTION,
        )
        .await?;
    anyhow::ensure!(begin == Begin::Proceed, "a fresh key proceeds: {begin:?}");
    let answer = json!({"orderid": order_id(i), "result": "1"});
    let finish = if answered {
        Finish::Final(Outcome::Success {
            data: answer.to_string(),
        })
    } else {
        Finish::Ambiguous
    };
    idempotency
        .finish(&scope, &fingerprint, &uuid, &finish)
        .await?;
    Ok(())
}

/// One signed `credit` appended to the log with its signed reply.
async fn notification(log: &store::Log, templates: &Templates, i: usize) -> anyhow::Result<()> {
    let notification_id = notification_id(i);
    let uuid = uuid::Uuid::new_v4().to_string();
    let body = templates.credits[i % TEMPLATES].with(&notification_id, &uuid);
    let reply = templates.replies[i % TEMPLATES].with(&notification_id, &uuid);
    let event = NewEvent {
        notification: Notification {
            notification_id,
            method: "credit".into(),
            order_id: order_id(i),
            message_id: message_id(i),
            received_ms: store::now_ms(),
            body: Bytes::from(body),
        },
        decision_required: false,
    };
    log.record(&event, Some(&Bytes::from(reply))).await?;
    Ok(())
}

/// One Deposit: its RPC answer, then `pending` and `credit`.
async fn order(book: &OrderBook, i: usize) -> anyhow::Result<()> {
    let (message_id, order_id) = (message_id(i), order_id(i));
    let Value::Object(request) = json!({
        "MessageID": message_id, "EndUserID": "bench-user-0001",
        "NotificationURL": "https://merchant.example/trustly/notifications",
        "Attributes": {"Amount": "100.00", "Currency": "EUR", "Country": "SE"},
    }) else {
        unreachable!()
    };
    let request = OrderRequest::of("Deposit", &request).expect("Deposit opens an order");
    let answer = json!({"orderid": order_id, "url": format!("https://trustly.com/_/{order_id}")});
    let now = store::now_ms();
    let uuid = uuid::Uuid::new_v4().to_string();
    let mut facts = vec![Fact::rpc(&request, &uuid, &answer, now).expect("an order id")];
    for (k, method) in ["pending", "credit"].into_iter().enumerate() {
        let id = format!("{}{k}", notification_id(i));
        let data = credit_data(&id, &message_id, &order_id);
        facts.push(Fact::notification(method, &id, &message_id, &data, now).expect("a fact"));
    }
    for fact in &facts {
        book.record(fact).await?;
    }
    Ok(())
}

// === realistic signed messages ===

/// A signed message and the identifiers to replace in it (fixed width, so sizes are kept).
#[derive(Clone)]
struct Template {
    text: String,
    id: String,
    uuid: String,
}

impl Template {
    fn with(&self, id: &str, uuid: &str) -> Vec<u8> {
        debug_assert_eq!(id.len(), self.id.len());
        self.text
            .replace(&self.id, id)
            .replace(&self.uuid, uuid)
            .into_bytes()
    }
}

#[derive(Clone)]
struct Templates {
    payouts: Vec<Template>,
    credits: Vec<Template>,
    replies: Vec<Template>,
}

impl Templates {
    async fn sign(client: &Client) -> anyhow::Result<Self> {
        let key = keys::load_private_key(&fixture("merchant-test-private.pem"))?;
        let signer = Backend::RustCrypto.signer(key)?;
        let mut templates = Self {
            payouts: Vec::new(),
            credits: Vec::new(),
            replies: Vec::new(),
        };
        for t in 0..TEMPLATES {
            let uuid = uuid::Uuid::new_v4();
            let id = message_id(usize::MAX - t);
            let signed = client
                .sign_data("AccountPayout", uuid, payout_data(&id))
                .await?;
            let (uuid, text) = (uuid.to_string(), String::from_utf8(signed.body.to_vec())?);
            templates.payouts.push(Template { text, id, uuid });

            // A credit as Trustly sends it (a 2048-bit signature, as Trustly's), and our answer.
            let id = notification_id(usize::MAX - t);
            let uuid = uuid::Uuid::new_v4().to_string();
            let data = credit_data(&id, &message_id(t), &order_id(t));
            let signature = signer.sign(canonical::plaintext("credit", &uuid, &data).as_bytes())?;
            let text = wire::notification("credit", &uuid, &signature, data).to_string();
            templates.credits.push(Template {
                text,
                id: id.clone(),
                uuid: uuid.clone(),
            });
            let status = json!({"status": "OK"});
            let signature =
                signer.sign(canonical::plaintext("credit", &uuid, &status).as_bytes())?;
            let text = wire::notification_response("credit", &uuid, &signature, status).to_string();
            // The reply names no notification id: only its UUID changes.
            templates.replies.push(Template { text, id, uuid });
        }
        Ok(templates)
    }
}

/// A client that signs (and never sends) with the merchant test key.
fn signing_client() -> anyhow::Result<Client> {
    let key = keys::load_private_key(&fixture("merchant-test-private.pem"))?;
    let public = keys::load_public_key(&fixture("merchant-test-public.pem"))?;
    Ok(Client::new(
        ClientConfig::new(
            "http://127.0.0.1:9/api/1".parse()?,
            USERNAME,
            Secret::new("bench-password".into()),
        ),
        Backend::RustCrypto.signer(key)?,
        Backend::RustCrypto.verifier(public)?,
        CryptoPool::new(1),
    )?)
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

fn payout_data(message_id: &str) -> Map<String, Value> {
    let Value::Object(data) = json!({
        "NotificationURL": "https://merchant.example/trustly/notifications",
        "AccountID": "1234567890",
        "EndUserID": "bench-user-0001",
        "MessageID": message_id,
        "Amount": "1250.00",
        "Currency": "EUR",
        "Attributes": {"ShopperStatement": "Bench payout", "PSPMerchant": "Bench Shop AB",
            "MerchantCategoryCode": "5499", "SenderInformation": {"Partytype": "ORGANISATION",
            "Address": "Main street 1, 11122 Stockholm", "CountryCode": "SE",
            "Firstname": "", "Lastname": "Bench Shop AB", "CustomerID": "1234"}},
    }) else {
        unreachable!()
    };
    data
}

fn credit_data(notification_id: &str, message_id: &str, order_id: &str) -> Value {
    json!({
        "orderid": order_id, "messageid": message_id, "notificationid": notification_id,
        "enduserid": "bench-user-0001", "amount": "100.00", "currency": "EUR",
        "timestamp": "2026-12-01 10:00:00.123456+00", "attributes": {}
    })
}

fn message_id(i: usize) -> String {
    format!("cost-{:020}", i)
}

fn notification_id(i: usize) -> String {
    format!("{:020}", i)
}

fn order_id(i: usize) -> String {
    format!("{}", 5_000_000_000u64 + i as u64)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
