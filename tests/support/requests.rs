//! Request builders and environment shared by the integration tests.

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
