//! The sender's work for one job: claim the message for a new attempt, check it may still go
//! (its appointment, the recipient's opt-out, the connection, the clinic's credits), hand it to
//! Twilio once, and record what Twilio said. Every write is conditional, so a job delivered twice,
//! or a sender that dies halfway, never makes a second Twilio request for the same attempt.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{error, info, warn};

use crate::appointments::AppointmentStatus;
use crate::clinic::{Connection, ConnectionError, is_connection_error};
use crate::contacts::OptOut;
use crate::dynamo::StoreError;
use crate::message::{AppointmentRef, Failure, Lane, Message};
use crate::message_status::MessageStatus;
use crate::messages_table::Update;
use crate::rate_limit;
use crate::reason::Reason;
use crate::reminder_window;
use crate::retry_policy;
use crate::segments;
use crate::send_queue::SendJob;
use crate::services::Services;
use crate::twilio::client::{CreatedMessage, NewMessage, TwilioError};
use crate::twilio::error_catalogue::{self, Retry};

/// What to do with the job afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Nothing more to do: delete the job.
    Finished,
    /// Keep the job and run it again after about this long.
    RetryLater(Duration),
}

/// What happens to the claimed attempt.
enum Verdict {
    Accepted {
        sid: String,
        status: String,
    },
    /// Twilio did not take it and never will (or we could not even ask): fail now.
    Failed(Failure),
    /// Twilio did not take it; try again after the delay.
    Retry {
        after: Duration,
        note: String,
    },
    /// Twilio may have taken it: leave the claim in place; the job comes back when the lease
    /// has run out.
    Unknown(String),
}

/// A reserved slot this close (or this late) is used as it is.
const SLOT_TOLERANCE: TimeDelta = TimeDelta::milliseconds(500);
const SLOT_TOO_LATE: TimeDelta = TimeDelta::seconds(2);

pub async fn send(services: &Services, job: &SendJob) -> Result<JobOutcome, StoreError> {
    let now = services.clock.now();
    let lease = services.timing.lease;
    let Some(mut message) = services.messages.get(&job.message_id).await? else {
        warn!(message_id = %job.message_id, "job for a message that does not exist");
        return Ok(JobOutcome::Finished);
    };
    if message.status == MessageStatus::Deferred {
        match message.deferred_until {
            Some(until) if until > now + SLOT_TOLERANCE => return Ok(JobOutcome::RetryLater(self::until(until, now))),
            _ => match services.messages.update(&message.id, |m| m.resumed(now)).await? {
                Update::Applied(resumed) => message = resumed,
                _ => return Ok(JobOutcome::Finished),
            },
        }
    }
    if message.status == MessageStatus::Sending && message.lease_until.is_none_or(|until| until <= now) {
        return reconcile(services, &message, now).await;
    }
    if message.status != MessageStatus::Queued {
        return Ok(already_handled(&message));
    }
    // Everything that can stop the text is checked before the claim, so a failure here never
    // strands a claimed message.
    let connection = match pre_checks(services, &message, now).await? {
        Ready::Go(connection) => connection,
        Ready::Stop(stop) => {
            let update = services
                .messages
                .update(&message.id, |m| match &stop {
                    Stop::Skip(reason) => m.skipped(*reason, now),
                    Stop::Fail(failure) => m.failed_attempt(m.attempt, failure.clone(), now),
                })
                .await?;
            log_update(&update, message.attempt);
            return Ok(JobOutcome::Finished);
        }
    };
    if let Some(until) = quiet_until(services, &message, now).await? {
        if let Update::Applied(_) = services.messages.update(&message.id, |m| m.deferred(until, now)).await? {
            info!(message_id = %message.id, until = %until, "held for quiet hours");
            return Ok(JobOutcome::RetryLater(self::until(until, now)));
        }
        return Ok(JobOutcome::Finished);
    }
    if let Some(wait) = wait_for_slot(services, &message, &connection, now).await? {
        return Ok(JobOutcome::RetryLater(wait));
    }
    let now = services.clock.now();
    let claimed = match services.messages.update(&job.message_id, |m| m.claim(now, lease)).await? {
        Update::Applied(message) => message,
        Update::Missing => return Ok(JobOutcome::Finished),
        Update::Refused(_, current) => return Ok(already_handled(&current)),
    };
    let attempt = claimed.attempt;
    let credits = u64::from(segments::analyse(claimed.body.as_str()).segments.max(1));
    let verdict = match call_twilio(services, &claimed, &connection, credits).await {
        Ok(verdict) => verdict,
        Err(store_error) => {
            // Twilio was not called: give the message back so a later delivery of the job sends it.
            let now = services.clock.now();
            let note = "released after a storage error before the Twilio call".to_owned();
            if let Err(e) =
                services.messages.update(&claimed.id, |m| m.released_for_retry(attempt, note.clone(), now)).await
            {
                error!(message_id = %claimed.id, error = ?e, "could not release a claimed message");
            }
            return Err(store_error);
        }
    };
    let now = services.clock.now();
    let refund = matches!(verdict, Verdict::Failed(_) | Verdict::Retry { .. }) && !is_credit_failure(&verdict);
    let (outcome, update) = match &verdict {
        Verdict::Accepted { sid, status } => {
            let update = services.messages.update(&claimed.id, |m| m.accepted(attempt, sid, status, now)).await?;
            (JobOutcome::Finished, update)
        }
        Verdict::Failed(failure) => {
            let retry_at = credit_retry_at(&claimed, failure, now);
            let update = services
                .messages
                .update(&claimed.id, |m| {
                    let mut failed = m.failed_attempt(attempt, failure.clone(), now)?;
                    failed.credit_retry_at = retry_at;
                    Ok(failed)
                })
                .await?;
            (JobOutcome::Finished, update)
        }
        Verdict::Retry { after, note } => {
            let update =
                services.messages.update(&claimed.id, |m| m.released_for_retry(attempt, note.clone(), now)).await?;
            (JobOutcome::RetryLater(*after), update)
        }
        Verdict::Unknown(why) => {
            warn!(message_id = %claimed.id, attempt, %why, "outcome at Twilio unknown; will reconcile after the lease");
            return Ok(JobOutcome::RetryLater(lease_left(&claimed, services.clock.now())));
        }
    };
    log_update(&update, attempt);
    // Bookkeeping after the verdict is recorded: a failure here must not cost the text.
    if refund && let Err(e) = services.counters.add_credits(&claimed.clinic_id, credits).await {
        error!(message_id = %claimed.id, error = ?e, credits, "could not refund credits");
    }
    if let Err(e) = record_opt_out(services, &claimed, &connection, &verdict, now).await {
        error!(message_id = %claimed.id, error = ?e, "could not record an opt-out Twilio reported");
    }
    if let Err(e) = record_connection_health(services, connection, &verdict, now).await {
        warn!(error = ?e, "could not record the connection's health");
    }
    Ok(outcome)
}

fn log_update(update: &Update, attempt: u32) {
    match update {
        Update::Applied(message) => info!(message_id = %message.id, attempt, status = %message.status, "send recorded"),
        Update::Refused(refused, current) => {
            // Only a newer attempt or a callback can have moved it; both already hold the truth.
            info!(message_id = %current.id, attempt, %refused, status = %current.status, "send result superseded");
        }
        Update::Missing => warn!("message vanished while sending"),
    }
}

fn is_credit_failure(verdict: &Verdict) -> bool {
    matches!(verdict, Verdict::Failed(f) if f.reason == Some(Reason::InsufficientCredits))
}

enum Ready {
    Go(Connection),
    /// Decided without a claim: the text is not sent.
    Stop(Stop),
}

enum Stop {
    Skip(Reason),
    Fail(Failure),
}

/// The checks made just before sending: no number, the appointment changed, the number opted
/// out, the connection gone or disabled.
async fn pre_checks(services: &Services, m: &Message, now: DateTime<Utc>) -> Result<Ready, StoreError> {
    let Some(to) = m.to.as_ref() else {
        return Ok(Ready::Stop(Stop::Fail(Failure::reason(Reason::NoMobileNumber))));
    };
    if let Some(appointment) = &m.appointment
        && !appointment_still_due(services, m, appointment, now).await?
    {
        return Ok(Ready::Stop(Stop::Skip(Reason::AppointmentChanged)));
    }
    if services.clinics.record::<OptOut>(&m.clinic_id, to.as_str()).await?.is_some() {
        return Ok(Ready::Stop(Stop::Skip(Reason::OptedOut)));
    }
    match services.clinics.connection(&m.clinic_id, &m.connection_id).await? {
        Some(connection) if connection.enabled => Ok(Ready::Go(connection)),
        _ => Ok(Ready::Stop(Stop::Fail(Failure::reason(Reason::ConnectionUnavailable)))),
    }
}

/// Paces a queued message: reserves its rate-limit slot on the connection, and when that slot is
/// still ahead, records it on the message and says how long to hide the job. `None`: go now.
async fn wait_for_slot(
    services: &Services,
    message: &Message,
    connection: &Connection,
    now: DateTime<Utc>,
) -> Result<Option<Duration>, StoreError> {
    if let Some(slot) = message.send_slot {
        if slot > now + SLOT_TOLERANCE {
            return Ok(Some(until(slot, now)));
        }
        if now - slot <= SLOT_TOO_LATE {
            return Ok(None);
        }
        // Received long after its slot: that second has passed unused; take a new one.
    }
    let segments = segments::analyse(message.body.as_str()).segments.max(1);
    let limits = rate_limit::limits(connection.mps, services.shares);
    let key = format!("{}#{}", message.clinic_id, connection.id);
    let Some(slot) = services.counters.reserve_send_slot(&key, message.lane, segments, &limits, now).await? else {
        // No room within the hour: look again in a minute.
        return Ok(Some(Duration::from_secs(60)));
    };
    if slot <= now + SLOT_TOLERANCE {
        return Ok(None);
    }
    match services.messages.update(&message.id, |m| m.waiting_for_slot(slot, now)).await? {
        Update::Applied(_) => Ok(Some(until(slot, now))),
        _ => Ok(None),
    }
}

/// When quiet hours end, if a scheduled or bulk text is inside them now (in its business's zone,
/// or the clinic's for texts with no appointment). Interactive texts are never held.
async fn quiet_until(
    services: &Services,
    m: &Message,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    if m.lane == Lane::Interactive {
        return Ok(None);
    }
    let Some(clinic) = services.clinics.clinic(&m.clinic_id).await? else {
        return Ok(None);
    };
    let Some(quiet) = clinic.quiet_hours else {
        return Ok(None);
    };
    let zone = m.appointment.as_ref().map_or(clinic.time_zone.as_str(), |a| a.time_zone.as_str());
    let tz = zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    Ok(quiet.holds(tz, now))
}

fn until(slot: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (slot - now).to_std().unwrap_or(Duration::ZERO)
}

/// Under the claim: reserve the credits, then ask Twilio once.
async fn call_twilio(
    services: &Services,
    m: &Message,
    connection: &Connection,
    credits: u64,
) -> Result<Verdict, StoreError> {
    let Some(to) = m.to.as_ref() else {
        return Ok(Verdict::Failed(Failure::reason(Reason::NoMobileNumber)));
    };
    if services.counters.reserve_credits(&m.clinic_id, credits).await?.is_err() {
        return Ok(Verdict::Failed(Failure::reason(Reason::InsufficientCredits)));
    }
    let callback = status_callback_url(services, m);
    let request = NewMessage { to, sender: &connection.sender, body: m.body.as_str(), status_callback: &callback };
    Ok(judge(services.twilio.create_message(&request).await, m.attempt))
}

/// Twilio's 21610 means the number replied STOP: remember it for the clinic, so nothing else is
/// sent to it (until it sends START).
async fn record_opt_out(
    services: &Services,
    m: &Message,
    connection: &Connection,
    verdict: &Verdict,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (Verdict::Failed(Failure { code: Some(21610), .. }), Some(number)) = (verdict, m.to.as_ref()) else {
        return Ok(());
    };
    let opt_out = OptOut {
        clinic_id: m.clinic_id.clone(),
        number: number.clone(),
        connection_id: Some(connection.id.clone()),
        at: now,
    };
    services.clinics.put_record(&opt_out).await
}

/// Keeps the connection's last sender-or-account error, and clears it once a text goes through.
async fn record_connection_health(
    services: &Services,
    connection: Connection,
    verdict: &Verdict,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let last_error = match verdict {
        Verdict::Accepted { .. } => None,
        Verdict::Failed(Failure { code: Some(code), .. }) if is_connection_error(*code) => {
            Some(ConnectionError { code: *code, at: now })
        }
        _ => return Ok(()),
    };
    if connection.last_error.as_ref().map(|e| e.code) != last_error.as_ref().map(|e| e.code) {
        services.clinics.set_connection_error(&connection, last_error.as_ref()).await?;
    }
    Ok(())
}

/// A reminder goes only while its appointment is still booked at the same time and in the future.
async fn appointment_still_due(
    services: &Services,
    m: &Message,
    reminder_for: &AppointmentRef,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let current = services.appointments.get(&m.clinic_id, &reminder_for.id).await?;
    Ok(current
        .is_some_and(|a| a.status != AppointmentStatus::Cancelled && a.start == reminder_for.start && a.start > now))
}

/// A reminder that failed for credit is retried on the hour in its business's zone, the last
/// retry at most five hours after its window opened; after that it stays failed.
fn credit_retry_at(m: &Message, failure: &Failure, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if failure.reason != Some(Reason::InsufficientCredits) {
        return None;
    }
    let appointment = m.appointment.as_ref()?;
    let tz = appointment.time_zone.parse().ok()?;
    reminder_window::credit_retry_times(tz, appointment.window_opened_at).into_iter().find(|t| *t > now)
}

/// A claim whose lease ran out with the outcome unknown (a timeout, a 5xx, a sender that died):
/// ask Twilio before anything is resent. Found → adopt its SID; not found → release for a new
/// attempt; Twilio unreachable → ask again later.
async fn reconcile(services: &Services, m: &Message, now: DateTime<Utc>) -> Result<JobOutcome, StoreError> {
    let (Some(to), Some(connection)) =
        (m.to.as_ref(), services.clinics.connection(&m.clinic_id, &m.connection_id).await?)
    else {
        let update = services
            .messages
            .update(&m.id, |c| c.failed_attempt(m.attempt, Failure::reason(Reason::ConnectionUnavailable), now))
            .await?;
        log_update(&update, m.attempt);
        return Ok(JobOutcome::Finished);
    };
    let claimed_at = m
        .history
        .iter()
        .rev()
        .find(|h| h.status == Some(MessageStatus::Sending) && h.attempt == m.attempt)
        .map_or(m.updated_at, |h| h.at);
    // A little before the claim, for clocks that disagree.
    let since = claimed_at - TimeDelta::seconds(60);
    let attempt = m.attempt;
    match services.twilio.find_message(to, &connection.sender, m.body.as_str(), since).await {
        Ok(Some(found)) => {
            let status = found.status.unwrap_or_else(|| "queued".into());
            let update = services.messages.update(&m.id, |c| c.accepted(attempt, &found.sid, &status, now)).await?;
            info!(message_id = %m.id, attempt, "reconciled: Twilio has the message");
            log_update(&update, attempt);
            Ok(JobOutcome::Finished)
        }
        Ok(None) => {
            let note = "reconciled: Twilio has no such message; sending again".to_owned();
            let update = services.messages.update(&m.id, |c| c.released_for_retry(attempt, note.clone(), now)).await?;
            log_update(&update, attempt);
            Ok(JobOutcome::RetryLater(Duration::from_secs(1)))
        }
        Err(why) => {
            warn!(message_id = %m.id, attempt, error = %why, "could not reconcile with Twilio yet");
            Ok(JobOutcome::RetryLater(Duration::from_secs(30)))
        }
    }
}

/// Nothing to do for this job: the message is past sending, or another invocation holds a live
/// claim on it (its own job stays until it is done; if it dies, that job comes back after the
/// lease and reconciles).
fn already_handled(current: &Message) -> JobOutcome {
    if current.status == MessageStatus::Sending {
        info!(message_id = %current.id, attempt = current.attempt, "claimed by another invocation");
    }
    JobOutcome::Finished
}

fn lease_left(message: &Message, now: DateTime<Utc>) -> Duration {
    let left = message.lease_until.map_or(TimeDelta::zero(), |until| until - now);
    left.to_std().unwrap_or(Duration::ZERO).max(Duration::from_secs(1))
}

fn status_callback_url(services: &Services, message: &Message) -> String {
    format!("{}?m={}&a={}", services.settings.webhook_url("/twilio/status"), message.id, message.attempt)
}

fn judge(result: Result<CreatedMessage, TwilioError>, attempt: u32) -> Verdict {
    let unit = rand::random::<f64>();
    let retry_or_fail = |failure: Failure, after: Duration, note: String| {
        if retry_policy::may_retry(attempt) {
            Verdict::Retry { after, note }
        } else {
            Verdict::Failed(Failure { reason: Some(Reason::RetriesExhausted), ..failure })
        }
    };
    match result {
        Ok(created) => {
            Verdict::Accepted { sid: created.sid, status: created.status.unwrap_or_else(|| "queued".into()) }
        }
        Err(TwilioError::Refused { code, message, .. }) => {
            let failure = Failure::twilio(code, Some(message));
            match error_catalogue::lookup(code).map(|info| info.retry) {
                Some(Retry::Safe | Retry::Later) => retry_or_fail(
                    failure,
                    retry_policy::delay(attempt, unit, None),
                    format!("Twilio error {code}; will retry"),
                ),
                Some(Retry::Never) | None => Verdict::Failed(failure),
            }
        }
        Err(TwilioError::Throttled { retry_after }) => retry_or_fail(
            Failure::twilio(20429, None),
            retry_policy::delay(attempt, unit, retry_after),
            "Twilio asked us to slow down (20429); will retry".into(),
        ),
        Err(TwilioError::Unreachable(why)) => retry_or_fail(
            Failure { code: None, reason: None, twilio_message: Some(why) },
            retry_policy::delay(attempt, unit, None),
            "Twilio could not be reached; will retry".into(),
        ),
        Err(TwilioError::Ambiguous(why)) => Verdict::Unknown(why),
    }
}
