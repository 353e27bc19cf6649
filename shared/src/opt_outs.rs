//! A patient's STOP and START, kept per clinic and number with the connection they came through.
//! A STOP to any of the clinic's numbers stops texts from all of them (the sender and the API
//! check the record before anything is sent). START clears it only on the connection that
//! recorded it: Twilio blocks per number or Messaging Service, so a START elsewhere would leave
//! Twilio refusing the texts (21610).

use chrono::{DateTime, Utc};
use tracing::info;

use crate::clinic_records::{ClinicRecord, clinic_pk};
use crate::clinics_table::ClinicsTable;
use crate::contacts::OptOut;
use crate::dynamo::{StoreError, s};
use crate::ids::{ClinicId, ConnectionId};
use crate::phone::E164;
use crate::twilio::keywords::Keyword;

/// Records what a keyword asks for. Repeating it changes nothing more.
pub async fn apply(
    clinics: &ClinicsTable,
    clinic: &ClinicId,
    connection: &ConnectionId,
    number: &E164,
    keyword: Keyword,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match keyword {
        Keyword::OptOut => {
            let opt_out = OptOut {
                clinic_id: clinic.clone(),
                number: number.clone(),
                connection_id: Some(connection.clone()),
                at: now,
            };
            clinics.put_record(&opt_out).await?;
            info!(clinic_id = %clinic, number = %number.masked(), "opted out");
        }
        Keyword::OptIn => {
            let cleared = clinics.clear_opt_out(clinic, number, connection).await?;
            info!(clinic_id = %clinic, number = %number.masked(), cleared, "opted back in");
        }
        Keyword::Help => {}
    }
    Ok(())
}

impl ClinicsTable {
    /// Removes the number's opt-out if it came through `connection` (or no connection is known);
    /// `false` if it stays.
    pub async fn clear_opt_out(
        &self,
        clinic: &ClinicId,
        number: &E164,
        connection: &ConnectionId,
    ) -> Result<bool, StoreError> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key("pk", s(clinic_pk(clinic)))
            .key("sk", s(format!("{}#{number}", OptOut::KIND)))
            .condition_expression("attribute_exists(pk) AND (connection_id = :connection OR attribute_not_exists(connection_id) OR attribute_type(connection_id, :null))")
            .expression_attribute_values(":connection", s(connection.as_str()))
            .expression_attribute_values(":null", s("NULL"))
            .send()
            .await;
        crate::dynamo::applied(result)
    }
}
