//! The SQS send lanes. A job names a message; everything else is read from DynamoDB when the
//! job runs, so a job can be delivered twice or late without harm.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, SendMessageBatchRequestEntry};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::config::QueueUrls;
use crate::ids::MessageId;
use crate::message::Lane;
use crate::sqs_batch::ToHide;

/// SQS's longest visibility timeout: 12 hours.
const MAX_VISIBILITY_SECS: u64 = 12 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendJob {
    pub message_id: MessageId,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("could not queue the send job")]
    Request(#[source] Box<aws_sdk_sqs::Error>),
    #[error("SQS kept refusing {0} of the send jobs")]
    Refused(usize),
}

/// The most messages one `SendMessageBatch` takes.
const SEND_BATCH: usize = 10;
/// The most receipts one `ChangeMessageVisibilityBatch` takes.
const HIDE_BATCH: usize = 10;
/// Batches sent at once.
const SEND_BATCH_CONCURRENCY: usize = 8;
/// Entries SQS refused in a batch are sent again this often.
const SEND_BATCH_TRIES: u32 = 4;

#[derive(Clone, Debug)]
pub struct SendQueues {
    client: Client,
    urls: QueueUrls,
}

impl SendQueues {
    pub fn new(client: Client, urls: QueueUrls) -> Self {
        Self { client, urls }
    }

    pub fn url(&self, lane: Lane) -> &str {
        match lane {
            Lane::Interactive => &self.urls.interactive,
            Lane::Scheduled => &self.urls.scheduled,
            Lane::Bulk => &self.urls.bulk,
        }
    }

    /// Hides received jobs until their times (at most SQS's 12 hours from `now`), so each comes
    /// back when it can go instead of being received again and again: ten to a
    /// `ChangeMessageVisibilityBatch`, the queue found from each record's ARN. A job that could
    /// not be hidden is logged; it comes back after its lane's visibility timeout instead, and
    /// waits again then.
    pub async fn hide_all(&self, jobs: &[ToHide], now: DateTime<Utc>) {
        let mut by_queue: Vec<(&str, Vec<&ToHide>)> = Vec::new();
        for job in jobs {
            let Some(url) = self.url_of_arn(&job.queue_arn) else {
                warn!(queue_arn = %job.queue_arn, "a job to hide is from no send lane");
                continue;
            };
            match by_queue.iter_mut().find(|(u, _)| *u == url) {
                Some((_, of_queue)) => of_queue.push(job),
                None => by_queue.push((url, vec![job])),
            }
        }
        for (url, of_queue) in by_queue {
            for chunk in of_queue.chunks(HIDE_BATCH) {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .filter_map(|(i, job)| {
                        let wait = (job.until - now).to_std().unwrap_or_default();
                        ChangeMessageVisibilityBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(&job.receipt_handle)
                            .visibility_timeout(hidden_seconds(wait))
                            .build()
                            .ok()
                    })
                    .collect();
                match self
                    .client
                    .change_message_visibility_batch()
                    .queue_url(url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) if out.failed.is_empty() => {}
                    Ok(out) => warn!(failed = out.failed.len(), "SQS did not hide some jobs; they come back early"),
                    Err(e) => warn!(error = ?e, jobs = chunk.len(), "could not hide jobs; they come back early"),
                }
            }
        }
    }

    fn url_of_arn(&self, queue_arn: &str) -> Option<&str> {
        let name = queue_arn.rsplit(':').next()?;
        [&self.urls.interactive, &self.urls.scheduled, &self.urls.bulk]
            .into_iter()
            .find(|url| url.rsplit('/').next() == Some(name))
            .map(String::as_str)
    }

    pub async fn enqueue(&self, lane: Lane, job: &SendJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(job).unwrap_or_else(|_| unreachable!("a job always serialises"));
        self.client
            .send_message()
            .queue_url(self.url(lane))
            .message_body(body)
            .send()
            .await
            .map_err(|e| QueueError::Request(Box::new(e.into())))?;
        Ok(())
    }

    /// Queues a job for each message, ten to a `SendMessageBatch`, several batches at once;
    /// entries SQS refuses are sent again, and an error names how many never went.
    pub async fn enqueue_many(&self, lane: Lane, ids: &[MessageId]) -> Result<(), QueueError> {
        use futures::{StreamExt, TryStreamExt};
        let batches: Vec<_> = ids.chunks(SEND_BATCH).map(|chunk| self.enqueue_batch(lane, chunk)).collect();
        futures::stream::iter(batches).buffer_unordered(SEND_BATCH_CONCURRENCY).try_collect::<Vec<()>>().await?;
        Ok(())
    }

    async fn enqueue_batch(&self, lane: Lane, chunk: &[MessageId]) -> Result<(), QueueError> {
        let mut left: Vec<MessageId> = chunk.to_vec();
        for _ in 0..SEND_BATCH_TRIES {
            if left.is_empty() {
                break;
            }
            let entries = left
                .iter()
                .enumerate()
                .filter_map(|(i, id)| {
                    let body = serde_json::to_string(&SendJob { message_id: *id }).ok()?;
                    SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build().ok()
                })
                .collect();
            let out = self
                .client
                .send_message_batch()
                .queue_url(self.url(lane))
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError::Request(Box::new(e.into())))?;
            let failed: Vec<usize> = out.failed.iter().filter_map(|f| f.id.parse().ok()).collect();
            left = left.into_iter().enumerate().filter(|(i, _)| failed.contains(i)).map(|(_, id)| id).collect();
        }
        if left.is_empty() { Ok(()) } else { Err(QueueError::Refused(left.len())) }
    }
}

/// The visibility timeout that hides a job for `delay`: whole seconds, rounded up (rounding a
/// short wait down to 0 would make it visible at once), at most SQS's 12 hours.
pub fn hidden_seconds(delay: std::time::Duration) -> i32 {
    let seconds = (delay.as_secs_f64().ceil().max(1.0) as u64).min(MAX_VISIBILITY_SECS);
    i32::try_from(seconds).unwrap_or(i32::MAX)
}
