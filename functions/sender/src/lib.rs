//! The sender function: each SQS record is one send job. The batch's messages, facts and slots
//! are read and granted together first (`sending::prepare`); then `shared::sqs_batch` runs every
//! record in its own task, so one bad or panicking job fails alone; jobs that must run again are
//! reported as batch item failures and SQS redelivers them.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use shared::send_queue::SendJob;
use shared::sending::{self, JobOutcome, Prepared};
use shared::services::Services;
use shared::sqs_batch::{self, Delivery, Disposition};
use tracing::{error, warn};

pub async fn handle(
    services: &Services,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let for_batch = services.clone();
    let prepare = move |jobs: Vec<SendJob>| async move { sending::prepare(&for_batch, &jobs).await };
    let services = services.clone();
    let job = move |delivery: Delivery<SendJob>, prepared: Prepared| {
        let services = services.clone();
        async move { process(&services, delivery, prepared).await }
    };
    Ok(sqs_batch::run_prepared(event.payload.records, prepare, job).await)
}

async fn process(services: &Services, delivery: Delivery<SendJob>, prepared: Prepared) -> Disposition {
    let job = &delivery.body;
    match sending::send_prepared(services, job, prepared).await {
        Ok(JobOutcome::Finished) => Disposition::Delete,
        Ok(JobOutcome::RetryAt(at)) => {
            let after = (at - services.clock.now()).to_std().unwrap_or_default();
            // Waiting is not a failed attempt: hide the job until it can go (attempts are
            // counted in DynamoDB, not by SQS receives).
            if let (Some(arn), Some(receipt)) = (delivery.queue_arn.as_deref(), delivery.receipt_handle.as_deref())
                && let Err(e) = services.queues.hide(arn, receipt, after).await
            {
                warn!(message_id = %job.message_id, error = ?e, "could not hide the job; it returns after the queue's visibility timeout");
            }
            Disposition::Keep
        }
        Err(store_error) => {
            error!(message_id = %job.message_id, error = ?store_error, "send job failed; SQS will redeliver it");
            Disposition::Keep
        }
    }
}
