//! The local runner: serves `api` and `twilio-webhooks` with the routers they run on Lambda, and
//! polls each send lane into the sender with Lambda's SQS semantics: batches of the lane's size,
//! `batchItemFailures` kept (the rest deleted), the queue's visibility timeout and redrive
//! policy doing the rest, as on AWS.

use std::collections::HashMap;
use std::net::SocketAddr;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use lambda_runtime::{Context, LambdaEvent};
use shared::aws_resources::QUEUES;
use shared::services::Services;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{error, warn};

/// Binds the HTTP listener first, so the public base URL is known before services are built.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind(addr).await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

/// One router with both functions' routes, as API Gateway routes them on AWS.
pub fn http_app(services: &Services) -> axum::Router {
    api::router(services.clone()).merge(twilio_webhooks::router(services.clone()))
}

pub struct Runner {
    tasks: Vec<JoinHandle<()>>,
    receives: ReceiveCounts,
}

/// The highest `ApproximateReceiveCount` seen for each job body, for tests of SQS churn.
pub type ReceiveCounts = std::sync::Arc<std::sync::Mutex<HashMap<String, u32>>>;

impl Runner {
    /// Serves HTTP on `listener`, starts `pollers_per_lane` pollers on every lane (0: a test drives
    /// the sender itself) and, with
    /// `scheduler_ticks`, an EventBridge-like schedule calling the scheduler every minute.
    pub fn start(
        services: Services,
        listener: TcpListener,
        pollers_per_lane: usize,
        scheduler_ticks: bool,
        sqs: aws_sdk_sqs::Client,
    ) -> Self {
        let app = http_app(&services);
        let receives = ReceiveCounts::default();
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                error!(error = %e, "local HTTP server stopped");
            }
        })];
        for (spec, url) in QUEUES.iter().zip(lane_urls(&services)) {
            for _ in 0..pollers_per_lane {
                let poller = Poller {
                    services: services.clone(),
                    sqs: sqs.clone(),
                    url: url.clone(),
                    batch_size: spec.batch_size,
                    receives: receives.clone(),
                };
                tasks.push(tokio::spawn(poller.run()));
            }
        }
        if scheduler_ticks {
            tasks.push(tokio::spawn(every_minute(services)));
        }
        Self { tasks, receives }
    }

    pub fn receive_counts(&self) -> HashMap<String, u32> {
        self.receives.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// Like an EventBridge `rate(1 minute)` rule: one tick at the start of each minute, whose time
/// is the minute it is for.
async fn every_minute(services: Services) {
    loop {
        let now = services.clock.now();
        let next_minute = now.timestamp() - now.timestamp().rem_euclid(60) + 60;
        let wait = u64::try_from((next_minute - now.timestamp()).max(1)).unwrap_or(60);
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        let at = chrono::DateTime::from_timestamp(next_minute, 0).unwrap_or_else(|| services.clock.now());
        let mut event = aws_lambda_events::eventbridge::EventBridgeEvent::<serde_json::Value>::default();
        event.detail_type = "Scheduled Event".into();
        event.source = "aws.events".into();
        event.time = Some(at);
        if let Err(e) = scheduler::handle(&services, LambdaEvent::new(event, Context::default())).await {
            error!(error = %e, "scheduler tick failed");
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lane_urls(services: &Services) -> [String; 3] {
    let q = &services.settings.queues;
    [q.interactive.clone(), q.scheduled.clone(), q.bulk.clone()]
}

struct Poller {
    services: Services,
    sqs: aws_sdk_sqs::Client,
    url: String,
    batch_size: u32,
    receives: ReceiveCounts,
}

impl Poller {
    async fn run(self) {
        let arn = self.queue_arn().await.unwrap_or_default();
        loop {
            if let Err(e) = self.poll_once(&arn).await {
                warn!(queue = %self.url, error = ?e, "polling failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }

    async fn queue_arn(&self) -> anyhow::Result<String> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?;
        Ok(out.attributes.and_then(|mut a| a.remove(&QueueAttributeName::QueueArn)).unwrap_or_default())
    }

    async fn poll_once(&self, arn: &str) -> anyhow::Result<()> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(i32::try_from(self.batch_size.min(10)).unwrap_or(10))
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(());
        }
        let mut receipts = HashMap::new();
        let mut event = SqsEvent::default();
        for m in messages {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(arn.to_owned());
            record.aws_region = Some("us-east-1".into());
            record.attributes =
                m.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
            let count = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
            if let (Some(body), Ok(mut seen)) = (record.body.clone(), self.receives.lock()) {
                let max = seen.entry(body).or_insert(0);
                *max = (*max).max(count);
            }
            if let (Some(id), Some(handle)) = (m.message_id, m.receipt_handle) {
                receipts.insert(id, handle);
            }
            event.records.push(record);
        }
        // As on Lambda: an error fails the whole batch, otherwise only the listed items stay.
        let failed: Vec<String> =
            match sender::handle(&self.services, LambdaEvent::new(event, Context::default())).await {
                Ok(response) => response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
                Err(e) => {
                    error!(error = %e, "sender invocation failed; the whole batch stays");
                    receipts.keys().cloned().collect()
                }
            };
        let entries: Vec<DeleteMessageBatchRequestEntry> = receipts
            .into_iter()
            .filter(|(id, _)| !failed.contains(id))
            .enumerate()
            .filter_map(|(i, (_, handle))| {
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(handle).build().ok()
            })
            .collect();
        if !entries.is_empty() {
            self.sqs.delete_message_batch().queue_url(&self.url).set_entries(Some(entries)).send().await?;
        }
        Ok(())
    }
}
