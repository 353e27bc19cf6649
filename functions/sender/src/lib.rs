//! The sender function: each SQS record is one send job, handled in its own task so that one
//! bad or panicking job fails alone. Jobs that must run again are reported as batch item
//! failures; SQS redelivers them after the visibility timeout.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::LambdaEvent;
use shared::send_queue::SendJob;
use shared::sending::{self, JobOutcome};
use shared::services::Services;
use tracing::{error, warn};

pub async fn handle(
    services: &Services,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let tasks = event.payload.records.into_iter().map(|record| {
        let services = services.clone();
        let id = record.message_id.clone();
        (id, tokio::spawn(async move { process(&services, record).await }))
    });
    let mut response = SqsBatchResponse::default();
    for (id, task) in tasks.collect::<Vec<_>>() {
        let succeeded = match task.await {
            Ok(done) => done,
            Err(join_error) => {
                error!(sqs_message_id = ?id, error = %join_error, "send job panicked");
                false
            }
        };
        if !succeeded && let Some(id) = id {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    Ok(response)
}

/// `true` when the job is finished and may be deleted.
async fn process(services: &Services, record: SqsMessage) -> bool {
    let Some(job) = record.body.as_deref().and_then(|body| serde_json::from_str::<SendJob>(body).ok()) else {
        // Logged without the body: it may hold a phone number or text.
        warn!(sqs_message_id = ?record.message_id, "unreadable send job; left for the DLQ");
        return false;
    };
    match sending::send(services, &job).await {
        Ok(JobOutcome::Finished) => true,
        Ok(JobOutcome::RetryLater(after)) => {
            // Waiting is not a failed attempt: hide the job until it can go (attempts are
            // counted in DynamoDB, not by SQS receives).
            if let (Some(arn), Some(receipt)) = (record.event_source_arn.as_deref(), record.receipt_handle.as_deref())
                && let Err(e) = services.queues.hide(arn, receipt, after).await
            {
                warn!(message_id = %job.message_id, error = ?e, "could not hide the job; it returns after the queue's visibility timeout");
            }
            false
        }
        Err(store_error) => {
            error!(message_id = %job.message_id, error = ?store_error, "send job failed; SQS will redeliver it");
            false
        }
    }
}
