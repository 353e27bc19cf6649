//! The mailbox: `GET /v1/messages?view=` (a page of a view), `GET /v1/messages/search`, and
//! `POST /v1/messages/delete` / `POST /v1/messages/restore` with `{"ids": [...]}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::ids::{MessageId, UserId};
use shared::mailbox::MessagePage;
use shared::mailbox_views::{
    DEFAULT_PAGE, MAX_PAGE, MailboxAction, Search, SearchRangeError, Verdict, View, selection, verdict,
};
use shared::message_status::MessageStatus;
use shared::phone::E164;
use shared::services::Services;

use crate::auth::Caller;
use crate::json_input::{self, ValidQuery};
use crate::problem::Problem;
use crate::records::clinic_of;
use crate::views::MessageView;

#[derive(Deserialize)]
pub struct ViewQuery {
    view: Option<String>,
    limit: Option<i32>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
pub struct SearchQuery {
    from: Option<String>,
    to: Option<String>,
    contact_id: Option<String>,
    number: Option<String>,
    status: Option<String>,
    error_code: Option<String>,
    user: Option<String>,
    text: Option<String>,
    limit: Option<i32>,
    cursor: Option<String>,
}

/// The page size asked for: 50 unless given, 1 to 100.
fn page_size(limit: Option<i32>) -> Result<usize, Problem> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| Problem::invalid_field("limit", format!("`limit` must be between 1 and {MAX_PAGE}."))),
    }
}

/// The id a page continues below; an empty cursor is the first page.
fn cursor(cursor: Option<&str>) -> Result<Option<MessageId>, Problem> {
    match cursor.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => c.parse().map(Some).map_err(|_| {
            Problem::invalid_field("cursor", "The cursor is not one this list gave out; use `next_cursor` as given.")
        }),
    }
}

/// A parameter given with something in it.
fn given(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn page_json(page: &MessagePage) -> Value {
    let items: Vec<MessageView<'_>> = page.items.iter().map(MessageView::from).collect();
    json!({ "items": items, "next_cursor": page.next_cursor.map(|id| id.to_string()) })
}

/// `GET /v1/messages?view=<view>&limit=&cursor=`: newest first.
pub async fn list(
    State(services): State<Services>,
    Caller(caller): Caller,
    ValidQuery(query): ValidQuery<ViewQuery>,
) -> Result<impl IntoResponse, Problem> {
    let view = match given(query.view.as_ref()) {
        None => View::All,
        Some(name) => View::parse(name).ok_or_else(|| {
            let names: Vec<&str> = View::ALL.iter().map(|v| v.as_str()).collect();
            Problem::invalid_field("view", format!("`view` must be one of {}.", names.join(", ")))
        })?,
    };
    let limit = page_size(query.limit)?;
    let cursor = cursor(query.cursor.as_deref())?;
    let page = services.messages.view_page(&caller.clinic_id, view, cursor, limit, services.clock.now()).await?;
    let mut body = page_json(&page);
    body["view"] = json!(view.as_str());
    Ok(Json(body))
}

fn instant(name: &'static str, value: Option<&String>) -> Result<DateTime<Utc>, Problem> {
    let value = given(value).ok_or_else(|| {
        Problem::invalid_field(name, format!("`{name}` is required: an RFC 3339 time such as 2026-03-01T00:00:00Z."))
    })?;
    DateTime::parse_from_rfc3339(value).map(|t| t.to_utc()).map_err(|_| {
        Problem::invalid_field(name, format!("`{name}` must be an RFC 3339 time such as 2026-03-01T00:00:00Z."))
    })
}

/// `GET /v1/messages/search?from=&to=&…`: the clinic's messages (deleted ones aside) created in
/// the range, at most 31 days, newest first.
pub async fn search(
    State(services): State<Services>,
    Caller(caller): Caller,
    ValidQuery(query): ValidQuery<SearchQuery>,
) -> Result<impl IntoResponse, Problem> {
    let from = instant("from", query.from.as_ref())?;
    let to = instant("to", query.to.as_ref())?;
    let mut search = Search::between(from, to).map_err(|e| match e {
        SearchRangeError::Reversed => Problem::invalid_field("to", "`to` must not be before `from`."),
        SearchRangeError::TooLong => {
            Problem::invalid_field("to", "A search covers at most 31 days from `from` to `to`; search in parts.")
        }
    })?;
    let limit = page_size(query.limit)?;
    let cursor = cursor(query.cursor.as_deref())?;
    search.contact_id = given(query.contact_id.as_ref()).map(str::to_owned);
    search.user = given(query.user.as_ref()).map(UserId::new);
    search.text = given(query.text.as_ref()).map(str::to_owned);
    if let Some(status) = given(query.status.as_ref()) {
        let found = MessageStatus::ALL.into_iter().find(|s| s.as_str() == status);
        search.status = Some(found.ok_or_else(|| {
            let names: Vec<&str> = MessageStatus::ALL.iter().map(|s| s.as_str()).collect();
            Problem::invalid_field("status", format!("`status` must be one of {}.", names.join(", ")))
        })?);
    }
    if let Some(code) = given(query.error_code.as_ref()) {
        let code = code.parse().map_err(|_| {
            Problem::invalid_field("error_code", "`error_code` must be a Twilio error code such as 30003.")
        })?;
        search.error_code = Some(code);
    }
    if let Some(number) = given(query.number.as_ref()) {
        let clinic = clinic_of(&services, &caller).await?;
        let number = E164::parse(number, clinic.country().ok())
            .map_err(|why| Problem::invalid_field("number", format!("The phone number cannot be used: {why}.")))?;
        search.number = Some(number);
    }
    let page = services.messages.search(&caller.clinic_id, &search, cursor, limit).await?;
    Ok(Json(page_json(&page)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectionInput {
    ids: Vec<String>,
}

pub async fn delete(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    mark(&services, &caller, &body, MailboxAction::Delete).await
}

pub async fn restore(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    mark(&services, &caller, &body, MailboxAction::Restore).await
}

/// 200 with each id's outcome when at least one changed; otherwise 404 when no id is the
/// clinic's, 409 when the clinic's were already as asked (each id's outcome in the problem too).
async fn mark(
    services: &Services,
    caller: &shared::clinic::Principal,
    body: &Bytes,
    action: MailboxAction,
) -> Result<impl IntoResponse + use<>, Problem> {
    let input: SelectionInput = json_input::parse(body)?;
    let ids = selection(&input.ids)?;
    let outcomes =
        services.messages.mark(&caller.clinic_id, &caller.user_id, &ids, action, services.clock.now()).await?;
    let results: Vec<Value> = outcomes.iter().map(|(id, outcome)| json!({ "id": id, "outcome": outcome })).collect();
    let kept: Vec<_> = outcomes.iter().map(|(_, outcome)| *outcome).collect();
    match verdict(&kept) {
        Verdict::Changed => Ok((StatusCode::OK, Json(json!({ "results": results })))),
        Verdict::NoneFound => Err(Problem::not_found(if ids.len() == 1 {
            "No such message exists for this clinic.".to_owned()
        } else {
            "None of the selected messages exists for this clinic.".to_owned()
        })
        .with("results", json!(results))),
        Verdict::NoneChanged => Err(match action {
            MailboxAction::Delete => Problem::conflict(
                "already-deleted",
                "Already deleted",
                "The selected messages are already deleted; nothing changed.",
            ),
            MailboxAction::Restore => Problem::conflict(
                "not-deleted",
                "Not deleted",
                "The selected messages are not deleted, so there is nothing to restore; nothing changed.",
            ),
        }
        .with("results", json!(results))),
    }
}
