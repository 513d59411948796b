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
    valid::deposit("", message_id)
}

/// RegisterAccount for `user-1`: a Swedish account held by Åsa Öberg (a valid test account).
pub fn register_account() -> pb::RegisterAccountRequest {
    valid::register_account("69706212")
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

/// One valid request per RPC: the baselines every test changes one thing of. An empty
/// `notification_url` means the sidecar's own default.
pub mod valid {
    use trustly_sidecar::pb;

    use super::{money, user};

    /// A Deposit of 100.00 EUR for `user-1` (Åsa Öberg, Sweden).
    pub fn deposit(notification_url: &str, message_id: &str) -> pb::DepositRequest {
        pb::DepositRequest {
            notification_url: notification_url.into(),
            end_user_id: "user-1".into(),
            message_id: message_id.into(),
            currency_code: "EUR".into(),
            amount: "100.00".into(),
            user: user("asa@example.com"),
            shopper_statement: "Shop".into(),
            ..Default::default()
        }
    }

    /// A Withdraw with a fixed amount of 50.00 EUR.
    pub fn withdraw(notification_url: &str, message_id: &str) -> pb::WithdrawRequest {
        pb::WithdrawRequest {
            notification_url: notification_url.into(),
            end_user_id: "user-1".into(),
            message_id: message_id.into(),
            currency_code: "EUR".into(),
            user: user(""),
            shopper_statement: "Shop".into(),
            suggested_amount: "50.00".into(),
            ..Default::default()
        }
    }

    pub fn select_account(
        notification_url: &str,
        message_id: &str,
        end_user_id: &str,
        mandate: bool,
    ) -> pb::SelectAccountRequest {
        pb::SelectAccountRequest {
            notification_url: notification_url.into(),
            end_user_id: end_user_id.into(),
            message_id: message_id.into(),
            user: user("asa@example.com"),
            request_direct_debit_mandate: mandate,
            ..Default::default()
        }
    }

    /// A Swedish account held by Åsa Öberg (`69706212` is a valid test account number).
    pub fn bank_account(account_number: &str) -> Option<pb::BankAccount> {
        Some(pb::BankAccount {
            clearing_house: "SWEDEN".into(),
            bank_number: "6112".into(),
            account_number: account_number.into(),
            first_name: "Åsa".into(),
            last_name: "Öberg".into(),
        })
    }

    pub fn register_account(account_number: &str) -> pb::RegisterAccountRequest {
        pb::RegisterAccountRequest {
            end_user_id: "user-1".into(),
            account: bank_account(account_number),
            ..Default::default()
        }
    }

    pub fn account_payout(
        notification_url: &str,
        message_id: &str,
        account_id: &str,
        amount: &str,
    ) -> pb::AccountPayoutRequest {
        pb::AccountPayoutRequest {
            notification_url: notification_url.into(),
            account_id: account_id.into(),
            end_user_id: "user-1".into(),
            message_id: message_id.into(),
            amount: money(amount, "EUR"),
            shopper_statement: "Payout".into(),
            ..Default::default()
        }
    }

    pub fn register_account_payout(
        notification_url: &str,
        message_id: &str,
        account_number: &str,
        amount: &str,
    ) -> pb::RegisterAccountPayoutRequest {
        pb::RegisterAccountPayoutRequest {
            notification_url: notification_url.into(),
            end_user_id: "user-1".into(),
            message_id: message_id.into(),
            account: bank_account(account_number),
            amount: money(amount, "EUR"),
            shopper_statement: "Payout".into(),
            ..Default::default()
        }
    }

    pub fn charge(
        notification_url: &str,
        message_id: &str,
        account_id: &str,
        amount: &str,
    ) -> pb::ChargeRequest {
        pb::ChargeRequest {
            notification_url: notification_url.into(),
            account_id: account_id.into(),
            end_user_id: "user-dd".into(),
            message_id: message_id.into(),
            amount: money(amount, "EUR"),
            shopper_statement: "Shop".into(),
            email: "dd@example.com".into(),
            ..Default::default()
        }
    }

    pub fn refund(request_id: &str, order_id: &str, amount: &str) -> pb::RefundRequest {
        pb::RefundRequest {
            request_id: request_id.into(),
            order_id: order_id.into(),
            amount: money(amount, "EUR"),
            ..Default::default()
        }
    }

    pub fn approve_withdrawal() -> pb::ApproveWithdrawalRequest {
        pb::ApproveWithdrawalRequest {
            request_id: "approve-1".into(),
            order_id: "1234567890".into(),
            ..Default::default()
        }
    }

    pub fn deny_withdrawal() -> pb::DenyWithdrawalRequest {
        pb::DenyWithdrawalRequest {
            request_id: "deny-1".into(),
            order_id: "1234567890".into(),
            ..Default::default()
        }
    }

    pub fn cancel_charge() -> pb::CancelChargeRequest {
        pb::CancelChargeRequest {
            request_id: "cancel-1".into(),
            order_id: "1234567890".into(),
            ..Default::default()
        }
    }

    pub fn get_withdrawals() -> pb::GetWithdrawalsRequest {
        pb::GetWithdrawalsRequest {
            order_id: "1234567890".into(),
        }
    }

    /// January 2026 in EUR.
    pub fn account_ledger() -> pb::AccountLedgerRequest {
        pb::AccountLedgerRequest {
            from_date: "2026-01-01".into(),
            to_date: "2026-01-31".into(),
            currency_code: "EUR".into(),
        }
    }

    /// 2026-01-01, every currency.
    pub fn settlement_report() -> pb::SettlementReportRequest {
        pb::SettlementReportRequest {
            settlement_date: "2026-01-01".into(),
            currency_code: String::new(),
        }
    }

    pub fn merchant_settlement() -> pb::MerchantSettlementRequest {
        pb::MerchantSettlementRequest {
            message_id: "m-1".into(),
            amount: money("10.00", "EUR"),
            ..Default::default()
        }
    }
}
