//! `/v1/messages`: send a text, read one back.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::Value;
use shared::ids::MessageId;
use shared::outbound;
use shared::services::Services;

use crate::auth::Caller;
use crate::problem::Problem;
use crate::views::{Accepted, MessageView};

/// `POST /v1/messages` with `{"to": "+14155550123", "body": "..."}` → 202 `{id, status}`.
pub async fn create(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let request: Value = serde_json::from_slice(&body).map_err(Problem::malformed_json)?;
    if !request.is_object() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "The request body is not a JSON object",
            "Send a JSON object such as {\"to\": \"+14155550123\", \"body\": \"...\"}.",
        ));
    }
    let to = string_field(&request, "to")?;
    let text = string_field(&request, "body")?;
    let message = outbound::create_text(&services, &caller, to, text).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { id: message.id.to_string(), status: message.status })))
}

/// `GET /v1/messages/{id}` → the message with its status, error and history.
pub async fn show(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let not_found = || Problem::not_found(format!("No message {id} exists for this clinic."));
    let id: MessageId = id.parse().map_err(|_| not_found())?;
    let message = services.messages.get(&id).await.map_err(|e| Problem::unavailable(&e))?;
    // Another clinic's message is answered exactly like a missing one.
    let message = message.filter(|m| m.clinic_id == caller.clinic_id).ok_or_else(not_found)?;
    Ok(Json(serde_json::to_value(MessageView::from(&message)).map_err(|e| Problem::unavailable(&e))?))
}

fn string_field<'a>(request: &'a Value, name: &'static str) -> Result<&'a str, Problem> {
    match request.get(name) {
        None | Some(Value::Null) => Err(Problem::invalid_field(name, format!("`{name}` is required."))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Problem::invalid_field(name, format!("`{name}` must be a string."))),
    }
}
