//! `GET /v1/reports/usage?from=&to=&format=json|csv`: the SMS usage report for a period of at
//! most 31 days.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use shared::services::Services;
use shared::usage_report::{self, MAX_ROWS, ReportError};

use crate::auth::Caller;
use crate::json_input::ValidQuery;
use crate::problem::Problem;

#[derive(Deserialize)]
pub struct UsageQuery {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    #[serde(default)]
    format: Format,
}

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Json,
    Csv,
}

impl From<ReportError> for Problem {
    fn from(err: ReportError) -> Self {
        match err {
            ReportError::BackwardsPeriod => Problem::invalid_field("to", "`to` must not be before `from`."),
            ReportError::PeriodTooLong => Problem::invalid_field("to", "A report covers at most 31 days."),
            ReportError::TooManyMessages => Problem::invalid_field(
                "to",
                format!("The period holds more than {MAX_ROWS} messages; ask for a shorter period."),
            ),
            ReportError::Store(cause) => Problem::unavailable(&cause),
        }
    }
}

pub async fn usage(
    State(services): State<Services>,
    Caller(caller): Caller,
    ValidQuery(query): ValidQuery<UsageQuery>,
) -> Result<Response, Problem> {
    let report = usage_report::usage(&services, &caller.clinic_id, query.from, query.to).await?;
    if query.format == Format::Json {
        return Ok(Json(report).into_response());
    }
    let csv = usage_report::to_csv(&report.messages).map_err(|e| Problem::unavailable(&e))?;
    let filename =
        format!("attachment; filename=\"sms-usage-{}-{}.csv\"", query.from.format("%Y%m%d"), query.to.format("%Y%m%d"));
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, filename)], csv)
        .into_response())
}
