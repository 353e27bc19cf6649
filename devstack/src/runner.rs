//! The local runner: serves `api` and `twilio-webhooks` with the routers they run on Lambda, and
//! drains each send lane into the sender, and the mass alert queue into the fan-out, with
//! Lambda's SQS semantics: batches of the queue's size, at most its maximum concurrency of
//! invocations at once, `batchItemFailures` kept (the rest deleted), the queue's visibility
//! timeout and redrive policy doing the rest, as on AWS.
//! On request it also cuts invocations short at random, as Lambda's timeout or a crash would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use lambda_runtime::{Context, LambdaEvent};
use shared::aws_resources::{
    FANOUT_TIMEOUT_SECS, MASS_ALERT_QUEUE, QUEUES, QueueSpec, SCHEDULER_TIMEOUT_SECS, SENDER_TIMEOUT_SECS,
};
use shared::services::Services;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
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

/// How many sender invocations may work a lane at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderConcurrency {
    /// Each lane's `MaximumConcurrency`, as deployed (`shared::aws_resources::QUEUES`).
    AsDeployed,
    /// The same number on every lane; 0 leaves the lanes alone, for tests that call the sender
    /// themselves.
    PerLane(usize),
}

impl SenderConcurrency {
    fn for_lane(self, spec: &QueueSpec) -> usize {
        match self {
            Self::AsDeployed => usize::try_from(spec.maximum_concurrency).unwrap_or(1),
            Self::PerLane(n) => n,
        }
    }
}

/// Sender invocations cut short at random, the way Lambda ends one at its timeout or a crash
/// ends its process: each invocation, with chance `probability`, is stopped at a uniformly random
/// moment within `within` of its start if it is still running. Its records' jobs stop where
/// they are and nothing of its batch is deleted: the batch comes back after the visibility
/// timeout (records that hid themselves first, when they said).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crashes {
    pub probability: f64,
    pub within: Duration,
}

impl Crashes {
    /// When to cut this invocation short, if at all.
    fn draw(&self) -> Option<Duration> {
        let probability = self.probability.clamp(0.0, 1.0);
        rand::random_bool(probability).then(|| self.within.mul_f64(rand::random::<f64>()))
    }
}

pub struct Runner {
    tasks: Vec<JoinHandle<()>>,
    receives: ReceiveCounts,
    crashed: Arc<AtomicUsize>,
    invocations: Invocations,
}

/// Sender invocations so far and the time they ran, added up (what Lambda bills).
pub type Invocations = Arc<std::sync::Mutex<(usize, Duration)>>;

/// The highest `ApproximateReceiveCount` seen for each job body, for tests of SQS churn.
pub type ReceiveCounts = std::sync::Arc<std::sync::Mutex<HashMap<String, u32>>>;

impl Runner {
    /// Serves HTTP on `listener`, drains every lane with up to `concurrency` sender invocations
    /// at once, cutting some short as `crashes` says, and, with `scheduler_ticks`, calls the
    /// scheduler every minute as an EventBridge schedule would.
    pub fn start(
        services: Services,
        listener: TcpListener,
        concurrency: SenderConcurrency,
        crashes: Option<Crashes>,
        scheduler_ticks: bool,
        sqs: aws_sdk_sqs::Client,
        mass_alert_queue: String,
    ) -> Self {
        let app = http_app(&services);
        let receives = ReceiveCounts::default();
        let crashed = Arc::new(AtomicUsize::new(0));
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                error!(error = %e, "local HTTP server stopped");
            }
        })];
        if scheduler_ticks {
            tasks.push(tokio::spawn(every_minute(services.clone())));
        }
        let mut runner = Self { tasks, receives, crashed, invocations: Invocations::default() };
        runner.drain_mass_alerts(services.clone(), sqs.clone(), mass_alert_queue);
        runner.drain_lanes(services, sqs, concurrency, crashes);
        runner
    }

    /// Drains the mass alert queue into the fan-out, as its event source on AWS does. Always
    /// on: tests that drive the sender themselves still see confirmed alerts fanned out.
    fn drain_mass_alerts(&mut self, services: Services, sqs: aws_sdk_sqs::Client, url: String) {
        let drain = QueueDrain {
            services,
            sqs,
            url,
            batch_size: MASS_ALERT_QUEUE.batch_size,
            function: Function::MassAlertFanout,
            receives: self.receives.clone(),
            crashes: None,
            crashed: self.crashed.clone(),
            invocations: None,
        };
        let invocations = usize::try_from(MASS_ALERT_QUEUE.maximum_concurrency).unwrap_or(1);
        self.tasks.push(tokio::spawn(Arc::new(drain).run(invocations)));
    }

    /// Starts draining every lane into the sender built from `services` (benchmarks start them
    /// once their queues are full, with clients that count requests).
    pub fn drain_lanes(
        &mut self,
        services: Services,
        sqs: aws_sdk_sqs::Client,
        concurrency: SenderConcurrency,
        crashes: Option<Crashes>,
    ) {
        for (spec, url) in QUEUES.iter().zip(lane_urls(&services)) {
            let invocations = concurrency.for_lane(spec);
            if invocations == 0 {
                continue;
            }
            let lane = QueueDrain {
                services: services.clone(),
                sqs: sqs.clone(),
                url,
                batch_size: spec.batch_size,
                function: Function::Sender,
                receives: self.receives.clone(),
                crashes,
                crashed: self.crashed.clone(),
                invocations: Some(self.invocations.clone()),
            };
            self.tasks.push(tokio::spawn(Arc::new(lane).run(invocations)));
        }
    }

    pub fn receive_counts(&self) -> HashMap<String, u32> {
        self.receives.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// How many sender invocations ran so far, and for how long in all.
    pub fn sender_invocations(&self) -> (usize, Duration) {
        self.invocations.lock().map(|i| *i).unwrap_or_default()
    }

    /// How many sender invocations were cut short so far.
    pub fn crashed_invocations(&self) -> usize {
        self.crashed.load(Ordering::Relaxed)
    }
}

/// Like an EventBridge `rate(1 minute)` rule: one tick at the start of each minute, whose time
/// is the minute it is for.
async fn every_minute(services: Services) {
    loop {
        let now = services.clock.now();
        let next_minute = now.timestamp() - now.timestamp().rem_euclid(60) + 60;
        let wait = u64::try_from((next_minute - now.timestamp()).max(1)).unwrap_or(60);
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let at = chrono::DateTime::from_timestamp(next_minute, 0).unwrap_or_else(|| services.clock.now());
        let mut event = aws_lambda_events::eventbridge::EventBridgeEvent::<serde_json::Value>::default();
        event.detail_type = "Scheduled Event".into();
        event.source = "aws.events".into();
        event.time = Some(at);
        let tick = scheduler::handle(&services, LambdaEvent::new(event, Context::default()));
        // Lambda stops a tick at the function's timeout; the next tick resumes its work.
        match tokio::time::timeout(Duration::from_secs(u64::from(SCHEDULER_TIMEOUT_SECS)), tick).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => error!(error = %e, "scheduler tick failed"),
            Err(_) => error!("scheduler tick timed out"),
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

/// The function a queue's records go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Sender,
    MassAlertFanout,
}

/// One queue's event source: receives a batch whenever an invocation is free, like Lambda's
/// pollers under a `MaximumConcurrency`.
struct QueueDrain {
    services: Services,
    sqs: aws_sdk_sqs::Client,
    url: String,
    batch_size: u32,
    function: Function,
    receives: ReceiveCounts,
    crashes: Option<Crashes>,
    crashed: Arc<AtomicUsize>,
    /// Where the sender's invocations are counted (`None` for the fan-out).
    invocations: Option<Invocations>,
}

/// A received batch: the event for the sender and each record's receipt handle by message id.
struct Batch {
    event: SqsEvent,
    receipts: HashMap<String, String>,
}

impl QueueDrain {
    async fn run(self: Arc<Self>, concurrency: usize) {
        let arn = self.queue_arn().await.unwrap_or_default();
        let free = Arc::new(Semaphore::new(concurrency));
        // Owned by this task, so stopping the runner stops the invocations in flight too.
        let mut invocations = JoinSet::new();
        loop {
            while invocations.try_join_next().is_some() {}
            let Ok(slot) = free.clone().acquire_owned().await else {
                return;
            };
            match self.receive(&arn).await {
                Ok(Some(batch)) => {
                    let lane = self.clone();
                    invocations.spawn(async move {
                        lane.invoke(batch).await;
                        drop(slot);
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(queue = %self.url, error = ?e, "polling failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
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

    async fn receive(&self, arn: &str) -> anyhow::Result<Option<Batch>> {
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
            return Ok(None);
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
        Ok(Some(Batch { event, receipts }))
    }

    /// One invocation of the queue's function on `batch`, then the deletes Lambda would make.
    async fn invoke(&self, batch: Batch) {
        let Batch { event, receipts } = batch;
        let event = LambdaEvent::new(event, Context::default());
        let invocation: std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>> = match self.function {
            Function::Sender => Box::pin(sender::handle(&self.services, event)),
            Function::MassAlertFanout => Box::pin(mass_alert_fanout::handle(&self.services, event)),
        };
        // As Lambda does: an invocation still running at the function's timeout is stopped, and
        // its batch comes back after the visibility timeout. A simulated crash comes sooner.
        let timeout = Duration::from_secs(u64::from(match self.function {
            Function::Sender => SENDER_TIMEOUT_SECS,
            Function::MassAlertFanout => FANOUT_TIMEOUT_SECS,
        }));
        let crash = self.crashes.as_ref().and_then(Crashes::draw).filter(|after| *after < timeout);
        let started = std::time::Instant::now();
        // Dropping the invocation stops its records' jobs wherever they are.
        let outcome = match tokio::time::timeout(crash.unwrap_or(timeout), invocation).await {
            Ok(outcome) => outcome,
            Err(_) if crash.is_some() => {
                self.crashed.fetch_add(1, Ordering::Relaxed);
                warn!(queue = %self.url, records = receipts.len(), "sender invocation cut short; its batch stays");
                return;
            }
            Err(_) => {
                error!(queue = %self.url, records = receipts.len(), ?timeout, "invocation timed out; its batch stays");
                return;
            }
        };
        if let Some(Ok(mut invocations)) = self.invocations.as_ref().map(|i| i.lock()) {
            invocations.0 += 1;
            invocations.1 += started.elapsed();
        }
        // As on Lambda: an error fails the whole batch, otherwise only the listed items stay.
        let failed: Vec<String> = match outcome {
            Ok(response) => response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
            Err(e) => {
                error!(error = %e, "sender invocation failed; the whole batch stays");
                return;
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
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self.sqs.delete_message_batch().queue_url(&self.url).set_entries(Some(entries)).send().await {
            warn!(queue = %self.url, error = ?e, "could not delete a finished batch; it comes back and finds its work done");
        }
    }
}
