//! The `clinics` table: a clinic's profile (`CLINIC#<id>` / `PROFILE`), its connections
//! (`CLINIC#<id>` / `CONNECTION#<id>`, found by sender through `gsi1` = `SENDER#<number or MG sid>`),
//! and API keys (`APIKEY#<key id>` / `APIKEY`).

use aws_sdk_dynamodb::Client;

use crate::api_keys::ApiKeyRecord;
use crate::clinic::{Clinic, Connection};
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

    pub async fn put_clinic(&self, clinic: &Clinic) -> Result<(), StoreError> {
        self.put(to_item(clinic, &[("pk", clinic_pk(&clinic.id)), ("sk", "PROFILE".to_owned())])?).await
    }

    pub async fn clinic(&self, id: &ClinicId) -> Result<Option<Clinic>, StoreError> {
        self.get(clinic_pk(id), "PROFILE".to_owned()).await
    }

    pub async fn put_connection(&self, connection: &Connection) -> Result<(), StoreError> {
        self.put_record(connection).await
    }

    pub async fn connection(&self, clinic: &ClinicId, id: &ConnectionId) -> Result<Option<Connection>, StoreError> {
        self.record(clinic, id.as_str()).await
    }

    pub async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        self.put(to_item(record, &[("pk", format!("APIKEY#{}", record.key_id)), ("sk", "APIKEY".to_owned())])?).await
    }

    pub async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get(format!("APIKEY#{key_id}"), "APIKEY".to_owned()).await
    }
}
