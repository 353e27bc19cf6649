//! The fan-out of a confirmed mass alert: every client with a booked or confirmed appointment in
//! the alert's range gets one text on the bulk lane, or a recipient row saying why not.
//!
//! Each client's message has an id derived from the alert and the client, and is stored with a
//! conditional insert that counts it in the alert's counters in the same transaction. So a
//! fan-out stopped midway and run again (SQS redelivers its event) stores and counts each client
//! once; it queues again the jobs of texts still waiting for their first attempt, which the
//! sender's conditional claim makes harmless.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::clinic::{Clinic, Preference};
use crate::contacts::{Contact, OptOut, SmsNumber};
use crate::dynamo::StoreError;
use crate::ids::{AlertId, ClinicId};
use crate::mass_alert::{AlertLink, AlertRange, AlertStatus, MassAlert};
use crate::mass_alert_recipients::{self, Recipient, Selection, Verdict};
use crate::message::{Actor, Failure, HistoryEntry, Lane, Message};
use crate::message_status::MessageStatus;
use crate::phone::E164;
use crate::send_queue::{QueueError, SendJob};
use crate::services::Services;

/// The `detail-type` of the event the API publishes when an admin confirms an alert.
pub const MASS_ALERT_CONFIRMED: &str = "MassAlertConfirmed";

/// Messages stored per transaction: DynamoDB takes 100 actions, one is the counters' update.
const INSERT_BATCH: usize = 99;
/// Transactions in flight at once.
const INSERT_CONCURRENCY: usize = 4;

/// The event's `detail`: which alert to fan out. Everything else is read from the alert itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MassAlertConfirmed {
    pub clinic_id: ClinicId,
    pub alert_id: AlertId,
}

#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What one fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanoutSummary {
    pub recipients: usize,
    pub texts: usize,
    pub not_sent: usize,
    /// Messages stored by this run (fewer than `recipients` when it resumed an earlier one).
    pub stored: usize,
}

/// Reads who the alert would reach at `now`: the clients with an appointment that counts, their
/// contact records and which of their numbers opted out.
pub async fn select_recipients(
    services: &Services,
    clinic: &Clinic,
    range: &AlertRange,
    now: DateTime<Utc>,
) -> Result<Selection, StoreError> {
    // The range includes `to`; the index query's upper bound excludes its own second.
    let appointments =
        services.appointments.of_clinic_between(&clinic.id, range.from, range.to + TimeDelta::seconds(1)).await?;
    let clients = mass_alert_recipients::clients_in_range(&appointments, range, now);
    let ids: Vec<String> = clients.keys().map(|id| (*id).to_owned()).collect();
    let contacts: HashMap<String, Contact> = services
        .clinics
        .records_by_id::<Contact>(&clinic.id, &ids)
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    let numbers: Vec<String> = contacts
        .values()
        .filter_map(|c| match c.sms_number() {
            SmsNumber::Usable(number) => Some(number.to_string()),
            SmsNumber::Invalid { .. } | SmsNumber::NoMobile => None,
        })
        .collect();
    let opted_out: HashSet<E164> =
        services.clinics.records_by_id::<OptOut>(&clinic.id, &numbers).await?.into_iter().map(|o| o.number).collect();
    let preference: Preference = clinic.default_reminder_preference;
    Ok(mass_alert_recipients::select(&clients, &contacts, &opted_out, preference))
}

/// Fans out one alert. Safe to run again: it resumes where a stopped run left off.
pub async fn fan_out(services: &Services, event: &MassAlertConfirmed) -> Result<FanoutSummary, FanoutError> {
    let Some(alert) = services.mass_alerts.get(&event.clinic_id, event.alert_id.as_str()).await? else {
        warn!(alert_id = %event.alert_id, "no such alert; nothing to fan out");
        return Ok(FanoutSummary::default());
    };
    if alert.status == AlertStatus::Completed {
        return Ok(FanoutSummary::default());
    }
    let Some(clinic) = services.clinics.clinic(&alert.clinic_id).await? else {
        warn!(alert_id = %alert.id, "the alert's clinic is gone");
        return Ok(FanoutSummary::default());
    };
    let now = services.clock.now();
    let selection = select_recipients(services, &clinic, &alert.range, now).await?;
    let messages: Vec<Message> = selection.recipients.iter().map(|r| recipient_message(&alert, r, now)).collect();

    let inserts: Vec<_> =
        messages.chunks(INSERT_BATCH).map(|chunk| services.mass_alerts.insert_counted(&alert.id, chunk)).collect();
    let stored: Vec<_> = futures::stream::iter(inserts)
        .buffer_unordered(INSERT_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    let stored_now: HashSet<_> = stored.iter().copied().collect();
    // Texts stored by an earlier run may not have had their job queued before it stopped.
    let earlier: Vec<_> = messages.iter().filter(|m| !stored_now.contains(&m.id)).map(|m| m.id).collect();
    let waiting = services
        .messages
        .get_many(&earlier)
        .await?
        .into_values()
        .filter(|m| m.status == MessageStatus::Queued && m.attempt == 0 && m.send_slot.is_none());
    let mut to_queue: Vec<_> = waiting.map(|m| SendJob::of(&m)).collect();
    to_queue.extend(
        messages.iter().filter(|m| stored_now.contains(&m.id) && m.status == MessageStatus::Queued).map(SendJob::of),
    );
    services.queues.enqueue_many(Lane::Bulk, &to_queue).await?;
    services.mass_alerts.mark_fanned_out(&alert.id, now).await?;

    let summary = FanoutSummary {
        recipients: selection.recipients.len(),
        texts: selection.texts(),
        not_sent: selection.not_sent(),
        stored: stored.len(),
    };
    info!(alert_id = %alert.id, recipients = summary.recipients, texts = summary.texts, not_sent = summary.not_sent, stored = summary.stored, "alert fanned out");
    Ok(summary)
}

/// The client's message: a text queued on the bulk lane, or a row already final (`skipped`)
/// with the reason the client cannot be texted. Both carry the alert's body, for the report.
fn recipient_message(alert: &MassAlert, recipient: &Recipient, now: DateTime<Utc>) -> Message {
    let id = mass_alert_recipients::message_id(alert, &recipient.contact_id);
    let (to, entered_number, not_sent) = match &recipient.verdict {
        Verdict::Text(number) => (Some(number.clone()), None, None),
        Verdict::NotSent { reason, entered_number } => {
            let to = entered_number.as_deref().and_then(|n| E164::parse(n, None).ok());
            (to, entered_number.clone(), Some(*reason))
        }
    };
    let mut message =
        Message::new_bulk(id, alert.clinic_id.clone(), to, alert.body.clone(), alert.connection_id.clone(), now);
    message.created_by = Some(alert.created_by.clone());
    message.contact_id = Some(recipient.contact_id.clone());
    let settled = not_sent.is_some();
    message.mass_alert = Some(AlertLink {
        id: alert.id.clone(),
        range: alert.range,
        appointment_ids: recipient.appointment_ids.clone(),
        client_name: recipient.client_name.clone(),
        entered_number,
        // A row that is final from the start is counted by the fan-out itself.
        out: settled,
        settled,
    });
    let mut entry = HistoryEntry::ours(now, Actor::Api, 0, MessageStatus::Queued);
    entry.note = Some(format!("mass alert {}", alert.id));
    if let Some(reason) = not_sent {
        message.status = MessageStatus::Skipped;
        message.failure = Some(Failure::reason(reason));
        entry.status = Some(MessageStatus::Skipped);
        entry.note = Some(format!("mass alert {}: {}", alert.id, reason.description()));
    }
    message.history = vec![entry];
    message
}
