//! Errors in the shape of Twilio's 2010 REST API:
//! `{"code": 21211, "message": "...", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl ApiError {
    /// A 400: the request was understood and refused for a business or validation reason.
    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code, message: message.into() }
    }

    /// Missing or wrong credentials, or credentials for another account than the one in the path.
    pub fn authenticate() -> Self {
        Self { status: StatusCode::UNAUTHORIZED, code: 20003, message: "Authenticate".into() }
    }

    pub fn not_found(path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: 20404,
            message: format!("The requested resource {path} was not found"),
        }
    }

    pub fn method_not_allowed() -> Self {
        Self { status: StatusCode::METHOD_NOT_ALLOWED, code: 20004, message: "Method not allowed".into() }
    }

    /// Twilio's account concurrency limit: the request was never processed.
    pub fn too_many_requests() -> Self {
        Self { status: StatusCode::TOO_MANY_REQUESTS, code: 20429, message: "Too Many Requests".into() }
    }

    pub fn internal_server_error() -> Self {
        Self { status: StatusCode::INTERNAL_SERVER_ERROR, code: 20500, message: "Internal Server Error".into() }
    }

    pub fn service_unavailable() -> Self {
        Self { status: StatusCode::SERVICE_UNAVAILABLE, code: 20503, message: "Service Unavailable".into() }
    }

    /// The sender's queue already holds the most Twilio will queue for it.
    pub fn queue_full() -> Self {
        Self::bad_request(21611, "This 'From' number has exceeded the maximum number of queued messages.")
    }

    /// Test credentials may create messages but not read anything back.
    pub fn not_for_test_credentials() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: 20008,
            message: "Resource not accessible with Test Account Credentials".into(),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    code: u32,
    message: &'a str,
    more_info: String,
    status: u16,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: &self.message,
            more_info: format!("https://www.twilio.com/docs/errors/{}", self.code),
            status: self.status.as_u16(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="Twilio API""#));
        }
        response
    }
}
