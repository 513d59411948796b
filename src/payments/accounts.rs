//! Orders and accounts: orders that open a flow (Deposit, Withdraw, SelectAccount) are linked to
//! their end user for the account cache, Withdraw orders are registered for decision routing, and
//! RegisterAccount is answered from the cache when the same details were registered before.

use tracing::warn;

use super::{Answer, Error, Payments, Prepared};
use crate::{
    store::accounts::{self, Account, AccountCache, DetailsHasher},
    trustly::methods::{AccountRegistration, OrderWithUrl},
};

/// The AccountID cache as the payment use cases see it.
#[derive(Clone)]
pub struct AccountSettings {
    pub cache: AccountCache,
    pub hasher: DetailsHasher,
    /// Answer RegisterAccount from the cache when the details are known for the end user.
    pub from_cache: bool,
}

/// The bank details of a RegisterAccount request, as the cache keys them.
#[derive(Clone, Debug)]
pub struct BankDetails {
    pub clearing_house: String,
    pub bank_number: String,
    pub account_number: String,
}

impl Payments {
    /// Opens an order (Deposit, SelectAccount) and links it to its end user.
    pub async fn open_order(
        &self,
        prepared: Prepared,
        end_user_id: &str,
    ) -> Result<Answer<OrderWithUrl>, Error> {
        let answer: Answer<OrderWithUrl> = self.call(prepared).await?;
        self.remember_order(&answer.value.order_id, end_user_id)
            .await;
        Ok(answer)
    }

    /// Opens a Withdraw order: linked to its end user, and registered so that its `debit`
    /// notification waits for the merchant's decision.
    pub async fn withdraw(
        &self,
        prepared: Prepared,
        end_user_id: &str,
    ) -> Result<Answer<OrderWithUrl>, Error> {
        let answer = self.open_order(prepared, end_user_id).await?;
        let order_id = &answer.value.order_id;
        if let Err(error) = self.log.orders.remember_withdraw(order_id).await {
            // The withdrawal exists; only the decision routing of its `debit` is affected.
            tracing::error!(%error, %order_id, "could not record a Withdraw order; its debit will not wait for a decision");
        }
        Ok(answer)
    }

    /// RegisterAccount: the same details always give the same AccountID (spec §5.8), so a cached
    /// registration answers without calling Trustly; a new one is cached.
    pub async fn register_account(
        &self,
        prepared: Prepared,
        end_user_id: String,
        bank: Option<&BankDetails>,
    ) -> Result<Answer<AccountRegistration>, Error> {
        let details = bank.map(|b| {
            self.accounts.hasher.key(
                &end_user_id,
                &b.clearing_house,
                &b.bank_number,
                &b.account_number,
            )
        });
        if let (true, Some(details)) = (self.accounts.from_cache, &details) {
            match self.accounts.cache.find(details).await {
                Ok(Some(account)) => {
                    tracing::debug!(account_id = %account.account_id, "RegisterAccount answered from the account cache");
                    return Ok(Answer::fresh(AccountRegistration {
                        account_id: account.account_id,
                        clearinghouse: account.clearing_house,
                        bank: account.bank,
                        descriptor: account.descriptor,
                        extra: Default::default(),
                    }));
                }
                Ok(None) => {}
                Err(error) => warn!(%error, "account cache unavailable; asking Trustly"),
            }
        }
        let answer: Answer<AccountRegistration> = self.call(prepared).await?;
        let registered = &answer.value;
        let account = Account {
            account_id: registered.account_id.clone(),
            end_user_id,
            bank: registered.bank.clone(),
            clearing_house: registered.clearinghouse.clone(),
            descriptor: registered.descriptor.clone(),
            last_digits: registered
                .descriptor
                .chars()
                .filter(char::is_ascii_digit)
                .collect(),
            verified: true,
            source: "register_account".into(),
            last_seen_ms: accounts::now_ms(),
        };
        if let Err(error) = self.accounts.cache.put(&account, details.as_ref()).await {
            warn!(%error, account_id = %account.account_id, "could not cache a registered account");
        }
        Ok(answer)
    }

    /// Links an order to its end user, so its `account` notification can be cached (best effort:
    /// the order exists either way).
    async fn remember_order(&self, order_id: &str, end_user_id: &str) {
        if let Err(error) = self
            .accounts
            .cache
            .remember_order(order_id, end_user_id)
            .await
        {
            warn!(%error, %order_id, "could not link an order to its end user for the account cache");
        }
    }
}
