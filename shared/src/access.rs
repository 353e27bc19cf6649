//! Who is calling: an `Authorization: Bearer <api key>` header resolved to a clinic user.

use crate::api_keys::PresentedKey;
use crate::clinic::{Principal, User};
use crate::clinics_table::ClinicsTable;
use crate::dynamo::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("no API key was given")]
    Missing,
    #[error("the API key is not valid")]
    Invalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Resolves the value of an `Authorization` header.
pub async fn authenticate(clinics: &ClinicsTable, authorization: Option<&str>) -> Result<Principal, AccessError> {
    let header = authorization.map(str::trim).filter(|h| !h.is_empty()).ok_or(AccessError::Missing)?;
    let token = header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or(AccessError::Invalid)?;
    let presented = PresentedKey::parse(token).ok_or(AccessError::Invalid)?;
    let record = clinics.api_key(&presented.key_id).await?.ok_or(AccessError::Invalid)?;
    if !presented.matches(&record) {
        return Err(AccessError::Invalid);
    }
    // The user's current record decides: a deleted user's keys stop working, and a changed role
    // applies at once to every key the user has.
    let user: User = clinics.record(&record.clinic_id, record.user_id.as_str()).await?.ok_or(AccessError::Invalid)?;
    Ok(Principal { clinic_id: record.clinic_id, user_id: record.user_id, role: user.role })
}
