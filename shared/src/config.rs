//! Deployment settings: resource names, the Twilio account, the public base URL. On Lambda they
//! come from the environment `template.yaml` sets; the local stack and tests build them directly.

use url::Url;

use crate::aws_resources::{QueueSpec, TableSpec};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is not a valid URL: {source}")]
    BadUrl { name: &'static str, source: url::ParseError },
    #[error("environment variable {name} must be a whole number of seconds from {min} to {max}")]
    BadSeconds { name: &'static str, min: u64, max: u64 },
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub tables: TableNames,
    pub queues: QueueUrls,
    pub event_bus: String,
    pub reports_bucket: String,
    pub twilio: TwilioSettings,
    pub alerts: AlertSettings,
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
                report_link_valid_for: std::time::Duration::from_secs(seconds_var(
                    "REPORT_LINK_SECONDS",
                    300,
                    60..=3600,
                )?),
                close_after: chrono::TimeDelta::seconds(
                    i64::try_from(seconds_var("MASS_ALERT_CLOSE_AFTER_SECONDS", 3600, 300..=172_800)?).unwrap_or(3600),
                ),
            },
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

/// A number of seconds within `range`; the default when the variable is unset or empty.
fn seconds_var(name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<u64, ConfigError> {
    let bad = || ConfigError::BadSeconds { name, min: *range.start(), max: *range.end() };
    match var(name) {
        Err(ConfigError::Missing(_)) => Ok(default),
        Err(other) => Err(other),
        Ok(text) => text.trim().parse().ok().filter(|s| range.contains(s)).ok_or_else(bad),
    }
}

fn url_var(name: &'static str) -> Result<Url, ConfigError> {
    Url::parse(&var(name)?).map_err(|source| ConfigError::BadUrl { name, source })
}
