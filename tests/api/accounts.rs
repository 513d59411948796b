//! The AccountID cache: filled by a SelectAccount flow (the simulator's `account` notification
//! through intake) and by RegisterAccount answers, served by AccountService, and never holding a
//! full account number.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed expectation is the assertion

use crate::support;

use support::requests::redis_url;

use serde_json::json;
use support::{app, sim::*};
use tonic::Code;
use trustly_sidecar::pb::{self, account_service_client::AccountServiceClient};

const ACCOUNT_NUMBER: &str = "69706212";

fn user() -> Option<pb::CheckoutUser> {
    Some(pb::CheckoutUser {
        first_name: "Åsa".into(),
        last_name: "Öberg".into(),
        country: "SE".into(),
        locale: "sv_SE".into(),
        email: "asa@example.com".into(),
        success_url: "https://m.example/ok".into(),
        fail_url: "https://m.example/fail".into(),
        ..Default::default()
    })
}

async fn select_account_fills_the_cache(extra: &[(&str, &str)]) -> (SimHarness, app::Sidecar) {
    let h = SimHarness::start().await;
    let (vars, files) = app::vars_for(&h, extra);
    let mut sidecar = app::spawn_with_intake(vars, files).await;
    let order = sidecar
        .client
        .select_account(pb::SelectAccountRequest {
            end_user_id: "user-42".into(),
            message_id: "m-select".into(),
            user: user(),
            ..Default::default()
        })
        .await
        .expect("select account")
        .into_inner();
    h.act(&order.order_id, "complete", json!({"account": {"clearinghouse": "SWEDEN", "bank_number": "6112", "account_number": ACCOUNT_NUMBER}})).await;

    let mut accounts = AccountServiceClient::new(sidecar.channel.clone());
    let listed = h
        .eventually("the account is cached", || {
            let mut accounts = accounts.clone();
            async move {
                let list = accounts
                    .list_accounts(pb::ListAccountsRequest {
                        end_user_id: "user-42".into(),
                    })
                    .await
                    .ok()?
                    .into_inner()
                    .accounts;
                (!list.is_empty()).then_some(list)
            }
        })
        .await;
    assert_eq!(listed.len(), 1);
    let account = &listed[0];
    assert_eq!(
        (
            account.end_user_id.as_str(),
            account.clearing_house.as_str(),
            account.descriptor.as_str()
        ),
        ("user-42", "SWEDEN", "*706212")
    );
    assert_eq!(
        (account.last_digits.as_str(), account.source.as_str()),
        ("706212", "account_notification")
    );
    assert!(account.verified && account.last_seen_time.is_some());
    let got = accounts
        .get_account(pb::GetAccountRequest {
            account_id: account.account_id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .account;
    assert_eq!(got.as_ref(), Some(account));
    assert!(
        accounts
            .list_accounts(pb::ListAccountsRequest {
                end_user_id: "someone-else".into()
            })
            .await
            .unwrap()
            .into_inner()
            .accounts
            .is_empty()
    );
    (h, sidecar)
}

#[tokio::test]
async fn a_select_account_flow_fills_the_cache_in_memory() {
    select_account_fills_the_cache(&[]).await;
}

#[tokio::test]
async fn a_select_account_flow_fills_the_cache_in_redis_without_the_account_number() {
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let url = redis_url();
    select_account_fills_the_cache(&[
        ("TRUSTLY_SIDECAR_REDIS_URL", &url),
        ("TRUSTLY_SIDECAR_REDIS_PREFIX", &prefix),
    ])
    .await;
    // Nothing under our prefix, key or value, holds the full account number.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        assert!(!key.contains(ACCOUNT_NUMBER), "{key}");
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let dump: Vec<u8> = redis::cmd("DUMP")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&dump).contains(ACCOUNT_NUMBER),
            "{key} ({kind}) holds the account number"
        );
    }
}

#[tokio::test]
async fn register_account_with_known_details_answers_from_the_cache() {
    let h = SimHarness::start().await;
    let (vars, files) = app::vars_for(&h, &[]);
    let mut sidecar = app::spawn(vars, files).await;
    let register = |end_user_id: &str| pb::RegisterAccountRequest {
        end_user_id: end_user_id.into(),
        account: Some(pb::BankAccount {
            clearing_house: "SWEDEN".into(),
            bank_number: "6112".into(),
            account_number: ACCOUNT_NUMBER.into(),
            first_name: "Åsa".into(),
            last_name: "Öberg".into(),
        }),
        ..Default::default()
    };
    let first = sidecar
        .client
        .register_account(register("user-1"))
        .await
        .expect("first")
        .into_inner();
    let again = sidecar
        .client
        .register_account(register("user-1"))
        .await
        .expect("again")
        .into_inner();
    assert_eq!(
        (again.account_id.as_str(), again.descriptor.as_str()),
        (first.account_id.as_str(), first.descriptor.as_str())
    );
    let calls = || async {
        h.admin_get("requests")
            .await
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "RegisterAccount")
            .count()
    };
    assert_eq!(calls().await, 1, "the second answer came from the cache");
    // The cache is per end user: another end user with the same details asks Trustly.
    sidecar
        .client
        .register_account(register("user-2"))
        .await
        .expect("other user");
    assert_eq!(calls().await, 2);

    let mut accounts = AccountServiceClient::new(sidecar.channel.clone());
    let listed = accounts
        .list_accounts(pb::ListAccountsRequest {
            end_user_id: "user-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .accounts;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].source, "register_account");
    let status = accounts
        .get_account(pb::GetAccountRequest {
            account_id: "999".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = accounts
        .list_accounts(pb::ListAccountsRequest::default())
        .await
        .expect_err("no user");
    assert_eq!(status.code(), Code::InvalidArgument);
}
