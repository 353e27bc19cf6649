//! The sender's work for one job: claim the message for a new attempt, hand it to Twilio once,
//! and record what Twilio said. Every write is conditional, so a job delivered twice, or a
//! sender that dies halfway, never makes a second Twilio request for the same attempt.

use std::time::Duration;

use tracing::{info, warn};

use crate::dynamo::StoreError;
use crate::message::{Failure, Message};
use crate::message_status::MessageStatus;
use crate::messages_table::Update;
use crate::reason::Reason;
use crate::retry_policy;
use crate::send_queue::SendJob;
use crate::services::Services;
use crate::twilio::client::{NewMessage, TwilioError};
use crate::twilio::error_catalogue::{self, Retry};

/// What to do with the job afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Nothing more to do: delete the job.
    Finished,
    /// Keep the job and run it again after about this long.
    RetryLater(Duration),
}

/// What Twilio's answer means for the attempt.
enum Verdict {
    Accepted {
        sid: String,
        status: String,
    },
    /// Twilio did not take it and never will: fail now.
    Failed(Failure),
    /// Twilio did not take it; try again after the delay.
    Retry {
        failure: Failure,
        after: Duration,
        note: String,
    },
    /// Twilio may have taken it: leave the claim in place; the job comes back when the lease
    /// has run out.
    Unknown(String),
}

pub async fn send(services: &Services, job: &SendJob) -> Result<JobOutcome, StoreError> {
    let now = services.clock.now();
    let lease = services.timing.lease;
    let claimed = match services.messages.update(&job.message_id, |m| m.claim(now, lease)).await? {
        Update::Applied(message) => message,
        Update::Missing => {
            warn!(message_id = %job.message_id, "job for a message that does not exist");
            return Ok(JobOutcome::Finished);
        }
        Update::Refused(_, current) => return Ok(already_handled(&current, now, lease)),
    };
    let attempt = claimed.attempt;
    let verdict = match services.clinics.connection(&claimed.clinic_id, &claimed.connection_id).await? {
        Some(connection) if connection.enabled => {
            let callback = status_callback_url(services, &claimed);
            let request = NewMessage {
                to: &claimed.to,
                sender: &connection.sender,
                body: claimed.body.as_str(),
                status_callback: &callback,
            };
            judge(services.twilio.create_message(&request).await, attempt)
        }
        _ => Verdict::Failed(Failure::reason(Reason::ConnectionUnavailable)),
    };
    let now = services.clock.now();
    let (outcome, update) = match verdict {
        Verdict::Accepted { sid, status } => {
            let update = services.messages.update(&claimed.id, |m| m.accepted(attempt, &sid, &status, now)).await?;
            (JobOutcome::Finished, update)
        }
        Verdict::Failed(failure) => {
            let update =
                services.messages.update(&claimed.id, |m| m.failed_attempt(attempt, failure.clone(), now)).await?;
            (JobOutcome::Finished, update)
        }
        Verdict::Retry { failure: _, after, note } if retry_policy::may_retry(attempt) => {
            let update =
                services.messages.update(&claimed.id, |m| m.released_for_retry(attempt, note.clone(), now)).await?;
            (JobOutcome::RetryLater(after), update)
        }
        Verdict::Retry { failure, .. } => {
            let failure = Failure { reason: Some(Reason::RetriesExhausted), ..failure };
            let update =
                services.messages.update(&claimed.id, |m| m.failed_attempt(attempt, failure.clone(), now)).await?;
            (JobOutcome::Finished, update)
        }
        Verdict::Unknown(why) => {
            warn!(message_id = %claimed.id, attempt, %why, "outcome at Twilio unknown; will reconcile after the lease");
            return Ok(JobOutcome::RetryLater(lease_left(&claimed, services.clock.now())));
        }
    };
    match update {
        Update::Applied(message) => info!(message_id = %message.id, attempt, status = %message.status, "send recorded"),
        Update::Refused(refused, current) => {
            // Only a newer attempt or a callback can have moved it; both already hold the truth.
            info!(message_id = %current.id, attempt, %refused, status = %current.status, "send result superseded");
        }
        Update::Missing => warn!(message_id = %claimed.id, "message vanished while sending"),
    }
    Ok(outcome)
}

/// The claim was refused: someone else has the message, or it is past sending.
fn already_handled(current: &Message, now: chrono::DateTime<chrono::Utc>, lease: chrono::TimeDelta) -> JobOutcome {
    if current.status != MessageStatus::Sending {
        return JobOutcome::Finished;
    }
    if current.lease_until.is_some_and(|until| until > now) {
        // Another invocation is sending it right now; that invocation's job stays until it is done.
        return JobOutcome::Finished;
    }
    // The claim expired with the outcome unknown. Reconciling with Twilio's message list comes with
    // the sending pipeline; until then the job stays and, if it never resolves, reaches the DLQ.
    warn!(message_id = %current.id, attempt = current.attempt, "claim expired with unknown outcome");
    JobOutcome::RetryLater(Duration::from_secs(lease.num_seconds().max(1).unsigned_abs()))
}

fn lease_left(message: &Message, now: chrono::DateTime<chrono::Utc>) -> Duration {
    let left = message.lease_until.map_or(chrono::TimeDelta::zero(), |until| until - now);
    left.to_std().unwrap_or(Duration::ZERO).max(Duration::from_secs(1))
}

fn status_callback_url(services: &Services, message: &Message) -> String {
    format!("{}?m={}&a={}", services.settings.webhook_url("/twilio/status"), message.id, message.attempt)
}

fn judge(result: Result<crate::twilio::client::CreatedMessage, TwilioError>, attempt: u32) -> Verdict {
    let unit = rand::random::<f64>();
    match result {
        Ok(created) => {
            Verdict::Accepted { sid: created.sid, status: created.status.unwrap_or_else(|| "queued".into()) }
        }
        Err(TwilioError::Refused { code, message, .. }) => {
            let failure = Failure::twilio(code, Some(message));
            match error_catalogue::lookup(code).map(|info| info.retry) {
                Some(Retry::Safe | Retry::Later) => Verdict::Retry {
                    failure,
                    after: retry_policy::delay(attempt, unit, None),
                    note: format!("Twilio error {code}; will retry"),
                },
                Some(Retry::Never) | None => Verdict::Failed(failure),
            }
        }
        Err(TwilioError::Throttled { retry_after }) => Verdict::Retry {
            failure: Failure::twilio(20429, None),
            after: retry_policy::delay(attempt, unit, retry_after),
            note: "Twilio asked us to slow down (20429); will retry".into(),
        },
        Err(TwilioError::Unreachable(why)) => Verdict::Retry {
            failure: Failure { code: None, reason: None, twilio_message: Some(why) },
            after: retry_policy::delay(attempt, unit, None),
            note: "Twilio could not be reached; will retry".into(),
        },
        Err(TwilioError::Ambiguous(why)) => Verdict::Unknown(why),
    }
}
