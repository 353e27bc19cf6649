//! Staff actions on texts already created: `POST /v1/messages/approve` (Send Now),
//! `PATCH /v1/messages/{id}` and `POST /v1/messages/{id}/cancel` for a text not yet queued,
//! `POST /v1/messages/resend` for failed texts, replies, forwarding and test texts.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use shared::mailbox_actions::{self, ActionError, ActionOutcome, EditRefused, Outcome};
use shared::message::{Message, MessageBody};
use shared::outbound::{self, CreateTextError, ReplyOutcomeKind};
use shared::recipients::Refusal;
use shared::scheduled_texts;
use shared::services::Services;

use crate::auth::Caller;
use crate::json_input;
use crate::problem::Problem;
use crate::views::MessageView;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ids {
    ids: Vec<String>,
    #[serde(default)]
    confirm: bool,
}

impl From<ActionError> for Problem {
    fn from(err: ActionError) -> Self {
        match err {
            ActionError::Selection(why) => why.into(),
            ActionError::Store(cause) => Problem::unavailable(&cause),
            ActionError::Queue(cause) => Problem::unavailable(&cause),
        }
    }
}

/// 200 with the outcome per id when any was acted on; when none was: 404 if none exists for
/// this clinic, else 409 (none was in a state the action applies to).
fn answer(outcomes: Vec<ActionOutcome>, summary: serde_json::Value) -> Result<impl IntoResponse, Problem> {
    if outcomes.iter().any(ActionOutcome::done) {
        let mut body = summary;
        body["outcomes"] = json!(outcomes);
        return Ok(Json(body));
    }
    let outcomes_json = json!(outcomes);
    if outcomes.iter().all(|o| o.outcome == Outcome::NotFound) {
        return Err(Problem::not_found("None of the messages exists for this clinic.").with("outcomes", outcomes_json));
    }
    Err(Problem::conflict_on(
        "ids",
        "not-applicable",
        "Nothing to do for these messages",
        "None of the messages is in a state this action applies to; `outcomes` says why for each.",
    )
    .with("outcomes", outcomes_json))
}

/// `{ids}` → each text awaiting approval is sent now (or at its time), once.
pub async fn approve(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let request: Ids = json_input::parse(&body)?;
    let outcomes = mailbox_actions::approve(&services, &caller, &request.ids).await?;
    let approved = outcomes.iter().filter(|o| o.done()).count();
    answer(outcomes, json!({ "approved": approved }))
}

/// `{ids}` → how many would be resent and which cannot be, and why; `{ids, confirm: true}` →
/// each goes back to Pending with a new attempt, to the contact's current mobile number.
pub async fn resend(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let request: Ids = json_input::parse(&body)?;
    let outcomes = mailbox_actions::resend(&services, &caller, &request.ids, request.confirm).await?;
    let done = outcomes.iter().filter(|o| o.done()).count();
    let summary = if request.confirm {
        json!({ "resent": done })
    } else {
        json!({ "would_resend": done, "confirm": "Call again with \"confirm\": true to resend them." })
    };
    answer(outcomes, summary)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    send_at: Option<String>,
    body: Option<String>,
}

/// `{send_at?, body?}` → the text not yet queued, changed.
pub async fn edit(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let edit: Edit = json_input::parse(&body)?;
    let send_at = match edit.send_at.as_deref() {
        Some(at) => Some(
            scheduled_texts::parse_send_at(at, services.clock.now())
                .map_err(|why| Problem::invalid_field("send_at", format!("`send_at`: {why}.")))?,
        ),
        None => None,
    };
    let body = match edit.body.as_deref() {
        Some(text) => Some(MessageBody::parse(text).map_err(|why| Problem::invalid_field("body", format!("{why}.")))?),
        None => None,
    };
    if send_at.is_none() && body.is_none() {
        return Err(Problem::invalid_field("send_at", "Give a new `send_at`, a new `body`, or both."));
    }
    let edited = mailbox_actions::edit_scheduled(&services, &caller, &id, send_at, body).await?;
    shown(&id, edited)
}

/// The text not yet queued is called off (`cancelled`).
pub async fn cancel(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let cancelled = mailbox_actions::cancel(&services, &caller, &id).await?;
    shown(&id, cancelled)
}

fn shown(id: &str, result: Result<Message, EditRefused>) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    match result {
        Ok(message) => {
            let view = serde_json::to_value(MessageView::from(&message)).map_err(|e| Problem::unavailable(&e))?;
            Ok((StatusCode::OK, Json(view)))
        }
        Err(EditRefused::NotFound) => Err(Problem::not_found(format!("No message {id} exists for this clinic."))),
        Err(refused @ EditRefused::AlreadyQueued(_)) => {
            Err(Problem::conflict("already-queued", "The text can no longer be changed", format!("{refused}.")))
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    ids: Vec<String>,
    body: String,
}

/// `{ids: [received texts], body}` → one reply per distinct sender, each in its conversation.
pub async fn reply(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let request: Reply = json_input::parse(&body)?;
    let outcomes = outbound::reply(&services, &caller, &request.ids, &request.body).await?;
    let replied = outcomes.iter().filter(|o| o.outcome == ReplyOutcomeKind::Replied).count();
    if replied > 0 {
        return Ok((StatusCode::ACCEPTED, Json(json!({ "replied": replied, "outcomes": outcomes }))));
    }
    let outcomes_json = json!(outcomes);
    if outcomes.iter().all(|o| o.outcome == ReplyOutcomeKind::NotFound) {
        return Err(Problem::not_found("None of the texts exists for this clinic.").with("outcomes", outcomes_json));
    }
    Err(Problem::invalid_field("ids", "None of the texts could be answered; `outcomes` says why for each.")
        .with("outcomes", outcomes_json))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    recipients: Vec<String>,
    /// The words to send, edited; the original's when absent.
    body: Option<String>,
}

/// `{recipients: [contact ids…], body?}` → the text forwarded, one outcome per recipient. One
/// text at a time: a request naming several (`ids`) is refused.
pub async fn forward(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let raw: serde_json::Value = serde_json::from_slice(&body).map_err(Problem::malformed_json)?;
    if raw.get("ids").is_some() {
        return Err(Problem::invalid_field(
            "ids",
            "Forwarding several texts at once is not supported; forward one text at a time, to one or many contacts.",
        ));
    }
    let request: Forward = json_input::parse(&body)?;
    let outcomes = outbound::forward(&services, &caller, &id, request.recipients, request.body)
        .await?
        .ok_or_else(|| Problem::not_found(format!("No message {id} exists for this clinic.")))?;
    let accepted = outcomes.iter().filter(|o| o.accepted()).count();
    Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": accepted, "outcomes": outcomes }))))
}

#[derive(Deserialize, utoipa::ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TestText {
    body: Option<String>,
}

/// `POST /v1/contacts/{id}/test-sms` `{body?}` → a test text to the contact's mobile number now.
pub async fn test_text(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let request: TestText = if body.is_empty() { TestText::default() } else { json_input::parse(&body)? };
    match outbound::test_text(&services, &caller, &id, request.body.as_deref()).await? {
        Ok(message) => {
            let view = serde_json::to_value(MessageView::from(&message)).map_err(|e| Problem::unavailable(&e))?;
            Ok((StatusCode::ACCEPTED, Json(view)))
        }
        Err(Refusal::UnknownRecipient) => Err(Problem::not_found(format!("No contact {id} exists for this clinic."))),
        Err(Refusal::NoMobileNumber) => Err(Problem::conflict_on(
            "phones",
            "no-mobile-number",
            "The contact has no mobile number",
            "Add a mobile number to the contact, then send the test text.",
        )),
        Err(Refusal::InvalidNumber) => Err(Problem::conflict_on(
            "phones",
            "invalid-number",
            "The contact's mobile number is not valid",
            "Correct the contact's mobile number, then send the test text.",
        )),
        Err(Refusal::OptedOut) => Err(CreateTextError::OptedOut.into()),
        Err(Refusal::AllowanceExhausted) => Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "allowance-exhausted",
            "Daily SMS allowance used up",
            "Your daily SMS allowance is used up; it resets at midnight, clinic time.",
        )),
    }
}
