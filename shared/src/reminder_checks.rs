//! "Why didn't my patient get it?" — every check the seed products tell clinics to make, in
//! their order, as one pure function. The scheduler's decision for an appointment is the first
//! check that fails (credits aside: those are taken at send time); the `reminder-check` endpoint
//! shows them all, each with what to do.

use serde::Serialize;

use crate::appointment_types::{AppointmentType, SmsTemplate};
use crate::appointments::{Appointment, AppointmentStatus};
use crate::businesses::Business;
use crate::clinic::{Clinic, Connection, Preference};
use crate::contacts::{Contact, SmsNumber};
use crate::phone::E164;
use crate::reason::Reason;
use crate::templates::TemplateBody;

/// What is known about one appointment when its reminder is decided or explained.
pub struct ReminderFacts<'a> {
    pub clinic: &'a Clinic,
    pub business: &'a Business,
    pub appointment: &'a Appointment,
    pub appointment_type: Option<&'a AppointmentType>,
    pub template: Option<&'a SmsTemplate>,
    pub contact: Option<&'a Contact>,
    pub opted_out: bool,
    pub connection: Option<&'a Connection>,
    pub credit_balance: u64,
    /// Credits one reminder needs (its segments), when it can be rendered.
    pub credits_needed: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub passed: bool,
    pub detail: String,
    /// The did-not-trigger reason this check produces when it fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_to_do: Option<&'static str>,
}

fn pass(check: &'static str, detail: impl Into<String>) -> Check {
    Check { check, passed: true, detail: detail.into(), reason: None, what_to_do: None }
}

fn fail(check: &'static str, detail: impl Into<String>, reason: Option<Reason>, what_to_do: &'static str) -> Check {
    Check { check, passed: false, detail: detail.into(), reason, what_to_do: Some(what_to_do) }
}

/// The decision: the number and template to send, or why no reminder is sent.
pub fn decide<'a>(facts: &ReminderFacts<'a>) -> Result<(E164, &'a TemplateBody), Reason> {
    if let Some(reason) = reminder_checks(facts).into_iter().filter(|c| c.check != "credits").find_map(|c| c.reason) {
        return Err(reason);
    }
    match (facts.contact.map(Contact::sms_number), facts.template) {
        (Some(SmsNumber::Usable(number)), Some(template)) => Ok((number, &template.body)),
        _ => Err(Reason::NoMobileNumber),
    }
}

/// The effective reminder preference: the contact's, else the clinic's default.
pub fn preference(facts: &ReminderFacts<'_>) -> Preference {
    facts.contact.and_then(|c| c.reminder_preference).unwrap_or(facts.clinic.default_reminder_preference)
}

pub fn reminder_checks(facts: &ReminderFacts<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    let needed = facts.credits_needed.unwrap_or(1);
    checks.push(if facts.credit_balance >= needed {
        pass("credits", format!("{} credits left; a reminder needs {needed}.", facts.credit_balance))
    } else {
        fail(
            "credits",
            format!("{} credits left; a reminder needs {needed}.", facts.credit_balance),
            Some(Reason::InsufficientCredits),
            "Top up SMS credits. Reminders that failed for credit are retried every hour on the hour, up to 5 hours after the reminder window opened.",
        )
    });
    checks.push(if facts.business.reminders_enabled {
        pass("business_reminders", format!("Reminders are on for {}.", facts.business.name))
    } else {
        fail(
            "business_reminders",
            format!("Reminders are off for {}.", facts.business.name),
            Some(Reason::BusinessRemindersOff),
            "Turn on appointment reminders in the business's settings.",
        )
    });
    checks.push(if facts.appointment.status == AppointmentStatus::Cancelled {
        fail(
            "appointment_status",
            "The appointment is cancelled.",
            Some(Reason::AppointmentCancelled),
            "Nothing to do: cancelled appointments get no reminder.",
        )
    } else {
        pass("appointment_status", "The appointment is booked.")
    });
    checks.push(match (facts.appointment_type, facts.template) {
        (Some(kind), Some(template)) => {
            pass("type_template", format!("Type {} uses the template {}.", kind.name, template.name))
        }
        (Some(kind), None) => fail(
            "type_template",
            format!("Type {} has no SMS reminder template.", kind.name),
            Some(Reason::NoTemplateForType),
            "Create an SMS reminder template and link it to the appointment type.",
        ),
        (None, _) => fail(
            "type_template",
            "The appointment's type no longer exists.",
            Some(Reason::NoTemplateForType),
            "Give the appointment a type that has an SMS reminder template.",
        ),
    });
    checks.push(match facts.contact.map(Contact::sms_number) {
        Some(SmsNumber::Usable(number)) => pass("mobile_number", format!("Mobile number {number} is valid.")),
        Some(SmsNumber::Invalid { entered, problem }) => fail(
            "mobile_number",
            format!("The mobile number \"{entered}\" cannot be used ({problem})."),
            Some(Reason::InvalidNumber),
            "Correct the mobile number on the client's record: include the country code if it is abroad.",
        ),
        Some(SmsNumber::NoMobile) => fail(
            "mobile_number",
            "The client has no phone number marked as mobile.",
            Some(Reason::NoMobileNumber),
            "Add the client's mobile number and mark its type as Mobile.",
        ),
        None => fail(
            "mobile_number",
            "The appointment's client no longer exists.",
            Some(Reason::NoMobileNumber),
            "Link the appointment to a client with a mobile number.",
        ),
    });
    checks.push(match preference(facts) {
        Preference::Sms => pass("preference", "The client gets reminders by SMS."),
        Preference::Email => fail(
            "preference",
            "The client prefers reminders by email.",
            Some(Reason::PreferenceEmail),
            "Check with the client before changing their preference to SMS.",
        ),
        Preference::None => fail(
            "preference",
            "The client asked for no reminders.",
            Some(Reason::PreferenceNone),
            "Check with the client before changing their preference to SMS.",
        ),
    });
    checks.push(if facts.opted_out {
        fail(
            "opt_out",
            "The client's number replied STOP to this clinic.",
            Some(Reason::OptedOut),
            "Only the client can opt back in, by texting START to the clinic's number.",
        )
    } else {
        pass("opt_out", "The client has not opted out.")
    });
    checks.push(match facts.connection {
        Some(c) if c.enabled => pass("connection", format!("Sending through {}.", c.label)),
        Some(c) => fail(
            "connection",
            format!("The connection {} is disabled.", c.label),
            None,
            "An administrator should enable the connection, or choose another as the default.",
        ),
        None => fail(
            "connection",
            "The clinic has no default connection.",
            None,
            "An administrator should add a Twilio connection and make it the default.",
        ),
    });
    checks
}
