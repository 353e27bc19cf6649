//! Twilio's webhooks. Every request's `X-Twilio-Signature` is checked against the URL Twilio was
//! given (our configured public base URL, the route and the query string exactly as received)
//! before anything in it is read, and a body larger than any Twilio sends is refused unread.

mod api_gateway_stage;
mod inbound;
mod status;

pub use api_gateway_stage::{OnApiGateway, on_api_gateway, without_stage};

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use shared::metrics;
use shared::services::Services;
use shared::twilio::signature;
use shared::webhook_rejections::{self, WebhookRoute};
use tracing::warn;

/// The largest webhook body read. Twilio's are a few kB (an inbound text's body is at most 1,600
/// characters, plus up to ten media URLs); anything larger is answered 413 before it is buffered
/// or its signature computed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(services: Services) -> Router {
    Router::new()
        .route("/twilio/status", post(status::callback))
        .route("/twilio/inbound", post(inbound::text))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(services)
}

/// A request whose signature checked out: its decoded form fields and query parameters.
pub struct Verified {
    pub form: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

impl Verified {
    pub fn form_value(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A request refused before its fields are read: answered 403, nothing stored.
#[derive(Debug)]
pub enum Rejected {
    /// The signature did not verify (counted for the connection health).
    Signature,
    /// Signed with our token, yet naming another Twilio account: Twilio signs each webhook with
    /// the token of the account it is for, so this is no request of Twilio's for our account
    /// (or the deployment's account SID and token do not belong together).
    OtherAccount,
}

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        let why = match self {
            Self::Signature => "signature does not verify",
            Self::OtherAccount => "AccountSid is not this deployment's Twilio account",
        };
        (StatusCode::FORBIDDEN, why).into_response()
    }
}

/// Checks the signature of a form-encoded webhook, then that it is for our Twilio account. The URL is rebuilt from the configured public
/// base URL and the route (never from `Host` or the scheme the request arrived with), with the
/// query string byte for byte as received. A rejection is counted under the route it matched:
/// as an EMF metric line, and in the counters table for the connection health (one `ADD`).
pub async fn verify(
    services: &Services,
    route: WebhookRoute,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Verified, Rejected> {
    let url = match uri.query() {
        Some(query) => format!("{}?{query}", services.settings.webhook_url(uri.path())),
        None => services.settings.webhook_url(uri.path()),
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let signature = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok());
    let valid = signature.is_some_and(|sig| {
        services.settings.twilio.signing_tokens().any(|token| signature::verify(token, &url, &form, sig))
    });
    if !valid {
        warn!(route = uri.path(), signed = signature.is_some(), "webhook rejected: signature does not verify");
        metrics::webhook_signature_rejected(uri.path(), services.clock.now());
        webhook_rejections::count(services, route).await;
        return Err(Rejected::Signature);
    }
    let account = form.iter().find(|(k, _)| k == "AccountSid").map(|(_, v)| v.as_str());
    if account.is_some_and(|sid| sid != services.settings.twilio.account_sid) {
        warn!(route = uri.path(), "webhook rejected: signed, but for another Twilio account");
        return Err(Rejected::OtherAccount);
    }
    let query =
        uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    Ok(Verified { form, query })
}
