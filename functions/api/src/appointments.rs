//! `/v1/appointments`: booked in the business's zone, stored in UTC, and the reminder check that
//! explains what happened (or will happen) to an appointment's reminder.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use shared::appointment_types::AppointmentType;
use shared::appointments::{Appointment, AppointmentStatus};
use shared::businesses::Business;
use shared::contacts::Contact;
use shared::ids::MessageId;
use shared::reminder_run;
use shared::services::Services;

use crate::auth::Caller;
use crate::json_input::{self, ValidQuery};
use crate::problem::Problem;
use crate::views::MessageView;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointmentInput {
    contact_id: String,
    business_id: String,
    type_id: String,
    #[serde(default)]
    patient_names: Vec<String>,
    /// RFC 3339 with an offset, e.g. `2026-11-24T09:00:00-05:00`.
    start: DateTime<chrono::FixedOffset>,
    #[serde(default = "booked")]
    status: AppointmentStatus,
}

fn booked() -> AppointmentStatus {
    AppointmentStatus::Booked
}

fn not_found(id: &str) -> Problem {
    Problem::not_found(format!("No appointment {id} exists for this clinic."))
}

async fn checked(
    services: &Services,
    caller: &shared::clinic::Principal,
    input: AppointmentInput,
) -> Result<AppointmentInput, Problem> {
    let clinic = &caller.clinic_id;
    if input.patient_names.len() > 20 || input.patient_names.iter().any(|n| n.chars().count() > 100) {
        return Err(Problem::invalid_field("patient_names", "At most 20 patient names of at most 100 characters."));
    }
    if services.clinics.record::<Contact>(clinic, &input.contact_id).await?.is_none() {
        return Err(Problem::invalid_field("contact_id", format!("No contact {} exists.", input.contact_id)));
    }
    if services.clinics.record::<Business>(clinic, &input.business_id).await?.is_none() {
        return Err(Problem::invalid_field("business_id", format!("No business {} exists.", input.business_id)));
    }
    if services.clinics.record::<AppointmentType>(clinic, &input.type_id).await?.is_none() {
        return Err(Problem::invalid_field("type_id", format!("No appointment type {} exists.", input.type_id)));
    }
    Ok(input)
}

fn view(a: &Appointment, business: Option<&Business>) -> serde_json::Value {
    let mut view = serde_json::to_value(a).unwrap_or_default();
    if let (Some(object), Some(b)) = (view.as_object_mut(), business) {
        let local = a.start.with_timezone(&b.tz());
        object.insert("start_local".into(), local.to_rfc3339().into());
        object.insert("time_zone".into(), b.time_zone.clone().into());
    }
    view
}

pub async fn create(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let input = checked(&services, &caller, json_input::parse(&body)?).await?;
    let now = services.clock.now();
    let appointment = Appointment {
        id: ulid::Ulid::from_datetime(now.into()).to_string().to_ascii_lowercase(),
        clinic_id: caller.clinic_id.clone(),
        business_id: input.business_id,
        contact_id: input.contact_id,
        type_id: input.type_id,
        patient_names: input.patient_names,
        start: input.start.with_timezone(&Utc),
        status: input.status,
        decided_start: None,
        reminder_message_id: None,
        created_at: now,
        updated_at: now,
    };
    services.appointments.put(&appointment).await?;
    let business: Option<Business> = services.clinics.record(&caller.clinic_id, &appointment.business_id).await?;
    Ok((StatusCode::CREATED, Json(view(&appointment, business.as_ref()))))
}

pub async fn show(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let a = services.appointments.get(&caller.clinic_id, &id).await?.ok_or_else(|| not_found(&id))?;
    let business: Option<Business> = services.clinics.record(&caller.clinic_id, &a.business_id).await?;
    Ok(Json(view(&a, business.as_ref())))
}

/// Replaces an appointment; moving it gives it its own reminder decision in its new window.
pub async fn replace(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let input = checked(&services, &caller, json_input::parse(&body)?).await?;
    let existing = services.appointments.get(&caller.clinic_id, &id).await?.ok_or_else(|| not_found(&id))?;
    let appointment = Appointment {
        business_id: input.business_id,
        contact_id: input.contact_id,
        type_id: input.type_id,
        patient_names: input.patient_names,
        start: input.start.with_timezone(&Utc),
        status: input.status,
        updated_at: services.clock.now(),
        ..existing
    };
    services.appointments.put(&appointment).await?;
    let business: Option<Business> = services.clinics.record(&caller.clinic_id, &appointment.business_id).await?;
    Ok(Json(view(&appointment, business.as_ref())))
}

pub async fn remove(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    if services.appointments.delete(&caller.clinic_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

#[derive(Deserialize)]
pub struct Range {
    from: DateTime<chrono::FixedOffset>,
    to: DateTime<chrono::FixedOffset>,
}

/// `GET /v1/appointments?from=…&to=…` (at most 31 days).
pub async fn list(
    State(services): State<Services>,
    Caller(caller): Caller,
    ValidQuery(range): ValidQuery<Range>,
) -> Result<impl IntoResponse, Problem> {
    let (from, to) = (range.from.with_timezone(&Utc), range.to.with_timezone(&Utc));
    if to <= from || to - from > TimeDelta::days(31) {
        return Err(Problem::invalid_field("to", "`to` must be after `from`, at most 31 days later."));
    }
    let found = services.appointments.of_clinic_between(&caller.clinic_id, from, to).await?;
    let items: Vec<_> = found.iter().map(|a| view(a, None)).collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

/// `GET /v1/appointments/{id}/reminder-check`: every check, in order, with what to do; and the
/// reminder's text, status and error when one was made.
pub async fn reminder_check(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let a = services.appointments.get(&caller.clinic_id, &id).await?.ok_or_else(|| not_found(&id))?;
    let business: Business = services
        .clinics
        .record(&caller.clinic_id, &a.business_id)
        .await?
        .ok_or_else(|| Problem::not_found("The appointment's business no longer exists."))?;
    let Some((checks, loaded)) = reminder_run::explain(&services, &business, &a).await? else {
        return Err(not_found(&id));
    };
    let all_passed = checks.iter().all(|c| c.passed);
    // The decision already made, if any: the reminder's status and, for a failure, what it means.
    let reminder = match a.reminder_message_id.as_deref().and_then(|id| id.parse::<MessageId>().ok()) {
        Some(id) if !a.needs_decision() => services.messages.get(&id).await?,
        _ => None,
    };
    let reminder = reminder.filter(|m| m.clinic_id == caller.clinic_id);
    Ok(Json(serde_json::json!({
        "appointment_id": a.id,
        "all_passed": all_passed,
        "checks": checks,
        "reminder_window": business.window,
        "preview": loaded.rendered(&business, &a),
        "decided": !a.needs_decision(),
        "reminder": reminder.as_ref().map(MessageView::from),
    })))
}
