//! Everything a running simulator holds, shared by the HTTP handlers, the callback tasks and
//! the [`crate::Simulator`] handle.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::accounts::{Account, SimConfig};
use crate::callbacks::Outcome;
use crate::faults::Faults;
use crate::inbound::InboundDelivery;
use crate::recording::RecordedRequest;
use crate::resource::{MessageRecord, SimMessage};

/// How long Twilio waits for a status callback's whole response.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(15);
const CALLBACK_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct SimState {
    pub accounts: Vec<Account>,
    pub callback_delay: Duration,
    pub http: reqwest::Client,
    /// In creation order. Tests create tens of messages, so lookups by SID can scan.
    pub messages: Mutex<Vec<MessageRecord>>,
    pub requests: Mutex<Vec<RecordedRequest>>,
    /// Keyed by the exact `To` string.
    pub overrides: Mutex<HashMap<String, Outcome>>,
    /// Destinations whose status callbacks are lost on the way (exact `To`): the messages still
    /// move on at Twilio, as when our endpoint answered 5xx and Twilio did not retry.
    pub lost_callbacks: Mutex<std::collections::HashSet<String>>,
    /// Faults to inject into create requests.
    pub faults: Faults,
    /// Message lifecycles still to play out; `callbacks_settled` waits for zero.
    pub pending_lifecycles: watch::Sender<usize>,
    /// The inbound webhook URL of a number or a Messaging Service (by its E.164 or MG SID).
    pub inbound_urls: Mutex<HashMap<String, String>>,
    /// Every inbound text posted, in order.
    pub inbound: Mutex<Vec<InboundDelivery>>,
}

impl SimState {
    pub fn new(config: SimConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            // Callbacks go to local receivers; a proxy from the environment must not intercept them.
            .no_proxy()
            .connect_timeout(CALLBACK_CONNECT_TIMEOUT)
            .timeout(CALLBACK_TIMEOUT)
            .user_agent("TwilioProxy/1.1")
            .build()
            .context("building the status-callback HTTP client")?;
        Ok(Self {
            accounts: config.accounts,
            callback_delay: config.callback_delay,
            http,
            messages: Mutex::default(),
            requests: Mutex::default(),
            overrides: Mutex::default(),
            lost_callbacks: Mutex::default(),
            faults: Faults::default(),
            pending_lifecycles: watch::Sender::new(0),
            inbound_urls: Mutex::default(),
            inbound: Mutex::default(),
        })
    }

    pub fn account(&self, sid: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.sid == sid)
    }

    pub fn outcome_for(&self, to: &str) -> Outcome {
        lock(&self.overrides).get(to).copied().unwrap_or_default()
    }

    pub fn set_override(&self, to: &str, outcome: Outcome) {
        lock(&self.overrides).insert(to.to_owned(), outcome);
    }

    pub fn clear_overrides(&self) {
        lock(&self.overrides).clear();
        lock(&self.lost_callbacks).clear();
    }

    pub fn lose_callbacks_to(&self, to: &str) {
        lock(&self.lost_callbacks).insert(to.to_owned());
    }

    pub fn callbacks_lost_for(&self, to: &str) -> bool {
        lock(&self.lost_callbacks).contains(to)
    }

    pub fn messages(&self) -> Vec<SimMessage> {
        lock(&self.messages).iter().map(|r| r.message.clone()).collect()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    pub fn set_inbound_url(&self, number_or_service: &str, url: &str) {
        lock(&self.inbound_urls).insert(number_or_service.to_owned(), url.to_owned());
    }

    /// Where a text to `number` is posted: its Messaging Service's URL when it is in one that
    /// has one (the service's setting wins at Twilio), else the number's own.
    pub fn inbound_url(&self, service: Option<&str>, number: &str) -> Option<String> {
        let urls = lock(&self.inbound_urls);
        service.and_then(|s| urls.get(s)).or_else(|| urls.get(number)).cloned()
    }

    pub fn inbound_deliveries(&self) -> Vec<InboundDelivery> {
        lock(&self.inbound).clone()
    }

    /// Runs `change` on the stored message, if it exists, and returns what it returned.
    pub fn update_message<T>(&self, sid: &str, change: impl FnOnce(&mut MessageRecord) -> T) -> Option<T> {
        lock(&self.messages).iter_mut().find(|r| r.message.sid == sid).map(change)
    }
}

/// A panic while holding one of these locks leaves plain data behind, still worth reading, so
/// poisoning is ignored rather than spread to every later request.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
