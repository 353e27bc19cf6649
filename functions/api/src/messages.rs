//! `/v1/messages`: send texts, read one back.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use shared::clinic::Principal;
use shared::outbound::{self, OutcomeKind, SendRequest};
use shared::scheduled_texts;
use shared::services::Services;

use crate::auth::Caller;
use crate::idempotent;
use crate::json_input;
use crate::problem::Problem;
use crate::views::{Accepted, MessageView};

/// `POST /v1/messages` with `{"to": "+14155550123", "body": "..."}` → 202 `{id, status}`.
/// With an `Idempotency-Key` header, a repeat of the same request gets the first answer.
pub async fn create(
    State(services): State<Services>,
    Caller(caller): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    idempotent::once(&services, &caller, &headers, "POST /v1/messages", &body, || {
        create_text(&services, &caller, &body)
    })
    .await
}

/// What `POST /v1/messages` reads: `to` (one number) or `recipients` (contact ids, group ids
/// and numbers), the words, and optionally the connection and a time to send at.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SendBody {
    /// One phone number; the answer is `{id, status}`.
    to: Option<String>,
    /// Contact ids, group ids and phone numbers (at most 100); the answer has an outcome each.
    recipients: Option<Vec<String>>,
    body: String,
    /// The connection to send through; the clinic's default when absent.
    connection: Option<String>,
    /// RFC 3339 with an offset, more than a minute and at most 35 days ahead.
    send_at: Option<String>,
}

async fn create_text(
    services: &Services,
    caller: &Principal,
    body: &Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let request: SendBody = json_input::parse(body)?;
    let send_at = match request.send_at.as_deref() {
        Some(at) => Some(
            scheduled_texts::parse_send_at(at, services.clock.now())
                .map_err(|why| Problem::invalid_field("send_at", format!("`send_at`: {why}.")))?,
        ),
        None => None,
    };
    let (recipients, one) = match (request.recipients, request.to) {
        (Some(recipients), _) => (recipients, false),
        (None, Some(to)) => (vec![to], true),
        (None, None) => return Err(Problem::invalid_field("to", "`to` (a number) or `recipients` is required.")),
    };
    let send = SendRequest { recipients, body: request.body, connection_id: request.connection, send_at };
    if one {
        let message = outbound::create_text(services, caller, send).await?;
        let accepted = Accepted { id: message.id.to_string(), status: message.status };
        return Ok((StatusCode::ACCEPTED, Json(serde_json::to_value(accepted).map_err(|e| Problem::unavailable(&e))?)));
    }
    let outcomes = outbound::send_to_recipients(services, caller, send).await?;
    let accepted = outcomes.iter().filter(|o| o.accepted()).count();
    let refused = outcomes.iter().filter(|o| o.outcome == OutcomeKind::Refused).count();
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"accepted": accepted, "refused": refused, "outcomes": outcomes})),
    ))
}

/// `GET /v1/messages/{id}` → the message with its status, error and history.
pub async fn show(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let not_found = || Problem::not_found(format!("No message {id} exists for this clinic."));
    // Another clinic's message is answered exactly like a missing one.
    let message = services.messages.get_for_clinic(&caller.clinic_id, &id).await?.ok_or_else(not_found)?;
    Ok(Json(serde_json::to_value(MessageView::from(&message)).map_err(|e| Problem::unavailable(&e))?))
}
