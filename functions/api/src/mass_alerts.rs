//! `/v1/mass-alerts`: preview an alert, confirm it, list the clinic's alerts and read one with a
//! link to its report. The rules are in `shared::mass_alerts`; this maps them to HTTP.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::mass_alert::RangeError;
use shared::mass_alerts::{self, AlertError, AlertRequest};
use shared::message::{BodyError, MAX_BODY_CHARS};
use shared::services::Services;

use crate::auth::Caller;
use crate::idempotent;
use crate::json_input::{self, ValidQuery};
use crate::problem::Problem;

/// An alert to preview: the appointments' range (RFC 3339 with offsets) and the words.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct PreviewBody {
    from: DateTime<FixedOffset>,
    to: DateTime<FixedOffset>,
    /// May be empty while it is being written.
    #[serde(default)]
    body: String,
}

/// An alert to send, confirmed.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct AlertBody {
    from: DateTime<FixedOffset>,
    to: DateTime<FixedOffset>,
    body: String,
    /// Must be `true`: sending to every client in the range is never done by accident.
    #[serde(default)]
    confirm: bool,
}

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<i32>,
}

fn request(from: DateTime<FixedOffset>, to: DateTime<FixedOffset>, body: String) -> AlertRequest {
    AlertRequest { from: from.with_timezone(&Utc), to: to.with_timezone(&Utc), body }
}

impl From<AlertError> for Problem {
    fn from(err: AlertError) -> Self {
        match err {
            AlertError::NotAdmin => {
                Problem::forbidden("Only administrators can send mass alerts and read their reports.")
            }
            AlertError::TwoWayOff => Problem::conflict(
                "two-way-texting-off",
                "Two-way texting is off",
                "Mass alerts need two-way texting, so clients' replies can be answered; an administrator can turn it on in the clinic's settings.",
            ),
            AlertError::Range(why) => Problem::invalid_field(
                why.field(),
                match why {
                    RangeError::Backwards => "`to` must be after `from`.",
                    RangeError::TooLong => "A mass alert covers appointments in a range of at most 7 days.",
                    RangeError::Ended => "The range has ended; choose one that ends in the future.",
                },
            ),
            AlertError::Body(BodyError::Empty) => Problem::invalid_field("body", "Write the alert's text."),
            AlertError::Body(BodyError::TooLong(n)) => Problem::invalid_field(
                "body",
                format!("The text has {n} characters; at most {MAX_BODY_CHARS} can be sent."),
            ),
            AlertError::NotConfirmed => Problem::invalid_field(
                "confirm",
                "Send `\"confirm\": true` to send the alert to every client the preview lists.",
            ),
            AlertError::NotEnoughCredits { needed, available } => Problem::new(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient-credits",
                "Not enough SMS credits",
                format!("The alert needs {needed} credits and the clinic has {available}; top up and try again."),
            )
            .with("needed", json!(needed))
            .with("available", json!(available)),
            AlertError::Connection(why) => why.into(),
            AlertError::NotFound => Problem::not_found("No such mass alert exists for this clinic."),
            AlertError::Store(cause) => Problem::unavailable(&cause),
            AlertError::Publish(cause) => Problem::unavailable(&cause),
            AlertError::Report(cause) => Problem::unavailable(&cause),
        }
    }
}

/// `POST /v1/mass-alerts/preview` → who would be texted, who not and why, the appointments'
/// span, characters and segments, credits needed against the balance.
pub async fn preview(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    let input: PreviewBody = json_input::parse(&body)?;
    let preview = mass_alerts::preview(&services, &caller, &request(input.from, input.to, input.body)).await?;
    Ok(Json(serde_json::to_value(preview).map_err(|e| Problem::unavailable(&e))?))
}

/// `POST /v1/mass-alerts` with `confirm: true` → 202 with the alert's id; the fan-out runs
/// after. Honours `Idempotency-Key`.
pub async fn create(
    State(services): State<Services>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    idempotent::once(&services, &caller, &headers, "POST /v1/mass-alerts", &body, || async {
        let input: AlertBody = json_input::parse(&body)?;
        let alert =
            mass_alerts::confirm(&services, &caller, &request(input.from, input.to, input.body), input.confirm).await?;
        Ok::<_, Problem>((StatusCode::ACCEPTED, Json(json!({"id": alert.id, "status": alert.status}))))
    })
    .await
}

/// `GET /v1/mass-alerts` → the clinic's alerts, newest first, with counts and outcome.
pub async fn list(
    State(services): State<Services>,
    Caller(caller): Caller,
    ValidQuery(query): ValidQuery<ListQuery>,
) -> Result<Json<Value>, Problem> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Problem::invalid_field("limit", "`limit` must be 1 to 100."));
    }
    if let Some(cursor) = &query.cursor
        && ulid::Ulid::from_string(cursor).is_err()
    {
        return Err(Problem::invalid_field("cursor", "`cursor` must be the `next_cursor` of the page before."));
    }
    let page = mass_alerts::list(&services, &caller, limit, query.cursor.as_deref()).await?;
    Ok(Json(serde_json::to_value(page).map_err(|e| Problem::unavailable(&e))?))
}

/// `GET /v1/mass-alerts/{id}` → the alert; once completed, a fresh link to its report.
pub async fn show(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let valid_for = services.settings.alerts.report_link_valid_for;
    let view = mass_alerts::show(&services, &caller, &id, valid_for).await?;
    Ok(Json(serde_json::to_value(view).map_err(|e| Problem::unavailable(&e))?))
}
