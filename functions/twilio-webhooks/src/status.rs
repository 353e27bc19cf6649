//! `POST /twilio/status`: Twilio's delivery status callbacks. Answered 200 with an empty body
//! whenever the callback was verified and understood, even for a message we do not know, so
//! Twilio never retries what we have already seen; fields Twilio adds later are ignored. A form
//! Twilio would not send (a field missing, or no Twilio value) is a 400 and changes nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use shared::ids::MessageId;
use shared::services::Services;
use shared::status_updates;
use shared::twilio::status::parse_callback;
use tracing::{error, warn};

use crate::verify;
use shared::webhook_rejections::WebhookRoute;

pub async fn callback(State(services): State<Services>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request = match verify(&services, WebhookRoute::Status, &uri, &headers, &body).await {
        Ok(request) => request,
        Err(rejected) => return rejected.into_response(),
    };
    // Read whole before the message id is looked at, so a form Twilio would not send is refused
    // whichever message the URL names.
    let attempt = request.query_value("a").and_then(|a| a.parse().ok());
    let callback = match parse_callback(&request.form, attempt) {
        Ok(callback) => callback,
        Err(bad) => {
            warn!(problem = %bad, "status callback refused");
            return (StatusCode::BAD_REQUEST, bad.to_string()).into_response();
        }
    };
    // A callback for a message we did not send (no or bad `m`) is acknowledged, so Twilio does
    // not retry it forever.
    let Some(id) = request.query_value("m").and_then(|m| m.parse::<MessageId>().ok()) else {
        warn!(message_sid = callback.message_sid, "status callback without our message id; ignored");
        return StatusCode::OK.into_response();
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
