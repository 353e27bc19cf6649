//! Creating a clinic: its profile, its first Twilio connection, its first admin and that admin's
//! API key. Used by the operator command (`cargo xtask create-clinic`) and the local demo seed;
//! there is no public endpoint for it.

use chrono::{DateTime, Utc};

use crate::api_keys::{self, IssuedKey};
use crate::clinic::{Clinic, Connection, Preference, Role, SendMode, User, default_confirmation_keywords};
use crate::clinics_table::ClinicsTable;
use crate::counters_table::CountersTable;
use crate::dynamo::StoreError;
use crate::ids::{ClinicId, ConnectionId, UserId};
use crate::phone::{Country, E164};
use crate::sender_claims::ClaimError;
use crate::twilio::client::SenderId;

#[derive(Debug, Clone)]
pub struct NewClinic {
    pub id: String,
    pub name: String,
    pub default_country: String,
    pub time_zone: String,
    /// A Twilio number (E.164) or Messaging Service SID (`MG…`).
    pub sender: String,
    pub mps: u32,
    pub starting_credits: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    #[error("the clinic id must be 1-40 lowercase letters, digits or dashes")]
    BadId,
    #[error("{0} is not a two-letter country code")]
    BadCountry(String),
    #[error("{0} is not an IANA time zone")]
    BadTimeZone(String),
    #[error("the sender must be an E.164 Twilio number or a Messaging Service SID: {0}")]
    BadSender(String),
    #[error("a clinic with the id {0} already exists")]
    Exists(String),
    #[error("the sender {0} is already another connection's")]
    SenderTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Onboarded {
    pub clinic: Clinic,
    pub connection: Connection,
    /// The admin key in full: shown once, never stored.
    pub admin_key: IssuedKey,
}

/// Creates the clinic; fails without writing anything if any value is invalid or the id is taken.
/// `key_seed` makes the admin key reproducible (local demo and samples only).
pub async fn create_clinic(
    clinics: &ClinicsTable,
    counters: &CountersTable,
    new: NewClinic,
    now: DateTime<Utc>,
    key_seed: Option<&str>,
) -> Result<Onboarded, OnboardingError> {
    let id_ok = (1..=40).contains(&new.id.len())
        && new.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
        return Err(OnboardingError::BadId);
    }
    new.default_country.parse::<Country>().map_err(|_| OnboardingError::BadCountry(new.default_country.clone()))?;
    new.time_zone.parse::<chrono_tz::Tz>().map_err(|_| OnboardingError::BadTimeZone(new.time_zone.clone()))?;
    let sender = match new.sender.strip_prefix("MG") {
        Some(hex) if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
            SenderId::MessagingService(new.sender.clone())
        }
        _ => SenderId::Number(E164::parse(&new.sender, None).map_err(|e| OnboardingError::BadSender(e.to_string()))?),
    };
    let clinic_id = ClinicId::new(new.id.as_str());
    if clinics.clinic(&clinic_id).await?.is_some() {
        return Err(OnboardingError::Exists(new.id));
    }
    let connection = Connection {
        id: ConnectionId::new("main"),
        clinic_id: clinic_id.clone(),
        label: "Main number".into(),
        sender,
        pool_numbers: vec![],
        mps: new.mps.max(1),
        enabled: true,
        last_error: None,
        last_inbound: None,
        last_status_callback_at: None,
    };
    let clinic = Clinic {
        id: clinic_id.clone(),
        name: new.name,
        default_country: new.default_country.to_ascii_uppercase(),
        time_zone: new.time_zone,
        default_connection_id: Some(connection.id.clone()),
        two_way_texting: true,
        send_mode: SendMode::Immediately,
        low_credit_threshold: 50,
        allowances_enabled: false,
        confirmation_keywords: default_confirmation_keywords(),
        default_reminder_preference: Preference::Sms,
        quiet_hours: None,
        created_at: now,
    };
    let admin = User {
        id: "admin".into(),
        clinic_id: clinic_id.clone(),
        name: "Administrator".into(),
        role: Role::Admin,
        daily_allowance: None,
    };
    let admin_key = api_keys::issue(clinic_id.clone(), UserId::new(admin.id.as_str()), Role::Admin, now, key_seed);
    match crate::sender_claims::claim(clinics, &connection, None).await {
        Ok(()) => {}
        Err(ClaimError::Taken { .. }) => return Err(OnboardingError::SenderTaken(new.sender)),
        Err(ClaimError::Store(e)) => return Err(e.into()),
    }
    clinics.put_record(&connection).await?;
    clinics.put_record(&admin).await?;
    clinics.put_api_key(&admin_key.record).await?;
    if new.starting_credits > 0 {
        counters.add_credits(&clinic_id, new.starting_credits).await?;
    }
    // The profile last: a clinic is visible only once everything it needs exists.
    clinics.put_clinic(&clinic).await?;
    Ok(Onboarded { clinic, connection, admin_key })
}
