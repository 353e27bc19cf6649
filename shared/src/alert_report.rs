//! The mass-alert failure report: one CSV row per client of an alert, the ones not texted first,
//! so the clinic can phone them. Written once every recipient has a final state; the reports
//! bucket ([`crate::reports_bucket`]) keeps it and hands out links.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;

/// The report's columns, in order. Clinics build spreadsheets on these names: change none.
pub const HEADER: [&str; 6] =
    ["Client Full Name", "Client Phone Number", "SMS Status", "Error Details", "Message Text", "Timestamp"];

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("could not write the report as CSV")]
    Csv(#[from] csv::Error),
    #[error("could not finish writing the report")]
    Finish(#[source] std::io::Error),
}

/// One client of the alert as the report shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub client_full_name: String,
    pub client_phone_number: String,
    pub sms_status: String,
    pub error_details: String,
    pub message_text: String,
    /// When the text reached its final state; `None` when it was never sent.
    pub timestamp: Option<DateTime<Utc>>,
    /// Not texted successfully (failed, undelivered or not sent): such rows come first. Not a column.
    pub failed: bool,
}

/// The report as UTF-8 CSV: the header, then the failed rows, then the rest, each group by
/// client name and then phone number. Times are in the clinic's `zone`, RFC 3339 with offset.
pub fn to_csv(mut rows: Vec<ReportRow>, zone: Tz) -> Result<Vec<u8>, ReportError> {
    // Case-insensitive first so "de Vries" sits with "De Vries"; the exact name and the phone
    // break ties so the same alert always gives the same file.
    rows.sort_by_cached_key(|r| {
        (!r.failed, r.client_full_name.to_lowercase(), r.client_full_name.clone(), r.client_phone_number.clone())
    });
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(HEADER)?;
    for row in &rows {
        let phone = if is_plain_phone_number(&row.client_phone_number) {
            row.client_phone_number.clone()
        } else {
            defuse(&row.client_phone_number)
        };
        let timestamp = row
            .timestamp
            .map(|t| t.with_timezone(&zone).to_rfc3339_opts(SecondsFormat::Secs, false))
            .unwrap_or_default();
        writer.write_record([
            defuse(&row.client_full_name),
            phone,
            row.sms_status.clone(),
            defuse(&row.error_details),
            defuse(&row.message_text),
            timestamp,
        ])?;
    }
    writer.into_inner().map_err(|e| ReportError::Finish(e.into_error()))
}

/// Spreadsheet programs run a cell that starts with one of these as a formula. Names, error
/// texts and message bodies come from clinics, patients and Twilio, so a cell like
/// `=HYPERLINK(..)` would run on the computer of whoever opens the report (CSV injection);
/// a leading `'` makes the program show it as text.
fn defuse(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

/// A number written the usual ways (`+15551234567`, `(555) 123-4567`, `555.123.4567`): digits,
/// spaces, dots, dashes and brackets, with at most a leading `+`. Such a cell cannot call a
/// function, and a `'` before `+1555…` would spoil the number for whoever copies it.
fn is_plain_phone_number(cell: &str) -> bool {
    let rest = cell.strip_prefix('+').unwrap_or(cell);
    rest.starts_with(|c: char| c.is_ascii_digit() || c == '(')
        && rest.chars().any(|c| c.is_ascii_digit())
        && rest.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '(' | ')' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, phone: &str, failed: bool) -> ReportRow {
        ReportRow {
            client_full_name: name.into(),
            client_phone_number: phone.into(),
            sms_status: if failed { "failed".into() } else { "delivered".into() },
            error_details: if failed { "Unreachable destination handset".into() } else { String::new() },
            message_text: "The clinic is closed today.".into(),
            timestamp: None,
            failed,
        }
    }

    fn read(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = csv::Reader::from_reader(bytes);
        let header = reader.headers().map(|h| h.iter().map(str::to_owned).collect()).unwrap_or_default();
        let rows =
            reader.records().map(|r| r.map(|r| r.iter().map(str::to_owned).collect()).unwrap_or_default()).collect();
        (header, rows)
    }

    fn csv_of(rows: Vec<ReportRow>) -> Vec<u8> {
        to_csv(rows, chrono_tz::America::New_York).unwrap_or_else(|e| panic!("report written: {e}"))
    }

    #[test]
    fn the_header_is_exactly_the_agreed_columns() {
        let (header, _) = read(&csv_of(vec![row("Ann Lee", "+15551234567", false)]));
        assert_eq!(header, HEADER);
        let bytes = csv_of(vec![]);
        assert!(
            bytes
                .starts_with(b"Client Full Name,Client Phone Number,SMS Status,Error Details,Message Text,Timestamp\n")
        );
    }

    #[test]
    fn an_empty_report_is_just_the_header() {
        let bytes = csv_of(vec![]);
        assert_eq!(String::from_utf8_lossy(&bytes), format!("{}\n", HEADER.join(",")));
    }

    #[test]
    fn failures_come_first_then_by_name_and_phone() {
        let rows = vec![
            row("Zoe Park", "+15550000001", false),
            row("bob Stone", "+15550000002", true),
            row("Amy Chen", "+15550000004", false),
            row("Bob Stone", "+15550000009", true),
            row("Bob Stone", "+15550000003", true),
            row("Amy Chen", "+15550000005", true),
        ];
        let (_, read_back) = read(&csv_of(rows));
        let order: Vec<(&str, &str)> = read_back.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
        assert_eq!(
            order,
            [
                ("Amy Chen", "+15550000005"),
                ("Bob Stone", "+15550000003"),
                ("Bob Stone", "+15550000009"),
                ("bob Stone", "+15550000002"),
                ("Amy Chen", "+15550000004"),
                ("Zoe Park", "+15550000001"),
            ]
        );
    }

    #[test]
    fn timestamps_are_in_the_clinic_zone_with_their_offset() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap_or_else(|e| panic!("{s}: {e}"));
        let winter = ReportRow { timestamp: Some(at("2026-11-24T14:15:02Z")), ..row("A", "+15550000001", false) };
        let summer = ReportRow { timestamp: Some(at("2026-06-10T14:15:02.750Z")), ..row("B", "+15550000002", false) };
        let never = row("C", "+15550000003", false);
        let (_, read_back) = read(&csv_of(vec![winter.clone(), summer, never]));
        let times: Vec<&str> = read_back.iter().map(|r| r[5].as_str()).collect();
        assert_eq!(times, ["2026-11-24T09:15:02-05:00", "2026-06-10T10:15:02-04:00", ""]);

        let utc = to_csv(vec![winter], chrono_tz::UTC).unwrap_or_default();
        assert_eq!(read(&utc).1[0][5], "2026-11-24T14:15:02+00:00");
    }

    #[test]
    fn cells_that_a_spreadsheet_would_run_as_formulas_are_made_text() {
        let attack = ReportRow {
            client_full_name: "=HYPERLINK(\"http://evil.example\",\"Click\")".into(),
            client_phone_number: "+1+cmd|' /C calc'!A0".into(),
            sms_status: "failed".into(),
            error_details: "@SUM(A1:A9)".into(),
            message_text: "-2+3".into(),
            timestamp: None,
            failed: true,
        };
        let tab = ReportRow {
            client_full_name: "\t=1+1".into(),
            client_phone_number: "-15551234567".into(),
            error_details: "\r=1".into(),
            message_text: "+1 reply YES".into(),
            ..row("x", "+15550000000", true)
        };
        let (_, read_back) = read(&csv_of(vec![attack, tab]));
        assert_eq!(
            read_back[0],
            ["'\t=1+1", "'-15551234567", "failed", "'\r=1", "'+1 reply YES", ""],
            "tab and carriage return lead too"
        );
        assert_eq!(
            read_back[1],
            [
                "'=HYPERLINK(\"http://evil.example\",\"Click\")",
                "'+1+cmd|' /C calc'!A0",
                "failed",
                "'@SUM(A1:A9)",
                "'-2+3",
                "",
            ]
        );
    }

    #[test]
    fn plain_phone_numbers_are_left_as_they_are() {
        for phone in ["+15551234567", "(555) 123-4567", "555.123.4567", "+1 (555) 123-4567", ""] {
            let (_, read_back) = read(&csv_of(vec![row("A", phone, false)]));
            assert_eq!(read_back[0][1], phone);
        }
        for not_plain in ["+", "+()", "-5551234567", "+1-555=1", "+1+1", "5551234567 ext. 2"] {
            assert!(!is_plain_phone_number(not_plain), "{not_plain}");
        }
    }

    #[test]
    fn commas_quotes_newlines_and_accents_round_trip() {
        let tricky = ReportRow {
            client_full_name: "O'Brien, \"Dee\" Zoë".into(),
            client_phone_number: "+15551234567".into(),
            sms_status: "undelivered".into(),
            error_details: "Carrier said:\n\"blocked\", try later".into(),
            message_text: "Line one,\r\nline two 🐾".into(),
            timestamp: Some(DateTime::<Utc>::UNIX_EPOCH),
            failed: true,
        };
        let bytes = csv_of(vec![tricky.clone()]);
        assert!(std::str::from_utf8(&bytes).is_ok(), "UTF-8");
        let (_, read_back) = read(&bytes);
        assert_eq!(
            read_back,
            [[
                tricky.client_full_name,
                tricky.client_phone_number,
                tricky.sms_status,
                tricky.error_details,
                tricky.message_text,
                "1969-12-31T19:00:00-05:00".to_owned(),
            ]]
        );
    }
}
