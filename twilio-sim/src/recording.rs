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
    /// 0 while the request is still being answered, and for good when an injected fault closed
    /// the connection without an answer. A [`crate::Fault::Slow`] answer's status is recorded as
    /// soon as it is decided, before the delay.
    pub response_status: u16,
    /// The [`crate::Fault::name`] of the fault injected into this request, if any.
    pub fault: Option<String>,
}

/// Where the request being answered sits in the log; the middleware puts it in the request's
/// extensions for handlers that add to the entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordIndex(pub usize);

/// On a response: the connection was cut and this response is never sent, so the recorded
/// status stays 0.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotSent;

/// Notes on the request's entry that `fault` was injected and, if known, the status it answers.
pub(crate) fn note_fault(state: &SimState, index: RecordIndex, fault: &'static str, status: Option<u16>) {
    if let Some(entry) = lock(&state.requests).get_mut(index.0) {
        entry.fault = Some(fault.to_owned());
        if let Some(status) = status {
            entry.response_status = status;
        }
    }
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
        fault: None,
    };
    let index = {
        let mut requests = lock(&state.requests);
        requests.push(entry);
        requests.len() - 1
    };
    let response = match bytes {
        Ok(bytes) => {
            let mut request = Request::from_parts(parts, Body::from(bytes));
            request.extensions_mut().insert(RecordIndex(index));
            next.run(request).await
        }
        Err(_) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    if response.extensions().get::<NotSent>().is_some() {
        return response;
    }
    if let Some(entry) = lock(&state.requests).get_mut(index) {
        entry.response_status = response.status().as_u16();
    }
    response
}
