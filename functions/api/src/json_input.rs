//! Reading request bodies (JSON objects only) and query strings, with the name or path of the
//! field at fault in every error.

use axum::body::Bytes;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// Parses a JSON object into `T`; a type or value error names the field (`phones[0].kind`).
pub fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, Problem> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(Problem::malformed_json)?;
    if !value.is_object() {
        return Err(Problem::malformed_json("expected a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let detail = e.into_inner().to_string();
        // serde reports a missing field at its parent's path; name the field itself.
        let missing = detail.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
        let field = match (path.as_str(), missing) {
            (".", Some(name)) => name.to_owned(),
            (_, Some(name)) => format!("{path}.{name}"),
            (".", None) => "(body)".to_owned(),
            _ => path,
        };
        Problem::invalid_field(field, detail)
    })
}

/// A query string read into `T`; a missing or unreadable parameter is a 422 naming it.
pub struct ValidQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ValidQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(ValidQuery).map_err(|e| {
            let path = e.path().to_string();
            let detail = e.into_inner().to_string();
            let missing = detail.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
            let field = match (path.as_str(), missing) {
                (_, Some(name)) => name.to_owned(),
                (".", None) => "(query)".to_owned(),
                _ => path,
            };
            Problem::invalid_field(field, format!("Query parameter: {detail}."))
        })
    }
}
