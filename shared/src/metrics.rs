//! Operational counters as CloudWatch Embedded Metric Format (EMF) lines on stdout.
//!
//! Lambda ships stdout to CloudWatch Logs, which turns each EMF line into a metric: counting a
//! forged webhook costs no AWS request, so a flood of them cannot run up calls or slow us down,
//! and an alarm can be put on the metric later without touching the code.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// The namespace every metric of ours is published under.
pub const NAMESPACE: &str = "ClinicSms";

/// Webhook requests refused because their `X-Twilio-Signature` did not verify, per route.
pub const WEBHOOK_SIGNATURE_REJECTED: &str = "WebhookSignatureRejected";

/// One EMF document: a single count of `metric`, with each dimension as its own property.
pub fn count_line(metric: &str, dimensions: &[(&str, &str)], at: DateTime<Utc>) -> String {
    let names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    let mut document = Map::new();
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": [{"Name": metric, "Unit": "Count"}],
            }],
        }),
    );
    for (name, value) in dimensions {
        document.insert((*name).to_owned(), Value::String((*value).to_owned()));
    }
    document.insert(metric.to_owned(), json!(1));
    Value::Object(document).to_string()
}

/// Counts a webhook request whose signature did not verify. `route` is the route the request
/// matched (never anything else the request says: nothing in it is trusted).
pub fn webhook_signature_rejected(route: &str, at: DateTime<Utc>) {
    // Straight to stdout, not through `tracing`: CloudWatch only extracts a line that is the
    // EMF document itself.
    println!("{}", count_line(WEBHOOK_SIGNATURE_REJECTED, &[("Route", route)], at));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_is_one_emf_document_with_its_route_as_dimension() {
        let at = DateTime::from_timestamp(1_795_471_200, 0).unwrap_or_default();
        let line = count_line(WEBHOOK_SIGNATURE_REJECTED, &[("Route", "/twilio/status")], at);
        assert!(!line.contains('\n'), "one line per document");
        let parsed: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(
            parsed,
            json!({
                "_aws": {
                    "Timestamp": 1_795_471_200_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "ClinicSms",
                        "Dimensions": [["Route"]],
                        "Metrics": [{"Name": "WebhookSignatureRejected", "Unit": "Count"}],
                    }],
                },
                "Route": "/twilio/status",
                "WebhookSignatureRejected": 1,
            })
        );
    }

    #[test]
    fn every_dimension_named_in_the_directive_is_a_top_level_member() {
        let at = DateTime::from_timestamp(0, 0).unwrap_or_default();
        let line = count_line("Something", &[("Route", "/twilio/inbound"), ("Stage", "prod")], at);
        let parsed: Value = serde_json::from_str(&line).unwrap_or_default();
        let directive = &parsed["_aws"]["CloudWatchMetrics"][0];
        let names = directive["Dimensions"][0].as_array().cloned().unwrap_or_default();
        assert_eq!(names, [json!("Route"), json!("Stage")]);
        for name in names {
            assert!(parsed[name.as_str().unwrap_or_default()].is_string(), "{name} present");
        }
        let metric = directive["Metrics"][0]["Name"].as_str().unwrap_or_default();
        assert_eq!(parsed[metric], 1);
    }
}
