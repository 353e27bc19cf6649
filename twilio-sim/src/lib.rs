//! A Twilio Messages API simulator for development and tests. It speaks Twilio's wire format:
//! form-encoded PascalCase requests with HTTP Basic auth, the message resource and error JSON,
//! test credentials' magic numbers, and signed status callbacks for live accounts.
//!
//! Never linked into a Lambda binary.
//!
//! Routes, all on [`Simulator::base_url`]:
//! - `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (create),
//!   `GET /2010-04-01/Accounts/{AccountSid}/Messages.json` (list: `To`, `From`, `DateSent`,
//!   `DateSent<`, `DateSent>` with `YYYY-MM-DD` dates, `PageSize`, `Page`, `PageToken`; newest
//!   first) and `GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json` (fetch), as Twilio;
//! - `POST /sim/overrides` (`{"to": "+1…", "outcome": "deliver" | "undelivered" | "failed" |
//!   "hold", "error_code": 30003}`), `DELETE /sim/overrides`, `POST /sim/faults`
//!   (`{"fault": {"kind": "throttle", "retry_after_secs": 1}, "plan": {"times": 1}}`, see
//!   [`Fault`] and [`FaultPlan`]), `DELETE /sim/faults`, `GET /sim/requests`, `GET /sim/messages`,
//!   `POST /sim/inbound-urls` (`{"number": "+1…" or "MG…", "url": "…/twilio/inbound"}`),
//!   `POST /sim/inbound` (a phone texts a number, see [`InboundText`]; answers the
//!   [`InboundDelivery`]) and `GET /sim/inbound`: the same controls as the [`Simulator`]
//!   methods, for the local runner and curl.
//!
//! ```no_run
//! # async fn demo(config: twilio_sim::SimConfig) -> anyhow::Result<()> {
//! let sim = twilio_sim::Simulator::start(config).await?;
//! // Point the Twilio client at sim.base_url(), send, then:
//! sim.callbacks_settled(std::time::Duration::from_secs(5)).await;
//! assert_eq!(sim.messages().len(), 1);
//! # Ok(()) }
//! ```

mod accounts;
mod api_error;
mod callbacks;
mod connection;
mod control;
mod faults;
mod inbound;
mod list;
mod messages_api;
mod recording;
mod resource;
mod segments;
mod sid;
mod state;
mod test_credentials;
mod validation;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

pub use accounts::{Account, AccountKind, MessagingService, SimConfig};
pub use callbacks::Outcome;
pub use faults::{Fault, FaultPlan};
pub use inbound::{InboundDelivery, InboundText, OptOutType};
pub use recording::RecordedRequest;
pub use resource::SimMessage;

use connection::{Connection, CuttableListener};
use state::SimState;

/// A handle to a running simulator. Clones share it; the server stops when the last clone is
/// dropped (callbacks already scheduled still go out).
#[derive(Clone)]
pub struct Simulator {
    state: Arc<SimState>,
    base_url: Url,
    _server: Arc<ServerTask>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator").field("base_url", &self.base_url.as_str()).finish_non_exhaustive()
    }
}

impl Simulator {
    /// Serves on a free port of 127.0.0.1.
    pub async fn start(config: SimConfig) -> anyhow::Result<Simulator> {
        Self::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> anyhow::Result<Simulator> {
        config.validate().context("invalid simulator configuration")?;
        let listener =
            TcpListener::bind(addr).await.with_context(|| format!("binding the Twilio simulator to {addr}"))?;
        let local = listener.local_addr().context("reading the simulator's bound address")?;
        let base_url = Url::parse(&format!("http://{local}")).context("building the simulator's base URL")?;

        let state = Arc::new(SimState::new(config)?);
        let app = control::router().merge(messages_api::router(Arc::clone(&state))).with_state(Arc::clone(&state));
        let app = app.into_make_service_with_connect_info::<Connection>();
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(CuttableListener(listener), app).await {
                tracing::error!(%error, "Twilio simulator stopped serving");
            }
        });
        tracing::info!(%base_url, "Twilio simulator listening");
        Ok(Simulator { state, base_url, _server: Arc::new(ServerTask(server)) })
    }

    /// `http://127.0.0.1:PORT/`: use as the Twilio API base URL.
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    /// Every request to the Twilio API routes, in arrival order (control calls under `/sim` are
    /// not recorded).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// Every message created, in creation order, at its current status.
    pub fn messages(&self) -> Vec<SimMessage> {
        self.state.messages()
    }

    /// How live accounts' messages to `to` (exact string) end, for messages created from now on.
    pub fn set_override(&self, to: &str, outcome: Outcome) {
        self.state.set_override(to, outcome);
    }

    /// Status callbacks for messages to `to` (exact string) are lost from now on: the messages
    /// still move on and show so when fetched or listed.
    pub fn lose_callbacks_to(&self, to: &str) {
        self.state.lose_callbacks_to(to);
    }

    /// Clears every override and lost-callback destination.
    pub fn clear_overrides(&self) {
        self.state.clear_overrides();
    }

    /// Injects `fault` into the create requests `plan` selects, from the next one on. Plans
    /// stack: each create request gets the fault of the first plan (in injection order) that
    /// matches it and whose draw comes up. Faults apply before authentication and validation.
    ///
    /// # Panics
    /// If `plan.probability` is not between 0 and 1.
    pub fn inject(&self, fault: Fault, plan: FaultPlan) {
        if let Err(problem) = self.state.faults.inject(fault, plan) {
            panic!("invalid fault plan: {problem}");
        }
    }

    /// Removes every fault plan, spent or not.
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Sets the "a message comes in" webhook of a number (E.164) or Messaging Service (MG SID).
    pub fn set_inbound_url(&self, number_or_service: &str, url: &str) {
        self.state.set_inbound_url(number_or_service, url);
    }

    /// A phone texts one of the accounts' numbers: Twilio's inbound webhook is posted, signed
    /// with the owning account's auth token, once or (with `duplicate`) twice with the same
    /// `MessageSid`. Fails when Twilio could not have routed it (no account owns `to`, no URL).
    pub async fn send_inbound(&self, text: InboundText) -> anyhow::Result<InboundDelivery> {
        inbound::deliver(&self.state, text).await
    }

    /// Every inbound text posted so far, in order, with the webhook's answers.
    pub fn inbound_deliveries(&self) -> Vec<InboundDelivery> {
        self.state.inbound_deliveries()
    }

    /// Waits until every message's lifecycle, callbacks included, has played out. `false` if
    /// `timeout` passed first.
    pub async fn callbacks_settled(&self, timeout: Duration) -> bool {
        let mut pending = self.state.pending_lifecycles.subscribe();
        matches!(tokio::time::timeout(timeout, pending.wait_for(|count| *count == 0)).await, Ok(Ok(_)))
    }
}

/// Stops serving when the last [`Simulator`] clone goes, so tests sharing a runtime do not
/// accumulate servers.
struct ServerTask(JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
