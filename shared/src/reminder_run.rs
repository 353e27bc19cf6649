//! The scheduler's tick: open due reminder windows, decide each waiting appointment once, and
//! release credit retries that are due. "Now" is the tick's own time (the EventBridge event's
//! `time`), never the wall clock, so tests drive it with synthetic ticks.
//!
//! Exactly one decision per appointment, template and start time, however ticks overlap or
//! repeat: the decision's message id is derived from those (and the window), its insert is
//! conditional, and the appointment is marked decided only afterwards. A tick that stops midway
//! leaves the rest waiting in the index, and the next tick carries on.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};
use ulid::Ulid;

use crate::appointment_types::{AppointmentType, SmsTemplate};
use crate::appointments::Appointment;
use crate::businesses::{Business, WINDOWS_INDEX_KEY};
use crate::clinic::{Clinic, Connection, SendMode};
use crate::confirmations::Reminded;
use crate::contacts::{Contact, OptOut, SmsNumber};
use crate::dynamo::{StoreError, from_item, index_instant, s};
use crate::event_bus::PublishError;
use crate::ids::{ClinicId, ConnectionId, MessageId};
use crate::message::{Actor, AppointmentRef, Failure, Message, MessageBody};
use crate::message_status::MessageStatus;
use crate::messages_table::Update;
use crate::phone::E164;
use crate::reason::Reason;
use crate::reminder_checks::{Check, ReminderFacts, decide, reminder_checks};
use crate::reminder_window::{WindowState, local_day_bounds};
use crate::segments;
use crate::send_queue::{QueueError, SendJob};
use crate::services::Services;
use crate::templates::RenderContext;

#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Businesses whose window was open during this tick.
    pub open_windows: usize,
    pub reminders: usize,
    pub skipped: usize,
    pub credit_retries: usize,
    /// Texts that waited for approval more than 30 days.
    pub expired: usize,
    /// Businesses, appointments or sweeps that failed and are left for the next tick.
    pub errors: usize,
}

pub async fn tick(services: &Services, now: DateTime<Utc>) -> Result<TickReport, TickError> {
    let mut report = TickReport::default();
    // Credits the reminders made in this tick will need, per clinic.
    let mut needed: HashMap<ClinicId, u64> = HashMap::new();
    // One failing business or appointment is logged and left for the next tick; it never stops
    // the others, nor the retries and expiries below.
    match due_businesses(services, now).await {
        Ok(due) => {
            for business in due {
                if let Err(e) = run_business(services, &business, now, &mut report, &mut needed).await {
                    report.errors += 1;
                    error!(clinic = %business.clinic_id, business = %business.id, error = ?e, "reminder window failed; retried next tick");
                }
            }
        }
        Err(e) => {
            report.errors += 1;
            error!(error = ?e, "could not read due businesses");
        }
    }
    for (clinic, credits) in needed {
        if let Err(e) = warn_if_credits_low(services, &clinic, credits, now).await {
            report.errors += 1;
            error!(clinic = %clinic, error = ?e, "could not check credits");
        }
    }
    match release_credit_retries(services, now).await {
        Ok(n) => report.credit_retries = n,
        Err(e) => {
            report.errors += 1;
            error!(error = ?e, "credit retries failed; retried next tick");
        }
    }
    match expire_unapproved(services, now).await {
        Ok(n) => report.expired = n,
        Err(e) => {
            report.errors += 1;
            error!(error = ?e, "approval expiry failed; retried next tick");
        }
    }
    if report != TickReport::default() {
        info!(?report, at = %now, "scheduler tick");
    }
    Ok(report)
}

async fn run_business(
    services: &Services,
    business: &Business,
    now: DateTime<Utc>,
    report: &mut TickReport,
    needed: &mut HashMap<ClinicId, u64>,
) -> Result<(), TickError> {
    let tz = business.tz();
    match business.window.state_at(tz, now) {
        WindowState::Open { opened_at, target_date, .. } => {
            report.open_windows += 1;
            let (from, to) = local_day_bounds(tz, target_date);
            let waiting = services.appointments.awaiting_decision(&business.clinic_id, &business.id, from, to).await?;
            let mut facts = FactCache::default();
            for appointment in waiting {
                if appointment.clinic_id != business.clinic_id {
                    continue;
                }
                match decide_one(services, &mut facts, business, &appointment, opened_at, now).await {
                    Ok(Decided::Skipped) => report.skipped += 1,
                    Ok(Decided::Reminder { credits }) => {
                        report.reminders += 1;
                        *needed.entry(appointment.clinic_id.clone()).or_default() += credits;
                    }
                    Err(e) => {
                        report.errors += 1;
                        error!(appointment = %appointment.id, error = ?e, "reminder decision failed; retried next tick");
                    }
                }
            }
        }
        WindowState::Closed { next_opening } => {
            // The window has closed: no new reminders for that day; wait for the next one.
            // Only this one field moves, and only if nobody changed it meanwhile.
            services.clinics.move_window(business, next_opening).await?;
        }
    }
    Ok(())
}

/// Businesses whose window has opened at or before `now` (and is open or just closed).
async fn due_businesses(services: &Services, now: DateTime<Utc>) -> Result<Vec<Business>, StoreError> {
    let mut due = Vec::new();
    let mut pages = services
        .clinics
        .client()
        .query()
        .table_name(services.clinics.table())
        .index_name("gsi1")
        .key_condition_expression("gsi1pk = :windows AND gsi1sk <= :now")
        .expression_attribute_values(":windows", s(WINDOWS_INDEX_KEY))
        .expression_attribute_values(":now", s(format!("{}#~", index_instant(now))))
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.try_next().await? {
        due.push(from_item(item)?);
    }
    Ok(due)
}

/// Per-tick cache: a business's appointments share the clinic, types, templates and contacts.
#[derive(Default)]
struct FactCache {
    clinics: HashMap<ClinicId, Option<Clinic>>,
    types: HashMap<String, Option<AppointmentType>>,
    templates: HashMap<String, Option<SmsTemplate>>,
    connections: HashMap<ConnectionId, Option<Connection>>,
}

/// Everything a reminder decision reads besides the business and appointment.
pub struct LoadedFacts {
    pub clinic: Clinic,
    pub appointment_type: Option<AppointmentType>,
    pub template: Option<SmsTemplate>,
    pub connection: Option<Connection>,
    pub contact: Option<Contact>,
    pub number: Option<E164>,
    pub opted_out: bool,
}

impl LoadedFacts {
    pub fn facts<'a>(&'a self, business: &'a Business, appointment: &'a Appointment) -> ReminderFacts<'a> {
        ReminderFacts {
            clinic: &self.clinic,
            business,
            appointment,
            appointment_type: self.appointment_type.as_ref(),
            template: self.template.as_ref(),
            contact: self.contact.as_ref(),
            opted_out: self.opted_out,
            connection: self.connection.as_ref(),
            credit_balance: 0,
            credits_needed: None,
        }
    }

    /// The reminder's text as it would be sent now, if it can be rendered.
    pub fn rendered(&self, business: &Business, appointment: &Appointment) -> Option<String> {
        let context =
            render_context(&self.clinic, business, appointment, self.contact.as_ref(), self.appointment_type.as_ref());
        self.template.as_ref().map(|t| t.body.render(&context))
    }
}

async fn load(
    services: &Services,
    cache: &mut FactCache,
    appointment: &Appointment,
) -> Result<Option<LoadedFacts>, StoreError> {
    let clinics = &services.clinics;
    let clinic_id = &appointment.clinic_id;
    if !cache.clinics.contains_key(clinic_id) {
        cache.clinics.insert(clinic_id.clone(), clinics.clinic(clinic_id).await?);
    }
    let Some(Some(clinic)) = cache.clinics.get(clinic_id).cloned() else {
        return Ok(None);
    };
    if !cache.types.contains_key(&appointment.type_id) {
        cache.types.insert(appointment.type_id.clone(), clinics.record(clinic_id, &appointment.type_id).await?);
    }
    let appointment_type = cache.types.get(&appointment.type_id).cloned().flatten();
    let template_id = appointment_type.as_ref().and_then(|k| k.reminder_template_id.clone());
    if let Some(id) = &template_id
        && !cache.templates.contains_key(id)
    {
        cache.templates.insert(id.clone(), clinics.record(clinic_id, id).await?);
    }
    let template = template_id.as_ref().and_then(|id| cache.templates.get(id).cloned().flatten());
    let connection_id = clinic.default_connection_id.clone().unwrap_or_else(|| ConnectionId::new(""));
    if !cache.connections.contains_key(&connection_id) {
        cache.connections.insert(connection_id.clone(), clinics.connection(clinic_id, &connection_id).await?);
    }
    let connection = cache.connections.get(&connection_id).cloned().flatten();
    let contact: Option<Contact> = clinics.record(clinic_id, &appointment.contact_id).await?;
    let number = contact.as_ref().and_then(|c| match c.sms_number() {
        SmsNumber::Usable(n) => Some(n),
        _ => None,
    });
    let opted_out = match &number {
        Some(n) => clinics.record::<OptOut>(clinic_id, n.as_str()).await?.is_some(),
        None => false,
    };
    Ok(Some(LoadedFacts { clinic, appointment_type, template, connection, contact, number, opted_out }))
}

/// Every check for one appointment, for the `reminder-check` endpoint.
pub async fn explain(
    services: &Services,
    business: &Business,
    appointment: &Appointment,
) -> Result<Option<(Vec<Check>, LoadedFacts)>, StoreError> {
    let Some(loaded) = load(services, &mut FactCache::default(), appointment).await? else {
        return Ok(None);
    };
    let credit_balance = services.counters.credit_balance(&appointment.clinic_id).await?;
    let credits_needed =
        loaded.rendered(business, appointment).map(|text| u64::from(crate::segments::analyse(&text).segments.max(1)));
    let mut facts = loaded.facts(business, appointment);
    facts.credit_balance = credit_balance;
    facts.credits_needed = credits_needed;
    let mut checks = reminder_checks(&facts);
    if let Some(connection) = &loaded.connection {
        checks.extend(crate::connection_health::current_checks(services, connection).await?);
    }
    Ok(Some((checks, loaded)))
}

async fn decide_one(
    services: &Services,
    cache: &mut FactCache,
    business: &Business,
    appointment: &Appointment,
    opened_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Decided, TickError> {
    let Some(loaded) = load(services, cache, appointment).await? else {
        warn!(appointment = %appointment.id, "appointment of a clinic that no longer exists");
        return Ok(Decided::Skipped);
    };
    let facts = loaded.facts(business, appointment);
    let clinic = &loaded.clinic;
    let number = loaded.number.clone();
    let connection_id = clinic.default_connection_id.clone().unwrap_or_else(|| ConnectionId::new(""));
    let template_id = loaded.template.as_ref().map(|t| t.id.clone());
    let contact = loaded.contact.as_ref();
    let kind = loaded.appointment_type.as_ref();
    let reminder_for = AppointmentRef {
        id: appointment.id.clone(),
        business_id: business.id.clone(),
        start: appointment.start,
        window_opened_at: opened_at,
        time_zone: business.time_zone.clone(),
    };
    let id = decision_id(appointment, template_id.as_deref(), opened_at);
    let message = match decide(&facts) {
        Ok((to, body)) => {
            let context = render_context(clinic, business, appointment, contact, kind);
            let text = body.render(&context);
            let status = match business.send_mode_override.unwrap_or(clinic.send_mode) {
                SendMode::Immediately => MessageStatus::Queued,
                SendMode::ApprovalRequired => MessageStatus::AwaitingApproval,
            };
            match MessageBody::parse(&text) {
                Ok(body) => {
                    Message::new_reminder(id, clinic.id.clone(), to, body, connection_id, reminder_for, status, now)
                }
                // A template that renders to nothing usable is the template's fault.
                Err(_) => skipped(id, clinic, number, connection_id, reminder_for, Reason::NoTemplateForType, now),
            }
        }
        Err(reason) => skipped(id, clinic, number, connection_id, reminder_for, reason, now),
    };
    let message = match services.messages.insert(&message).await {
        Ok(()) => message,
        // Decided before (a tick that stopped midway, or one running beside this one): the stored
        // decision stands, whatever the facts say now.
        Err(StoreError::Conflict) => services.messages.get(&message.id).await?.unwrap_or(message),
        Err(other) => return Err(other.into()),
    };
    if let (MessageStatus::Queued | MessageStatus::AwaitingApproval, Some(to)) = (message.status, &message.to) {
        // Before the text can go, so a confirmation reply can never arrive before its record.
        let reminded =
            Reminded::new(clinic.id.clone(), to.clone(), appointment.id.clone(), appointment.start, message.id, now);
        services.clinics.put_record(&reminded).await?;
    }
    if message.status == MessageStatus::Queued {
        // Enqueued again after a crash between insert and mark: the sender's claim makes that harmless.
        services.queues.enqueue(message.lane, &SendJob::of(&message)).await?;
    }
    services.appointments.mark_decided(&appointment.id, appointment.start, &message.id.to_string()).await?;
    Ok(match message.status {
        MessageStatus::Skipped => Decided::Skipped,
        _ => Decided::Reminder { credits: u64::from(segments::analyse(message.body.as_str()).segments.max(1)) },
    })
}

enum Decided {
    Reminder { credits: u64 },
    Skipped,
}

/// Publishes `CreditsLow` (once per clinic and day) when the balance is below the clinic's
/// threshold or below what the reminders just made will need.
async fn warn_if_credits_low(
    services: &Services,
    clinic_id: &ClinicId,
    needed: u64,
    now: DateTime<Utc>,
) -> Result<(), TickError> {
    let Some(clinic) = services.clinics.clinic(clinic_id).await? else {
        return Ok(());
    };
    let balance = services.counters.credit_balance(clinic_id).await?;
    if balance >= needed && balance > clinic.low_credit_threshold {
        return Ok(());
    }
    let tz = clinic.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let day = crate::reminder_window::local_date(tz, now);
    if services.counters.first_time(&format!("CREDITSLOW#{clinic_id}#{day}"), now).await? {
        let detail = serde_json::json!({
            "clinic_id": clinic_id,
            "balance": balance,
            "needed_for_reminders": needed,
            "low_credit_threshold": clinic.low_credit_threshold,
        });
        services.events.publish("CreditsLow", &detail).await?;
        warn!(clinic = %clinic_id, balance, needed, "credits low");
    }
    Ok(())
}

fn skipped(
    id: MessageId,
    clinic: &Clinic,
    to: Option<E164>,
    connection_id: ConnectionId,
    reminder_for: AppointmentRef,
    reason: Reason,
    now: DateTime<Utc>,
) -> Message {
    let body = MessageBody::parse("(no reminder sent)").unwrap_or_else(|_| unreachable!("a valid literal body"));
    Message::new_skipped(id, clinic.id.clone(), to, body, connection_id, reminder_for, reason, now)
}

/// The same appointment, template, start and window always give the same id, so concurrent or
/// repeated ticks write one message. The time part is the window's opening, so ids still sort
/// by when reminders were made.
fn decision_id(appointment: &Appointment, template_id: Option<&str>, opened_at: DateTime<Utc>) -> MessageId {
    let mut hash = Sha256::new();
    for part in [appointment.id.as_str(), template_id.unwrap_or("-"), &index_instant(appointment.start)] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]);
    let millis = u64::try_from(opened_at.timestamp_millis()).unwrap_or(0);
    MessageId::from_ulid(Ulid::from_parts(millis, u128::from_be_bytes(random)))
}

fn render_context(
    clinic: &Clinic,
    business: &Business,
    appointment: &Appointment,
    contact: Option<&Contact>,
    kind: Option<&AppointmentType>,
) -> RenderContext {
    RenderContext {
        client_first_name: contact.map(|c| c.first_name.clone()).unwrap_or_default(),
        client_last_name: contact.map(|c| c.last_name.clone()).unwrap_or_default(),
        patient_names: appointment.patient_names.clone(),
        appointment_start: appointment.start,
        time_zone: business.tz(),
        appointment_type: kind.map(|k| k.name.clone()).unwrap_or_default(),
        business_name: business.name.clone(),
        business_phone: business.phone.clone(),
        clinic_name: clinic.name.clone(),
    }
}

/// Reminders that failed for lack of credit go back to the queue at their retry time.
async fn release_credit_retries(services: &Services, now: DateTime<Utc>) -> Result<usize, TickError> {
    let mut released = 0;
    for id in services.messages.credit_retries_due(now).await? {
        let update = services.messages.update(&id, |m| m.requeued(Actor::Scheduler, "credit retry", now)).await?;
        if let Update::Applied(message) = update {
            if let Err(e) = services.queues.enqueue(message.lane, &SendJob::of(&message)).await {
                // Put it back as it was, so the next tick retries instead of leaving a queued
                // text with no job.
                let retry_at = now;
                services
                    .messages
                    .update(&id, |m| {
                        let mut back =
                            m.failed_attempt(m.attempt, Failure::reason(Reason::InsufficientCredits), now)?;
                        back.credit_retry_at = Some(retry_at);
                        Ok(back)
                    })
                    .await?;
                return Err(e.into());
            }
            released += 1;
        }
    }
    Ok(released)
}

async fn expire_unapproved(services: &Services, now: DateTime<Utc>) -> Result<usize, TickError> {
    let mut expired = 0;
    for id in services.messages.approvals_expired(now).await? {
        if let Update::Applied(_) = services.messages.update(&id, |m| m.expired(now)).await? {
            expired += 1;
        }
    }
    Ok(expired)
}
