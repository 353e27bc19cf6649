//! `/v1/conversations`: the clinic's conversations with patients (open first, newest activity
//! first), one with its messages, closing one, and linking an unknown-contact one to a contact.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use serde::Deserialize;
use shared::clinic_records::ListError;
use shared::contacts::Contact;
use shared::conversations_table::LinkError;
use shared::services::Services;

use crate::auth::Caller;
use crate::json_input::{self, ValidQuery};
use crate::problem::Problem;
use crate::records::ListQuery;
use crate::views::MessageView;

fn not_found(id: &str) -> Problem {
    Problem::not_found(format!("No conversation {id} exists for this clinic."))
}

pub async fn list(
    State(services): State<Services>,
    Caller(caller): Caller,
    ValidQuery(query): ValidQuery<ListQuery>,
) -> Result<impl IntoResponse, Problem> {
    let limit = query.limit()?;
    let page = services.conversations.list(&caller.clinic_id, query.cursor(), limit).await.map_err(|e| match e {
        ListError::BadCursor => Problem::invalid_field("cursor", "The cursor is not a cursor of this list."),
        ListError::Store(e) => e.into(),
    })?;
    Ok(Json(serde_json::json!({ "items": page.items, "next_cursor": page.next_cursor })))
}

pub async fn show(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let conversation = services.conversations.get(&caller.clinic_id, &id).await?.ok_or_else(|| not_found(&id))?;
    let messages = services.conversations.messages(&conversation.id).await?;
    let shown: Vec<MessageView<'_>> =
        messages.iter().filter(|m| m.clinic_id == caller.clinic_id).map(MessageView::from).collect();
    let mut view = serde_json::to_value(&conversation).unwrap_or_default();
    if let Some(object) = view.as_object_mut() {
        object.insert("messages".into(), serde_json::to_value(shown).unwrap_or_default());
    }
    Ok(Json(view))
}

pub async fn close(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let closed = services
        .conversations
        .close(&caller.clinic_id, &id, services.clock.now())
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(closed))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkInput {
    contact_id: String,
}

pub async fn link(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    let input: LinkInput = json_input::parse(&body)?;
    let contact: Option<Contact> = services.clinics.record(&caller.clinic_id, &input.contact_id).await?;
    if contact.is_none() {
        return Err(Problem::invalid_field("contact_id", format!("No contact {} exists.", input.contact_id)));
    }
    match services.conversations.link(&caller.clinic_id, &id, &input.contact_id).await {
        Ok(linked) => Ok(Json(linked)),
        Err(LinkError::Missing) => Err(not_found(&id)),
        Err(LinkError::AlreadyLinked) => Err(Problem::conflict(
            "already-linked",
            "The conversation already has a contact",
            "Only a conversation with an unknown number can be linked to a contact.",
        )),
        Err(LinkError::ContactBusy) => Err(Problem::conflict_on(
            "contact_id",
            "contact-has-active-conversation",
            "The contact already has an active conversation",
            "Close the contact's active conversation first, then link this one.",
        )),
        Err(LinkError::Store(e)) => Err(e.into()),
    }
}
