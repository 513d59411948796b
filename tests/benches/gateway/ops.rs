//! The measured operations: the signing ceiling, the direct wire-core client, the in-process
//! client an application would embed, and the sidecar over gRPC.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tonic::transport::Channel;
use trustly_sidecar::{
    pb::{self, payment_service_client::PaymentServiceClient},
    trustly::{
        Client, canonical,
        sign::{Signer, Verifier},
        wire,
    },
};

use crate::{
    load::{Figure, Spread, measure},
    procs::SidecarProcess,
    quiet,
};

/// The AccountPayout every path sends (only the MessageID differs).
pub fn payout_data(account_id: &str, message_id: &str) -> serde_json::Map<String, Value> {
    let Value::Object(data) = json!({
        "NotificationURL": "http://127.0.0.1:9/trustly/notifications",
        "AccountID": account_id,
        "EndUserID": "bench-user",
        "MessageID": message_id,
        "Amount": "1.00",
        "Currency": "EUR",
        "Attributes": {"ShopperStatement": "Bench payout"},
    }) else {
        unreachable!()
    };
    data
}

pub async fn register_account(client: &Client) -> String {
    let Value::Object(data) = json!({
        "EndUserID": "bench-user", "ClearingHouse": "SWEDEN", "BankNumber": "6112",
        "AccountNumber": "69706212", "Firstname": "Bench", "Lastname": "User", "Attributes": {},
    }) else {
        unreachable!()
    };
    let signed = client
        .sign_data("RegisterAccount", uuid::Uuid::new_v4(), data)
        .await
        .expect("sign");
    let answer = client.send(&signed).await.expect("RegisterAccount");
    answer["accountid"].as_str().expect("accountid").to_owned()
}

/// Signs the AccountPayout plaintext back to back on a thread of its own pinned to `core` (the
/// sidecar's: the two vCPUs of a cloud machine need not be equally fast, so the ceiling is taken
/// where the sidecar runs), `--runs` windows.
pub async fn signing_ceiling(
    signer: Arc<dyn Signer>,
    core: &'static str,
    account_id: &str,
    window: Duration,
) -> anyhow::Result<Spread> {
    let data = Value::Object(payout_data(account_id, "ceiling"));
    let plaintext = canonical::plaintext("AccountPayout", "uuid", &data);
    let thread = std::thread::spawn(move || -> anyhow::Result<Spread> {
        crate::pin_thread(core);
        let mut runs = Vec::new();
        for _ in 0..quiet::runs() {
            let sample = quiet::Sample::now();
            let start = Instant::now();
            let mut count = 0u64;
            while start.elapsed() < window {
                signer.sign(plaintext.as_bytes()).expect("sign");
                count += 1;
            }
            runs.push(count as f64 / start.elapsed().as_secs_f64());
            quiet::check(&sample)?;
        }
        Ok(Spread::of(runs))
    });
    tokio::task::spawn_blocking(move || thread.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the signing ceiling's thread panicked"))?
}

static MESSAGE_SEQ: AtomicU64 = AtomicU64::new(0);

pub fn message_id(i: u64) -> String {
    format!("bench-{}-{i}", MESSAGE_SEQ.fetch_add(1, Ordering::Relaxed))
}

pub async fn direct_payout(client: &Client, account_id: &str, i: u64) -> Result<(), String> {
    let signed = client
        .sign_data(
            "AccountPayout",
            uuid::Uuid::new_v4(),
            payout_data(account_id, &message_id(i)),
        )
        .await
        .map_err(|e| e.to_string())?;
    client
        .send(&signed)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub async fn grpc_payouts(
    sidecar: &SidecarProcess,
    account_id: &str,
    concurrency: usize,
    window: Duration,
) -> anyhow::Result<Figure> {
    // A few HTTP/2 connections, as a pod's client library would keep.
    let channels: Vec<Channel> = {
        let mut channels = Vec::new();
        for _ in 0..concurrency.min(4) {
            channels.push(sidecar.channel().await);
        }
        channels
    };
    let account_id = account_id.to_owned();
    measure(concurrency, window, move |i| {
        let mut client = PaymentServiceClient::new(channels[i as usize % channels.len()].clone());
        let request = pb::AccountPayoutRequest {
            account_id: account_id.clone(),
            end_user_id: "bench-user".into(),
            message_id: message_id(i),
            amount: Some(pb::Money {
                amount: "1.00".into(),
                currency_code: "EUR".into(),
            }),
            shopper_statement: "Bench payout".into(),
            ..Default::default()
        };
        async move {
            client
                .account_payout(request)
                .await
                .map(|_| ())
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
        }
    })
    .await
}

/// The JSON-RPC method every payout path calls.
const METHOD: &str = "AccountPayout";

/// An application doing the same payouts itself, as with an official Trustly client: it builds
/// the JSON-RPC request, signs it inline with the same backend, POSTs it with reqwest straight to
/// the simulator and verifies the signed answer. No sidecar, no gRPC, no thread hop.
#[derive(Clone)]
pub struct InProcess {
    pub url: String,
    pub username: String,
    pub password: String,
    pub signer: Arc<dyn Signer>,
    pub verifier: Arc<dyn Verifier>,
}

impl InProcess {
    async fn payout(&self, http: &reqwest::Client, account_id: &str, i: u64) -> Result<(), String> {
        let uuid = uuid::Uuid::new_v4().hyphenated().to_string();
        let mut data = payout_data(account_id, &message_id(i));
        data.insert("Username".into(), Value::String(self.username.clone()));
        data.insert("Password".into(), Value::String(self.password.clone()));
        let data = Value::Object(data);
        let plaintext = canonical::plaintext(METHOD, &uuid, &data);
        let signature = self
            .signer
            .sign(plaintext.as_bytes())
            .map_err(|e| e.to_string())?;
        let body = serde_json::to_vec(&wire::request(METHOD, &uuid, &signature, data))
            .map_err(|e| e.to_string())?;
        let response = http
            .post(&self.url)
            .header("content-type", "application/json; charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        match wire::parse_response(&body).map_err(|e| e.to_string())? {
            wire::Response::Result(answer)
                if answer.uuid == uuid && answer.verify(self.verifier.as_ref()) =>
            {
                Ok(())
            }
            wire::Response::Result(_) => Err("the answer's uuid or signature is wrong".into()),
            wire::Response::Error(error) => Err(format!("Trustly error {:?}", error.outer_code)),
        }
    }

    /// `--runs` windows at `concurrency` on a thread of its own pinned to `core` (the sidecar's,
    /// idle meanwhile, so the application gets the core the sidecar gets), with a one-thread
    /// runtime as a small application would have.
    pub async fn measure_on(
        &self,
        core: &'static str,
        account_id: &str,
        concurrency: usize,
        window: Duration,
    ) -> anyhow::Result<Figure> {
        let (app, account_id) = (self.clone(), account_id.to_owned());
        let thread = std::thread::spawn(move || -> anyhow::Result<Figure> {
            crate::pin_thread(core);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                // Made on this runtime: its connections live on it.
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(concurrency)
                    .build()?;
                measure(concurrency, window, move |i| {
                    let (app, http, account_id) = (app.clone(), http.clone(), account_id.clone());
                    async move { app.payout(&http, &account_id, i).await }
                })
                .await
            })
        });
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the in-process client's thread panicked"))?
    }
}
