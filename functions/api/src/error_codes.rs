//! `GET /v1/error-codes/{code}`: what a Twilio error code means for the clinic, from the catalogue.

use axum::Json;
use axum::extract::Path;
use serde::Serialize;
use shared::twilio::error_catalogue::{self, ErrorInfo};

use crate::auth::Caller;
use crate::problem::Problem;

#[derive(Serialize)]
pub struct ErrorCodeView {
    pub code: u32,
    pub description: &'static str,
    pub common_cause: &'static str,
    pub what_to_do: &'static str,
    /// Twilio's own page for the code, for whoever wants the technical detail.
    pub twilio_reference: String,
}

impl From<&ErrorInfo> for ErrorCodeView {
    fn from(info: &ErrorInfo) -> Self {
        Self {
            code: info.code,
            description: info.description,
            common_cause: info.common_cause,
            what_to_do: info.what_to_do,
            twilio_reference: error_catalogue::twilio_reference(info.code),
        }
    }
}

/// Any clinic's key may read it: the catalogue is the same for everyone.
pub async fn show(Caller(_): Caller, Path(code): Path<String>) -> Result<Json<ErrorCodeView>, Problem> {
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::bad_path_parameter("code", "An error code is a number, such as 30003."));
    }
    // A number too long for any code is simply not one we know.
    let info = code.parse::<u32>().ok().and_then(error_catalogue::lookup);
    let info = info.ok_or_else(|| Problem::not_found(format!("Error code {code} is not in the catalogue.")))?;
    Ok(Json(ErrorCodeView::from(info)))
}
