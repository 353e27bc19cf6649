//! A log of the requests the Twilio API routes received, so tests can assert on exactly what a
//! client sent (and when, and what it was told).

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::state::{SimState, lock};

/// Twilio's own limit is far below this; it only bounds memory.
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The form fields of the body, decoded, in the order sent (repeated names repeat).
    pub params: Vec<(String, String)>,
    pub received_at: DateTime<Utc>,
    /// 0 while the request is still being answered.
    pub response_status: u16,
}

/// Decodes `application/x-www-form-urlencoded` bytes; invalid UTF-8 is replaced, never refused.
pub(crate) fn form_fields(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// Middleware: records the request on arrival, so the log keeps arrival order even when
/// answers finish out of order, and fills in the status once the handler has answered.
pub(crate) async fn record(State(state): State<Arc<SimState>>, request: Request, next: Next) -> Response {
    let received_at = Utc::now();
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_BODY_BYTES).await;
    let entry = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        params: bytes.as_deref().map(form_fields).unwrap_or_default(),
        received_at,
        response_status: 0,
    };
    let index = {
        let mut requests = lock(&state.requests);
        requests.push(entry);
        requests.len() - 1
    };
    let response = match bytes {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(_) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    if let Some(entry) = lock(&state.requests).get_mut(index) {
        entry.response_status = response.status().as_u16();
    }
    response
}
