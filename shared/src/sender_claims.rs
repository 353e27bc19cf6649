//! Who answers on a Twilio number or Messaging Service. Inbound texts are routed by the number
//! they were sent to, so each number (and each Messaging Service) belongs to one connection of
//! one clinic at a time. A connection claims its addresses with a conditional write before it is
//! stored, and gives them back when it is deleted or stops using them.
//!
//! Claims live in the `clinics` table outside any clinic's partition (`SENDER#<address>` /
//! `CLAIM`): they are what lets an unauthenticated webhook find its clinic at all.

use serde::{Deserialize, Serialize};
use tracing::error;

use crate::clinic::Connection;
use crate::clinics_table::ClinicsTable;
use crate::dynamo::{StoreError, from_item, s, to_item};
use crate::ids::{ClinicId, ConnectionId};
use crate::twilio::client::SenderId;

const SORT_KEY: &str = "CLAIM";

/// An address a connection answers on, and the input field that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The E.164 number or `MG…` SID.
    pub value: String,
    /// `sender` or `pool_numbers[i]`.
    pub field: String,
}

/// The stored owner of an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderClaim {
    pub address: String,
    pub clinic_id: ClinicId,
    pub connection_id: ConnectionId,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Another connection already answers on the address named by `field`.
    #[error("{field} is already used by another connection")]
    Taken {
        field: String,
        /// Set when the other connection is the same clinic's (safe to name); never another clinic's.
        own_connection: Option<ConnectionId>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every address a connection answers on: its number, or its Messaging Service and the pool's
/// numbers (Twilio posts a pool number's inbound texts with that number as `To`). Each once.
pub fn addresses(connection: &Connection) -> Vec<Address> {
    let mut found = match &connection.sender {
        SenderId::Number(number) => vec![Address { value: number.to_string(), field: "sender".into() }],
        SenderId::MessagingService(sid) => vec![Address { value: sid.clone(), field: "sender".into() }],
    };
    for (i, number) in connection.pool_numbers.iter().enumerate() {
        if !found.iter().any(|a| a.value == number.as_str()) {
            found.push(Address { value: number.to_string(), field: format!("pool_numbers[{i}]") });
        }
    }
    found
}

/// The addresses `from` answers on that `to` does not (what a change or delete gives up).
pub fn given_up(from: &Connection, to: Option<&Connection>) -> Vec<Address> {
    let kept = to.map(addresses).unwrap_or_default();
    addresses(from).into_iter().filter(|a| !kept.iter().any(|k| k.value == a.value)).collect()
}

/// Claims every address of `connection` for it. When one is taken, the ones this call claimed are
/// given back (those `previous` already held stay) and nothing is left half-claimed.
pub async fn claim(
    clinics: &ClinicsTable,
    connection: &Connection,
    previous: Option<&Connection>,
) -> Result<(), ClaimError> {
    let held = previous.map(addresses).unwrap_or_default();
    let mut claimed = Vec::new();
    for address in addresses(connection) {
        match clinics.claim_sender(&address.value, &connection.clinic_id, &connection.id).await {
            Ok(()) => {
                if !held.iter().any(|h| h.value == address.value) {
                    claimed.push(address);
                }
            }
            Err(failure) => {
                for undo in &claimed {
                    release_one(clinics, &undo.value, connection).await;
                }
                return Err(match failure {
                    StoreError::Conflict => {
                        let owner = clinics.sender_claim(&address.value).await?;
                        let own_connection =
                            owner.filter(|o| o.clinic_id == connection.clinic_id).map(|o| o.connection_id);
                        ClaimError::Taken { field: address.field, own_connection }
                    }
                    other => other.into(),
                });
            }
        }
    }
    Ok(())
}

/// Gives back what `from` held and `to` (its replacement, if any) no longer uses. Failures are
/// logged: a leftover claim only keeps the address from being reused until removed.
pub async fn release(clinics: &ClinicsTable, from: &Connection, to: Option<&Connection>) {
    for address in given_up(from, to) {
        release_one(clinics, &address.value, from).await;
    }
}

async fn release_one(clinics: &ClinicsTable, address: &str, owner: &Connection) {
    if let Err(e) = clinics.release_sender(address, &owner.clinic_id, &owner.id).await {
        error!(connection_id = %owner.id, error = ?e, "could not release a sender claim");
    }
}

fn pk(address: &str) -> String {
    format!("SENDER#{address}")
}

impl ClinicsTable {
    /// Claims `address` for the connection; `Conflict` if another connection holds it.
    pub async fn claim_sender(
        &self,
        address: &str,
        clinic: &ClinicId,
        connection: &ConnectionId,
    ) -> Result<(), StoreError> {
        let claim =
            SenderClaim { address: address.to_owned(), clinic_id: clinic.clone(), connection_id: connection.clone() };
        let item = to_item(&claim, &[("pk", pk(address)), ("sk", SORT_KEY.to_owned())])?;
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR (clinic_id = :clinic AND connection_id = :connection)")
            .expression_attribute_values(":clinic", s(clinic.as_str()))
            .expression_attribute_values(":connection", s(connection.as_str()))
            .send()
            .await?;
        Ok(())
    }

    /// Removes the claim if the connection still holds it.
    pub async fn release_sender(
        &self,
        address: &str,
        clinic: &ClinicId,
        connection: &ConnectionId,
    ) -> Result<(), StoreError> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key("pk", s(pk(address)))
            .key("sk", s(SORT_KEY))
            .condition_expression("clinic_id = :clinic AND connection_id = :connection")
            .expression_attribute_values(":clinic", s(clinic.as_str()))
            .expression_attribute_values(":connection", s(connection.as_str()))
            .send()
            .await;
        match result.map_err(StoreError::from) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Who answers on `address` (an E.164 number or `MG…` SID), if anyone.
    pub async fn sender_claim(&self, address: &str) -> Result<Option<SenderClaim>, StoreError> {
        if !crate::dynamo::plausible_id(address) {
            return Ok(None);
        }
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(pk(address)))
            .key("sk", s(SORT_KEY))
            .consistent_read(true)
            .send()
            .await?;
        out.item.map(from_item).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::E164;

    fn number(n: &str) -> E164 {
        E164::try_from(n.to_owned()).unwrap_or_else(|_| panic!("{n} is E.164"))
    }

    fn connection(sender: SenderId, pool: &[&str]) -> Connection {
        Connection {
            id: ConnectionId::new("k1"),
            clinic_id: ClinicId::new("c1"),
            label: "Main".into(),
            sender,
            pool_numbers: pool.iter().map(|n| number(n)).collect(),
            mps: 1,
            enabled: true,
            last_error: None,
            last_inbound: None,
            last_status_callback_at: None,
        }
    }

    fn values(addresses: &[Address]) -> Vec<(&str, &str)> {
        addresses.iter().map(|a| (a.value.as_str(), a.field.as_str())).collect()
    }

    const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";

    #[test]
    fn a_number_connection_answers_on_its_number() {
        let c = connection(SenderId::Number(number("+15017122661")), &[]);
        assert_eq!(values(&addresses(&c)), [("+15017122661", "sender")]);
    }

    #[test]
    fn a_messaging_service_answers_on_its_sid_and_each_pool_number_once() {
        let c =
            connection(SenderId::MessagingService(SERVICE.into()), &["+15017122662", "+15017122663", "+15017122662"]);
        assert_eq!(
            values(&addresses(&c)),
            [(SERVICE, "sender"), ("+15017122662", "pool_numbers[0]"), ("+15017122663", "pool_numbers[1]")]
        );
    }

    #[test]
    fn a_change_gives_up_only_what_the_new_version_no_longer_uses() {
        let old = connection(SenderId::MessagingService(SERVICE.into()), &["+15017122662", "+15017122663"]);
        let new = connection(SenderId::MessagingService(SERVICE.into()), &["+15017122663", "+15017122664"]);
        assert_eq!(values(&given_up(&old, Some(&new))), [("+15017122662", "pool_numbers[0]")]);
        assert_eq!(given_up(&old, None).len(), 3, "a delete gives up everything");
        assert!(given_up(&old, Some(&old)).is_empty());
    }
}
