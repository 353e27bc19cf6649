//! The demo clinic the local stack starts with: one clinic, one Twilio connection, one admin key.

use chrono::{DateTime, Utc};
use shared::api_keys;
use shared::clinic::{Clinic, Connection, Role};
use shared::clinics_table::ClinicsTable;
use shared::ids::{ClinicId, ConnectionId, UserId};
use shared::phone::E164;
use shared::twilio::client::SenderId;

pub struct SeededClinic {
    pub clinic: Clinic,
    pub connection: Connection,
    /// The admin key in full (shown once).
    pub api_key: String,
}

/// Creates a clinic with a number connection and an admin key. `key_seed` makes the key
/// reproducible (demo data, sample events); `None` makes a random one.
pub async fn clinic_with_connection(
    clinics: &ClinicsTable,
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
        created_at: now,
    };
    let key = api_keys::issue(clinic_id, UserId::new("admin"), Role::Admin, now, key_seed);
    clinics.put_clinic(&clinic).await?;
    clinics.put_connection(&connection).await?;
    clinics.put_api_key(&key.record).await?;
    Ok(SeededClinic { clinic, connection, api_key: key.full_key })
}
