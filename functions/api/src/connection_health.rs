//! `GET /v1/connections/{id}/health`: is this Twilio connection working, and if not, where to
//! look. The webhook URLs to paste into Twilio, when Twilio last reached us for it (a patient's
//! text, a status callback), Twilio's last error about it, the webhooks' signature rejections,
//! and the two connection checks the sms-check and reminder-check also show.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde_json::json;
use shared::clinic::Connection;
use shared::connection_health::{current_checks, webhook_urls};
use shared::services::Services;
use shared::twilio::error_catalogue;
use shared::webhook_rejections;

use crate::auth::Caller;
use crate::problem::Problem;

/// What `signature_rejections_24h` counts, said in the answer itself.
const REJECTIONS_SCOPE: &str = "Requests to each webhook route whose X-Twilio-Signature did not verify, in this hour and the 23 before, for the whole service: a refused request is not trusted to say which clinic it was for. Any at all usually means the auth token Twilio signs with differs from the stored one, or a URL in Twilio differs from webhook_urls.";

pub async fn show(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    // The caller's own partition: another clinic's connection is simply not found.
    let connection: Connection = services
        .clinics
        .record(&caller.clinic_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("No connection {id} exists for this clinic.")))?;
    let (checks, rejections) =
        tokio::try_join!(current_checks(&services, &connection), webhook_rejections::last_day_totals(&services))?;
    let last_error = connection.last_error.as_ref().map(|e| {
        let info = error_catalogue::lookup(e.code);
        json!({
            "code": e.code,
            "description": error_catalogue::describe(e.code),
            "what_to_do": info.map(|i| i.what_to_do),
            "at": e.at,
            "more_info": error_catalogue::twilio_reference(e.code),
        })
    });
    Ok(Json(json!({
        "connection_id": connection.id,
        "label": connection.label,
        "sender": connection.sender,
        "enabled": connection.enabled,
        "webhook_urls": webhook_urls(&services.settings),
        "last_inbound": connection.last_inbound,
        "last_status_callback_at": connection.last_status_callback_at,
        "last_error": last_error,
        "signature_rejections_24h": {
            "status": rejections.status,
            "inbound": rejections.inbound,
            "scope": "deployment",
            "note": REJECTIONS_SCOPE,
        },
        "checks": checks,
        "all_passed": checks.iter().all(|c| c.passed),
        "note": "Times are recorded at most once a minute per connection, so the latest text or callback may be up to a minute newer.",
    })))
}
