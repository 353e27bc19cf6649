//! `/v1/messages`: send texts, read one back.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;
use shared::clinic::Principal;
use shared::idempotency::{self, Claim, StoredAnswer};
use shared::ids::MessageId;
use shared::outbound::{self, OutcomeKind, SendRequest};
use shared::scheduled_texts;
use shared::services::Services;

use crate::auth::Caller;
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
    let Some(key) = headers.get("idempotency-key") else {
        return Ok(create_text(&services, &caller, &body).await.into_response());
    };
    let key = key.to_str().ok().filter(|k| idempotency::valid_key(k)).ok_or_else(|| {
        Problem::invalid_field(
            "Idempotency-Key",
            "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
        )
    })?;
    let fingerprint = idempotency::fingerprint("POST /v1/messages", &body);
    let counters = &services.counters;
    match counters.claim_idempotency_key(&caller.clinic_id, key, &fingerprint, services.clock.now()).await? {
        Claim::Proceed => {}
        Claim::Replay(answer) => return Ok(replay(answer)),
        Claim::Mismatch => {
            return Err(Problem::invalid_field(
                "Idempotency-Key",
                "This Idempotency-Key was used with a different request; use a new key for a new request.",
            ));
        }
        Claim::InProgress => {
            return Err(Problem::conflict(
                "idempotency-key-in-use",
                "A request with this key is in progress",
                "The first request with this Idempotency-Key has not finished; retry in a moment.",
            ));
        }
    }
    let response = create_text(&services, &caller, &body).await.into_response();
    let status = response.status();
    if status.is_server_error() {
        // Our failure: free the key so the client's retry is processed afresh.
        if let Err(e) = counters.abandon_idempotency_key(&caller.clinic_id, key).await {
            tracing::error!(error = ?e, "could not free an idempotency key");
        }
        return Ok(response);
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.map_err(|e| Problem::unavailable(&e))?;
    let answer = StoredAnswer { status: status.as_u16(), body: String::from_utf8_lossy(&bytes).into_owned() };
    counters.finish_idempotency_key(&caller.clinic_id, key, &answer).await?;
    Ok(replay(answer))
}

fn replay(answer: StoredAnswer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let content_type = if status.is_success() { "application/json" } else { "application/problem+json" };
    (status, [(header::CONTENT_TYPE, content_type)], answer.body).into_response()
}

async fn create_text(
    services: &Services,
    caller: &Principal,
    body: &Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let request: Value = serde_json::from_slice(body).map_err(Problem::malformed_json)?;
    if !request.is_object() {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "The request body is not a JSON object",
            "Send a JSON object such as {\"to\": \"+14155550123\", \"body\": \"...\"}.",
        ));
    }
    if request.get("recipients").is_some() {
        return send_to_recipients(services, caller, &request).await;
    }
    let to = string_field(&request, "to")?.to_owned();
    let body = string_field(&request, "body")?.to_owned();
    let (connection_id, send_at) = connection_and_time(services, &request)?;
    let request = SendRequest { recipients: vec![to], body, connection_id, send_at };
    let message = outbound::create_text(services, caller, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(
            serde_json::to_value(Accepted { id: message.id.to_string(), status: message.status })
                .map_err(|e| Problem::unavailable(&e))?,
        ),
    ))
}

/// `{recipients: [contact ids, group ids, numbers], body, connection?, send_at?}` → 202 with an
/// outcome per recipient.
async fn send_to_recipients(
    services: &Services,
    caller: &Principal,
    request: &Value,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let recipients = match request.get("recipients") {
        Some(Value::Array(entries)) => {
            entries.iter().map(|entry| entry.as_str().map(str::to_owned)).collect::<Option<Vec<String>>>().ok_or_else(
                || {
                    Problem::invalid_field(
                        "recipients",
                        "Each recipient is a string: a contact id, a group id or a phone number.",
                    )
                },
            )?
        }
        _ => {
            return Err(Problem::invalid_field(
                "recipients",
                "`recipients` must be a list of contact ids, group ids and numbers.",
            ));
        }
    };
    let body = string_field(request, "body")?.to_owned();
    let (connection_id, send_at) = connection_and_time(services, request)?;
    let outcomes =
        outbound::send_to_recipients(services, caller, SendRequest { recipients, body, connection_id, send_at })
            .await?;
    let accepted = outcomes.iter().filter(|o| o.accepted()).count();
    let answer = serde_json::json!({"accepted": accepted, "refused": outcomes.iter().filter(|o| o.outcome == OutcomeKind::Refused).count(), "outcomes": outcomes});
    Ok((StatusCode::ACCEPTED, Json(answer)))
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

/// The optional `connection` and `send_at` of a send.
fn connection_and_time(
    services: &Services,
    request: &Value,
) -> Result<(Option<String>, Option<DateTime<Utc>>), Problem> {
    let connection_id = optional_string_field(request, "connection")?.map(str::to_owned);
    let send_at = match optional_string_field(request, "send_at")? {
        Some(at) => Some(
            scheduled_texts::parse_send_at(at, services.clock.now())
                .map_err(|why| Problem::invalid_field("send_at", format!("`send_at`: {why}.")))?,
        ),
        None => None,
    };
    Ok((connection_id, send_at))
}

fn optional_string_field<'a>(request: &'a Value, name: &'static str) -> Result<Option<&'a str>, Problem> {
    match request.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Problem::invalid_field(name, format!("`{name}` must be a string."))),
    }
}

fn string_field<'a>(request: &'a Value, name: &'static str) -> Result<&'a str, Problem> {
    match request.get(name) {
        None | Some(Value::Null) => Err(Problem::invalid_field(name, format!("`{name}` is required."))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Problem::invalid_field(name, format!("`{name}` must be a string."))),
    }
}
