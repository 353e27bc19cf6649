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

/// How a check came out. A warning does not stop a text (`passed` stays true) but says what a
/// person should look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Warning,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub passed: bool,
    pub outcome: Outcome,
    pub detail: String,
    /// The did-not-trigger reason this check produces when it fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub what_to_do: Option<&'static str>,
}

pub(crate) fn pass(check: &'static str, detail: impl Into<String>) -> Check {
    Check { check, passed: true, outcome: Outcome::Passed, detail: detail.into(), reason: None, what_to_do: None }
}

pub(crate) fn fail(
    check: &'static str,
    detail: impl Into<String>,
    reason: Option<Reason>,
    what_to_do: &'static str,
) -> Check {
    Check {
        check,
        passed: false,
        outcome: Outcome::Failed,
        detail: detail.into(),
        reason,
        what_to_do: Some(what_to_do),
    }
}

/// Worth a look, but nothing is stopped: never a did-not-trigger reason.
pub(crate) fn warn(check: &'static str, detail: impl Into<String>, what_to_do: &'static str) -> Check {
    Check {
        check,
        passed: true,
        outcome: Outcome::Warning,
        detail: detail.into(),
        reason: None,
        what_to_do: Some(what_to_do),
    }
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

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, TimeZone, Utc};

    use super::*;
    use crate::contacts::{ContactPhone, PhoneKind};
    use crate::ids::{ClinicId, ConnectionId};
    use crate::reminder_window::ReminderWindow;
    use crate::twilio::client::SenderId;

    struct World {
        clinic: Clinic,
        business: Business,
        appointment: Appointment,
        kind: AppointmentType,
        template: SmsTemplate,
        contact: Contact,
        connection: Connection,
    }

    fn world() -> World {
        let now = Utc.with_ymd_and_hms(2026, 6, 10, 13, 0, 0).single().unwrap_or_default();
        let clinic_id = ClinicId::new("c");
        let window = ReminderWindow::new(
            NaiveTime::from_hms_opt(10, 0, 0).unwrap_or_default(),
            NaiveTime::from_hms_opt(11, 0, 0).unwrap_or_default(),
            1,
        );
        let Ok(window) = window else { panic!("valid window") };
        let Ok(body) = TemplateBody::parse("Hi {{client_first_name}}") else { panic!("valid template") };
        let Ok(sender) = E164::parse("+15017122661", None) else { panic!("valid sender") };
        World {
            clinic: Clinic {
                id: clinic_id.clone(),
                name: "Vet".into(),
                default_country: "US".into(),
                time_zone: "America/New_York".into(),
                default_connection_id: Some(ConnectionId::new("main")),
                two_way_texting: true,
                send_mode: crate::clinic::SendMode::Immediately,
                low_credit_threshold: 0,
                allowances_enabled: false,
                confirmation_keywords: vec![],
                default_reminder_preference: Preference::Sms,
                quiet_hours: None,
                created_at: now,
            },
            business: Business {
                id: "b".into(),
                clinic_id: clinic_id.clone(),
                name: "Uptown".into(),
                time_zone: "America/New_York".into(),
                phone: None,
                reminders_enabled: true,
                window,
                send_mode_override: None,
                next_window_opening: now,
            },
            appointment: Appointment {
                id: "a".into(),
                clinic_id: clinic_id.clone(),
                business_id: "b".into(),
                contact_id: "p".into(),
                type_id: "t".into(),
                patient_names: vec!["Max".into()],
                start: now + chrono::TimeDelta::days(1),
                status: AppointmentStatus::Booked,
                decided_start: None,
                reminder_message_id: None,
                created_at: now,
                updated_at: now,
            },
            kind: AppointmentType {
                id: "t".into(),
                clinic_id: clinic_id.clone(),
                name: "Check-up".into(),
                reminder_template_id: Some("r".into()),
            },
            template: SmsTemplate { id: "r".into(), clinic_id: clinic_id.clone(), name: "Reminder".into(), body },
            contact: Contact {
                id: "p".into(),
                clinic_id: clinic_id.clone(),
                first_name: "Ana".into(),
                last_name: "Lopez".into(),
                phones: vec![ContactPhone::new(PhoneKind::Mobile, "415 555 0101", "US".parse().ok())],
                reminder_preference: None,
                group_ids: vec![],
                created_at: now,
            },
            connection: Connection {
                id: ConnectionId::new("main"),
                clinic_id,
                label: "Main".into(),
                sender: SenderId::Number(sender),
                pool_numbers: vec![],
                mps: 1,
                enabled: true,
                last_error: None,
                last_inbound: None,
                last_status_callback_at: None,
            },
        }
    }

    fn facts(w: &World) -> ReminderFacts<'_> {
        ReminderFacts {
            clinic: &w.clinic,
            business: &w.business,
            appointment: &w.appointment,
            appointment_type: Some(&w.kind),
            template: Some(&w.template),
            contact: Some(&w.contact),
            opted_out: false,
            connection: Some(&w.connection),
            credit_balance: 10,
            credits_needed: Some(1),
        }
    }

    fn decided(w: &World) -> Result<String, Reason> {
        decide(&facts(w)).map(|(number, _)| number.to_string())
    }

    #[test]
    fn a_complete_setup_sends_to_the_mobile_number() {
        let w = world();
        assert_eq!(decided(&w), Ok("+14155550101".to_owned()));
        assert!(reminder_checks(&facts(&w)).iter().all(|c| c.passed));
    }

    #[test]
    fn each_missing_piece_gives_its_reason() {
        let mut w = world();
        w.business.reminders_enabled = false;
        assert_eq!(decided(&w), Err(Reason::BusinessRemindersOff));

        let mut w = world();
        w.appointment.status = AppointmentStatus::Cancelled;
        assert_eq!(decided(&w), Err(Reason::AppointmentCancelled));

        let w = world();
        let mut f = facts(&w);
        f.template = None;
        assert_eq!(decide(&f).map(|_| ()), Err(Reason::NoTemplateForType));

        let mut w = world();
        w.contact.phones = vec![ContactPhone::new(PhoneKind::Home, "415 555 0101", "US".parse().ok())];
        assert_eq!(decided(&w), Err(Reason::NoMobileNumber));

        let mut w = world();
        w.contact.phones = vec![ContactPhone::new(PhoneKind::Mobile, "415 55", "US".parse().ok())];
        assert_eq!(decided(&w), Err(Reason::InvalidNumber));

        let mut w = world();
        w.contact.reminder_preference = Some(Preference::Email);
        assert_eq!(decided(&w), Err(Reason::PreferenceEmail));

        let mut w = world();
        w.clinic.default_reminder_preference = Preference::None;
        assert_eq!(decided(&w), Err(Reason::PreferenceNone), "the clinic default applies when the contact has none");

        let w = world();
        let mut f = facts(&w);
        f.opted_out = true;
        assert_eq!(decide(&f).map(|_| ()), Err(Reason::OptedOut));
    }

    #[test]
    fn credits_and_the_connection_are_reported_but_do_not_decide() {
        let w = world();
        let mut f = facts(&w);
        f.credit_balance = 0;
        f.connection = None;
        assert!(decide(&f).is_ok(), "credits are taken at send time; a reminder still exists and fails visibly");
        let failed: Vec<_> = reminder_checks(&f).into_iter().filter(|c| !c.passed).map(|c| c.check).collect();
        assert_eq!(failed, ["credits", "connection"]);
    }

    #[test]
    fn checks_come_in_the_order_clinics_work_through_them() {
        let w = world();
        let order: Vec<_> = reminder_checks(&facts(&w)).into_iter().map(|c| c.check).collect();
        assert_eq!(
            order,
            [
                "credits",
                "business_reminders",
                "appointment_status",
                "type_template",
                "mobile_number",
                "preference",
                "opt_out",
                "connection"
            ]
        );
    }

    #[test]
    fn the_first_failing_check_decides() {
        let mut w = world();
        w.business.reminders_enabled = false;
        w.contact.reminder_preference = Some(Preference::Email);
        assert_eq!(decided(&w), Err(Reason::BusinessRemindersOff));
        let failed = reminder_checks(&facts(&w)).into_iter().filter(|c| !c.passed).count();
        assert_eq!(failed, 2, "the check endpoint shows both");
    }
}
