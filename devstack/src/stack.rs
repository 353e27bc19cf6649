//! The whole system on this machine: moto's tables and queues, the Twilio simulator, the demo
//! clinic, and the runner serving the API and webhooks and draining the lanes. `cargo xtask up`
//! runs one; every integration test starts its own, with its own resource names.

use std::net::SocketAddr;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use shared::clock::Clock;
use shared::config::{AlertSettings, Settings, TwilioSettings};
use shared::services::{Services, Timing};
use twilio_sim::{Account, AccountKind, SimConfig, Simulator};

use crate::provision::{self, Resources};
use crate::request_count::{RequestCounter, counted_clients};
use crate::runner::{self, Crashes, Runner, SenderConcurrency};
use crate::seed::{self, SeededClinic};

/// The simulator's live account: owns `DEMO_SENDER` and posts signed status callbacks.
pub const LIVE_ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const LIVE_AUTH_TOKEN: &str = "local-live-auth-token";
/// The simulator's test account: Twilio's test-credential rules and magic numbers, no callbacks.
pub const TEST_ACCOUNT_SID: &str = "ACfedcba9876543210fedcba9876543210";
pub const TEST_AUTH_TOKEN: &str = "local-test-auth-token";
pub const DEMO_SENDER: &str = "+15017122661";
/// A second number of the live account, for a second clinic in the same stack (each number
/// belongs to one clinic).
pub const OTHER_SENDER: &str = "+15017122662";
/// Twilio's magic test sender that always passes.
pub const TEST_SENDER: &str = "+15005550006";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwilioAccount {
    Live,
    Test,
}

#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Prefix of every table, queue, bus and bucket name (lowercase, unique per stack).
    pub prefix: String,
    /// Divides SQS visibility timeouts, the Twilio timeout and the sending lease alike
    /// (1 = as deployed; tests use 10).
    pub time_scale: u32,
    pub http_addr: SocketAddr,
    pub account: TwilioAccount,
    /// Makes the demo admin key reproducible.
    pub key_seed: Option<String>,
    pub clock: Clock,
    /// Sender invocations per lane at once: as deployed unless a test asks otherwise.
    pub sender_concurrency: SenderConcurrency,
    /// Sender invocations cut short at random (chaos tests); `None` lets every one finish.
    pub crashes: Option<Crashes>,
    /// Tick the scheduler at the start of every minute (local runs); tests tick it themselves.
    pub scheduler_ticks: bool,
    /// Each lane's share of a connection's throughput.
    pub shares: shared::rate_limit::Shares,
    /// How long the API's links to mass alert reports work.
    pub report_link_valid_for: Duration,
    /// Counts the AWS requests of the stack's own functions (API, webhooks, fan-out, and the
    /// sender and scheduler unless a benchmark gives them clients of their own).
    pub request_counter: Option<RequestCounter>,
}

impl StackOptions {
    pub fn for_tests(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            time_scale: 10,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            account: TwilioAccount::Live,
            key_seed: None,
            clock: Clock::system(),
            sender_concurrency: SenderConcurrency::AsDeployed,
            crashes: None,
            scheduler_ticks: false,
            shares: shared::rate_limit::Shares::default(),
            report_link_valid_for: AlertSettings::default().report_link_valid_for,
            request_counter: None,
        }
    }
}

pub struct Stack {
    pub services: Services,
    pub resources: Resources,
    pub simulator: Simulator,
    /// Where the API and webhooks answer, e.g. `http://127.0.0.1:3000`.
    pub base_url: String,
    pub demo: SeededClinic,
    pub aws: SdkConfig,
    runner: Runner,
}

/// SDK configuration for the local moto server.
pub async fn local_aws(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "clinic-sms-local"))
        .load()
        .await
}

pub fn simulator_config() -> SimConfig {
    SimConfig {
        accounts: vec![
            Account {
                sid: LIVE_ACCOUNT_SID.into(),
                auth_token: LIVE_AUTH_TOKEN.into(),
                kind: AccountKind::Live,
                numbers: vec![DEMO_SENDER.into(), OTHER_SENDER.into()],
                messaging_services: vec![],
            },
            Account {
                sid: TEST_ACCOUNT_SID.into(),
                auth_token: TEST_AUTH_TOKEN.into(),
                kind: AccountKind::Test,
                numbers: vec![],
                messaging_services: vec![],
            },
        ],
        callback_delay: Duration::from_millis(20),
    }
}

impl Stack {
    pub async fn start(moto_endpoint: &str, options: StackOptions) -> anyhow::Result<Self> {
        let aws = local_aws(moto_endpoint).await;
        let resources = provision::provision(&aws, &options.prefix, options.time_scale).await?;
        let simulator = Simulator::start(simulator_config()).await?;
        let (listener, base_url) = runner::bind(options.http_addr).await?;
        let (account_sid, auth_token, sender) = match options.account {
            TwilioAccount::Live => (LIVE_ACCOUNT_SID, LIVE_AUTH_TOKEN, DEMO_SENDER),
            TwilioAccount::Test => (TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_SENDER),
        };
        let twilio = TwilioSettings {
            api_base: simulator.base_url(),
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            previous_auth_token: None,
        };
        let settings = Settings {
            alerts: AlertSettings { report_link_valid_for: options.report_link_valid_for, ..AlertSettings::default() },
            sending: shared::config::SendingSettings::default(),
            ..resources.settings(twilio, base_url.parse()?)
        };
        // As a clinic sets each number's "a message comes in" webhook in Twilio's console.
        let inbound_url = settings.webhook_url(shared::webhook_rejections::WebhookRoute::Inbound.path());
        for number in [DEMO_SENDER, OTHER_SENDER] {
            simulator.set_inbound_url(number, &inbound_url);
        }
        let timing = Timing::default().scaled(options.time_scale);
        let mut services = match &options.request_counter {
            Some(counter) => {
                Services::from_clients(settings, counted_clients(&aws, counter), options.clock.clone(), timing)?
            }
            None => Services::new(settings, &aws, options.clock.clone(), timing)?,
        };
        services.shares = options.shares;
        let demo = seed::clinic_with_connection(
            &services.clinics,
            &services.counters,
            "demo",
            sender,
            options.key_seed.as_deref(),
            options.clock.now(),
        )
        .await?;
        let runner = Runner::start(
            services.clone(),
            listener,
            options.sender_concurrency,
            options.crashes,
            options.scheduler_ticks,
            aws_sdk_sqs::Client::new(&aws),
            resources.mass_alert_queue.clone(),
        );
        Ok(Self { services, resources, simulator, base_url, demo, aws, runner })
    }

    /// The most times each job (by body) was received from its queue so far.
    pub fn receive_counts(&self) -> std::collections::HashMap<String, u32> {
        self.runner.receive_counts()
    }

    /// Starts draining the lanes into a sender built from `services` (for stacks started with
    /// no sender invocations).
    pub fn drain_lanes(&mut self, services: Services, sqs: aws_sdk_sqs::Client, concurrency: SenderConcurrency) {
        self.runner.drain_lanes(services, sqs, concurrency, None);
    }

    /// How many sender invocations ran so far, and for how long in all.
    pub fn sender_invocations(&self) -> (usize, Duration) {
        self.runner.sender_invocations()
    }

    /// How many sender invocations the runner cut short so far.
    pub fn crashed_invocations(&self) -> usize {
        self.runner.crashed_invocations()
    }
}
