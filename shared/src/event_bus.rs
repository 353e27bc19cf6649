//! Product events on the EventBridge bus (`CreditsLow`, and later `MassAlertConfirmed`).

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

pub const SOURCE: &str = "clinic-sms";

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("EventBridge request failed")]
    Request(#[source] Box<aws_sdk_eventbridge::Error>),
    #[error("EventBridge refused the event: {0}")]
    Refused(String),
}

#[derive(Clone, Debug)]
pub struct EventBus {
    client: Client,
    bus: String,
}

impl EventBus {
    pub fn new(client: Client, bus: String) -> Self {
        Self { client, bus }
    }

    /// Publishes one event; a partial failure (`FailedEntryCount`) is an error, never ignored.
    pub async fn publish(&self, detail_type: &str, detail: &serde_json::Value) -> Result<(), PublishError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| PublishError::Request(Box::new(e.into())))?;
        if out.failed_entry_count > 0 {
            let why = out
                .entries
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| e.error_message)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(PublishError::Refused(why));
        }
        Ok(())
    }
}
