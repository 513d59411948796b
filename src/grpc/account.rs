//! `trustly.v1.AccountService`: reads of the AccountID cache.

use std::time::{Duration, UNIX_EPOCH};

use tonic::{Request, Response, Status};
use tracing::warn;

use crate::{
    pb::{self, account_service_server::AccountService},
    store::accounts::{Account, AccountCache},
};

/// The `AccountService` implementation.
#[derive(Clone)]
pub struct Accounts {
    cache: AccountCache,
}

impl Accounts {
    pub fn new(cache: AccountCache) -> Self {
        Self { cache }
    }
}

/// The account cache failed: logged here, mapped to UNAVAILABLE by `status.rs`.
fn unavailable(error: crate::store::Error) -> Status {
    warn!(%error, "account cache unavailable");
    super::Error::Store(error).into()
}

/// The key a read looks up by, refused when empty.
fn required<'r>(field: &str, value: &'r str) -> Result<&'r str, Status> {
    if value.is_empty() {
        return Err(super::Error::invalid(field, "is required").into());
    }
    Ok(value)
}

/// A cached account as the API shows it.
pub fn cached_account(account: Account) -> pb::CachedAccount {
    pb::CachedAccount {
        last_seen_time: Some(prost_types::Timestamp::from(
            UNIX_EPOCH + Duration::from_millis(account.last_seen_ms),
        )),
        account_id: account.account_id,
        end_user_id: account.end_user_id,
        bank: account.bank,
        clearing_house: account.clearing_house,
        descriptor: account.descriptor,
        last_digits: account.last_digits,
        verified: account.verified,
        source: account.source,
    }
}

#[tonic::async_trait]
impl AccountService for Accounts {
    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let end_user_id = required("end_user_id", &request.get_ref().end_user_id)?;
        let accounts = self.cache.list(end_user_id).await.map_err(unavailable)?;
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: accounts.into_iter().map(cached_account).collect(),
        }))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let account_id = required("account_id", &request.get_ref().account_id)?;
        match self.cache.get(account_id).await.map_err(unavailable)? {
            Some(account) => Ok(Response::new(pb::GetAccountResponse {
                account: Some(cached_account(account)),
            })),
            None => Err(super::Error::NotFound("account in the cache").into()),
        }
    }
}
