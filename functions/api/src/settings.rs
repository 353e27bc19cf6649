//! `/v1/clinic`: the clinic's settings, its SMS credits, and API keys.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use shared::api_keys;
use shared::clinic::{Preference, Role, SendMode, User, default_confirmation_keywords};
use shared::confirmations::{self, KeywordRefused};
use shared::ids::{ConnectionId, UserId};
use shared::services::Services;

use crate::auth::Caller;
use crate::json_input;
use crate::problem::Problem;
use crate::records::clinic_of;

fn require_admin(caller: &shared::clinic::Principal) -> Result<(), Problem> {
    if caller.role == Role::Admin { Ok(()) } else { Err(Problem::forbidden("Only administrators can do this.")) }
}

async fn settings_view(services: &Services, clinic: &shared::clinic::Clinic) -> Result<serde_json::Value, Problem> {
    let balance = services.counters.credit_balance(&clinic.id).await?;
    let mut view = serde_json::to_value(clinic).unwrap_or_default();
    let mut warnings = Vec::new();
    if balance <= clinic.low_credit_threshold {
        warnings.push(format!(
            "SMS credits are low: {balance} left (warning below {}). Texts fail once credits run out.",
            clinic.low_credit_threshold
        ));
    }
    let tomorrow = tomorrows_appointments(services, clinic).await?;
    if balance < tomorrow {
        warnings.push(format!(
            "{balance} credits will not cover tomorrow's {tomorrow} appointment reminders (at least one credit each)."
        ));
    }
    if let Some(object) = view.as_object_mut() {
        object.insert("credit_balance".into(), balance.into());
        object.insert("warnings".into(), warnings.into());
    }
    Ok(view)
}

/// Booked or confirmed appointments tomorrow in the clinic's zone: each needs at least one credit.
async fn tomorrows_appointments(services: &Services, clinic: &shared::clinic::Clinic) -> Result<u64, Problem> {
    let tz = clinic.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let tomorrow = shared::reminder_window::local_date(tz, services.clock.now()) + chrono::Days::new(1);
    let (from, to) = shared::reminder_window::local_day_bounds(tz, tomorrow);
    let found = services.appointments.of_clinic_between(&clinic.id, from, to).await?;
    let booked = found.iter().filter(|a| a.status != shared::appointments::AppointmentStatus::Cancelled).count();
    Ok(u64::try_from(booked).unwrap_or(u64::MAX))
}

pub async fn show(State(services): State<Services>, Caller(caller): Caller) -> Result<impl IntoResponse, Problem> {
    let clinic = clinic_of(&services, &caller).await?;
    Ok(Json(settings_view(&services, &clinic).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    name: String,
    default_country: String,
    time_zone: String,
    #[serde(default)]
    default_connection_id: Option<String>,
    #[serde(default)]
    two_way_texting: bool,
    #[serde(default)]
    send_mode: SendMode,
    /// Any `u64`: utoipa says `int64` for one, whose range ends at 2^63 - 1.
    #[serde(default)]
    #[schema(format = "uint64")]
    low_credit_threshold: u64,
    #[serde(default)]
    allowances_enabled: bool,
    #[serde(default = "default_confirmation_keywords")]
    confirmation_keywords: Vec<String>,
    #[serde(default)]
    default_reminder_preference: Preference,
    #[serde(default)]
    quiet_hours: Option<shared::reminder_window::QuietHours>,
}

pub async fn replace(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    require_admin(&caller)?;
    let input: SettingsInput = json_input::parse(&body)?;
    let mut clinic = clinic_of(&services, &caller).await?;
    input
        .default_country
        .parse::<shared::phone::Country>()
        .map_err(|_| Problem::invalid_field("default_country", "Use a two-letter country code such as US or AU."))?;
    input
        .time_zone
        .parse::<chrono_tz::Tz>()
        .map_err(|_| Problem::invalid_field("time_zone", "Use an IANA time zone such as America/New_York."))?;
    let keywords = confirmations::confirmation_keywords(&input.confirmation_keywords).map_err(|refused| {
        let detail = match refused {
            KeywordRefused::NotOneWord => "Each keyword is a single word.".to_owned(),
            reserved @ KeywordRefused::Reserved(_) => format!("{reserved}."),
        };
        Problem::invalid_field("confirmation_keywords", detail)
    })?;
    if let Some(id) = &input.default_connection_id
        && services.clinics.connection(&clinic.id, &ConnectionId::new(id.as_str())).await?.is_none()
    {
        return Err(Problem::invalid_field("default_connection_id", format!("No connection {id} exists.")));
    }
    clinic.name = crate::clinic_data::required_text("name", &input.name)?;
    clinic.default_country = input.default_country.trim().to_ascii_uppercase();
    clinic.time_zone = input.time_zone;
    clinic.default_connection_id = input.default_connection_id.map(ConnectionId::new);
    clinic.two_way_texting = input.two_way_texting;
    clinic.send_mode = input.send_mode;
    clinic.low_credit_threshold = input.low_credit_threshold;
    clinic.allowances_enabled = input.allowances_enabled;
    clinic.confirmation_keywords = keywords;
    clinic.default_reminder_preference = input.default_reminder_preference;
    clinic.quiet_hours = input.quiet_hours;
    services.clinics.put_clinic(&clinic).await?;
    Ok(Json(settings_view(&services, &clinic).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUp {
    credits: u64,
}

pub async fn top_up(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    require_admin(&caller)?;
    let input: TopUp = json_input::parse(&body)?;
    if !(1..=1_000_000).contains(&input.credits) {
        return Err(Problem::invalid_field("credits", "Top up between 1 and 1,000,000 credits at a time."));
    }
    let balance = services.counters.add_credits(&caller.clinic_id, input.credits).await?;
    Ok(Json(serde_json::json!({ "credit_balance": balance })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    user_id: String,
}

/// Issues a key for one of the clinic's users; the full key is in this answer only.
pub async fn issue_key(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    require_admin(&caller)?;
    let input: NewKey = json_input::parse(&body)?;
    let user: User = services
        .clinics
        .record(&caller.clinic_id, &input.user_id)
        .await?
        .ok_or_else(|| Problem::invalid_field("user_id", format!("No user {} exists.", input.user_id)))?;
    let key = api_keys::issue(caller.clinic_id.clone(), UserId::new(user.id), user.role, services.clock.now(), None);
    services.clinics.put_api_key(&key.record).await?;
    let body = serde_json::json!({
        "key_id": key.record.key_id,
        "api_key": key.full_key,
        "user_id": key.record.user_id,
        "role": key.record.role,
        "note": "Store this key now: it is shown only once.",
    });
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn revoke_key(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(key_id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    require_admin(&caller)?;
    let not_found = || Problem::not_found(format!("No API key {key_id} exists for this clinic."));
    let mut record =
        services.clinics.api_key(&key_id).await?.filter(|k| k.clinic_id == caller.clinic_id).ok_or_else(not_found)?;
    record.revoked_at.get_or_insert(services.clock.now());
    services.clinics.put_api_key(&record).await?;
    Ok(StatusCode::NO_CONTENT)
}
