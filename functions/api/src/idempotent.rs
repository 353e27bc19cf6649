//! `Idempotency-Key` for POSTs that create things: the first request with a key is processed and
//! its answer stored; a repeat with the same body gets that answer, one with another body a 422,
//! one while the first is still running a 409.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::clinic::Principal;
use shared::idempotency::{self, Claim, StoredAnswer};
use shared::services::Services;

use crate::problem::Problem;

/// Runs `handle` once per `Idempotency-Key` (when the request has one) for `route`.
pub async fn once<F, Fut, R>(
    services: &Services,
    caller: &Principal,
    headers: &HeaderMap,
    route: &str,
    body: &Bytes,
    handle: F,
) -> Result<Response, Problem>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
    R: IntoResponse,
{
    let Some(key) = headers.get("idempotency-key") else {
        return Ok(handle().await.into_response());
    };
    let key = key.to_str().ok().filter(|k| idempotency::valid_key(k)).ok_or_else(|| {
        Problem::invalid_field(
            "Idempotency-Key",
            "The Idempotency-Key header must be 1 to 255 visible ASCII characters.",
        )
    })?;
    let fingerprint = idempotency::fingerprint(route, body);
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
    let response = handle().await.into_response();
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
