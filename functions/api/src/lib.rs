//! The clinic-facing HTTPS API. One axum router serves on Lambda (through `lambda_http`) and
//! locally (through `axum::serve`).

mod appointments;
mod auth;
mod checks;
mod clinic_data;
mod connection_health;
mod conversations;
mod error_codes;
mod json_input;
mod mailbox;
mod messages;
mod problem;
mod records;
mod settings;
mod templates;
mod views;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use shared::appointment_types::{AppointmentType, SmsTemplate};
use shared::businesses::Business;
use shared::clinic::{Connection, User};
use shared::contacts::{Contact, Group};
use shared::services::Services;

pub use problem::Problem;

pub fn router(services: Services) -> Router {
    let mut router = Router::new()
        .route("/v1/messages", get(mailbox::list).post(messages::create))
        .route("/v1/messages/search", get(mailbox::search))
        .route("/v1/messages/delete", post(mailbox::delete))
        .route("/v1/messages/restore", post(mailbox::restore))
        .route("/v1/messages/{id}", get(messages::show))
        .route("/v1/error-codes/{code}", get(error_codes::show))
        .route("/v1/clinic", get(settings::show).put(settings::replace))
        .route("/v1/clinic/credits", post(settings::top_up))
        .route("/v1/api-keys", post(settings::issue_key))
        .route("/v1/api-keys/{key_id}", delete(settings::revoke_key))
        .route("/v1/templates/preview", post(templates::preview))
        .route("/v1/appointments", get(appointments::list).post(appointments::create))
        .route("/v1/appointments/{id}", get(appointments::show).put(appointments::replace).delete(appointments::remove))
        .route("/v1/appointments/{id}/reminder-check", get(appointments::reminder_check))
        .route("/v1/contacts/{id}/sms-check", get(checks::sms_check))
        .route("/v1/connections/{id}/health", get(connection_health::show))
        .route("/v1/conversations", get(conversations::list))
        .route("/v1/conversations/{id}", get(conversations::show))
        .route("/v1/conversations/{id}/close", post(conversations::close))
        .route("/v1/conversations/{id}/link", post(conversations::link));
    router = records::routes::<Business>(router);
    router = records::routes::<Contact>(router);
    router = records::routes::<Group>(router);
    router = records::routes::<SmsTemplate>(router);
    router = records::routes::<AppointmentType>(router);
    router = records::routes::<User>(router);
    router = records::routes::<Connection>(router);
    router
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
