//! Everything a function needs, built once at start-up and shared by every invocation.

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use chrono::TimeDelta;

use crate::appointments::AppointmentsTable;
use crate::clinics_table::ClinicsTable;
use crate::clock::Clock;
use crate::config::{ConfigError, Settings};
use crate::connection_activity::RecentRefreshes;
use crate::conversations_table::ConversationsTable;
use crate::counters_table::CountersTable;
use crate::event_bus::EventBus;
use crate::mass_alerts_table::MassAlertsTable;
use crate::messages_table::MessagesTable;
use crate::rate_limit::Shares;
use crate::reports_bucket::ReportsBucket;
use crate::retry_policy::RetryPolicy;
use crate::send_queue::SendQueues;
use crate::sender_store::SenderStore;
use crate::twilio::client::TwilioClient;

/// How long the sender waits for Twilio, and how long a claim for sending lasts. The lease
/// outlasts the whole Twilio call plus a margin, so a live sender and a reconciler never overlap;
/// tests that shorten one shorten both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub twilio_timeout: Duration,
    pub lease: TimeDelta,
    /// How long a message Twilio holds may go without news before the scheduler asks Twilio.
    pub status_check_after: TimeDelta,
}

impl Timing {
    /// Both durations divided by `factor`, for tests; the Twilio timeout stays at least a second
    /// (a loaded test machine is slow) and the lease at least twice the timeout.
    pub fn scaled(self, factor: u32) -> Self {
        let factor = factor.max(1);
        let twilio_timeout = (self.twilio_timeout / factor).max(Duration::from_secs(1));
        let floor = TimeDelta::from_std(twilio_timeout * 2).unwrap_or(self.lease);
        Self {
            twilio_timeout,
            lease: (self.lease / i32::try_from(factor).unwrap_or(i32::MAX)).max(floor),
            status_check_after: self.status_check_after,
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        // Twilio may queue a text for up to 10 hours; five checks two hours apart cover that.
        Self {
            twilio_timeout: Duration::from_secs(10),
            lease: TimeDelta::seconds(45),
            status_check_after: TimeDelta::hours(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not build the HTTP client for Twilio")]
    Http(#[from] reqwest::Error),
}

/// The AWS clients a function uses.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub s3: aws_sdk_s3::Client,
}

#[derive(Clone, Debug)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub clinics: ClinicsTable,
    pub messages: MessagesTable,
    pub mass_alerts: MassAlertsTable,
    pub conversations: ConversationsTable,
    pub appointments: AppointmentsTable,
    pub counters: CountersTable,
    pub sender_store: SenderStore,
    pub queues: SendQueues,
    pub events: EventBus,
    /// Mass alert reports.
    pub reports: ReportsBucket,
    pub twilio: TwilioClient,
    pub clock: Clock,
    pub timing: Timing,
    /// Each lane's share of a connection's throughput (from the settings; tests change it).
    pub shares: Shares,
    /// How failed tries are retried (from the settings).
    pub retries: RetryPolicy,
    /// Connection activity this process recorded lately (so a busy connection costs one write a
    /// minute, not one per webhook).
    pub recent_refreshes: RecentRefreshes,
}

impl Services {
    pub fn new(settings: Settings, aws: &SdkConfig, clock: Clock, timing: Timing) -> Result<Self, StartupError> {
        let dynamo = aws_sdk_dynamodb::Client::new(aws);
        let sqs = aws_sdk_sqs::Client::new(aws);
        let events = aws_sdk_eventbridge::Client::new(aws);
        // Locally (an endpoint override: moto) buckets are addressed by path; on AWS by host.
        let s3_config = aws_sdk_s3::config::Builder::from(aws).force_path_style(aws.endpoint_url().is_some()).build();
        let s3 = aws_sdk_s3::Client::from_conf(s3_config);
        Self::from_clients(settings, AwsClients { dynamo, sqs, events, s3 }, clock, timing)
    }

    /// With clients configured by the caller (benchmarks add a request-counting interceptor).
    pub fn from_clients(
        settings: Settings,
        clients: AwsClients,
        clock: Clock,
        timing: Timing,
    ) -> Result<Self, StartupError> {
        let AwsClients { dynamo, sqs, events, s3 } = clients;
        Ok(Self {
            reports: ReportsBucket::new(s3, settings.reports_bucket.clone()),
            clinics: ClinicsTable::new(dynamo.clone(), settings.tables.clinics.clone()),
            messages: MessagesTable::new(
                dynamo.clone(),
                settings.tables.messages.clone(),
                settings.tables.counters.clone(),
            ),
            mass_alerts: MassAlertsTable::new(
                dynamo.clone(),
                settings.tables.messages.clone(),
                settings.tables.counters.clone(),
            ),
            conversations: ConversationsTable::new(dynamo.clone(), settings.tables.messages.clone()),
            appointments: AppointmentsTable::new(dynamo.clone(), settings.tables.appointments.clone()),
            counters: CountersTable::new(dynamo.clone(), settings.tables.counters.clone()),
            sender_store: SenderStore::new(dynamo, &settings),
            queues: SendQueues::new(sqs, settings.queues.clone()),
            events: EventBus::new(events, settings.event_bus.clone()),
            twilio: TwilioClient::new(settings.twilio.clone(), timing.twilio_timeout),
            shares: settings.sending.shares,
            retries: settings.sending.retries,
            settings: Arc::new(settings),
            clock,
            timing,
            recent_refreshes: RecentRefreshes::default(),
        })
    }

    /// On Lambda: settings from the environment, AWS from the execution role, the system clock.
    pub async fn from_env() -> Result<Self, StartupError> {
        let settings = Settings::from_env()?;
        let aws = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Self::new(settings, &aws, Clock::system(), Timing::default())
    }
}
