//! The API's one error type, answered as RFC 9457 problem+json with a stable `type`, and the
//! field at fault when there is one. Internal causes are logged, never sent to the caller.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::access::AccessError;
use shared::mailbox_views::{MAX_SELECTION, SelectionError};
use shared::outbound::CreateTextError;
use shared::recipients::{MAX_RECIPIENTS, MAX_TEXTS};
use tracing::error;

#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    field: Option<String>,
    /// RFC 9457 extension members (e.g. the outcome per recipient of a send none of which went).
    extensions: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(flatten)]
    extensions: &'a serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { status, slug, title, detail: detail.into(), field: None, extensions: serde_json::Map::new() }
    }

    /// Adds an extension member to the problem.
    pub fn with(mut self, name: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(name.to_owned(), value);
        self
    }

    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "A field is not valid", detail)
        }
    }

    /// A path segment that cannot be what the route expects (e.g. a word where a number goes).
    pub fn bad_path_parameter(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid-path-parameter", "A path parameter is not valid", detail)
        }
    }

    pub fn conflict(slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, slug, title, detail)
    }

    /// A number or Messaging Service another connection already answers on. Another clinic's
    /// connection is never named.
    pub fn sender_taken(field: String, own_connection: Option<shared::ids::ConnectionId>) -> Self {
        let detail = match own_connection {
            Some(id) => format!(
                "`{field}` is already used by this clinic's connection {id}; inbound texts are routed by number, so each number belongs to one connection."
            ),
            None => format!(
                "`{field}` is already used by another clinic; inbound texts are routed by number, so each number belongs to one clinic. Contact support if the number is yours."
            ),
        };
        Self { field: Some(field), ..Self::conflict("sender-taken", "The sender is already in use", detail) }
    }

    /// A conflict caused by the value of one field.
    pub fn conflict_on(field: &str, slug: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { field: Some(field.to_owned()), ..Self::conflict(slug, title, detail) }
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed", detail)
    }

    pub fn malformed_json(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            "The request body is not valid JSON",
            format!("Send a JSON object; the body could not be read: {detail}."),
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// A failure of ours (AWS unreachable, …): logged in full, answered without internals.
    pub fn unavailable(cause: &dyn std::fmt::Debug) -> Self {
        error!(error = ?cause, "request failed on our side");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Temporarily unavailable",
            "The request could not be completed; nothing was created. Please try again.",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Body {
            kind: format!("urn:clinic-sms:problem:{}", self.slug),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            field: self.field.as_deref(),
            extensions: &self.extensions,
        };
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<shared::dynamo::StoreError> for Problem {
    fn from(err: shared::dynamo::StoreError) -> Self {
        Self::unavailable(&err)
    }
}

impl From<AccessError> for Problem {
    fn from(err: AccessError) -> Self {
        match err {
            AccessError::Missing => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
                "Send the clinic's API key as `Authorization: Bearer <key>`.",
            ),
            AccessError::Invalid => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required",
                "The API key is not valid or has been revoked.",
            ),
            AccessError::Store(cause) => Self::unavailable(&cause),
        }
    }
}

/// A bulk selection of messages (`ids`): empty or over the maximum.
impl From<SelectionError> for Problem {
    fn from(err: SelectionError) -> Self {
        match err {
            SelectionError::Empty => Problem::invalid_field("ids", "Select at least one message."),
            SelectionError::TooMany(n) => Problem::invalid_field(
                "ids",
                format!("{n} messages were selected; at most {MAX_SELECTION} can be changed at once."),
            ),
        }
    }
}

impl From<CreateTextError> for Problem {
    fn from(err: CreateTextError) -> Self {
        match err {
            CreateTextError::InvalidNumber(why) => {
                Self::invalid_field("to", format!("The phone number cannot be used: {why}."))
            }
            CreateTextError::InvalidBody(why) => Self::invalid_field("body", format!("{why}.")),
            CreateTextError::NoConnection | CreateTextError::UnknownClinic => Self::new(
                StatusCode::CONFLICT,
                "no-connection",
                "No connection to send through",
                "The clinic has no Twilio connection set up; an administrator must add one.",
            ),
            CreateTextError::ConnectionDisabled => Self::new(
                StatusCode::CONFLICT,
                "connection-disabled",
                "The connection is disabled",
                "The clinic's Twilio connection is disabled; an administrator must enable it.",
            ),
            CreateTextError::OptedOut => Self {
                field: Some("to".into()),
                ..Self::new(
                    StatusCode::CONFLICT,
                    "opted-out",
                    "The number has opted out",
                    "This number replied STOP to the clinic; it cannot be texted until it sends START.",
                )
            },
            CreateTextError::AllowanceExhausted { limit } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "allowance-exhausted",
                "Daily SMS allowance used up",
                if limit == 0 {
                    "You have no daily SMS allowance (blank or 0 blocks sending). An administrator can set one."
                        .to_owned()
                } else {
                    format!(
                        "You have sent all {limit} texts of your daily allowance. It resets at midnight, clinic time; an administrator can raise it."
                    )
                },
            ),
            CreateTextError::UnknownConnection(id) => {
                Self::invalid_field("connection", format!("No connection {id} exists for this clinic."))
            }
            CreateTextError::NoRecipients => {
                Self::invalid_field("recipients", "Name at least one recipient: a contact id, a group id or a number.")
            }
            CreateTextError::TooManyRecipients => Self::invalid_field(
                "recipients",
                format!("At most {MAX_RECIPIENTS} recipients may be named in one request; split the send."),
            ),
            CreateTextError::TooManyTexts(count) => Self::invalid_field(
                "recipients",
                format!(
                    "These recipients come to {count} texts; at most {MAX_TEXTS} go in one request. Use a mass alert for more."
                ),
            ),
            CreateTextError::NoneAccepted(outcomes) => {
                let outcomes = serde_json::to_value(&outcomes).unwrap_or_default();
                Self::invalid_field(
                    "recipients",
                    "None of the recipients could be texted; `outcomes` says why for each.",
                )
                .with("outcomes", outcomes)
            }
            CreateTextError::Selection(why) => why.into(),
            CreateTextError::Store(cause) => Self::unavailable(&cause),
            CreateTextError::Queue(cause) => Self::unavailable(&cause),
        }
    }
}
