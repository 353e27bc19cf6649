//! After a live account's message is accepted: its status moves on over time, and each step is
//! posted, signed, to the message's `StatusCallback`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shared::twilio::signature;

use crate::resource::{API_VERSION, SimMessage, Status};
use crate::state::SimState;

/// What happens to messages for one destination after Twilio accepted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Outcome {
    /// `sent`, then `delivered`.
    #[default]
    Deliver,
    /// `sent`, then `undelivered` with this error code (e.g. 30003 unreachable handset).
    Undelivered(u32),
    /// `failed` with this error code (e.g. 30001 queue overflow); the message never left.
    Failed(u32),
    /// Held in Twilio's queue for good: stays `queued` (or `accepted`), never sent, no
    /// callbacks, `date_sent` null.
    Hold,
}

impl Outcome {
    fn steps(self) -> Vec<(Status, Option<u32>)> {
        match self {
            Self::Deliver => vec![(Status::Sent, None), (Status::Delivered, None)],
            Self::Undelivered(code) => {
                vec![(Status::Sent, None), (Status::Undelivered, Some(code))]
            }
            Self::Failed(code) => vec![(Status::Failed, Some(code))],
            Self::Hold => Vec::new(),
        }
    }
}

/// Plays out a message's lifecycle in the background. The message counts as pending from this
/// call, before its 201 goes out, so `callbacks_settled` cannot miss it.
pub(crate) fn schedule(state: &Arc<SimState>, message_sid: String, outcome: Outcome) {
    if outcome == Outcome::Hold {
        return;
    }
    let pending = Pending::start(Arc::clone(state));
    tokio::spawn(async move {
        for (status, error_code) in outcome.steps() {
            tokio::time::sleep(pending.state.callback_delay).await;
            let state = &pending.state;
            let now = Utc::now();
            let Some(message) = advance(state, &message_sid, status, error_code, now) else {
                return;
            };
            if state.callbacks_lost_for(&message.to) {
                continue;
            }
            if let Some(callback) = Callback::for_step(state, message, status, error_code, now) {
                post(&state.http, callback).await;
            }
        }
    });
}

/// Moves the stored message to `status`; returns it as it now stands.
fn advance(
    state: &SimState,
    sid: &str,
    status: Status,
    error_code: Option<u32>,
    now: DateTime<Utc>,
) -> Option<SimMessage> {
    state.update_message(sid, |record| {
        record.set_status(status, error_code, now);
        if record.message.from.is_none() {
            let service = record.message.messaging_service_sid.as_deref();
            record.message.from = pool_sender(state, service, &record.message.to);
        }
        record.message.clone()
    })
}

/// A signed status callback, ready to post.
struct Callback {
    url: String,
    params: Vec<(&'static str, String)>,
    signature: String,
}

impl Callback {
    /// `None` when the message asked for no callbacks.
    fn for_step(
        state: &SimState,
        message: SimMessage,
        status: Status,
        error_code: Option<u32>,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let url = message.status_callback?;
        let account = state.account(&message.account_sid)?;
        let mut params = vec![
            ("MessageSid", message.sid.clone()),
            ("SmsSid", message.sid),
            ("AccountSid", message.account_sid),
            ("From", message.from.unwrap_or_default()),
            ("To", message.to),
            ("MessageStatus", status.as_str().to_owned()),
            ("SmsStatus", status.as_str().to_owned()),
            ("ApiVersion", API_VERSION.to_owned()),
        ];
        if let Some(service) = message.messaging_service_sid {
            params.push(("MessagingServiceSid", service));
        }
        if let Some(code) = error_code {
            params.push(("ErrorCode", code.to_string()));
        }
        if matches!(status, Status::Delivered | Status::Undelivered) {
            // The carrier's delivery-report time, to the minute.
            params.push(("RawDlrDoneDate", now.format("%y%m%d%H%M").to_string()));
        }
        let signature =
            signature::sign(&account.auth_token, &url, params.iter().map(|(name, value)| (*name, value.as_str())));
        Some(Self { url, params, signature })
    }
}

/// The pool number a Messaging Service sends from. Chosen from the recipient so the same person
/// always hears from the same number, as Twilio's sticky sender does.
fn pool_sender(state: &SimState, service_sid: Option<&str>, to: &str) -> Option<String> {
    let service_sid = service_sid?;
    let service = state.accounts.iter().find_map(|account| account.service(service_sid))?;
    let spread = to.bytes().map(usize::from).sum::<usize>();
    service.numbers.get(spread % service.numbers.len().max(1)).cloned()
}

/// Twilio does not retry a status callback, so neither do we: failures are only logged.
async fn post(http: &reqwest::Client, callback: Callback) {
    let result =
        http.post(&callback.url).header("X-Twilio-Signature", &callback.signature).form(&callback.params).send().await;
    match result {
        Ok(response) if response.status().is_success() => {
            tracing::debug!(url = %callback.url, status = %response.status(), "status callback delivered");
        }
        Ok(response) => {
            tracing::warn!(url = %callback.url, status = %response.status(), "status callback refused; not retried");
        }
        Err(error) => {
            tracing::warn!(url = %callback.url, %error, "status callback failed; not retried");
        }
    }
}

/// Counts a lifecycle as pending for as long as it lives, even if its task panics or is dropped.
struct Pending {
    state: Arc<SimState>,
}

impl Pending {
    fn start(state: Arc<SimState>) -> Self {
        state.pending_lifecycles.send_modify(|n| *n += 1);
        Self { state }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.state.pending_lifecycles.send_modify(|n| *n = n.saturating_sub(1));
    }
}
