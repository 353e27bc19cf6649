//! Twilio's Messages API: create (`POST …/Messages.json`) and fetch (`GET …/Messages/{Sid}.json`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use chrono::Utc;

use crate::accounts::{self, Account, AccountKind};
use crate::api_error::ApiError;
use crate::callbacks;
use crate::recording::{self, form_fields};
use crate::resource::{MessageRecord, MessageResource, SimMessage, Status};
use crate::segments;
use crate::sid::{is_sid, new_message_sid};
use crate::state::{SimState, lock};
use crate::validation::{self, CreateMessage};

/// The Twilio routes, every request to them (matched or not) recorded.
pub(crate) fn router(state: Arc<SimState>) -> Router<Arc<SimState>> {
    Router::new()
        .route("/2010-04-01/Accounts/{account_sid}/Messages.json", post(create))
        // `{sid}.json` in one segment is beyond the router's patterns; `fetch` strips the suffix.
        .route("/2010-04-01/Accounts/{account_sid}/Messages/{file}", get(fetch))
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .fallback(|uri: Uri| async move { ApiError::not_found(uri.path()) })
        .layer(middleware::from_fn_with_state(state, recording::record))
}

/// The body is read as a form whatever its `Content-Type`: a client that sends JSON gets what
/// Twilio gives it, the missing-field errors (21604 first), rather than a 415.
async fn create(
    State(state): State<Arc<SimState>>,
    Path(account_sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<MessageResource>), ApiError> {
    let account = authorize(&state, &account_sid, &headers, uri.path())?;
    let request = validation::parse_create(&form_fields(&body))?;
    validation::check_sender(account, &request)?;

    let record = new_record(account, request);
    let resource = record.to_resource();
    let (sid, to) = (record.message.sid.clone(), record.message.to.clone());
    lock(&state.messages).push(record);
    // Test credentials never move past `queued` and never call back.
    if account.kind == AccountKind::Live {
        callbacks::schedule(&state, sid, state.outcome_for(&to));
    }
    Ok((StatusCode::CREATED, Json(resource)))
}

async fn fetch(
    State(state): State<Arc<SimState>>,
    Path((account_sid, file)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<MessageResource>, ApiError> {
    let account = authorize(&state, &account_sid, &headers, uri.path())?;
    if account.kind == AccountKind::Test {
        return Err(ApiError::not_for_test_credentials());
    }
    let not_found = || ApiError::not_found(uri.path());
    let sid = file.strip_suffix(".json").ok_or_else(not_found)?;
    lock(&state.messages)
        .iter()
        .find(|r| r.message.sid == sid && r.message.account_sid == account.sid)
        .map(|r| Json(r.to_resource()))
        .ok_or_else(not_found)
}

/// Twilio routes on the path before it authenticates, so a malformed AccountSid is a 404 (20404)
/// whatever the credentials: that is what clients report for `/Accounts//Messages.json` or
/// `/Accounts/null/…`. A well-formed SID that is not the authenticated account's is a 401
/// (20003): Twilio answers "using the wrong combination of Account SID and Auth Token" as it
/// answers wrong credentials, without revealing whether the other account exists.
fn authorize<'a>(
    state: &'a SimState,
    path_account_sid: &str,
    headers: &HeaderMap,
    path: &str,
) -> Result<&'a Account, ApiError> {
    if !is_sid("AC", path_account_sid) {
        return Err(ApiError::not_found(path));
    }
    accounts::authenticate(&state.accounts, headers)
        .filter(|account| account.sid == path_account_sid)
        .ok_or_else(ApiError::authenticate)
}

fn new_record(account: &Account, request: CreateMessage) -> MessageRecord {
    let now = Utc::now();
    // With a Messaging Service the message waits in `accepted` until the service picks a sender.
    let status = match (account.kind, &request.messaging_service_sid) {
        (AccountKind::Live, Some(_)) => Status::Accepted,
        _ => Status::Queued,
    };
    MessageRecord {
        num_segments: segments::count(&request.body),
        message: SimMessage {
            sid: new_message_sid(),
            account_sid: account.sid.clone(),
            to: request.to,
            from: request.from,
            messaging_service_sid: request.messaging_service_sid,
            body: request.body,
            status: status.as_str().to_owned(),
            error_code: None,
            status_callback: request.status_callback,
            created_at: now,
        },
        updated_at: now,
        sent_at: None,
    }
}
