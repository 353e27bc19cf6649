//! The sender's work for one job: claim the message for a new attempt, check it may still go
//! (its appointment, the recipient's opt-out, the connection, the clinic's credits), hand it to
//! Twilio once, and record what Twilio said. Every write is conditional, so a job delivered twice,
//! or a sender that dies halfway, never makes a second Twilio request for the same attempt.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use tracing::{debug, error, info, warn};

use crate::appointments::{Appointment, AppointmentStatus};
use crate::clinic::{Clinic, Connection, ConnectionError, is_connection_error};
use crate::contacts::OptOut;
use crate::dynamo::StoreError;
use crate::ids::MessageId;
use crate::message::{AppointmentRef, Failure, Lane, Message};
use crate::message_status::MessageStatus;
use crate::messages_table::Update;
use crate::pacing::{RateSnapshot, Reservation};
use crate::rate_limit;
use crate::reason::Reason;
use crate::reminder_window;
use crate::retry_policy::RetryPolicy;
use crate::segments;
use crate::send_queue::SendJob;
use crate::sender_store::{Claim, HeldSlot, JobFound, JobRead, SendFacts};
use crate::services::Services;
use crate::sqs_batch::Delivery;
use crate::twilio::client::{CreatedMessage, NewMessage, TwilioError};
use crate::twilio::error_catalogue::{self, Retry};

/// What to do with the job afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Nothing more to do: delete the job.
    Finished,
    /// Keep the job and run it again at about this time. A time, not a wait: the job is hidden
    /// for what is left of it when the invocation hides it, however long the work in between.
    RetryAt(DateTime<Utc>),
}

impl JobOutcome {
    /// Back after `wait`, which may come from Twilio (`Retry-After`): any number of seconds,
    /// saturating rather than overflowing (a hide is at most 12 hours anyway).
    fn after(now: DateTime<Utc>, wait: Duration) -> Self {
        let back = TimeDelta::from_std(wait).ok().and_then(|wait| now.checked_add_signed(wait));
        Self::RetryAt(back.unwrap_or(DateTime::<Utc>::MAX_UTC))
    }
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

/// Quiet hours ending this soon are treated as over (SQS hides a job in whole seconds).
const SLOT_TOLERANCE: TimeDelta = TimeDelta::milliseconds(500);
/// A job this far into its reserved second takes a new one, and a slot is never granted this
/// far into a second: the claim still to make could carry the request to Twilio into the next
/// second, on top of that second's own texts. A claim takes milliseconds on DynamoDB; one that
/// takes longer than the rest of the second is caught at `SEND_BY`. Later would cost a
/// conversation text more wait for the next second than it saves.
const SLOT_TOO_LATE: TimeDelta = TimeDelta::milliseconds(700);
/// The same on a busy connection (its last second was full): there the store is loaded with
/// everyone's grants and claims, so a grant late in a second more often comes back too late to
/// claim than it is needed, the next second filling anyway; the slot it took goes unused. On a
/// connection with room, a late grant saves a conversation text most of a second.
const SLOT_TOO_LATE_WHEN_BUSY: TimeDelta = TimeDelta::milliseconds(400);
/// A hidden job comes back this much before its slot, at most, and sleeps the rest: SQS hides
/// in whole seconds, so a job asked back a second early comes back within the second before its
/// slot (the hide is rounded up), and takes its slot if a poller hands it out within 700 ms
/// (`SLOT_TOO_LATE`). Every second slept is billed for the text (at 1 MPS nearly every text
/// comes back so): 3 s cost a reminder more in Lambda time than all its DynamoDB writes.
const BACK_BEFORE_SLOT: TimeDelta = TimeDelta::seconds(1);
/// A text claimed later than this into its slot's second takes another second: its request
/// would reach Twilio in the next second, on top of that second's own texts.
const SEND_BY: TimeDelta = TimeDelta::milliseconds(900);
/// A slot at most this far ahead is waited for inside the invocation; a later one is hidden in
/// SQS, so a long backlog never holds invocations. Hiding a text and reading it again when it
/// comes back costs about as much as a second of a sleeping 256 MB sender (about five requests
/// and its own second of wait, `BACK_BEFORE_SLOT`), so a text alone is not kept waiting longer;
/// a batch's texts a second apart wait together, sharing the invocation's time.
const WAIT_IN_PLACE: Duration = Duration::from_secs(2);
/// The most time allowed for the grant and the claim (`lead_time`), on a stalled store.
const MAX_LEAD: Duration = Duration::from_secs(5);
/// How often a claim is tried again when the message changed under it.
const CLAIM_TRIES: usize = 8;

/// What a batch's shared reads and grants (`prepare`) found for one of its jobs, so the job
/// need not ask again. The default: nothing, the job reads everything itself.
#[derive(Debug, Default)]
pub struct Prepared {
    message: Option<Message>,
    facts: Option<PreparedFacts>,
}

#[derive(Debug)]
struct PreparedFacts {
    /// The message version the facts were read for.
    version: u64,
    facts: SendFacts,
    lead: TimeDelta,
    /// The slot granted with the batch's other texts for the connection, if one was asked for.
    reservation: Option<Option<Reservation>>,
    /// Whether that slot is already recorded as held (`SenderStore::hold_slots`), because it is
    /// too far off to wait for in place.
    held: bool,
}

/// One job on its own: reads everything it needs itself.
pub async fn send(services: &Services, job: &SendJob) -> Result<JobOutcome, StoreError> {
    send_prepared(services, job, Prepared::default()).await
}

/// Reads for a batch of jobs together what each would otherwise read alone, and grants the
/// slots of the texts for one connection and lane together (`CountersTable::reserve_send_slots`).
/// The messages, the slots they hold, and the items their jobs say they are checked against
/// (their clinic, connection, opt-out and appointment, read once each) come in one request; with
/// the connection's rate windows for jobs received the first time, which will most likely ask
/// for a slot (one received again most likely holds one). A message that needs a slot after all
/// has its facts read again with the windows, with the others like it. A job whose message
/// changes before it runs, or that this could not prepare, reads for itself; every write stays
/// conditional either way.
pub async fn prepare(services: &Services, deliveries: &[Delivery<SendJob>]) -> Vec<Prepared> {
    let reads: Vec<JobRead> = deliveries
        .iter()
        .map(|d| JobRead {
            message_id: d.body.message_id,
            checks: d.body.checks.clone(),
            with_rate: d.receive_count <= 1,
        })
        .collect();
    let read_started = std::time::Instant::now();
    let found = match services.sender_store.messages_with_facts(&reads, services.clock.now()).await {
        Ok(found) => found,
        Err(e) => {
            warn!(error = ?e, "could not read the batch's messages together; each job reads its own");
            return deliveries.iter().map(|_| Prepared::default()).collect();
        }
    };
    let mut lead = lead_time(read_started.elapsed());
    let now = services.clock.now();
    let mut messages = Vec::with_capacity(found.len());
    let mut facts_of: HashMap<MessageId, SendFacts> = HashMap::new();
    for JobFound { message, facts, rate_read } in found {
        if let (Some(m), Some(facts)) = (&message, facts)
            && (rate_read || !asks_for_slot(m, now))
        {
            facts_of.insert(m.id, facts);
        }
        messages.push(message);
    }
    let asking: Vec<(&Message, String)> = messages
        .iter()
        .flatten()
        .filter(|m| asks_for_slot(m, now) && !facts_of.contains_key(&m.id))
        .map(|m| (m, rate_key(m)))
        .collect();
    if !asking.is_empty() {
        let asking: Vec<(&Message, Option<&str>)> = asking.iter().map(|(m, key)| (*m, Some(key.as_str()))).collect();
        let read_started = std::time::Instant::now();
        match services.sender_store.facts_of_many(&asking, now).await {
            Ok(facts) => facts_of.extend(asking.iter().map(|(m, _)| m.id).zip(facts)),
            Err(e) => warn!(error = ?e, "could not read the batch's facts together; each job reads its own"),
        }
        lead = lead_time(read_started.elapsed());
    }
    let reservations = reserve_together(services, &messages, &facts_of, lead).await;
    let held = hold_together(services, &messages, &reservations).await;
    messages
        .into_iter()
        .map(|message| {
            let facts = message.as_ref().and_then(|m| {
                let facts = facts_of.remove(&m.id)?;
                let reservation = reservations.get(&m.id).cloned();
                Some(PreparedFacts { version: m.version, facts, lead, reservation, held: held.contains(&m.id) })
            });
            Prepared { message, facts }
        })
        .collect()
}

/// Whether the message will ask its connection for a slot when its job runs.
fn asks_for_slot(m: &Message, now: DateTime<Utc>) -> bool {
    m.status == MessageStatus::Queued && needs_slot(m, now)
}

/// Records together the slots granted too far ahead to wait for in place, which their jobs will
/// be hidden for. A slot this leaves out is recorded by its job, if it still needs to be.
async fn hold_together(
    services: &Services,
    messages: &[Option<Message>],
    reservations: &HashMap<MessageId, Option<Reservation>>,
) -> HashSet<MessageId> {
    let now = services.clock.now();
    let to_hold: Vec<(MessageId, HeldSlot)> = messages
        .iter()
        .flatten()
        .filter_map(|m| {
            let slot = reservations.get(&m.id)?.as_ref()?.slot;
            (until(slot, now) > WAIT_IN_PLACE).then(|| (m.id, HeldSlot::new(slot, m.version)))
        })
        .collect();
    if to_hold.is_empty() {
        return HashSet::new();
    }
    match services.sender_store.hold_slots(&to_hold).await {
        Ok(held) => held.into_iter().collect(),
        Err(e) => {
            warn!(error = ?e, "could not record the batch's held slots together; each job records its own");
            HashSet::new()
        }
    }
}

/// Grants together the slots of the batch's texts that may go now, one connection and lane at a
/// time, in the batch's order. A text this leaves out (its checks stop it, quiet hours hold it,
/// or the grant failed) reserves on its own if it still needs to.
async fn reserve_together(
    services: &Services,
    messages: &[Option<Message>],
    facts_of: &HashMap<MessageId, SendFacts>,
    lead: TimeDelta,
) -> HashMap<MessageId, Option<Reservation>> {
    let now = services.clock.now();
    // Per connection and lane: the connection and rate windows as read, and the texts.
    type Group<'a> = ((String, Lane), Connection, Option<RateSnapshot>, Vec<&'a Message>);
    let mut groups: Vec<Group> = Vec::new();
    for m in messages.iter().flatten().filter(|m| asks_for_slot(m, now)) {
        let Some(facts) = facts_of.get(&m.id) else { continue };
        let Ready::Go(connection) = pre_checks(m, facts, now) else { continue };
        if quiet_until(m, facts.clinic.as_ref(), now).is_some() {
            continue;
        }
        let group = (rate_key(m), m.lane);
        match groups.iter_mut().find(|(g, ..)| *g == group) {
            Some((.., members)) => members.push(m),
            None => groups.push((group, connection, facts.rate, vec![m])),
        }
    }
    let mut reserved = HashMap::new();
    for ((key, lane), connection, snapshot, members) in groups {
        let limits = rate_limit::limits(connection.mps, services.shares);
        let from = search_from(services, &connection, snapshot.as_ref(), lead);
        let segments: Vec<u32> = members.iter().map(|m| segments::analyse(m.body.as_str()).segments.max(1)).collect();
        match services.counters.reserve_send_slots(&key, lane, &segments, &limits, from, snapshot).await {
            Ok(slots) => reserved.extend(members.iter().map(|m| m.id).zip(slots)),
            Err(e) => warn!(error = ?e, "could not reserve the batch's slots together; each job reserves its own"),
        }
    }
    reserved
}

/// One job, with what `prepare` found for it.
pub async fn send_prepared(services: &Services, job: &SendJob, prepared: Prepared) -> Result<JobOutcome, StoreError> {
    let mut now = services.clock.now();
    let Prepared { message: prepared_message, facts: mut prepared_facts } = prepared;
    let read = match prepared_message.filter(|m| m.id == job.message_id) {
        Some(message) => Some(message),
        // With the slot it may hold, as the batch would have read it.
        None => services.sender_store.messages(&[job.message_id]).await?.pop().flatten(),
    };
    let Some(mut message) = read else {
        warn!(message_id = %job.message_id, "job for a message that does not exist");
        return Ok(JobOutcome::Finished);
    };
    if message.status == MessageStatus::Deferred {
        match message.deferred_until {
            Some(until) if until > now + SLOT_TOLERANCE => return Ok(JobOutcome::RetryAt(until)),
            _ => match services.messages.update_from(&message, |m| m.resumed(now)).await? {
                Update::Applied(resumed) => message = resumed,
                _ => return Ok(JobOutcome::Finished),
            },
        }
    }
    if message.status == MessageStatus::Sending && message.lease_until.is_none_or(|until| until <= now) {
        return reconcile(services, &message, now).await;
    }
    if message.status != MessageStatus::Queued {
        return Ok(already_handled(&message, now));
    }
    if let Some(slot) = message.send_slot.filter(|slot| *slot > now) {
        if until(slot, now) > WAIT_IN_PLACE {
            return Ok(JobOutcome::RetryAt(come_back_for(slot)));
        }
        wait_for(slot, now).await;
        now = services.clock.now();
    }
    // Everything that can stop the text is checked before the claim, so a failure here never
    // strands a claimed message.
    let rate_key = needs_slot(&message, now).then(|| rate_key(&message));
    let mut slot = message.send_slot.filter(|_| rate_key.is_none());
    let mut window_after_grant = None;
    if let (Some(slot), Some(_)) = (message.send_slot, &rate_key) {
        info!(message_id = %message.id, late_ms = (now - slot).num_milliseconds(), "came back after its slot; taking another");
    }
    // Facts read with the batch serve only the message as it was read, with the rate windows
    // if it needs a slot. They are as old as the wait for a slot in place (`WAIT_IN_PLACE`), as
    // they would be if read before it.
    let prepared_facts = prepared_facts
        .take()
        .filter(|p| p.version == message.version && (rate_key.is_none() || p.facts.rate.is_some()));
    let (facts, lead, reserved, held) = match prepared_facts {
        Some(PreparedFacts { facts, lead, reservation, held, .. }) => (facts, lead, reservation, held),
        None => {
            let read_started = std::time::Instant::now();
            let facts = services.sender_store.facts(&message, rate_key.as_deref(), now).await?;
            (facts, lead_time(read_started.elapsed()), None, false)
        }
    };
    let connection = match pre_checks(&message, &facts, now) {
        Ready::Go(connection) => connection,
        Ready::Stop(stop) => {
            let update = services
                .messages
                .update_from(&message, |m| match &stop {
                    Stop::Skip(reason) => m.skipped(*reason, now),
                    Stop::Fail(failure) => m.failed_attempt(m.attempt, failure.clone(), now),
                })
                .await?;
            log_update(&update, message.attempt);
            return Ok(JobOutcome::Finished);
        }
    };
    if let Some(until) = quiet_until(&message, facts.clinic.as_ref(), now) {
        if let Update::Applied(_) = services.messages.update_from(&message, |m| m.deferred(until, now)).await? {
            info!(message_id = %message.id, until = %until, "held for quiet hours");
            return Ok(JobOutcome::RetryAt(until));
        }
        return Ok(JobOutcome::Finished);
    }
    if let Some(key) = rate_key {
        // The reads above take time: the slot is judged on the clock as it is now.
        let reservation = match reserved {
            Some(reservation) => reservation,
            None => reserve_alone(services, &message, &connection, &key, facts.rate, lead).await?,
        };
        match pace(services, &message, reservation, held, services.clock.now()).await? {
            Pace::Go(granted) => {
                let now = services.clock.now();
                debug!(message_id = %message.id, ms_into_slot = (now - granted.slot).num_milliseconds(), "slot granted");
                wait_for(granted.slot, now).await;
                slot = Some(granted.slot);
                window_after_grant = Some(granted.after);
            }
            Pace::Hide(at) => return Ok(JobOutcome::RetryAt(at)),
        }
    }
    let credits = u64::from(segments::analyse(message.body.as_str()).segments.max(1));
    let claimed = match claim(services, &message, credits).await? {
        Ok(claimed) => claimed,
        Err(outcome) => return Ok(outcome),
    };
    if let Some(slot) = slot
        && missed_its_second(slot, services.clock.now())
        && let Some(outcome) =
            pace_again(services, &claimed, &connection, credits, slot, window_after_grant, lead).await?
    {
        return Ok(outcome);
    }
    // The lease is what keeps a reconciler away: once too little of it is left for Twilio's
    // answer (a stalled machine), asking Twilio could race a reconciler's new attempt. The
    // reconciler finds nothing at Twilio and sends it then.
    let now = services.clock.now();
    let answer_by = now + TimeDelta::from_std(services.timing.twilio_timeout).unwrap_or_default();
    if claimed.lease_until.is_none_or(|lease| answer_by >= lease) {
        warn!(message_id = %claimed.id, "the claim ran out before Twilio could be asked; left to the reconciler");
        return Ok(JobOutcome::RetryAt(lease_end(&claimed, now)));
    }
    let attempt = claimed.attempt;
    let verdict = call_twilio(services, &claimed, &connection).await;
    let now = services.clock.now();
    let refund = matches!(verdict, Verdict::Failed(_) | Verdict::Retry { .. });
    // Before the failure is recorded: whoever sees a text failed with 21610 also sees the
    // number opted out, and no other text to it slips through in between.
    if let Err(e) = record_opt_out(services, &claimed, &connection, &verdict, now).await {
        error!(message_id = %claimed.id, error = ?e, "could not record an opt-out Twilio reported");
    }
    let (outcome, update) = match &verdict {
        Verdict::Accepted { sid, status } => {
            let update = services.messages.update_from(&claimed, |m| m.accepted(attempt, sid, status, now)).await?;
            (JobOutcome::Finished, update)
        }
        Verdict::Failed(failure) => {
            let update =
                services.messages.update_from(&claimed, |m| m.failed_attempt(attempt, failure.clone(), now)).await?;
            (JobOutcome::Finished, update)
        }
        Verdict::Retry { after, note } => {
            let update =
                services.messages.update_from(&claimed, |m| m.released_for_retry(attempt, note.clone(), now)).await?;
            (JobOutcome::after(now, *after), update)
        }
        Verdict::Unknown(why) => {
            warn!(message_id = %claimed.id, attempt, %why, "outcome at Twilio unknown; will reconcile after the lease");
            return Ok(JobOutcome::RetryAt(lease_end(&claimed, services.clock.now())));
        }
    };
    log_update(&update, attempt);
    // Bookkeeping after the verdict is recorded: a failure here must not cost the text.
    if refund && let Err(e) = services.counters.add_credits(&claimed.clinic_id, credits).await {
        error!(message_id = %claimed.id, error = ?e, credits, "could not refund credits");
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

/// `queued → sending` for a new attempt, paid for in the same transaction: a message is never
/// claimed without its credits, and credits are never taken for a claim that did not happen.
/// `Err(outcome)`: nothing to send now (another invocation has it, it is gone, or the clinic is
/// out of credits, which is recorded on the message).
async fn claim(
    services: &Services,
    message: &Message,
    credits: u64,
) -> Result<Result<Message, JobOutcome>, StoreError> {
    let mut current = message.clone();
    for _ in 0..CLAIM_TRIES {
        let now = services.clock.now();
        let Ok(next) = current.claim(now, services.timing.lease) else {
            return Ok(Err(already_handled(&current, now)));
        };
        match services.sender_store.claim_with_credits(&next, current.version, credits).await? {
            Claim::Claimed => return Ok(Ok(next)),
            Claim::NoCredits => {
                let failure = Failure::reason(Reason::InsufficientCredits);
                let retry_at = credit_retry_at(&current, now);
                let update = services
                    .messages
                    .update_from(&current, |m| {
                        let mut failed = m.failed_attempt(m.attempt, failure.clone(), now)?;
                        failed.credit_retry_at = retry_at;
                        Ok(failed)
                    })
                    .await?;
                log_update(&update, current.attempt);
                return Ok(Err(JobOutcome::Finished));
            }
            Claim::Changed => match services.messages.get(&current.id).await? {
                Some(fresh) => current = fresh,
                None => return Ok(Err(JobOutcome::Finished)),
            },
        }
    }
    Err(StoreError::Conflict)
}

enum Ready {
    Go(Connection),
    /// Decided without a claim: the text is not sent.
    Stop(Stop),
}

#[derive(Debug, PartialEq)]
enum Stop {
    Skip(Reason),
    Fail(Failure),
}

/// The checks made just before sending: no number, the appointment changed, the number opted
/// out, the connection gone or disabled.
fn pre_checks(m: &Message, facts: &SendFacts, now: DateTime<Utc>) -> Ready {
    if m.to.is_none() {
        return Ready::Stop(Stop::Fail(Failure::reason(Reason::NoMobileNumber)));
    }
    if let Some(reminder_for) = &m.appointment
        && !appointment_still_due(facts.appointment.as_ref(), reminder_for, now)
    {
        return Ready::Stop(Stop::Skip(Reason::AppointmentChanged));
    }
    if let Some(alert) = &m.mass_alert
        && !facts.alert_appointments.iter().any(|a| still_in_alert(a, &alert.range, now))
    {
        return Ready::Stop(Stop::Skip(Reason::AppointmentChanged));
    }
    if facts.opted_out {
        return Ready::Stop(Stop::Skip(Reason::OptedOut));
    }
    match &facts.connection {
        Some(connection) if connection.enabled => Ready::Go(connection.clone()),
        _ => Ready::Stop(Stop::Fail(Failure::reason(Reason::ConnectionUnavailable))),
    }
}

/// Whether the message still needs a rate-limit slot: it has none, or it came back so long after
/// its slot that the second has passed unused.
fn needs_slot(m: &Message, now: DateTime<Utc>) -> bool {
    m.send_slot.is_none_or(|slot| now - slot > SLOT_TOO_LATE)
}

fn rate_key(m: &Message) -> String {
    crate::pacing::rate_key(&m.clinic_id, &m.connection_id)
}

enum Pace {
    /// Send in this second: now, or after a wait of at most `WAIT_IN_PLACE`.
    Go(Box<Reservation>),
    /// Hide the job; it comes back at this time.
    Hide(DateTime<Utc>),
}

/// Where the message goes with its slot (`None`: no room within the hour). A slot further
/// ahead than `WAIT_IN_PLACE` is recorded as held by the message (so its job, back, does not
/// reserve another), unless its batch did that already (`held`), and the job hidden until then.
async fn pace(
    services: &Services,
    message: &Message,
    reservation: Option<Reservation>,
    held: bool,
    now: DateTime<Utc>,
) -> Result<Pace, StoreError> {
    let Some(reservation) = reservation else {
        // No room within the hour: look again in a minute.
        return Ok(Pace::Hide(now + TimeDelta::minutes(1)));
    };
    let slot = reservation.slot;
    // Never before the slot's second: a text sent early lands in the second before, on top of
    // that second's own.
    if until(slot, now) <= WAIT_IN_PLACE {
        return Ok(Pace::Go(Box::new(reservation)));
    }
    // Even if the record is not written, the job must not send before its slot: it comes back
    // then and, finding no slot held, takes another.
    if !held
        && let Err(e) = services.sender_store.hold_slots(&[(message.id, HeldSlot::new(slot, message.version))]).await
    {
        warn!(message_id = %message.id, error = ?e, "could not record the slot held; it takes another when back");
    }
    Ok(Pace::Hide(come_back_for(slot)))
}

/// Reserves the message's slot on its connection alone: from now plus the `lead` the grant and
/// the claim will take, later on a busy connection (`earliest_slot`).
async fn reserve_alone(
    services: &Services,
    message: &Message,
    connection: &Connection,
    key: &str,
    snapshot: Option<RateSnapshot>,
    lead: TimeDelta,
) -> Result<Option<Reservation>, StoreError> {
    let from = search_from(services, connection, snapshot.as_ref(), lead);
    reserve_slot(services, message, connection, key, snapshot, from).await
}

/// Where a slot is looked for from: now plus the `lead` the grant and the claim will take, a
/// second later when too little of this one is left (`earliest_slot`).
fn search_from(
    services: &Services,
    connection: &Connection,
    snapshot: Option<&RateSnapshot>,
    lead: TimeDelta,
) -> DateTime<Utc> {
    let now = services.clock.now();
    let per_second = rate_limit::limits(connection.mps, services.shares).per_second;
    let busy = snapshot.is_some_and(|s| s.last_second_full(now, per_second));
    earliest_slot(now + lead, busy)
}

/// A free second for `message` on its connection from `from` on (`earliest_slot`): the first,
/// unless other senders keep taking it; `None` when none is free within the hour.
async fn reserve_slot(
    services: &Services,
    message: &Message,
    connection: &Connection,
    key: &str,
    snapshot: Option<RateSnapshot>,
    from: DateTime<Utc>,
) -> Result<Option<Reservation>, StoreError> {
    let segments = segments::analyse(message.body.as_str()).segments.max(1);
    let limits = rate_limit::limits(connection.mps, services.shares);
    services.counters.reserve_send_slot(key, message.lane, segments, &limits, from, snapshot).await
}

/// Whether a text claimed for `slot` would reach Twilio after the slot's second: the claim took
/// the rest of it (a slow write, a stalled machine), and a request now would land in a second
/// the limiter has given to other texts.
fn missed_its_second(slot: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    let second = slot.with_nanosecond(0).unwrap_or(slot);
    now >= second + SEND_BY
}

/// The claim outlasted its slot's second. Nothing has gone to Twilio, so the text takes the next
/// free second under the claim and waits for it; if that second is further off than a wait in
/// place, the claim is given back (credits refunded, the new second kept on the message) and the
/// job hidden until then. `None`: go ahead and send.
async fn pace_again(
    services: &Services,
    claimed: &Message,
    connection: &Connection,
    credits: u64,
    missed: DateTime<Utc>,
    window_after_grant: Option<RateSnapshot>,
    lead: TimeDelta,
) -> Result<Option<JobOutcome>, StoreError> {
    let late_ms = (services.clock.now() - missed.with_nanosecond(0).unwrap_or(missed)).num_milliseconds();
    let key = rate_key(claimed);
    // The store is evidently slow: busy, whatever the window says.
    let from = earliest_slot(services.clock.now() + lead, true);
    let reservation = reserve_slot(services, claimed, connection, &key, window_after_grant, from).await?;
    let slot = reservation.map(|r| r.slot);
    let now = services.clock.now();
    let twilio_timeout = TimeDelta::from_std(services.timing.twilio_timeout).unwrap_or_default();
    let in_time = |slot: DateTime<Utc>| {
        until(slot, now) <= WAIT_IN_PLACE && claimed.lease_until.is_some_and(|lease| slot + twilio_timeout < lease)
    };
    info!(message_id = %claimed.id, late_ms, "claimed after its second had passed; took another");
    if let Some(slot) = slot.filter(|slot| in_time(*slot)) {
        wait_for(slot, now).await;
        return Ok(None);
    }
    let attempt = claimed.attempt;
    let update = services.messages.update_from(claimed, |m| m.released_for_slot(attempt, slot, now)).await?;
    log_update(&update, attempt);
    if let Err(e) = services.counters.add_credits(&claimed.clinic_id, credits).await {
        error!(message_id = %claimed.id, error = ?e, credits, "could not refund credits");
    }
    Ok(Some(JobOutcome::RetryAt(slot.map_or(now + TimeDelta::minutes(1), come_back_for))))
}

/// How long the grant and the claim will take, judged by the read just made: about two such
/// round trips. A slot is asked for from then, so that on a slow store (a loaded one, or one
/// serving a request at a time) it is not granted for a second that is over before the claim is
/// made; on DynamoDB it is a few milliseconds.
fn lead_time(read_took: Duration) -> TimeDelta {
    TimeDelta::from_std(read_took.saturating_mul(2).min(MAX_LEAD)).unwrap_or_default()
}

/// Where a slot may start: a second more than `SLOT_TOO_LATE` gone (`SLOT_TOO_LATE_WHEN_BUSY` on
/// a busy connection) is left to others, because a text granted it could reach Twilio in the
/// next one.
fn earliest_slot(now: DateTime<Utc>, busy: bool) -> DateTime<Utc> {
    let second = now.with_nanosecond(0).unwrap_or(now);
    let too_late = if busy { SLOT_TOO_LATE_WHEN_BUSY } else { SLOT_TOO_LATE };
    if now - second > too_late { second + TimeDelta::seconds(1) } else { now }
}

/// When a job hidden for `slot` should come back: early enough to be received and read before
/// its second, however SQS rounds the hide; the rest is slept in place.
fn come_back_for(slot: DateTime<Utc>) -> DateTime<Utc> {
    slot - BACK_BEFORE_SLOT
}

/// When quiet hours end, if a scheduled or bulk text is inside them now (in its business's zone,
/// or the clinic's for texts with no appointment). Interactive texts are never held.
fn quiet_until(m: &Message, clinic: Option<&Clinic>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if m.lane == Lane::Interactive {
        return None;
    }
    let clinic = clinic?;
    let quiet = clinic.quiet_hours.as_ref()?;
    let zone = m.appointment.as_ref().map_or(clinic.time_zone.as_str(), |a| a.time_zone.as_str());
    let tz = zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    quiet.holds(tz, now)
}

/// Sleeps until `slot`, the invocation waiting with the job: the wait is logged (at debug) as
/// `waited_ms`, because Lambda bills it (`xtask bench cost` adds it up).
async fn wait_for(slot: DateTime<Utc>, now: DateTime<Utc>) {
    let wait = until(slot, now);
    if !wait.is_zero() {
        debug!(waited_ms = wait.as_millis() as u64, "waiting for its second");
        tokio::time::sleep(wait).await;
    }
}

fn until(slot: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (slot - now).to_std().unwrap_or(Duration::ZERO)
}

/// Under the claim (credits already taken): ask Twilio once.
async fn call_twilio(services: &Services, m: &Message, connection: &Connection) -> Verdict {
    let Some(to) = m.to.as_ref() else {
        return Verdict::Failed(Failure::reason(Reason::NoMobileNumber));
    };
    let callback = status_callback_url(services, m);
    let request = NewMessage { to, sender: &connection.sender, body: m.body.as_str(), status_callback: &callback };
    judge(services.twilio.create_message(&request).await, m.attempt, &services.retries)
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
fn appointment_still_due(current: Option<&Appointment>, reminder_for: &AppointmentRef, now: DateTime<Utc>) -> bool {
    current.is_some_and(|a| a.status != AppointmentStatus::Cancelled && a.start == reminder_for.start && a.start > now)
}

/// A mass alert goes to a client only while one of their appointments that made them a
/// recipient is still booked or confirmed, in the alert's range and ahead (seed: "an appointment
/// in the future at the time the text is sent").
fn still_in_alert(a: &Appointment, range: &crate::mass_alert::AlertRange, now: DateTime<Utc>) -> bool {
    a.status != AppointmentStatus::Cancelled && range.covers(a.start, now)
}

/// A reminder that failed for credit is retried on the hour in its business's zone, the last
/// retry at most five hours after its window opened; after that it stays failed.
fn credit_retry_at(m: &Message, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
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
            .update_from(m, |c| c.failed_attempt(m.attempt, Failure::reason(Reason::ConnectionUnavailable), now))
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
            let update = services.messages.update_from(m, |c| c.accepted(attempt, &found.sid, &status, now)).await?;
            info!(message_id = %m.id, attempt, "reconciled: Twilio has the message");
            log_update(&update, attempt);
            Ok(JobOutcome::Finished)
        }
        Ok(None) => {
            // The attempt never reached Twilio: like any failed try, it is paid back, and the
            // next one waits its turn in the back-off and counts against the bound.
            let update = if services.retries.may_retry(attempt) {
                let note = "reconciled: Twilio has no such message; sending again".to_owned();
                services.messages.update_from(m, |c| c.released_for_retry(attempt, note.clone(), now)).await?
            } else {
                let failure = Failure {
                    code: None,
                    reason: Some(Reason::RetriesExhausted),
                    twilio_message: Some("Twilio did not answer in time, and has no such message".into()),
                };
                services.messages.update_from(m, |c| c.failed_attempt(attempt, failure.clone(), now)).await?
            };
            log_update(&update, attempt);
            let after = match update {
                Update::Applied(after) => after,
                // Someone else moved it on; whoever did holds the truth.
                Update::Refused(_, current) => return Ok(already_handled(&current, now)),
                Update::Missing => return Ok(JobOutcome::Finished),
            };
            let credits = u64::from(segments::analyse(m.body.as_str()).segments.max(1));
            if let Err(e) = services.counters.add_credits(&m.clinic_id, credits).await {
                error!(message_id = %m.id, error = ?e, credits, "could not refund credits");
            }
            if after.status != MessageStatus::Queued {
                return Ok(JobOutcome::Finished);
            }
            Ok(JobOutcome::after(now, services.retries.delay(attempt, rand::random::<f64>(), None)))
        }
        Err(why) => {
            warn!(message_id = %m.id, attempt, error = %why, "could not reconcile with Twilio yet");
            Ok(JobOutcome::after(now, Duration::from_secs(30)))
        }
    }
}

/// Nothing to do for this job now: the message is past sending, or another invocation holds a
/// live claim on it. That invocation may hold this very SQS message (delivered twice, or its
/// invocation died after claiming), so the job is kept until the lease ends rather than deleted:
/// a claim whose outcome stays unknown must keep a job that will reconcile it.
fn already_handled(current: &Message, now: DateTime<Utc>) -> JobOutcome {
    if current.status == MessageStatus::Sending {
        info!(message_id = %current.id, attempt = current.attempt, "claimed by another invocation");
        return JobOutcome::RetryAt(lease_end(current, now));
    }
    JobOutcome::Finished
}

/// When a claim's lease runs out, and a second from now at the earliest.
fn lease_end(message: &Message, now: DateTime<Utc>) -> DateTime<Utc> {
    message.lease_until.unwrap_or(now).max(now + TimeDelta::seconds(1))
}

fn status_callback_url(services: &Services, message: &Message) -> String {
    format!("{}?m={}&a={}", services.settings.webhook_url("/twilio/status"), message.id, message.attempt)
}

fn judge(result: Result<CreatedMessage, TwilioError>, attempt: u32, retries: &RetryPolicy) -> Verdict {
    let unit = rand::random::<f64>();
    let retry_or_fail = |failure: Failure, after: Duration, note: String| {
        if retries.may_retry(attempt) {
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
                    retries.delay(attempt, unit, None),
                    format!("Twilio error {code}; will retry"),
                ),
                Some(Retry::Never) | None => Verdict::Failed(failure),
            }
        }
        Err(TwilioError::Throttled { retry_after }) => retry_or_fail(
            Failure::twilio(20429, None),
            retries.delay(attempt, unit, retry_after),
            "Twilio asked us to slow down (20429); will retry".into(),
        ),
        Err(TwilioError::Unreachable(why)) => retry_or_fail(
            Failure { code: None, reason: None, twilio_message: Some(why) },
            retries.delay(attempt, unit, None),
            "Twilio could not be reached; will retry".into(),
        ),
        Err(TwilioError::Ambiguous(why)) => Verdict::Unknown(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ClinicId, ConnectionId, MessageId};
    use crate::message::MessageBody;
    use crate::phone::E164;
    use crate::send_queue;
    use crate::twilio::client::SenderId;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).map(|t| t.to_utc()).unwrap_or_default()
    }

    fn number(text: &str) -> E164 {
        match E164::parse(text, None) {
            Ok(number) => number,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn body() -> MessageBody {
        match MessageBody::parse("See you tomorrow at 10:00") {
            Ok(body) => body,
            Err(e) => panic!("{e}"),
        }
    }

    fn start() -> DateTime<Utc> {
        at("2026-06-11T14:00:00Z")
    }

    fn reminder() -> Message {
        let appointment = AppointmentRef {
            id: "a1".into(),
            business_id: "b1".into(),
            start: start(),
            window_opened_at: at("2026-06-10T14:00:00Z"),
            time_zone: "America/New_York".into(),
        };
        Message::new_reminder(
            MessageId::generate(at("2026-06-10T14:00:00Z")),
            ClinicId::new("c1"),
            number("+14155550101"),
            body(),
            ConnectionId::new("main"),
            appointment,
            MessageStatus::Queued,
            at("2026-06-10T14:00:00Z"),
        )
    }

    fn booked(start: DateTime<Utc>, status: AppointmentStatus) -> Appointment {
        Appointment {
            id: "a1".into(),
            clinic_id: ClinicId::new("c1"),
            business_id: "b1".into(),
            contact_id: "p1".into(),
            type_id: "t1".into(),
            patient_names: vec![],
            start,
            status,
            decided_start: None,
            reminder_message_id: None,
            created_at: at("2026-06-01T00:00:00Z"),
            updated_at: at("2026-06-01T00:00:00Z"),
        }
    }

    fn connection(enabled: bool) -> Connection {
        Connection {
            id: ConnectionId::new("main"),
            clinic_id: ClinicId::new("c1"),
            label: "Main".into(),
            sender: SenderId::Number(number("+15017122661")),
            pool_numbers: vec![],
            mps: 1,
            enabled,
            last_error: None,
            last_inbound: None,
            last_status_callback_at: None,
        }
    }

    fn facts() -> SendFacts {
        SendFacts {
            connection: Some(connection(true)),
            appointment: Some(booked(start(), AppointmentStatus::Booked)),
            ..SendFacts::default()
        }
    }

    fn stop(ready: Ready) -> Option<Stop> {
        match ready {
            Ready::Go(_) => None,
            Ready::Stop(stop) => Some(stop),
        }
    }

    const NOW: &str = "2026-06-10T15:00:00Z";

    #[test]
    fn a_reminder_whose_facts_still_hold_goes() {
        assert_eq!(stop(pre_checks(&reminder(), &facts(), at(NOW))), None);
    }

    #[test]
    fn a_moved_cancelled_past_or_missing_appointment_skips_the_reminder() {
        let moved = booked(start() + TimeDelta::hours(1), AppointmentStatus::Booked);
        let cancelled = booked(start(), AppointmentStatus::Cancelled);
        for appointment in [Some(moved), Some(cancelled), None] {
            let facts = SendFacts { appointment, ..facts() };
            let stopped = stop(pre_checks(&reminder(), &facts, at(NOW)));
            assert_eq!(stopped, Some(Stop::Skip(Reason::AppointmentChanged)));
        }
        let after_start = start() + TimeDelta::minutes(1);
        let stopped = stop(pre_checks(&reminder(), &facts(), after_start));
        assert_eq!(stopped, Some(Stop::Skip(Reason::AppointmentChanged)));
    }

    #[test]
    fn an_opted_out_number_is_skipped_before_the_connection_is_looked_at() {
        let facts = SendFacts { opted_out: true, connection: None, ..facts() };
        assert_eq!(stop(pre_checks(&reminder(), &facts, at(NOW))), Some(Stop::Skip(Reason::OptedOut)));
    }

    #[test]
    fn a_disabled_or_deleted_connection_fails_the_text() {
        for connection in [Some(connection(false)), None] {
            let facts = SendFacts { connection, ..facts() };
            let stopped = stop(pre_checks(&reminder(), &facts, at(NOW)));
            assert_eq!(stopped, Some(Stop::Fail(Failure::reason(Reason::ConnectionUnavailable))));
        }
    }

    #[test]
    fn a_text_without_a_number_fails_first() {
        let mut message = reminder();
        message.to = None;
        let facts = SendFacts { opted_out: true, ..facts() };
        let stopped = stop(pre_checks(&message, &facts, at(NOW)));
        assert_eq!(stopped, Some(Stop::Fail(Failure::reason(Reason::NoMobileNumber))));
    }

    #[test]
    fn a_slot_is_needed_until_one_is_reserved_and_again_once_its_second_is_nearly_over() {
        let mut message = reminder();
        assert!(needs_slot(&message, at(NOW)));
        message.send_slot = Some(at(NOW));
        assert!(!needs_slot(&message, at(NOW) + SLOT_TOO_LATE));
        assert!(needs_slot(&message, at(NOW) + SLOT_TOO_LATE + TimeDelta::milliseconds(1)));
        assert!(SLOT_TOO_LATE < TimeDelta::seconds(1), "a text only ever goes inside its own second");
    }

    #[test]
    fn a_slot_is_never_granted_late_in_a_second() {
        let second = at(NOW).with_nanosecond(0).expect("whole second");
        assert_eq!(earliest_slot(second + TimeDelta::milliseconds(200), false), second + TimeDelta::milliseconds(200));
        assert_eq!(earliest_slot(second + SLOT_TOO_LATE, false), second + SLOT_TOO_LATE);
        assert_eq!(earliest_slot(second + TimeDelta::milliseconds(800), false), second + TimeDelta::seconds(1));
    }

    #[test]
    fn a_slot_is_asked_from_when_the_grant_and_the_claim_will_be_done() {
        assert_eq!(lead_time(Duration::from_millis(4)), TimeDelta::milliseconds(8), "DynamoDB: a few ms");
        assert_eq!(lead_time(Duration::from_millis(300)), TimeDelta::milliseconds(600));
        // A stalled read pushes the slot at most this far: the text is then hidden for it.
        assert_eq!(lead_time(Duration::from_secs(60)), TimeDelta::from_std(MAX_LEAD).expect("small"));
    }

    #[test]
    fn a_busy_connection_leaves_the_end_of_a_second_sooner() {
        let second = at(NOW).with_nanosecond(0).expect("whole second");
        let late = second + TimeDelta::milliseconds(500);
        assert_eq!(earliest_slot(late, false), late, "with room, a conversation text still goes this second");
        assert_eq!(earliest_slot(late, true), second + TimeDelta::seconds(1));
        assert_eq!(earliest_slot(second + SLOT_TOO_LATE_WHEN_BUSY, true), second + SLOT_TOO_LATE_WHEN_BUSY);
        assert!(SLOT_TOO_LATE_WHEN_BUSY < SLOT_TOO_LATE);
    }

    #[test]
    fn a_hidden_job_comes_back_before_its_slot_however_long_the_hide_took() {
        let reserved_at = at(NOW);
        let slot = reserved_at + TimeDelta::milliseconds(7_300);
        // The work between the reservation and the hide (a write, on a loaded day more).
        for work in [0, 300, 1_500, 4_000] {
            let hidden_at = reserved_at + TimeDelta::milliseconds(work);
            let wait = until(come_back_for(slot), hidden_at);
            let back = hidden_at + TimeDelta::seconds(i64::from(send_queue::hidden_seconds(wait)));
            let early = (slot - back).num_milliseconds();
            assert!(back < slot && slot - back <= BACK_BEFORE_SLOT, "work {work} ms: back {early} ms early");
            assert!(until(slot, back) <= WAIT_IN_PLACE, "work {work} ms: the rest is slept in place");
        }
    }

    #[test]
    fn any_retry_after_twilio_gives_is_a_time_to_come_back() {
        let now = at(NOW);
        for seconds in [0, 30, 86_400 * 365 * 1_000_000, u64::MAX] {
            let JobOutcome::RetryAt(back) = JobOutcome::after(now, Duration::from_secs(seconds)) else {
                panic!("kept")
            };
            assert!(back >= now, "{seconds} s");
            let hidden = send_queue::hidden_seconds(until(back, now));
            assert!((1..=12 * 3600).contains(&hidden), "{seconds} s hides for {hidden} s");
        }
    }

    #[test]
    fn a_text_claimed_after_its_second_takes_another() {
        let second = at(NOW);
        let slot = second + TimeDelta::milliseconds(300);
        assert!(!missed_its_second(slot, second + TimeDelta::milliseconds(800)));
        assert!(missed_its_second(slot, second + SEND_BY));
        assert!(missed_its_second(slot, second + TimeDelta::seconds(3)));
        assert!(SLOT_TOO_LATE < SEND_BY, "a slot granted in time leaves room for the claim");
    }
}
