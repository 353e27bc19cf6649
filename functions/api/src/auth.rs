//! The caller, from the `Authorization` header, for every `/v1` route.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use shared::access;
use shared::clinic::Principal;
use shared::services::Services;

use crate::problem::Problem;

pub struct Caller(pub Principal);

impl FromRequestParts<Services> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, services: &Services) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        Ok(Self(access::authenticate(&services.clinics, header).await?))
    }
}
