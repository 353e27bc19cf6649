//! The demo clinic the local stack starts with, created by the same code as the operator command.

use chrono::{DateTime, Utc};
use shared::api_keys;
use shared::clinic::{Clinic, Connection, Role, User};
use shared::clinics_table::ClinicsTable;
use shared::counters_table::CountersTable;
use shared::ids::{ClinicId, UserId};
use shared::onboarding::{self, NewClinic};

pub struct SeededClinic {
    pub clinic: Clinic,
    pub connection: Connection,
    /// The admin key in full (shown once).
    pub api_key: String,
}

/// Credits a new demo clinic starts with.
pub const STARTING_CREDITS: u64 = 1000;

/// Creates a clinic with a number connection, an admin user and key, and starting credits.
/// `key_seed` makes the key reproducible (demo data, sample events); `None` makes a random one.
pub async fn clinic_with_connection(
    clinics: &ClinicsTable,
    counters: &CountersTable,
    clinic_id: &str,
    sender_number: &str,
    key_seed: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<SeededClinic> {
    let new = NewClinic {
        id: clinic_id.into(),
        name: "Demo Veterinary Clinic".into(),
        default_country: "US".into(),
        time_zone: "America/New_York".into(),
        sender: sender_number.into(),
        mps: 10,
        starting_credits: STARTING_CREDITS,
    };
    let done = onboarding::create_clinic(clinics, counters, new, now, key_seed).await?;
    Ok(SeededClinic { clinic: done.clinic, connection: done.connection, api_key: done.admin_key.full_key })
}

/// The staff user `front-desk` of `clinic_id` and its API key, reproducible from `key_seed`:
/// the user the sample events (`events/`) make their API requests as.
pub async fn front_desk(
    clinics: &ClinicsTable,
    clinic_id: &str,
    key_seed: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let key = api_keys::issue(ClinicId::new(clinic_id), UserId::new("front-desk"), Role::Staff, now, Some(key_seed));
    clinics.put_api_key(&key.record).await?;
    let user = User {
        id: "front-desk".into(),
        clinic_id: ClinicId::new(clinic_id),
        name: "Front desk".into(),
        role: Role::Staff,
        daily_allowance: None,
    };
    clinics.put_record(&user).await?;
    Ok(())
}
