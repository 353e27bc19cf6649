//! How each kind of clinic record is read from the API: the input's shape and its checks.

use serde::Deserialize;
use shared::appointment_types::{AppointmentType, SmsTemplate};
use shared::businesses::Business;
use shared::clinic::{Connection, Preference, Role, SendMode, User};
use shared::contacts::{Contact, ContactPhone, Group, PhoneKind};
use shared::ids::ConnectionId;
use shared::phone::E164;
use shared::reminder_window::{ReminderWindow, WindowState};
use shared::sender_claims::{self, ClaimError};
use shared::services::Services;
use shared::templates::TemplateBody;
use shared::twilio::client::SenderId;

use crate::problem::Problem;
use crate::records::{InputContext, Resource};

pub(crate) fn required_text(field: &'static str, value: &str) -> Result<String, Problem> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Problem::invalid_field(field, format!("`{field}` must not be empty.")));
    }
    if trimmed.chars().count() > 200 {
        return Err(Problem::invalid_field(field, format!("`{field}` is longer than 200 characters.")));
    }
    Ok(trimmed.to_owned())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessInput {
    name: String,
    time_zone: String,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default = "yes")]
    reminders_enabled: bool,
    window: ReminderWindow,
    #[serde(default)]
    send_mode_override: Option<SendMode>,
}

fn yes() -> bool {
    true
}

impl Resource for Business {
    const PATH: &'static str = "businesses";
    const NOUN: &'static str = "business";
    const ADMIN_WRITES: bool = true;
    type Input = BusinessInput;

    async fn from_input(input: BusinessInput, id: String, ctx: &InputContext<'_>) -> Result<Self, Problem> {
        let tz: chrono_tz::Tz = input.time_zone.parse().map_err(|_| {
            Problem::invalid_field(
                "time_zone",
                format!("{} is not an IANA time zone such as America/New_York.", input.time_zone),
            )
        })?;
        // A window already open when the business is saved counts from its opening today.
        let next_window_opening = match input.window.state_at(tz, ctx.now) {
            WindowState::Open { opened_at, .. } => opened_at,
            WindowState::Closed { next_opening } => next_opening,
        };
        if input.phone.as_ref().is_some_and(|p| p.chars().count() > 40) {
            return Err(Problem::invalid_field("phone", "A phone number has at most 40 characters."));
        }
        Ok(Business {
            id,
            clinic_id: ctx.clinic.id.clone(),
            name: required_text("name", &input.name)?,
            time_zone: tz.name().to_owned(),
            phone: input.phone,
            reminders_enabled: input.reminders_enabled,
            window: input.window,
            send_mode_override: input.send_mode_override,
            next_window_opening,
        })
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneInput {
    kind: PhoneKind,
    number: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    phones: Vec<PhoneInput>,
    #[serde(default)]
    reminder_preference: Option<Preference>,
    #[serde(default)]
    group_ids: Vec<String>,
}

impl Resource for Contact {
    const PATH: &'static str = "contacts";
    const NOUN: &'static str = "contact";
    const ADMIN_WRITES: bool = false;
    type Input = ContactInput;

    async fn from_input(input: ContactInput, id: String, ctx: &InputContext<'_>) -> Result<Self, Problem> {
        if input.phones.len() > 10 {
            return Err(Problem::invalid_field("phones", "A contact has at most 10 phone numbers."));
        }
        for (i, phone) in input.phones.iter().enumerate() {
            if phone.number.chars().count() > 40 {
                return Err(Problem::invalid_field(
                    format!("phones[{i}].number"),
                    "A phone number has at most 40 characters.",
                ));
            }
        }
        if input.last_name.chars().count() > 200 {
            return Err(Problem::invalid_field("last_name", "`last_name` is longer than 200 characters."));
        }
        if input.group_ids.len() > 50 {
            return Err(Problem::invalid_field("group_ids", "A contact belongs to at most 50 groups."));
        }
        let country = ctx.clinic.country().ok();
        for group in &input.group_ids {
            if ctx.services.clinics.record::<Group>(&ctx.clinic.id, group).await?.is_none() {
                return Err(Problem::invalid_field("group_ids", format!("No group {group} exists for this clinic.")));
            }
        }
        Ok(Contact {
            id,
            clinic_id: ctx.clinic.id.clone(),
            first_name: required_text("first_name", &input.first_name)?,
            last_name: input.last_name.trim().to_owned(),
            // Numbers that cannot be made valid are kept as entered and flagged, never dropped.
            phones: input.phones.iter().map(|p| ContactPhone::new(p.kind, &p.number, country)).collect(),
            reminder_preference: input.reminder_preference,
            group_ids: input.group_ids,
            created_at: ctx.now,
        })
    }

    fn keep_from(&mut self, existing: &Self) {
        self.created_at = existing.created_at;
    }

    /// Shows, beside the record, which numbers could not be made valid and why.
    fn view(&self) -> serde_json::Value {
        let mut view = serde_json::to_value(self).unwrap_or_default();
        let warnings: Vec<_> = self
            .phones
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                p.problem.as_ref().map(|problem| {
                    serde_json::json!({
                        "field": format!("phones[{i}].number"),
                        "problem": problem,
                        "detail": format!("\"{}\" was kept as entered but cannot receive texts until it is corrected.", p.entered),
                    })
                })
            })
            .collect();
        if let Some(object) = view.as_object_mut() {
            object.insert("warnings".into(), warnings.into());
        }
        view
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    name: String,
}

impl Resource for Group {
    const PATH: &'static str = "groups";
    const NOUN: &'static str = "group";
    const ADMIN_WRITES: bool = false;
    type Input = GroupInput;

    async fn from_input(input: GroupInput, id: String, ctx: &InputContext<'_>) -> Result<Self, Problem> {
        Ok(Group { id, clinic_id: ctx.clinic.id.clone(), name: required_text("name", &input.name)? })
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    name: String,
    body: String,
}

impl Resource for SmsTemplate {
    const PATH: &'static str = "templates";
    const NOUN: &'static str = "template";
    const ADMIN_WRITES: bool = true;
    type Input = TemplateInput;

    async fn from_input(input: TemplateInput, id: String, ctx: &InputContext<'_>) -> Result<Self, Problem> {
        let body = TemplateBody::parse(&input.body).map_err(|e| Problem::invalid_field("body", e.to_string()))?;
        Ok(SmsTemplate { id, clinic_id: ctx.clinic.id.clone(), name: required_text("name", &input.name)?, body })
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointmentTypeInput {
    name: String,
    #[serde(default)]
    reminder_template_id: Option<String>,
}

impl Resource for AppointmentType {
    const PATH: &'static str = "appointment-types";
    const NOUN: &'static str = "appointment type";
    const ADMIN_WRITES: bool = true;
    type Input = AppointmentTypeInput;

    async fn from_input(input: AppointmentTypeInput, id: String, ctx: &InputContext<'_>) -> Result<Self, Problem> {
        if let Some(template) = &input.reminder_template_id
            && ctx.services.clinics.record::<SmsTemplate>(&ctx.clinic.id, template).await?.is_none()
        {
            return Err(Problem::invalid_field(
                "reminder_template_id",
                format!("No template {template} exists for this clinic."),
            ));
        }
        Ok(AppointmentType {
            id,
            clinic_id: ctx.clinic.id.clone(),
            name: required_text("name", &input.name)?,
            reminder_template_id: input.reminder_template_id,
        })
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    name: String,
    role: Role,
    /// Any `u32`: utoipa says `int32` for one, whose range ends at 2^31 - 1.
    #[serde(default)]
    #[schema(format = Int64, maximum = 4294967295.0)]
    daily_allowance: Option<u32>,
}

impl Resource for User {
    const PATH: &'static str = "users";
    const NOUN: &'static str = "user";
    const ADMIN_WRITES: bool = true;
    type Input = UserInput;

    async fn from_input(input: UserInput, id: String, ctx: &InputContext<'_>) -> Result<Self, Problem> {
        Ok(User {
            id,
            clinic_id: ctx.clinic.id.clone(),
            name: required_text("name", &input.name)?,
            role: input.role,
            daily_allowance: input.daily_allowance,
        })
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionInput {
    label: String,
    /// A Twilio number in E.164, or a Messaging Service SID (`MG…`).
    sender: String,
    #[serde(default)]
    pool_numbers: Vec<String>,
    mps: u32,
    #[serde(default = "yes")]
    enabled: bool,
}

impl Resource for Connection {
    const PATH: &'static str = "connections";
    const NOUN: &'static str = "connection";
    const ADMIN_WRITES: bool = true;
    type Input = ConnectionInput;

    /// Twilio's last error stays until a text goes through, and when Twilio last reached us
    /// for the connection stays true, whatever an admin edits.
    fn keep_from(&mut self, existing: &Self) {
        self.last_error = existing.last_error.clone();
        self.last_inbound = existing.last_inbound.clone();
        self.last_status_callback_at = existing.last_status_callback_at;
    }

    /// Inbound texts are routed by the number they were sent to, so no other connection (of
    /// any clinic) may answer on this one's numbers.
    async fn claim(&self, previous: Option<&Self>, services: &Services) -> Result<(), Problem> {
        sender_claims::claim(&services.clinics, self, previous).await.map_err(|e| match e {
            ClaimError::Taken { field, own_connection } => Problem::sender_taken(field, own_connection),
            ClaimError::Store(cause) => cause.into(),
        })
    }

    async fn release(from: &Self, to: Option<&Self>, services: &Services) {
        sender_claims::release(&services.clinics, from, to).await;
    }

    async fn from_input(input: ConnectionInput, id: String, ctx: &InputContext<'_>) -> Result<Self, Problem> {
        let sender_text = input.sender.trim();
        let sender =
            if let Some(hex) = sender_text.strip_prefix("MG") {
                let well_formed = hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit());
                if !well_formed {
                    return Err(Problem::invalid_field(
                        "sender",
                        "A Messaging Service SID is MG followed by 32 hex digits.",
                    ));
                }
                SenderId::MessagingService(sender_text.to_owned())
            } else {
                SenderId::Number(E164::parse(sender_text, None).map_err(|e| {
                    Problem::invalid_field("sender", format!("The sending number cannot be used: {e}."))
                })?)
            };
        let mut pool_numbers = Vec::new();
        for (i, number) in input.pool_numbers.iter().enumerate() {
            pool_numbers.push(
                E164::parse(number, None)
                    .map_err(|e| Problem::invalid_field(format!("pool_numbers[{i}]"), format!("{e}.")))?,
            );
        }
        if !(1..=1000).contains(&input.mps) {
            return Err(Problem::invalid_field("mps", "`mps` (segments per second) must be between 1 and 1000."));
        }
        Ok(Connection {
            id: ConnectionId::new(id),
            clinic_id: ctx.clinic.id.clone(),
            label: required_text("label", &input.label)?,
            sender,
            pool_numbers,
            mps: input.mps,
            enabled: input.enabled,
            last_error: None,
            last_inbound: None,
            last_status_callback_at: None,
        })
    }
}
