//! The demo clinic the local stack starts with: one clinic, one Twilio connection, one admin key.

use chrono::{DateTime, Utc};
use shared::api_keys;
use shared::clinic::{Clinic, Connection, Preference, Role, SendMode, User, default_confirmation_keywords};
use shared::clinics_table::ClinicsTable;
use shared::counters_table::CountersTable;
use shared::ids::{ClinicId, ConnectionId, UserId};
use shared::phone::E164;
use shared::twilio::client::SenderId;

pub struct SeededClinic {
    pub clinic: Clinic,
    pub connection: Connection,
    /// The admin key in full (shown once).
    pub api_key: String,
}

/// Credits a new demo clinic starts with.
pub const STARTING_CREDITS: u64 = 1000;

/// Creates a clinic with a number connection, an admin user and key, and starting credits. `key_seed` makes the key
/// reproducible (demo data, sample events); `None` makes a random one.
pub async fn clinic_with_connection(
    clinics: &ClinicsTable,
    counters: &CountersTable,
    clinic_id: &str,
    sender_number: &str,
    key_seed: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<SeededClinic> {
    let sender = E164::parse(sender_number, None).map_err(|e| anyhow::anyhow!("sender {sender_number}: {e}"))?;
    let clinic_id = ClinicId::new(clinic_id);
    let connection = Connection {
        id: ConnectionId::new("main"),
        clinic_id: clinic_id.clone(),
        label: "Main number".into(),
        sender: SenderId::Number(sender),
        pool_numbers: vec![],
        mps: 10,
        enabled: true,
    };
    let clinic = Clinic {
        id: clinic_id.clone(),
        name: "Demo Veterinary Clinic".into(),
        default_country: "US".into(),
        time_zone: "America/New_York".into(),
        default_connection_id: Some(connection.id.clone()),
        two_way_texting: true,
        send_mode: SendMode::Immediately,
        low_credit_threshold: 50,
        allowances_enabled: false,
        confirmation_keywords: default_confirmation_keywords(),
        default_reminder_preference: Preference::Sms,
        created_at: now,
    };
    let key = api_keys::issue(clinic_id, UserId::new("admin"), Role::Admin, now, key_seed);
    clinics.put_clinic(&clinic).await?;
    clinics.put_connection(&connection).await?;
    clinics.put_api_key(&key.record).await?;
    clinics
        .put_record(&User {
            id: "admin".into(),
            clinic_id: clinic.id.clone(),
            name: "Administrator".into(),
            role: Role::Admin,
            daily_allowance: None,
        })
        .await?;
    counters.add_credits(&clinic.id, STARTING_CREDITS).await?;
    Ok(SeededClinic { clinic, connection, api_key: key.full_key })
}
