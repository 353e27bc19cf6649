//! API keys: `csk_<key id>_<secret>`. Only a SHA-256 of the secret is stored; the key id finds the
//! record with one read, and the secret is compared in constant time. Keys are random 256-bit
//! values, so a fast hash is enough (there is nothing to brute-force as with passwords).

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clinic::Role;
use crate::ids::{ClinicId, UserId};

const PREFIX: &str = "csk";

/// The stored form of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub key_id: String,
    pub clinic_id: ClinicId,
    pub user_id: UserId,
    pub role: Role,
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key as presented by a caller, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey {
    pub key_id: String,
    secret: String,
}

/// A freshly made key: the full text is shown once and never stored.
pub struct IssuedKey {
    pub full_key: String,
    pub record: ApiKeyRecord,
}

impl PresentedKey {
    /// Reads `csk_<id>_<secret>`; anything else is not one of our keys.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().splitn(3, '_');
        let (Some(PREFIX), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        let well_formed = |s: &str| !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric());
        (well_formed(id) && well_formed(secret)).then(|| Self { key_id: id.to_owned(), secret: secret.to_owned() })
    }

    /// Whether this key's secret matches the record (and the record is live).
    pub fn matches(&self, record: &ApiKeyRecord) -> bool {
        let presented = hash_secret(&self.secret);
        let same = presented.as_bytes().ct_eq(record.secret_sha256.as_bytes());
        bool::from(same) && record.key_id == self.key_id && record.revoked_at.is_none()
    }
}

/// Makes a new key for a user. `seed` fixes the key for reproducible demo data and samples;
/// production passes `None`.
pub fn issue(clinic_id: ClinicId, user_id: UserId, role: Role, now: DateTime<Utc>, seed: Option<&str>) -> IssuedKey {
    let (key_id, secret) = match seed {
        Some(seed) => (format!("{seed}key"), hex(&Sha256::digest(seed.as_bytes()))),
        None => (random_hex(8), random_hex(32)),
    };
    let record = ApiKeyRecord {
        key_id: key_id.clone(),
        clinic_id,
        user_id,
        role,
        secret_sha256: hash_secret(&secret),
        created_at: now,
        revoked_at: None,
    };
    IssuedKey { full_key: format!("{PREFIX}_{key_id}_{secret}"), record }
}

fn hash_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex(&buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued() -> IssuedKey {
        issue(ClinicId::new("c1"), UserId::new("u1"), Role::Admin, Utc::now(), None)
    }

    #[test]
    fn an_issued_key_matches_its_record_and_only_it() {
        let key = issued();
        let Some(presented) = PresentedKey::parse(&key.full_key) else { panic!("parses") };
        assert!(presented.matches(&key.record));
        assert!(!presented.matches(&issued().record));
        assert!(!key.record.secret_sha256.contains(&key.full_key[20..]));
    }

    #[test]
    fn revoked_or_altered_keys_fail() {
        let key = issued();
        let mut revoked = key.record.clone();
        revoked.revoked_at = Some(Utc::now());
        let Some(presented) = PresentedKey::parse(&key.full_key) else { panic!("parses") };
        assert!(!presented.matches(&revoked));
        let mut altered = key.full_key.clone();
        altered.pop();
        altered.push('x');
        assert!(PresentedKey::parse(&altered).is_some_and(|p| !p.matches(&key.record)));
    }

    #[test]
    fn malformed_keys_are_not_parsed() {
        for text in ["", "csk", "csk__abc", "abc_def_ghi", "csk_id_", "csk_i d_secret", "Bearer csk_a_b"] {
            assert!(PresentedKey::parse(text).is_none(), "{text:?}");
        }
    }

    #[test]
    fn seeded_keys_are_reproducible() {
        let a = issue(ClinicId::new("c"), UserId::new("u"), Role::Admin, Utc::now(), Some("demo"));
        let b = issue(ClinicId::new("c"), UserId::new("u"), Role::Admin, Utc::now(), Some("demo"));
        assert_eq!(a.full_key, b.full_key);
    }
}
