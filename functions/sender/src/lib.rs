//! The sender function: each SQS record is one send job. The batch's messages, facts and slots
//! are read and granted together first (`sending::prepare`); then `shared::sqs_batch` runs every
//! record in its own task, so one bad or panicking job fails alone; jobs that must run again are
//! reported as batch item failures and SQS redelivers them, those that wait hidden (together
//! with those that end at the same moment) until their time.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use shared::send_queue::SendJob;
use shared::sending::{self, JobOutcome, Prepared};
use shared::services::Services;
use shared::sqs_batch::{self, Delivery, Disposition, ToHide};
use tracing::error;

pub async fn handle(
    services: &Services,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let for_batch = services.clone();
    let prepare = move |jobs: Vec<Delivery<SendJob>>| async move { sending::prepare(&for_batch, &jobs).await };
    let for_jobs = services.clone();
    let job = move |delivery: Delivery<SendJob>, prepared: Prepared| {
        let services = for_jobs.clone();
        async move { process(&services, delivery, prepared).await }
    };
    let hide = |jobs: Vec<ToHide>| async move { services.queues.hide_all(&jobs, services.clock.now()).await };
    Ok(sqs_batch::run_prepared(event.payload.records, prepare, job, hide).await)
}

async fn process(services: &Services, delivery: Delivery<SendJob>, prepared: Prepared) -> Disposition {
    let job = &delivery.body;
    match sending::send_prepared(services, job, prepared).await {
        Ok(JobOutcome::Finished) => Disposition::Delete,
        // Waiting is not a failed attempt: the job is hidden until it can go (attempts are
        // counted in DynamoDB, not by SQS receives).
        Ok(JobOutcome::RetryAt(at)) => Disposition::HideUntil(at),
        Err(store_error) => {
            error!(message_id = %job.message_id, error = ?store_error, "send job failed; SQS will redeliver it");
            Disposition::Keep
        }
    }
}
