//! `POST /twilio/status`: Twilio's delivery status callbacks. Answered 200 with an empty body
//! whenever the callback was verified and understood, even for a message we do not know, so
//! Twilio never retries what we have already seen; fields Twilio adds later are ignored.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use shared::ids::MessageId;
use shared::message::StatusCallback;
use shared::services::Services;
use shared::status_updates;
use tracing::{error, warn};

use crate::verify;
use shared::webhook_rejections::WebhookRoute;

pub async fn callback(State(services): State<Services>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request = match verify(&services, WebhookRoute::Status, &uri, &headers, &body).await {
        Ok(request) => request,
        Err(rejected) => return rejected.into_response(),
    };
    let present = |name| request.form_value(name).filter(|v| !v.is_empty());
    let (Some(sid), Some(status)) = (present("MessageSid"), present("MessageStatus")) else {
        return (StatusCode::BAD_REQUEST, "MessageSid and MessageStatus are required").into_response();
    };
    // A callback for a message we did not send (no or bad `m`) is acknowledged, so Twilio does
    // not retry it forever.
    let Some(id) = request.query_value("m").and_then(|m| m.parse::<MessageId>().ok()) else {
        warn!(message_sid = sid, "status callback without our message id; ignored");
        return StatusCode::OK.into_response();
    };
    let error_code = match request.form_value("ErrorCode").filter(|c| !c.is_empty()).map(str::parse::<u32>) {
        None => None,
        Some(Ok(code)) => Some(code),
        Some(Err(_)) => return (StatusCode::BAD_REQUEST, "ErrorCode must be a number").into_response(),
    };
    let callback = StatusCallback {
        message_sid: sid.to_owned(),
        message_status: status.to_owned(),
        error_code,
        raw_dlr_done_date: request.form_value("RawDlrDoneDate").map(str::to_owned),
        attempt: request.query_value("a").and_then(|a| a.parse().ok()),
    };
    match status_updates::record(&services, &id, &callback).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(store_error) => {
            // Twilio retries on a 5xx; the callback is idempotent, so that is what we want.
            error!(message_id = %id, error = ?store_error, "could not record a status callback");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
