//! `POST /v1/templates/preview`: a template rendered for a sample appointment, with its
//! characters, encoding and segments, before it is saved.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use shared::services::Services;
use shared::templates::{RenderContext, TemplateBody, preview as render_preview};

use crate::auth::Caller;
use crate::json_input;
use crate::problem::Problem;
use crate::records::clinic_of;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewInput {
    body: String,
}

pub async fn preview(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let input: PreviewInput = json_input::parse(&body)?;
    let template = TemplateBody::parse(&input.body).map_err(|e| Problem::invalid_field("body", e.to_string()))?;
    let clinic = clinic_of(&services, &caller).await?;
    let tz = clinic.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    // A sample appointment tomorrow at 9:00 in the clinic's zone.
    let tomorrow = shared::reminder_window::local_date(tz, services.clock.now()) + chrono::Days::new(1);
    let nine = chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default();
    let sample = RenderContext {
        client_first_name: "Alex".into(),
        client_last_name: "Smith".into(),
        patient_names: vec!["Max".into()],
        appointment_start: shared::reminder_window::local_instant(tz, tomorrow, nine),
        time_zone: tz,
        appointment_type: "Check-up".into(),
        business_name: clinic.name.clone(),
        business_phone: None,
        clinic_name: clinic.name.clone(),
    };
    Ok(Json(render_preview(&template, &sample)))
}
