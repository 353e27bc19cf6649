//! The SQS send lanes. A job names a message, and the items its checks read (so the sender can
//! read them in the same request as the message); everything is read from DynamoDB when the job
//! runs, so a job can be delivered twice or late without harm.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, SendMessageBatchRequestEntry};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::config::QueueUrls;
use crate::ids::MessageId;
use crate::message::{Lane, Message};
use crate::sender_store::Checks;
use crate::sqs_batch::ToHide;

/// SQS's longest visibility timeout: 12 hours.
const MAX_VISIBILITY_SECS: u64 = 12 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendJob {
    pub message_id: MessageId,
    /// What the message is checked against before it goes, as it was when the job was queued.
    /// Only a hint: the sender uses it only if the message, once read, still names the same,
    /// and one that does not read (an older or newer shape) is no hint, never an unreadable job.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "checks_or_none")]
    pub checks: Option<Checks>,
}

fn checks_or_none<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Checks>, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

impl SendJob {
    /// The job for `message`, naming what its checks read.
    pub fn of(message: &Message) -> Self {
        Self { message_id: message.id, checks: Some(Checks::of(message)) }
    }

    /// A job that names only its message: the sender reads the message, then its checks.
    pub fn named(message_id: MessageId) -> Self {
        Self { message_id, checks: None }
    }
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

    /// Queues the jobs, ten to a `SendMessageBatch`, several batches at once; entries SQS
    /// refuses are sent again, and an error names how many never went.
    pub async fn enqueue_many(&self, lane: Lane, jobs: &[SendJob]) -> Result<(), QueueError> {
        use futures::{StreamExt, TryStreamExt};
        let batches: Vec<_> = jobs.chunks(SEND_BATCH).map(|chunk| self.enqueue_batch(lane, chunk)).collect();
        futures::stream::iter(batches).buffer_unordered(SEND_BATCH_CONCURRENCY).try_collect::<Vec<()>>().await?;
        Ok(())
    }

    async fn enqueue_batch(&self, lane: Lane, chunk: &[SendJob]) -> Result<(), QueueError> {
        let mut left: Vec<&SendJob> = chunk.iter().collect();
        for _ in 0..SEND_BATCH_TRIES {
            if left.is_empty() {
                break;
            }
            let entries = left
                .iter()
                .enumerate()
                .filter_map(|(i, job)| {
                    let body = serde_json::to_string(job).ok()?;
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
            left = left.into_iter().enumerate().filter(|(i, _)| failed.contains(i)).map(|(_, job)| job).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_names_its_messages_checks_and_a_job_without_them_still_reads() {
        let older: Result<SendJob, _> = serde_json::from_str(r#"{"message_id":"01M3250V3V7RFBFW684QN0Z34K"}"#);
        let Ok(older) = older else { panic!("reads") };
        assert_eq!(older.checks, None);
        let odd: Result<SendJob, _> =
            serde_json::from_str(r#"{"message_id":"01M3250V3V7RFBFW684QN0Z34K","checks":{"lane":"carrier pigeon"}}"#);
        assert_eq!(odd.ok().map(|job| job.checks), Some(None), "a hint that does not read is no hint");

        let now = chrono::DateTime::<chrono::Utc>::from_timestamp(1_790_000_000, 0).unwrap_or_default();
        let (Ok(to), Ok(body)) =
            (crate::phone::E164::parse("+14155550123", None), crate::message::MessageBody::parse("Hi"))
        else {
            panic!("valid fixtures")
        };
        let message = Message::new_outbound(
            crate::ids::ClinicId::new("c1"),
            to.clone(),
            body,
            crate::ids::ConnectionId::new("main"),
            Lane::Scheduled,
            None,
            now,
        );
        let job = SendJob::of(&message);
        let checks = job.checks.clone().unwrap_or_else(|| panic!("named"));
        assert_eq!((checks.lane, checks.rate_key()), (Lane::Scheduled, "c1#main".to_owned()));
        assert_eq!(checks.to, Some(to));
        let back = serde_json::to_string(&job).and_then(|json| serde_json::from_str::<SendJob>(&json));
        assert_eq!(back.ok(), Some(job));
    }
}
