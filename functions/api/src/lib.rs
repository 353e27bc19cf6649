//! The clinic-facing HTTPS API. One axum router serves on Lambda (through `lambda_http`) and
//! locally (through `axum::serve`).

mod appointments;
mod auth;
mod checks;
mod clinic_data;
mod connection_health;
mod conversations;
pub mod endpoints;
mod error_codes;
mod idempotent;
mod json_input;
mod mailbox;
mod mailbox_actions;
mod mass_alerts;
mod messages;
mod problem;
mod records;
mod reports;
mod settings;
mod templates;
mod views;

use axum::Router;
use axum::http::StatusCode;
use std::sync::LazyLock;

use axum::routing::{delete, get, patch, post, put};
use shared::appointment_types::{AppointmentType, SmsTemplate};
use shared::businesses::Business;
use shared::clinic::{Connection, User};
use shared::contacts::{Contact, Group};
use shared::services::Services;
use utoipa::openapi::path::HttpMethod;

pub use endpoints::Endpoint;
pub use problem::Problem;

pub fn router(services: Services) -> Router {
    endpoints::router(&table())
        .fallback(|| async {
            Problem::new(
                StatusCode::NOT_FOUND,
                "no-such-endpoint",
                "No such endpoint",
                "No endpoint has this path; see /openapi.json.",
            )
        })
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

/// Every endpoint of the API (see `endpoints`).
pub fn table() -> Vec<Endpoint> {
    use HttpMethod::{Delete, Get, Patch, Post, Put};
    let mut table = vec![
        Endpoint::new(Get, "/openapi.json", "meta", "This description of the API", get(openapi_json)).public(),
        Endpoint::new(
            Post,
            "/v1/messages",
            "messages",
            "Send texts: to one number, or to contacts, groups and numbers",
            post(messages::create),
        )
        .body::<messages::SendBody>()
        .answers(202),
        Endpoint::new(Get, "/v1/messages", "messages", "A mailbox view, newest first", get(mailbox::list))
            .query(&["view", "cursor", "limit"]),
        Endpoint::new(
            Get,
            "/v1/messages/search",
            "messages",
            "Search a period of at most 31 days",
            get(mailbox::search),
        )
        .query(&[
            "from",
            "to",
            "contact_id",
            "number",
            "status",
            "error_code",
            "user",
            "text",
            "cursor",
            "limit",
        ]),
        Endpoint::new(
            Post,
            "/v1/messages/delete",
            "messages",
            "Move messages to the Deleted view",
            post(mailbox::delete),
        )
        .body::<mailbox::SelectionInput>()
        .answers(200),
        Endpoint::new(
            Post,
            "/v1/messages/restore",
            "messages",
            "Return deleted messages to their views",
            post(mailbox::restore),
        )
        .body::<mailbox::SelectionInput>()
        .answers(200),
        Endpoint::new(
            Get,
            "/v1/messages/{id}",
            "messages",
            "Read a message with its status, error and history",
            get(messages::show),
        ),
        Endpoint::new(
            Patch,
            "/v1/messages/{id}",
            "messages",
            "Change the time or words of a text not yet queued",
            patch(mailbox_actions::edit),
        )
        .body::<mailbox_actions::Edit>(),
        Endpoint::new(
            Post,
            "/v1/messages/{id}/cancel",
            "messages",
            "Cancel a text not yet queued",
            post(mailbox_actions::cancel),
        )
        .answers(200),
        Endpoint::new(
            Post,
            "/v1/messages/approve",
            "messages",
            "Send Now: approve texts awaiting approval",
            post(mailbox_actions::approve),
        )
        .body::<mailbox_actions::Ids>()
        .answers(200),
        Endpoint::new(
            Post,
            "/v1/messages/resend",
            "messages",
            "Resend failed texts (preview, then confirm)",
            post(mailbox_actions::resend),
        )
        .body::<mailbox_actions::Ids>()
        .answers(200),
        Endpoint::new(
            Post,
            "/v1/messages/reply",
            "messages",
            "Reply to received texts, once per sender",
            post(mailbox_actions::reply),
        )
        .body::<mailbox_actions::Reply>()
        .answers(202),
        Endpoint::new(
            Post,
            "/v1/messages/{id}/forward",
            "messages",
            "Forward one text to contacts",
            post(mailbox_actions::forward),
        )
        .body::<mailbox_actions::Forward>()
        .answers(202),
        Endpoint::new(
            Post,
            "/v1/contacts/{id}/test-sms",
            "contacts",
            "Send a test text to a contact",
            post(mailbox_actions::test_text),
        )
        .body::<mailbox_actions::TestText>()
        .answers(202),
        Endpoint::new(
            Get,
            "/v1/error-codes/{code}",
            "messages",
            "What a Twilio error code means",
            get(error_codes::show),
        ),
        Endpoint::new(
            Post,
            "/v1/mass-alerts/preview",
            "mass alerts",
            "Who a mass alert would reach, and what it costs",
            post(mass_alerts::preview),
        )
        .body::<mass_alerts::PreviewBody>()
        .answers(200),
        Endpoint::new(
            Post,
            "/v1/mass-alerts",
            "mass alerts",
            "Send a mass alert to clients with appointments in a range (admins)",
            post(mass_alerts::create),
        )
        .body::<mass_alerts::AlertBody>()
        .answers(202),
        Endpoint::new(
            Get,
            "/v1/mass-alerts",
            "mass alerts",
            "The clinic's mass alerts, newest first",
            get(mass_alerts::list),
        )
        .query(&["cursor", "limit"]),
        Endpoint::new(
            Get,
            "/v1/mass-alerts/{id}",
            "mass alerts",
            "A mass alert, with a fresh link to its report once completed",
            get(mass_alerts::show),
        ),
        Endpoint::new(Get, "/v1/reports/usage", "reports", "The SMS usage report for a period", get(reports::usage))
            .query(&["from", "to", "format"]),
        Endpoint::new(Get, "/v1/clinic", "clinic", "The clinic's settings and credits", get(settings::show)),
        Endpoint::new(Put, "/v1/clinic", "clinic", "Replace the clinic's settings", put(settings::replace))
            .body::<settings::SettingsInput>(),
        Endpoint::new(Post, "/v1/clinic/credits", "clinic", "Add SMS credits", post(settings::top_up))
            .body::<settings::TopUp>()
            .answers(200),
        Endpoint::new(Post, "/v1/api-keys", "clinic", "Issue an API key for a user", post(settings::issue_key))
            .body::<settings::NewKey>(),
        Endpoint::new(Delete, "/v1/api-keys/{key_id}", "clinic", "Revoke an API key", delete(settings::revoke_key)),
        Endpoint::new(
            Post,
            "/v1/templates/preview",
            "templates",
            "Preview a template's text and segments",
            post(templates::preview),
        )
        .body::<templates::PreviewInput>()
        .answers(200),
        Endpoint::new(Get, "/v1/appointments", "appointments", "List appointments in a range", get(appointments::list))
            .query(&["from", "to"]),
        Endpoint::new(Post, "/v1/appointments", "appointments", "Book an appointment", post(appointments::create))
            .body::<appointments::AppointmentInput>(),
        Endpoint::new(Get, "/v1/appointments/{id}", "appointments", "Read an appointment", get(appointments::show)),
        Endpoint::new(
            Put,
            "/v1/appointments/{id}",
            "appointments",
            "Move or change an appointment",
            put(appointments::replace),
        )
        .body::<appointments::AppointmentInput>(),
        Endpoint::new(
            Delete,
            "/v1/appointments/{id}",
            "appointments",
            "Delete an appointment",
            delete(appointments::remove),
        ),
        Endpoint::new(
            Get,
            "/v1/appointments/{id}/reminder-check",
            "appointments",
            "Why a reminder will or will not go",
            get(appointments::reminder_check),
        ),
        Endpoint::new(
            Get,
            "/v1/contacts/{id}/sms-check",
            "contacts",
            "Whether a contact can be texted, check by check",
            get(checks::sms_check),
        ),
        Endpoint::new(
            Get,
            "/v1/connections/{id}/health",
            "connections",
            "A connection's webhooks, activity and errors",
            get(connection_health::show),
        ),
        Endpoint::new(
            Get,
            "/v1/conversations",
            "conversations",
            "List conversations, open first",
            get(conversations::list),
        )
        .query(&["cursor", "limit"]),
        Endpoint::new(
            Get,
            "/v1/conversations/{id}",
            "conversations",
            "Read a conversation with its messages",
            get(conversations::show),
        ),
        Endpoint::new(
            Post,
            "/v1/conversations/{id}/close",
            "conversations",
            "Close a conversation",
            post(conversations::close),
        )
        .answers(200),
        Endpoint::new(
            Post,
            "/v1/conversations/{id}/link",
            "conversations",
            "Link an unknown number's conversation to a contact",
            post(conversations::link),
        )
        .body::<conversations::LinkInput>()
        .answers(200),
    ];
    table.extend(records::endpoints::<Business>());
    table.extend(records::endpoints::<Contact>());
    table.extend(records::endpoints::<Group>());
    table.extend(records::endpoints::<SmsTemplate>());
    table.extend(records::endpoints::<AppointmentType>());
    table.extend(records::endpoints::<User>());
    table.extend(records::endpoints::<Connection>());
    table
}

/// The description, generated once per process from the table.
static OPENAPI: LazyLock<String> =
    LazyLock::new(|| endpoints::openapi(&table()).to_json().unwrap_or_else(|_| "{}".to_owned()));

async fn openapi_json() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI.as_str())
}
