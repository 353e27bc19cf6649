//! The clinic's records over HTTP, one generic set of handlers for every kind: list (cursor
//! pagination), create, read, replace, delete. Each kind says how its input becomes a record and
//! who may change it. Records live in the caller's clinic partition, so another clinic's id is
//! simply not found.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use shared::clinic::{Clinic, Principal, Role};
use shared::clinic_records::{ClinicRecord, ListError};
use shared::dynamo::StoreError;
use shared::services::Services;
use utoipa::openapi::path::HttpMethod;

use crate::auth::Caller;
use crate::endpoints::Endpoint;
use crate::json_input::{self, ValidQuery};
use crate::problem::Problem;

/// What a record's input is read against.
pub struct InputContext<'a> {
    pub services: &'a Services,
    pub clinic: &'a Clinic,
    pub now: DateTime<Utc>,
}

pub trait Resource: ClinicRecord {
    /// The collection's path segment, e.g. `businesses`.
    const PATH: &'static str;
    /// A person's word for one record, e.g. `business`.
    const NOUN: &'static str;
    /// Only admins may create, change or delete these.
    const ADMIN_WRITES: bool;
    type Input: DeserializeOwned + Send + utoipa::ToSchema;

    /// Builds the record from its input (for a replace, `id` is the existing one).
    fn from_input(
        input: Self::Input,
        id: String,
        ctx: &InputContext<'_>,
    ) -> impl Future<Output = Result<Self, Problem>> + Send;

    /// On a replace: what the new record keeps from the one it replaces (e.g. when it was created).
    fn keep_from(&mut self, _existing: &Self) {}

    /// Before the record is stored: takes what it must own alone (a connection's numbers);
    /// `previous` is the record it replaces.
    fn claim(
        &self,
        _previous: Option<&Self>,
        _services: &Services,
    ) -> impl Future<Output = Result<(), Problem>> + Send {
        async { Ok(()) }
    }

    /// After a write: gives up what `from` held and `to` (what is stored now, if anything) no
    /// longer needs.
    fn release(_from: &Self, _to: Option<&Self>, _services: &Services) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// What the API shows; the record itself unless a kind adds to it.
    fn view(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    limit: Option<i32>,
}

impl ListQuery {
    /// The page size asked for (50 unless given), 1 to 100.
    pub fn limit(&self) -> Result<i32, Problem> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Err(Problem::invalid_field("limit", "`limit` must be between 1 and 100."));
        }
        Ok(limit)
    }

    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}

/// The five endpoints of a kind of record.
pub fn endpoints<T: Resource>() -> Vec<Endpoint> {
    let collection = format!("/v1/{}", T::PATH);
    let one = format!("/v1/{}/{{id}}", T::PATH);
    let tag = T::PATH;
    vec![
        Endpoint::new(HttpMethod::Get, &collection, tag, format!("List {}s", T::NOUN), get(list::<T>))
            .query(&["cursor", "limit"]),
        Endpoint::new(HttpMethod::Post, &collection, tag, format!("Create a {}", T::NOUN), post(create::<T>))
            .body::<T::Input>(),
        Endpoint::new(HttpMethod::Get, &one, tag, format!("Read a {}", T::NOUN), get(show::<T>)),
        Endpoint::new(HttpMethod::Put, &one, tag, format!("Replace a {}", T::NOUN), put(replace::<T>))
            .body::<T::Input>(),
        Endpoint::new(HttpMethod::Delete, &one, tag, format!("Delete a {}", T::NOUN), delete(remove::<T>)),
    ]
}

pub async fn clinic_of(services: &Services, caller: &Principal) -> Result<Clinic, Problem> {
    services
        .clinics
        .clinic(&caller.clinic_id)
        .await?
        .ok_or_else(|| Problem::unavailable(&"the caller's clinic record is missing"))
}

fn require_writer<T: Resource>(caller: &Principal) -> Result<(), Problem> {
    if T::ADMIN_WRITES && caller.role != Role::Admin {
        return Err(Problem::forbidden(format!("Only administrators can change {}.", T::PATH)));
    }
    Ok(())
}

fn not_found<T: Resource>(id: &str) -> Problem {
    Problem::not_found(format!("No {} {id} exists for this clinic.", T::NOUN))
}

async fn list<T: Resource>(
    State(services): State<Services>,
    Caller(caller): Caller,
    ValidQuery(query): ValidQuery<ListQuery>,
) -> Result<impl IntoResponse, Problem> {
    let limit = query.limit()?;
    let page = services.clinics.list::<T>(&caller.clinic_id, query.cursor(), limit).await.map_err(|e| match e {
        ListError::BadCursor => Problem::invalid_field("cursor", "The cursor is not a cursor of this list."),
        ListError::Store(e) => e.into(),
    })?;
    let items: Vec<_> = page.items.iter().map(T::view).collect();
    Ok(Json(serde_json::json!({ "items": items, "next_cursor": page.next_cursor })))
}

async fn create<T: Resource>(
    State(services): State<Services>,
    Caller(caller): Caller,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    require_writer::<T>(&caller)?;
    let input: T::Input = json_input::parse(&body)?;
    let clinic = clinic_of(&services, &caller).await?;
    let ctx = InputContext { services: &services, clinic: &clinic, now: services.clock.now() };
    let id = ulid::Ulid::from_datetime(ctx.now.into()).to_string().to_ascii_lowercase();
    let record = T::from_input(input, id, &ctx).await?;
    record.claim(None, &services).await?;
    if let Err(store_error) = services.clinics.insert_record(&record).await {
        T::release(&record, None, &services).await;
        return Err(store_error.into());
    }
    Ok((StatusCode::CREATED, Json(record.view())))
}

async fn show<T: Resource>(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let record: T = services.clinics.record(&caller.clinic_id, &id).await?.ok_or_else(|| not_found::<T>(&id))?;
    Ok(Json(record.view()))
}

async fn replace<T: Resource>(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, Problem> {
    require_writer::<T>(&caller)?;
    let input: T::Input = json_input::parse(&body)?;
    let clinic = clinic_of(&services, &caller).await?;
    let ctx = InputContext { services: &services, clinic: &clinic, now: services.clock.now() };
    let existing: T = services.clinics.record(&caller.clinic_id, &id).await?.ok_or_else(|| not_found::<T>(&id))?;
    let mut record = T::from_input(input, id.clone(), &ctx).await?;
    record.keep_from(&existing);
    record.claim(Some(&existing), &services).await?;
    match services.clinics.replace_record(&record).await {
        Ok(()) => {
            T::release(&existing, Some(&record), &services).await;
            Ok(Json(record.view()))
        }
        Err(failure) => {
            T::release(&record, Some(&existing), &services).await;
            match failure {
                StoreError::Conflict => Err(not_found::<T>(&id)),
                other => Err(other.into()),
            }
        }
    }
}

async fn remove<T: Resource>(
    State(services): State<Services>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    require_writer::<T>(&caller)?;
    match services.clinics.take_record::<T>(&caller.clinic_id, &id).await? {
        Some(removed) => {
            T::release(&removed, None, &services).await;
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(not_found::<T>(&id)),
    }
}
