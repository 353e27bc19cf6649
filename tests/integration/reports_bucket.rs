//! Mass-alert reports in the reports bucket: stored as CSV, opened through presigned links,
//! never public.

use std::time::Duration;

use chrono::{DateTime, Utc};
use shared::alert_report::{self, HEADER, ReportRow};
use shared::reports_bucket::{CSV_CONTENT_TYPE, ReportsError};

use crate::support::TestStack;

fn rows() -> Vec<ReportRow> {
    let at = |s: &str| s.parse::<DateTime<Utc>>().expect("a time");
    vec![
        ReportRow {
            client_full_name: "Zoë Park".into(),
            client_phone_number: "+15551234567".into(),
            sms_status: "delivered".into(),
            error_details: String::new(),
            message_text: "The clinic is closed today, Nov 24.".into(),
            timestamp: Some(at("2026-11-24T14:15:02Z")),
            failed: false,
        },
        ReportRow {
            client_full_name: "Sam \"Max's owner\" Lee".into(),
            client_phone_number: "+15557654321".into(),
            sms_status: "undelivered".into(),
            error_details: "Unknown destination handset,\nthe number may be off".into(),
            message_text: "The clinic is closed today, Nov 24.".into(),
            timestamp: Some(at("2026-11-24T14:15:09Z")),
            failed: true,
        },
    ]
}

fn s3_client(t: &TestStack) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&t.stack.aws).force_path_style(true).build())
}

#[tokio::test]
async fn a_stored_report_opens_through_a_fresh_presigned_link() {
    let t = TestStack::start_custom(|options| options.report_link_valid_for = Duration::from_secs(120)).await;
    let services = &t.stack.services;
    let csv = alert_report::to_csv(rows(), chrono_tz::America::New_York).expect("a report");
    let key = "demo/mass-alerts/01JC3Z8R6X5Y7W2V9T4Q0N1B2C.csv";
    services.reports.put_csv(key, csv.clone(), "closure \"Nov 24\".csv").await.expect("report stored");

    let stored = s3_client(&t)
        .head_object()
        .bucket(&t.stack.resources.reports_bucket)
        .key(key)
        .send()
        .await
        .expect("the report is there");
    assert_eq!(stored.content_type(), Some(CSV_CONTENT_TYPE));
    assert_eq!(stored.content_disposition(), Some("attachment; filename=\"closure _Nov 24_.csv\""));
    assert_eq!(stored.server_side_encryption(), Some(&aws_sdk_s3::types::ServerSideEncryption::Aes256));

    let valid_for = services.settings.alerts.report_link_valid_for;
    assert_eq!(valid_for, Duration::from_secs(120));
    let first = services.reports.link(key, valid_for).await.expect("a link");
    let second = services.reports.link(key, valid_for).await.expect("another link");
    for link in [&first, &second] {
        let url = url::Url::parse(link).expect("a URL");
        let expires: Vec<String> = url
            .query_pairs()
            .filter(|(name, _)| name == "X-Amz-Expires")
            .map(|(_, value)| value.into_owned())
            .collect();
        assert_eq!(expires, ["120"], "{link}");
        assert!(url.query_pairs().any(|(name, _)| name == "X-Amz-Signature"), "{link}");

        // Anyone with the link gets the report, without credentials of their own.
        let response = t.http.get(link.as_str()).send().await.expect("S3 answers");
        assert_eq!(response.status().as_u16(), 200, "{link}");
        let body = response.bytes().await.expect("a body");
        assert_eq!(body.as_ref(), csv.as_slice());
        let mut reader = csv::Reader::from_reader(body.as_ref());
        let header: Vec<String> = reader.headers().expect("a header").iter().map(str::to_owned).collect();
        assert_eq!(header, HEADER);
        let read_back: Vec<Vec<String>> =
            reader.records().map(|r| r.expect("a row").iter().map(str::to_owned).collect()).collect();
        assert_eq!(
            read_back,
            [
                [
                    "Sam \"Max's owner\" Lee",
                    "+15557654321",
                    "undelivered",
                    "Unknown destination handset,\nthe number may be off",
                    "The clinic is closed today, Nov 24.",
                    "2026-11-24T09:15:09-05:00",
                ],
                [
                    "Zoë Park",
                    "+15551234567",
                    "delivered",
                    "",
                    "The clinic is closed today, Nov 24.",
                    "2026-11-24T09:15:02-05:00",
                ],
            ],
            "failures first, times in the clinic's zone"
        );
    }

    // S3 refuses presigned links valid for more than a week; the adapter says so before signing.
    let too_long = services.reports.link(key, Duration::from_secs(8 * 24 * 3600)).await;
    assert!(matches!(too_long, Err(ReportsError::Validity(_))), "{too_long:?}");
}

#[tokio::test]
async fn the_reports_bucket_blocks_every_kind_of_public_access() {
    let t = TestStack::start().await;
    let block = s3_client(&t)
        .get_public_access_block()
        .bucket(&t.stack.resources.reports_bucket)
        .send()
        .await
        .expect("the bucket has a public access block")
        .public_access_block_configuration
        .expect("a configuration");
    assert_eq!(
        (block.block_public_acls, block.ignore_public_acls, block.block_public_policy, block.restrict_public_buckets),
        (Some(true), Some(true), Some(true), Some(true))
    );
}
