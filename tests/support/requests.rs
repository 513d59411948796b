//! Request builders and environment shared by the integration tests.

use std::collections::HashMap;

use trustly_sidecar::pb;

/// The Redis the tests use (`REDIS_URL`, default the local server `.ci/run` starts).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A valid EUR 100.00 Deposit for `user-1` with non-ASCII names.
pub fn deposit(message_id: &str) -> pb::DepositRequest {
    pb::DepositRequest {
        end_user_id: "user-1".into(),
        message_id: message_id.into(),
        currency_code: "EUR".into(),
        amount: "100.00".into(),
        shopper_statement: "Shop".into(),
        user: Some(pb::CheckoutUser {
            first_name: "Åsa".into(),
            last_name: "Öberg".into(),
            country: "SE".into(),
            locale: "sv_SE".into(),
            email: "asa@example.com".into(),
            success_url: "https://merchant.example/ok".into(),
            fail_url: "https://merchant.example/fail".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// RegisterAccount for `user-1`: a Swedish account held by Åsa Öberg (a valid test account).
pub fn register_account() -> pb::RegisterAccountRequest {
    pb::RegisterAccountRequest {
        end_user_id: "user-1".into(),
        account: Some(pb::BankAccount {
            clearing_house: "SWEDEN".into(),
            bank_number: "6112".into(),
            account_number: "69706212".into(),
            first_name: "Åsa".into(),
            last_name: "Öberg".into(),
        }),
        ..Default::default()
    }
}

/// The notificationids a new consumer group sees from the start of the log within `wait`.
pub async fn notification_ids_from_start(
    channel: tonic::transport::Channel,
    group: &str,
    wait: std::time::Duration,
) -> Vec<String> {
    use trustly_sidecar::pb::notification_service_client::NotificationServiceClient;
    let mut stream = NotificationServiceClient::new(channel)
        .stream_notifications(pb::StreamNotificationsRequest {
            consumer_group: group.into(),
            start: pb::StartPosition::Group as i32,
            ..Default::default()
        })
        .await
        .expect("subscribed")
        .into_inner();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(item) = tokio::time::timeout_at(deadline, stream.message()).await {
        match item.expect("stream ok").and_then(|m| m.item) {
            Some(pb::stream_notifications_response::Item::Notification(n)) => {
                seen.push(n.notification_id);
            }
            Some(_) => {}
            None => break,
        }
    }
    seen
}

/// `extra_attributes` from pairs.
pub fn extras(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn money(amount: &str, currency: &str) -> Option<pb::Money> {
    Some(pb::Money {
        amount: amount.into(),
        currency_code: currency.into(),
    })
}

/// A valid person for `recipient_information` / `sender_information`.
pub fn person() -> Option<pb::PartyInformation> {
    Some(pb::PartyInformation {
        party_type: pb::PartyType::Person as i32,
        first_name: "Åsa".into(),
        last_name: "Öberg".into(),
        country_code: "SE".into(),
        customer_id: "c-1".into(),
        address: "Storgatan 1, Stockholm".into(),
        date_of_birth: "1990-01-01".into(),
    })
}

/// A valid checkout user (Åsa Öberg, Sweden) with `email` (may be empty).
pub fn user(email: &str) -> Option<pb::CheckoutUser> {
    Some(pb::CheckoutUser {
        first_name: "Åsa".into(),
        last_name: "Öberg".into(),
        country: "SE".into(),
        locale: "sv_SE".into(),
        success_url: "https://merchant.example/ok".into(),
        fail_url: "https://merchant.example/fail".into(),
        email: email.into(),
        ..Default::default()
    })
}
