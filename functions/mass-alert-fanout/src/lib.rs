//! The fan-out function: each SQS record is an EventBridge event as the rule delivers it. A
//! fan-out that fails keeps its record, and SQS hands it out again; the fan-out resumes safely.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;
use shared::mass_alert_fanout::{self, MASS_ALERT_CONFIRMED, MassAlertConfirmed};
use shared::services::Services;
use shared::sqs_batch::{self, Delivery, Disposition};
use tracing::{error, warn};

/// The envelope EventBridge puts around the detail; only the detail of our own event is read.
type Envelope = EventBridgeEvent<serde_json::Value>;

pub async fn handle(
    services: &Services,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let services = services.clone();
    let job = move |delivery: Delivery<Envelope>| {
        let services = services.clone();
        async move { process(&services, delivery.body).await }
    };
    Ok(sqs_batch::run(event.payload.records, job).await)
}

async fn process(services: &Services, envelope: Envelope) -> Disposition {
    let Some(detail) = confirmed(&envelope) else {
        warn!(detail_type = %envelope.detail_type, "not a MassAlertConfirmed event; dropped");
        return Disposition::Delete;
    };
    match mass_alert_fanout::fan_out(services, &detail).await {
        Ok(_) => Disposition::Delete,
        Err(e) => {
            error!(alert_id = %detail.alert_id, error = ?e, "fan-out failed; SQS will hand it out again");
            Disposition::Keep
        }
    }
}

/// The alert a `MassAlertConfirmed` event names; `None` for any other event.
fn confirmed(envelope: &Envelope) -> Option<MassAlertConfirmed> {
    if envelope.detail_type != MASS_ALERT_CONFIRMED {
        return None;
    }
    serde_json::from_value(envelope.detail.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../../events/mass-alert-fanout.json");

    #[test]
    fn the_sample_event_names_its_alert() {
        let event: SqsEvent = serde_json::from_str(SAMPLE).unwrap_or_default();
        let body = event.records.first().and_then(|r| r.body.clone()).unwrap_or_default();
        let envelope: Option<Envelope> = serde_json::from_str(&body).ok();
        let detail = envelope.as_ref().and_then(confirmed);
        assert_eq!(
            detail.map(|d| (d.clinic_id.to_string(), d.alert_id.to_string())),
            Some(("demo".into(), "01JC3Z8R6X5Y7W2V9T4Q0N1B3E".into()))
        );
    }

    #[test]
    fn another_event_is_not_a_fan_out() {
        let mut envelope = Envelope::default();
        envelope.detail_type = "CreditsLow".into();
        envelope.detail = serde_json::json!({"clinic_id": "demo", "alert_id": "01JC3Z8R6X5Y7W2V9T4Q0N1B3E"});
        assert_eq!(confirmed(&envelope), None);
    }
}
