//! Twilio's Messages API: create (`POST …/Messages.json`), list (`GET …/Messages.json`) and
//! fetch (`GET …/Messages/{Sid}.json`), with injected faults on create.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use chrono::Utc;

use crate::accounts::{self, Account, AccountKind};
use crate::api_error::ApiError;
use crate::callbacks;
use crate::connection::Connection;
use crate::faults::Fault;
use crate::list::{self, ListQuery, MessagePage};
use crate::recording::{self, NotSent, RecordIndex, form_fields};
use crate::resource::{MessageRecord, MessageResource, SimMessage, Status};
use crate::segments;
use crate::sid::{is_sid, new_message_sid};
use crate::state::{SimState, lock};
use crate::validation::{self, CreateMessage};

/// The Twilio routes, every request to them (matched or not) recorded.
pub(crate) fn router(state: Arc<SimState>) -> Router<Arc<SimState>> {
    Router::new()
        .route("/2010-04-01/Accounts/{account_sid}/Messages.json", post(create).get(list))
        // `{sid}.json` in one segment is beyond the router's patterns; `fetch` strips the suffix.
        .route("/2010-04-01/Accounts/{account_sid}/Messages/{file}", get(fetch))
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .fallback(|uri: Uri| async move { ApiError::not_found(uri.path()) })
        .layer(middleware::from_fn_with_state(state, recording::record))
}

/// Applies the first injected fault that matches the request's `To` (whatever else the request
/// holds: faults come before authentication and validation), or creates the message.
async fn create(
    State(state): State<Arc<SimState>>,
    Path(account_sid): Path<String>,
    ConnectInfo(connection): ConnectInfo<Connection>,
    Extension(index): Extension<RecordIndex>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = form_fields(&body);
    let to = params.iter().find(|(name, value)| name == "To" && !value.is_empty()).map(|(_, value)| value.as_str());
    let Some(fault) = state.faults.pick(to) else {
        return create_message(&state, &account_sid, &uri, &headers, &params).into_response();
    };
    let name = fault.name();
    tracing::debug!(fault = name, "injecting a fault into a create request");
    match fault {
        Fault::Throttle { retry_after_secs } => {
            recording::note_fault(&state, index, name, None);
            let mut response = ApiError::too_many_requests().into_response();
            if let Some(seconds) = retry_after_secs {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        Fault::ServerErrorNotCreated => {
            recording::note_fault(&state, index, name, None);
            ApiError::internal_server_error().into_response()
        }
        Fault::ServerErrorCreated => {
            recording::note_fault(&state, index, name, None);
            // Whatever the create made of the request, the client hears a 500.
            let _created = create_message(&state, &account_sid, &uri, &headers, &params);
            ApiError::internal_server_error().into_response()
        }
        Fault::QueueFull => {
            recording::note_fault(&state, index, name, None);
            ApiError::queue_full().into_response()
        }
        Fault::Slow { delay_ms, created } => {
            let response = if created {
                create_message(&state, &account_sid, &uri, &headers, &params).into_response()
            } else {
                ApiError::service_unavailable().into_response()
            };
            // Recorded now: a client that gives up first may take this request's future with it.
            recording::note_fault(&state, index, name, Some(response.status().as_u16()));
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            response
        }
        Fault::DropAfterRead { created } => {
            if created {
                let _created = create_message(&state, &account_sid, &uri, &headers, &params);
            }
            recording::note_fault(&state, index, name, None);
            connection.cut();
            let mut response = StatusCode::NO_CONTENT.into_response();
            response.extensions_mut().insert(NotSent);
            response
        }
    }
}

/// The body is read as a form whatever its `Content-Type`: a client that sends JSON gets what
/// Twilio gives it, the missing-field errors (21604 first), rather than a 415.
fn create_message(
    state: &Arc<SimState>,
    account_sid: &str,
    uri: &Uri,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<(StatusCode, Json<MessageResource>), ApiError> {
    let account = authorize(state, account_sid, headers, uri.path())?;
    let request = validation::parse_create(params)?;
    validation::check_sender(account, &request)?;

    let record = new_record(account, request);
    let resource = record.to_resource();
    let (sid, to) = (record.message.sid.clone(), record.message.to.clone());
    lock(&state.messages).push(record);
    // Test credentials never move past `queued` and never call back.
    if account.kind == AccountKind::Live {
        callbacks::schedule(state, sid, state.outcome_for(&to));
    }
    Ok((StatusCode::CREATED, Json(resource)))
}

/// The account's messages, newest first, filtered and paged as Twilio does.
async fn list(
    State(state): State<Arc<SimState>>,
    Path(account_sid): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<MessagePage>, ApiError> {
    let account = authorize(&state, &account_sid, &headers, uri.path())?;
    if account.kind == AccountKind::Test {
        return Err(ApiError::not_for_test_credentials());
    }
    let query = ListQuery::parse(uri.query())?;
    let messages = lock(&state.messages);
    list::page(&messages, &account.sid, &query, uri.path()).map(Json)
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
