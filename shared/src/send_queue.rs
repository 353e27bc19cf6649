//! The SQS send lanes. A job names a message; everything else is read from DynamoDB when the
//! job runs, so a job can be delivered twice or late without harm.

use aws_sdk_sqs::Client;
use serde::{Deserialize, Serialize};

use crate::config::QueueUrls;
use crate::ids::MessageId;
use crate::message::Lane;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendJob {
    pub message_id: MessageId,
}

#[derive(Debug, thiserror::Error)]
#[error("could not queue the send job")]
pub struct QueueError(#[source] Box<aws_sdk_sqs::Error>);

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

    pub async fn enqueue(&self, lane: Lane, job: &SendJob) -> Result<(), QueueError> {
        let body = serde_json::to_string(job).unwrap_or_else(|_| unreachable!("a job always serialises"));
        self.client
            .send_message()
            .queue_url(self.url(lane))
            .message_body(body)
            .send()
            .await
            .map_err(|e| QueueError(Box::new(e.into())))?;
        Ok(())
    }
}
