//! The Twilio accounts the simulator knows, and HTTP Basic authentication against them.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::ensure;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::sid::is_sid;

/// Which set of Twilio rules an account's requests follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AccountKind {
    /// Test credentials: magic numbers decide the outcome, nothing is delivered, no callbacks.
    Test,
    /// A live account: its own senders only, then status callbacks per the destination's [`crate::Outcome`].
    Live,
}

#[derive(Debug, Clone)]
pub struct Account {
    /// `AC` + 32 hex digits.
    pub sid: String,
    pub auth_token: String,
    pub kind: AccountKind,
    /// E.164 numbers (or other sender IDs) the account owns; ignored for test accounts.
    pub numbers: Vec<String>,
    pub messaging_services: Vec<MessagingService>,
}

#[derive(Debug, Clone)]
pub struct MessagingService {
    /// `MG` + 32 hex digits.
    pub sid: String,
    /// The sender pool the service picks from.
    pub numbers: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub accounts: Vec<Account>,
    /// Pause before each status callback, so a client has its 201 before the first callback arrives.
    pub callback_delay: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self { accounts: Vec::new(), callback_delay: Duration::from_millis(20) }
    }
}

impl SimConfig {
    /// Rejects configurations Twilio could not have produced, so a typo in a test's setup fails
    /// at start rather than as a puzzling 401 later.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        let mut account_sids = HashSet::new();
        let mut service_sids = HashSet::new();
        for account in &self.accounts {
            ensure!(is_sid("AC", &account.sid), "account SID {:?} is not AC followed by 32 hex digits", account.sid);
            ensure!(account_sids.insert(&account.sid), "account {} is configured twice", account.sid);
            ensure!(!account.auth_token.is_empty(), "account {} has an empty auth token", account.sid);
            for service in &account.messaging_services {
                ensure!(
                    is_sid("MG", &service.sid),
                    "messaging service SID {:?} is not MG followed by 32 hex digits",
                    service.sid
                );
                ensure!(service_sids.insert(&service.sid), "messaging service {} is configured twice", service.sid);
            }
        }
        Ok(())
    }
}

impl Account {
    pub(crate) fn service(&self, sid: &str) -> Option<&MessagingService> {
        self.messaging_services.iter().find(|s| s.sid == sid)
    }

    /// A number in one of the account's service pools is still one of the account's numbers.
    pub(crate) fn owns_sender(&self, from: &str) -> bool {
        self.numbers.iter().any(|n| n == from)
            || self.messaging_services.iter().any(|s| s.numbers.iter().any(|n| n == from))
    }
}

/// The account whose SID and auth token are in the `Authorization: Basic` header, if any.
/// API keys (`SK…` usernames) are not simulated: they fail like wrong credentials.
pub(crate) fn authenticate<'a>(accounts: &'a [Account], headers: &HeaderMap) -> Option<&'a Account> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let credentials = String::from_utf8(decoded).ok()?;
    let (username, password) = credentials.split_once(':')?;
    accounts.iter().find(|a| a.sid == username && a.auth_token == password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn account() -> Account {
        Account {
            sid: format!("AC{}", "1".repeat(32)),
            auth_token: "secret".into(),
            kind: AccountKind::Live,
            numbers: vec!["+15550001111".into()],
            messaging_services: vec![MessagingService {
                sid: format!("MG{}", "2".repeat(32)),
                numbers: vec!["+15550002222".into()],
            }],
        }
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        headers
    }

    #[test]
    fn basic_credentials_must_match_an_account() {
        let accounts = [account()];
        let sid = accounts[0].sid.clone();
        assert!(authenticate(&accounts, &basic(&sid, "secret")).is_some());
        assert!(authenticate(&accounts, &basic(&sid, "Secret")).is_none());
        assert!(authenticate(&accounts, &basic("ACother", "secret")).is_none());
        assert!(authenticate(&accounts, &HeaderMap::new()).is_none());
    }

    #[test]
    fn pool_numbers_belong_to_the_account() {
        let account = account();
        assert!(account.owns_sender("+15550001111"));
        assert!(account.owns_sender("+15550002222"));
        assert!(!account.owns_sender("+15550003333"));
    }

    #[test]
    fn malformed_configuration_is_refused() {
        let mut bad = account();
        bad.sid = "AC123".into();
        let config = SimConfig { accounts: vec![bad], ..SimConfig::default() };
        assert!(config.validate().is_err());
        let twice = SimConfig { accounts: vec![account(), account()], ..SimConfig::default() };
        assert!(twice.validate().is_err());
    }
}
