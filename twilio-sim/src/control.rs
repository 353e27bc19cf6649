//! The simulator's own HTTP surface under `/sim`, for the local runner and curl.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::callbacks::Outcome;
use crate::faults::{Fault, FaultPlan};
use crate::inbound::{InboundDelivery, InboundText};
use crate::recording::RecordedRequest;
use crate::resource::SimMessage;
use crate::state::SimState;

pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/sim/overrides", post(set_override).delete(clear_overrides))
        .route("/sim/faults", post(inject_fault).delete(clear_faults))
        .route("/sim/requests", get(requests))
        .route("/sim/messages", get(messages))
        .route("/sim/inbound", post(send_inbound).get(inbound_deliveries))
        .route("/sim/inbound-urls", post(set_inbound_url))
}

/// Posts an [`InboundText`] to the clinic's webhook and answers 200 with the
/// [`InboundDelivery`] (what was posted, the webhook's statuses); 422 when Twilio could not
/// have routed it (no account owns `to`, no URL).
async fn send_inbound(State(state): State<Arc<SimState>>, Json(text): Json<InboundText>) -> Response {
    match crate::inbound::deliver(&state, text).await {
        Ok(delivery) => Json(delivery).into_response(),
        Err(problem) => (StatusCode::UNPROCESSABLE_ENTITY, format!("{problem:#}")).into_response(),
    }
}

async fn inbound_deliveries(State(state): State<Arc<SimState>>) -> Json<Vec<InboundDelivery>> {
    Json(state.inbound_deliveries())
}

/// `{"number": "+1…" or "MG…", "url": "https://…/twilio/inbound"}`: the number's (or
/// Messaging Service's) "a message comes in" webhook.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundUrlRequest {
    number: String,
    url: String,
}

async fn set_inbound_url(State(state): State<Arc<SimState>>, Json(request): Json<InboundUrlRequest>) -> StatusCode {
    state.set_inbound_url(&request.number, &request.url);
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OutcomeName {
    Deliver,
    Undelivered,
    Failed,
    Hold,
}

/// `{"to": "+1…", "outcome": "deliver" | "undelivered" | "failed" | "hold", "error_code": 30003,
/// "lose_callbacks": true}`; `error_code` is required for the two failing outcomes;
/// `lose_callbacks` (default false) plays the outcome out without posting its callbacks.
#[derive(Debug, Deserialize)]
struct OverrideRequest {
    to: String,
    outcome: OutcomeName,
    error_code: Option<u32>,
    #[serde(default)]
    lose_callbacks: bool,
}

async fn set_override(State(state): State<Arc<SimState>>, Json(request): Json<OverrideRequest>) -> Response {
    let outcome = match (request.outcome, request.error_code) {
        (OutcomeName::Deliver, _) => Outcome::Deliver,
        (OutcomeName::Hold, _) => Outcome::Hold,
        (OutcomeName::Undelivered, Some(code)) => Outcome::Undelivered(code),
        (OutcomeName::Failed, Some(code)) => Outcome::Failed(code),
        (OutcomeName::Undelivered | OutcomeName::Failed, None) => {
            return (StatusCode::UNPROCESSABLE_ENTITY, "\"undelivered\" and \"failed\" need an \"error_code\"")
                .into_response();
        }
    };
    state.set_override(&request.to, outcome);
    if request.lose_callbacks {
        state.lose_callbacks_to(&request.to);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_overrides(State(state): State<Arc<SimState>>) -> StatusCode {
    state.clear_overrides();
    StatusCode::NO_CONTENT
}

/// `{"fault": {"kind": "throttle", "retry_after_secs": 2}, "plan": {"times": 1, "to": "+1…"}}`:
/// the arguments of [`crate::Simulator::inject`]; `plan` may be left out (every create request).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    fault: Fault,
    #[serde(default)]
    plan: FaultPlan,
}

async fn inject_fault(State(state): State<Arc<SimState>>, Json(request): Json<FaultRequest>) -> Response {
    match state.faults.inject(request.fault, request.plan) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(problem) => (StatusCode::UNPROCESSABLE_ENTITY, problem).into_response(),
    }
}

async fn clear_faults(State(state): State<Arc<SimState>>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

async fn requests(State(state): State<Arc<SimState>>) -> Json<Vec<RecordedRequest>> {
    Json(state.requests())
}

async fn messages(State(state): State<Arc<SimState>>) -> Json<Vec<SimMessage>> {
    Json(state.messages())
}
