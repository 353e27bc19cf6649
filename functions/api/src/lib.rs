//! The clinic-facing HTTPS API. One axum router serves on Lambda (through `lambda_http`) and
//! locally (through `axum::serve`).

mod auth;
mod messages;
mod problem;
mod views;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use shared::services::Services;

pub use problem::Problem;

pub fn router(services: Services) -> Router {
    Router::new()
        .route("/v1/messages", post(messages::create))
        .route("/v1/messages/{id}", get(messages::show))
        .fallback(|| async { Problem::not_found("No such endpoint.") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "This endpoint does not take that method.",
            )
        })
        .with_state(services)
}
