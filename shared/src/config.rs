//! Deployment settings: resource names, the Twilio account, the public base URL. On Lambda they
//! come from the environment `template.yaml` sets; the local stack and tests build them directly.

use url::Url;

use crate::aws_resources::{QueueSpec, TableSpec};
use crate::rate_limit::Shares;
use crate::retry_policy::{MAX_ATTEMPTS, RetryPolicy};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is not a valid URL: {source}")]
    BadUrl { name: &'static str, source: url::ParseError },
    #[error("environment variable {name} must be a whole number from {min} to {max}")]
    BadNumber { name: &'static str, min: u64, max: u64 },
    #[error("SEND_RETRY_BASE_SECONDS must not exceed SEND_RETRY_MAX_DELAY_SECONDS")]
    RetryBaseAboveMax,
}

/// How the sender shares a connection between lanes and retries failed tries.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SendingSettings {
    /// Each shared lane's most of a connection's throughput (`SCHEDULED_SHARE_PERCENT`, 70 by
    /// default; `BULK_SHARE_PERCENT`, 50; both together `SHARED_LANES_SHARE_PERCENT`, 80; each
    /// 1 to 100). Interactive texts may always use all of it.
    pub shares: Shares,
    /// `SEND_MAX_ATTEMPTS` (1 to 6, 6 by default), `SEND_RETRY_BASE_SECONDS` (1 to 60, 2) and
    /// `SEND_RETRY_MAX_DELAY_SECONDS` (1 to 3,600, 300).
    pub retries: RetryPolicy,
}

/// How mass alerts' reports are handed out and when alerts close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlertSettings {
    /// How long a report link works (`REPORT_LINK_SECONDS`, 60 to 3,600; 5 minutes by default).
    pub report_link_valid_for: std::time::Duration,
    /// How long after an alert's last text was taken by Twilio it is closed when some delivery
    /// reports never come (`MASS_ALERT_CLOSE_AFTER_SECONDS`, 300 to 172,800; an hour by default).
    pub close_after: chrono::TimeDelta,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self { report_link_valid_for: std::time::Duration::from_secs(300), close_after: chrono::TimeDelta::hours(1) }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableNames {
    pub clinics: String,
    pub messages: String,
    pub counters: String,
    pub appointments: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrls {
    pub interactive: String,
    pub scheduled: String,
    pub bulk: String,
}

#[derive(Clone, PartialEq, Eq)]
pub struct TwilioSettings {
    /// `https://api.twilio.com` in production; the simulator's address locally.
    pub api_base: Url,
    pub account_sid: String,
    pub auth_token: String,
    /// While the auth token is being rotated: the one Twilio may still sign webhooks with until
    /// the new one is promoted in its console (docs/operations.md). Never used to call Twilio.
    pub previous_auth_token: Option<String>,
}

impl TwilioSettings {
    /// The tokens a webhook's signature may be made with: the current one, and during a
    /// rotation the previous one.
    pub fn signing_tokens(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.auth_token.as_str()).chain(self.previous_auth_token.as_deref())
    }
}

impl std::fmt::Debug for TwilioSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioSettings")
            .field("api_base", &self.api_base.as_str())
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("previous_auth_token", &self.previous_auth_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub tables: TableNames,
    pub queues: QueueUrls,
    pub event_bus: String,
    pub reports_bucket: String,
    pub twilio: TwilioSettings,
    pub alerts: AlertSettings,
    pub sending: SendingSettings,
    /// The base URL Twilio reaches our webhooks at (scheme, host, optional port, no trailing
    /// slash); signatures are checked against it, never against what the request claims.
    pub public_base_url: Url,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            tables: TableNames {
                clinics: var("CLINICS_TABLE")?,
                messages: var("MESSAGES_TABLE")?,
                counters: var("COUNTERS_TABLE")?,
                appointments: var("APPOINTMENTS_TABLE")?,
            },
            queues: QueueUrls {
                interactive: var("INTERACTIVE_QUEUE_URL")?,
                scheduled: var("SCHEDULED_QUEUE_URL")?,
                bulk: var("BULK_QUEUE_URL")?,
            },
            event_bus: var("EVENT_BUS_NAME")?,
            reports_bucket: var("REPORTS_BUCKET")?,
            twilio: TwilioSettings {
                api_base: url_var("TWILIO_API_BASE").or_else(|e| match e {
                    ConfigError::Missing(_) => Ok(default_twilio_api_base()),
                    other => Err(other),
                })?,
                account_sid: var("TWILIO_ACCOUNT_SID")?,
                auth_token: var("TWILIO_AUTH_TOKEN")?,
                // Empty, or the same as the current one, outside a rotation.
                previous_auth_token: std::env::var("TWILIO_PREVIOUS_AUTH_TOKEN").ok().filter(|previous| {
                    !previous.is_empty() && std::env::var("TWILIO_AUTH_TOKEN").ok().as_ref() != Some(previous)
                }),
            },
            public_base_url: url_var("PUBLIC_BASE_URL")?,
            alerts: AlertSettings {
                report_link_valid_for: std::time::Duration::from_secs(number_var(
                    "REPORT_LINK_SECONDS",
                    300,
                    60..=3600,
                )?),
                close_after: chrono::TimeDelta::seconds(
                    i64::try_from(number_var("MASS_ALERT_CLOSE_AFTER_SECONDS", 3600, 300..=172_800)?).unwrap_or(3600),
                ),
            },
            sending: sending_from_env()?,
        })
    }

    /// Names used by the local stack for a given resource prefix.
    pub fn table_name(prefix: &str, spec: &TableSpec) -> String {
        format!("{prefix}-{}", spec.suffix)
    }

    pub fn queue_name(prefix: &str, spec: &QueueSpec) -> String {
        format!("{prefix}-{}", spec.suffix)
    }

    pub fn dlq_name(prefix: &str, spec: &QueueSpec) -> String {
        format!("{prefix}-{}-dlq", spec.suffix)
    }

    /// The full URL of a webhook route, e.g. `/twilio/status`.
    pub fn webhook_url(&self, path: &str) -> String {
        format!("{}{}", self.public_base_url.as_str().trim_end_matches('/'), path)
    }
}

pub fn default_twilio_api_base() -> Url {
    // A literal that always parses.
    Url::parse("https://api.twilio.com").unwrap_or_else(|_| unreachable!("valid literal URL"))
}

fn var(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(name))
}

/// A whole number within `range`; the default when the variable is unset or empty.
fn number_var(name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, ConfigError> {
    parse_number(name, std::env::var(name).ok(), default, range)
}

fn parse_number(
    name: &'static str,
    value: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let bad = || ConfigError::BadNumber { name, min: *range.start(), max: *range.end() };
    match value.filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => text.trim().parse().ok().filter(|n| range.contains(n)).ok_or_else(bad),
    }
}

fn sending_from_env() -> Result<SendingSettings, ConfigError> {
    sending_from(|name| std::env::var(name).ok())
}

fn sending_from(lookup: impl Fn(&'static str) -> Option<String>) -> Result<SendingSettings, ConfigError> {
    let number = |name, default, range| parse_number(name, lookup(name), default, range);
    let percent = |name, default| -> Result<f64, ConfigError> { Ok(number(name, default, 1..=100)? as f64 / 100.0) };
    let retries = RetryPolicy {
        max_attempts: u32::try_from(number("SEND_MAX_ATTEMPTS", 6, 1..=u64::from(MAX_ATTEMPTS))?)
            .unwrap_or(MAX_ATTEMPTS),
        base: std::time::Duration::from_secs(number("SEND_RETRY_BASE_SECONDS", 2, 1..=60)?),
        max_delay: std::time::Duration::from_secs(number("SEND_RETRY_MAX_DELAY_SECONDS", 300, 1..=3600)?),
    };
    if retries.base > retries.max_delay {
        return Err(ConfigError::RetryBaseAboveMax);
    }
    Ok(SendingSettings {
        shares: Shares {
            scheduled: percent("SCHEDULED_SHARE_PERCENT", 70)?,
            bulk: percent("BULK_SHARE_PERCENT", 50)?,
            scheduled_and_bulk: percent("SHARED_LANES_SHARE_PERCENT", 80)?,
        },
        retries,
    })
}

fn url_var(name: &'static str) -> Result<Url, ConfigError> {
    Url::parse(&var(name)?).map_err(|source| ConfigError::BadUrl { name, source })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    fn sending(vars: &[(&'static str, &str)]) -> Result<SendingSettings, ConfigError> {
        let vars: HashMap<&str, String> = vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        sending_from(|name| vars.get(name).cloned())
    }

    #[test]
    fn sending_settings_default_to_the_documented_values() {
        let Ok(settings) = sending(&[]) else { panic!("defaults") };
        assert_eq!(settings, SendingSettings::default());
        assert_eq!(settings.shares, Shares { scheduled: 0.7, bulk: 0.5, scheduled_and_bulk: 0.8 });
    }

    #[test]
    fn shares_and_retries_are_set_by_the_deployment() {
        let set = sending(&[
            ("BULK_SHARE_PERCENT", "25"),
            ("SEND_MAX_ATTEMPTS", "3"),
            ("SEND_RETRY_BASE_SECONDS", "5"),
            ("SEND_RETRY_MAX_DELAY_SECONDS", "60"),
        ]);
        let Ok(settings) = set else { panic!("valid: {set:?}") };
        assert_eq!(settings.shares.bulk, 0.25);
        assert_eq!(settings.shares.scheduled, 0.7, "unset: the default");
        let expected =
            RetryPolicy { max_attempts: 3, base: Duration::from_secs(5), max_delay: Duration::from_secs(60) };
        assert_eq!(settings.retries, expected);
    }

    #[test]
    fn out_of_range_sending_settings_are_refused_by_name() {
        for (name, value) in [
            ("SEND_MAX_ATTEMPTS", "7"),
            ("SCHEDULED_SHARE_PERCENT", "0"),
            ("SHARED_LANES_SHARE_PERCENT", "120"),
            ("BULK_SHARE_PERCENT", "half"),
        ] {
            let refused = sending(&[(name, value)]);
            assert!(matches!(refused, Err(ConfigError::BadNumber { name: n, .. }) if n == name), "{name}={value}");
        }
        let inverted = sending(&[("SEND_RETRY_BASE_SECONDS", "30"), ("SEND_RETRY_MAX_DELAY_SECONDS", "10")]);
        assert!(matches!(inverted, Err(ConfigError::RetryBaseAboveMax)));
    }
}
