//! The `clinics` table: a clinic's profile (`CLINIC#<id>` / `PROFILE`), its connections
//! (`CLINIC#<id>` / `CONNECTION#<id>`, found by sender through `gsi1` = `SENDER#<number or MG sid>`),
//! and API keys (`APIKEY#<key id>` / `APIKEY`).

use aws_sdk_dynamodb::Client;

use crate::api_keys::ApiKeyRecord;
use crate::clinic::{Clinic, Connection};
use crate::connection_activity::ConnectionActivity;
use crate::dynamo::{StoreError, from_item, s, to_item};
use crate::ids::{ClinicId, ConnectionId};

#[derive(Clone, Debug)]
pub struct ClinicsTable {
    client: Client,
    table: String,
}

fn clinic_pk(id: &ClinicId) -> String {
    format!("CLINIC#{id}")
}

impl ClinicsTable {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    async fn put(&self, item: crate::dynamo::Item) -> Result<(), StoreError> {
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await?;
        Ok(())
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, pk: String, sk: String) -> Result<Option<T>, StoreError> {
        let out = self.client.get_item().table_name(&self.table).key("pk", s(pk)).key("sk", s(sk)).send().await?;
        out.item.map(from_item).transpose()
    }

    /// The key of a clinic's profile, for batched reads.
    pub(crate) fn profile_key(id: &ClinicId) -> (String, String) {
        (clinic_pk(id), "PROFILE".to_owned())
    }

    pub async fn put_clinic(&self, clinic: &Clinic) -> Result<(), StoreError> {
        self.put(to_item(clinic, &[("pk", clinic_pk(&clinic.id)), ("sk", "PROFILE".to_owned())])?).await
    }

    pub async fn clinic(&self, id: &ClinicId) -> Result<Option<Clinic>, StoreError> {
        if !crate::dynamo::plausible_id(id.as_str()) {
            return Ok(None);
        }
        self.get(clinic_pk(id), "PROFILE".to_owned()).await
    }

    pub async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        self.put_record(connection).await
    }

    pub async fn connection(&self, clinic: &ClinicId, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        self.record(clinic, id.as_str()).await
    }

    /// Moves a business's next window opening (and its index key), only if the stored business
    /// still has the opening that was read: an admin's concurrent edit or delete wins.
    pub async fn move_window(
        &self,
        business: &crate::businesses::Business,
        next_opening: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let mut moved = business.clone();
        moved.next_window_opening = next_opening;
        let index_sk = crate::clinic_records::ClinicRecord::index_keys(&moved).map(|(_, sk)| sk).unwrap_or_default();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("CLINIC#{}", business.clinic_id)))
            .key("sk", s(format!("BUSINESS#{}", business.id)))
            .update_expression("SET next_window_opening = :next, gsi1sk = :sk")
            .condition_expression("next_window_opening = :old")
            .expression_attribute_values(":next", serde_dynamo::to_attribute_value(next_opening)?)
            .expression_attribute_values(":old", serde_dynamo::to_attribute_value(business.next_window_opening)?)
            .expression_attribute_values(":sk", s(index_sk))
            .send()
            .await;
        match result.map_err(StoreError::from) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Records a connection's last Twilio error (or clears it), leaving everything else as the
    /// admin last saved it; nothing happens to a connection deleted meanwhile.
    pub async fn set_connection_error(
        &self,
        connection: &Connection,
        error: Option<&crate::clinic::ConnectionError>,
    ) -> Result<(), StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("CLINIC#{}", connection.clinic_id)))
            .key("sk", s(format!("CONNECTION#{}", connection.id)))
            .condition_expression("attribute_exists(pk)");
        let request = match error {
            Some(e) => request
                .update_expression("SET last_error = :e")
                .expression_attribute_values(":e", serde_dynamo::to_attribute_value(e)?),
            None => request.update_expression("REMOVE last_error"),
        };
        match request.send().await.map_err(StoreError::from) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Records a connection-level error Twilio reported in a status callback (the connection is
    /// named by the message, so no read is needed); nothing happens to a deleted connection.
    pub async fn set_connection_error_by_id(
        &self,
        clinic: &ClinicId,
        connection: &ConnectionId,
        error: &crate::clinic::ConnectionError,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(clinic_pk(clinic)))
            .key("sk", s(format!("CONNECTION#{connection}")))
            .condition_expression("attribute_exists(pk)")
            .update_expression("SET last_error = :e")
            .expression_attribute_values(":e", serde_dynamo::to_attribute_value(error)?)
            .send()
            .await;
        match result.map_err(StoreError::from) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Sets `attribute` of a connection's item to `value` (whose time is `at`) unless it was set
    /// at or after `stale_before`: one conditional `UpdateItem`, so a busy connection's item is
    /// written at most once per interval however many webhooks arrive. `false` when nothing was
    /// written (fresh enough already, or the connection is gone).
    pub async fn refresh_connection_activity(
        &self,
        clinic: &ClinicId,
        connection: &ConnectionId,
        activity: ConnectionActivity,
        stale_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let (attribute, time_path, value) = match &activity {
            ConnectionActivity::Inbound(seen) => {
                ("last_inbound", "last_inbound.#at", serde_dynamo::to_attribute_value(seen)?)
            }
            ConnectionActivity::StatusCallback(at) => {
                ("last_status_callback_at", "last_status_callback_at", serde_dynamo::to_attribute_value(at)?)
            }
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(clinic_pk(clinic)))
            .key("sk", s(format!("CONNECTION#{connection}")))
            .update_expression(format!("SET {attribute} = :v"))
            .condition_expression(format!(
                "attribute_exists(pk) AND (attribute_not_exists({attribute}) OR {time_path} < :stale)"
            ))
            .expression_attribute_values(":v", value)
            .expression_attribute_values(":stale", serde_dynamo::to_attribute_value(stale_before)?);
        if time_path.contains("#at") {
            // `at` is not reserved today; named anyway so the expression never breaks on it.
            request = request.expression_attribute_names("#at", "at");
        }
        crate::dynamo::applied(request.send().await)
    }

    pub async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        self.put(to_item(record, &[("pk", format!("APIKEY#{}", record.key_id)), ("sk", "APIKEY".to_owned())])?).await
    }

    pub async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        if !crate::dynamo::plausible_id(key_id) {
            return Ok(None);
        }
        self.get(format!("APIKEY#{key_id}"), "APIKEY".to_owned()).await
    }
}
