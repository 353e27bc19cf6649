//! `POST /twilio/inbound`: texts patients send to a clinic's numbers. Answered with empty TwiML,
//! so Twilio sends no reply of its own beyond its keyword answers.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use shared::inbound;
use shared::services::Services;
use shared::twilio::inbound::parse;
use tracing::{error, warn};

use crate::verify;
use shared::webhook_rejections::WebhookRoute;

const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#;

pub async fn text(State(services): State<Services>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request = match verify(&services, WebhookRoute::Inbound, &uri, &headers, &body).await {
        Ok(request) => request,
        Err(rejected) => return rejected.into_response(),
    };
    let text = match parse(&request.form) {
        Ok(text) => text,
        Err(bad) => {
            warn!(problem = %bad, "inbound text refused");
            return (StatusCode::BAD_REQUEST, bad.to_string()).into_response();
        }
    };
    match inbound::receive(&services, &text).await {
        Ok(_) => twiml(),
        Err(store_error) => {
            // Twilio then tries the number's fallback URL; storing is idempotent, so a second
            // delivery is harmless.
            error!(error = ?store_error, "could not store an inbound text");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

fn twiml() -> Response {
    let mut response = (StatusCode::OK, EMPTY_TWIML).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}
