//! `GET /v1/contacts/{id}/sms-check`: can this contact be texted right now, and if not, why.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use shared::clinic::{Preference, User};
use shared::connection_health;
use shared::contacts::{Contact, OptOut, SmsNumber};
use shared::reminder_checks::Outcome;
use shared::reminder_window::local_date;
use shared::services::Services;

use crate::auth::Caller;
use crate::problem::Problem;
use crate::records::clinic_of;

fn check(name: &str, passed: bool, detail: String, what_to_do: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "check": name,
        "passed": passed,
        "outcome": if passed { Outcome::Passed } else { Outcome::Failed },
        "detail": detail,
        "what_to_do": if passed { None } else { what_to_do },
    })
}

pub async fn sms_check(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let clinic = clinic_of(&services, &caller).await?;
    let contact: Contact = services
        .clinics
        .record(&caller.clinic_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("No contact {id} exists for this clinic.")))?;
    let mut checks = Vec::new();
    let balance = services.counters.credit_balance(&clinic.id).await?;
    checks.push(check("credits", balance > 0, format!("{balance} credits left."), Some("Top up SMS credits.")));
    let number = contact.sms_number();
    checks.push(match &number {
        SmsNumber::Usable(n) => check("mobile_number", true, format!("Mobile number {n} is valid."), None),
        SmsNumber::Invalid { entered, problem } => check(
            "mobile_number",
            false,
            format!("The mobile number \"{entered}\" cannot be used ({problem})."),
            Some("Correct the number: mobile field, country code where needed."),
        ),
        SmsNumber::NoMobile => check(
            "mobile_number",
            false,
            "No phone number is marked as mobile.".into(),
            Some("Add a mobile number and mark its type as Mobile."),
        ),
    });
    let preference = contact.reminder_preference.unwrap_or(clinic.default_reminder_preference);
    checks.push(check(
        "reminder_preference",
        preference == Preference::Sms,
        format!("Automated reminders by {preference:?}; manual texts are not affected."),
        Some("Check with the client before changing their preference to SMS."),
    ));
    let opted_out = match &number {
        SmsNumber::Usable(n) => services.clinics.record::<OptOut>(&clinic.id, n.as_str()).await?.is_some(),
        _ => false,
    };
    checks.push(check(
        "opt_out",
        !opted_out,
        if opted_out { "The number replied STOP.".into() } else { "The number has not opted out.".into() },
        Some("Only the client can opt back in, by texting START."),
    ));
    if clinic.allowances_enabled {
        let user: Option<User> = services.clinics.record(&clinic.id, caller.user_id.as_str()).await?;
        let limit = user.and_then(|u| u.daily_allowance).unwrap_or(0);
        let tz = clinic.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
        let used = services
            .counters
            .allowance_used(&clinic.id, caller.user_id.as_str(), local_date(tz, services.clock.now()))
            .await?;
        checks.push(check(
            "allowance",
            used < limit,
            format!("You have sent {used} of your {limit} texts today."),
            Some("An administrator can raise your daily allowance (blank or 0 blocks sending)."),
        ));
    }
    let connection = match &clinic.default_connection_id {
        Some(id) => services.clinics.connection(&clinic.id, id).await?,
        None => None,
    };
    checks.push(match &connection {
        Some(c) if c.enabled => check("connection", true, format!("Sending through {}.", c.label), None),
        Some(c) => check("connection", false, format!("{} is disabled.", c.label), Some("Enable the connection.")),
        None => check("connection", false, "No default connection.".into(), Some("Add a Twilio connection.")),
    });
    if let Some(c) = &connection {
        for more in connection_health::current_checks(&services, c).await? {
            checks.push(serde_json::to_value(more).unwrap_or_default());
        }
    }
    let all_passed = checks.iter().all(|c| c["passed"] == true);
    Ok(Json(serde_json::json!({ "contact_id": contact.id, "all_passed": all_passed, "checks": checks })))
}
