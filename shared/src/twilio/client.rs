//! The Twilio Messages API over HTTPS: form-encoded PascalCase fields, Basic auth, JSON answers.
//! Errors are sorted by what they mean for a retry: Twilio never saw the request, Twilio
//! refused it, or we cannot know whether Twilio created the message.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::Deserialize;

use crate::config::TwilioSettings;
use crate::phone::E164;

/// Who a text is sent from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum SenderId {
    /// A Twilio number (E.164).
    Number(E164),
    /// A Messaging Service SID (`MG…`); Twilio picks a number from its pool.
    MessagingService(String),
}

pub struct NewMessage<'a> {
    pub to: &'a E164,
    pub sender: &'a SenderId,
    pub body: &'a str,
    pub status_callback: &'a str,
}

/// Twilio's answer to a create, as far as we use it. Every field is optional in Twilio's schema.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatedMessage {
    pub sid: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub num_segments: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// Twilio answered with an error: the request was processed and refused.
    #[error("Twilio refused the message: HTTP {http_status}, code {code}: {message}")]
    Refused { http_status: u16, code: u32, message: String },
    /// 429 / 20429: not processed, always safe to retry after a pause.
    #[error("Twilio asked us to slow down")]
    Throttled { retry_after: Option<Duration> },
    /// The connection failed before the request was sent: safe to retry.
    #[error("could not reach Twilio: {0}")]
    Unreachable(String),
    /// A 5xx, a timeout, or a connection lost after the request was written: Twilio may or may
    /// not have created the message.
    #[error("the outcome at Twilio is unknown: {0}")]
    Ambiguous(String),
}

#[derive(Clone, Debug)]
pub struct TwilioClient {
    /// Built at the first call, not at start: building it loads the TLS root certificates, a
    /// few milliseconds of every cold start, and most functions never call Twilio.
    http: Arc<OnceLock<reqwest::Client>>,
    timeout: Duration,
    settings: TwilioSettings,
}

/// Twilio's error body; newer APIs use a problem-details shape with the same `code`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<u32>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

impl TwilioClient {
    /// `timeout` bounds a whole request; the sender's lease must outlast it.
    pub fn new(settings: TwilioSettings, timeout: Duration) -> Self {
        Self { http: Arc::default(), timeout, settings }
    }

    /// The HTTP client, built on first use. A client that cannot be built sent nothing.
    fn http(&self) -> Result<&reqwest::Client, TwilioError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| TwilioError::Unreachable(format!("the HTTP client could not be built: {e}")))?;
        Ok(self.http.get_or_init(|| client))
    }

    pub fn account_sid(&self) -> &str {
        &self.settings.account_sid
    }

    pub async fn create_message(&self, message: &NewMessage<'_>) -> Result<CreatedMessage, TwilioError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.settings.api_base.as_str().trim_end_matches('/'),
            self.settings.account_sid
        );
        let sender = match message.sender {
            SenderId::Number(number) => ("From", number.as_str()),
            SenderId::MessagingService(sid) => ("MessagingServiceSid", sid.as_str()),
        };
        let form =
            [("To", message.to.as_str()), sender, ("Body", message.body), ("StatusCallback", message.status_callback)];
        let response = self
            .http()?
            .post(url)
            .basic_auth(&self.settings.account_sid, Some(&self.settings.auth_token))
            .form(&form)
            .send()
            .await
            .map_err(classify_transport_error)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(|e| TwilioError::Ambiguous(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| TwilioError::Ambiguous(format!("unreadable answer to a {status}: {e}")));
        }
        if status.is_server_error() {
            return Err(TwilioError::Ambiguous(format!("HTTP {status}")));
        }
        let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        let code = body.as_ref().and_then(|b| b.code).unwrap_or(u32::from(status.as_u16()));
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS || code == 20429 {
            return Err(TwilioError::Throttled { retry_after });
        }
        let message = body
            .and_then(|b| b.message.or(b.detail).or(b.title))
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
        Err(TwilioError::Refused { http_status: status.as_u16(), code, message })
    }
}

/// One record of Twilio's message list, as far as reconciliation needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedMessage {
    pub sid: String,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// RFC 2822, e.g. `Thu, 24 Aug 2023 05:01:45 +0000`.
    #[serde(default)]
    pub date_created: Option<String>,
}

#[derive(Deserialize)]
struct MessagePage {
    #[serde(default)]
    messages: Vec<ListedMessage>,
    #[serde(default)]
    next_page_uri: Option<String>,
}

impl TwilioClient {
    /// Finds a message Twilio holds for `to` with exactly `body`, created at or after `since`.
    /// Twilio's list filters by `To` (and `From` for a number sender); `date_sent` is empty while
    /// Twilio still holds a message, so the creation time is checked here instead.
    pub async fn find_message(
        &self,
        to: &E164,
        sender: &SenderId,
        body: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<ListedMessage>, TwilioError> {
        let base = self.settings.api_base.as_str().trim_end_matches('/').to_owned();
        let mut query = vec![("To", to.to_string()), ("PageSize", "100".to_owned())];
        if let SenderId::Number(from) = sender {
            query.push(("From", from.to_string()));
        }
        let mut url = format!("{base}/2010-04-01/Accounts/{}/Messages.json", self.settings.account_sid);
        let mut first = true;
        // Newest first: stop at the first page that reaches back before `since`.
        for _ in 0..20 {
            let mut request =
                self.http()?.get(&url).basic_auth(&self.settings.account_sid, Some(&self.settings.auth_token));
            if first {
                request = request.query(&query);
            }
            let response = request.send().await.map_err(classify_transport_error)?;
            if !response.status().is_success() {
                return Err(TwilioError::Ambiguous(format!("listing messages answered HTTP {}", response.status())));
            }
            let page: MessagePage =
                response.json().await.map_err(|e| TwilioError::Ambiguous(format!("unreadable message list: {e}")))?;
            let mut reached_before = false;
            for listed in page.messages {
                let created = listed
                    .date_created
                    .as_deref()
                    .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
                    .map(|d| d.to_utc());
                if created.is_some_and(|c| c < since) {
                    reached_before = true;
                    continue;
                }
                if listed.body.as_deref() == Some(body) {
                    return Ok(Some(listed));
                }
            }
            match page.next_page_uri {
                Some(next) if !reached_before => {
                    url = format!("{base}{next}");
                    first = false;
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }
}

fn classify_transport_error(error: reqwest::Error) -> TwilioError {
    // A refused or failed connection means no request bytes reached Twilio.
    if error.is_connect() && !error.is_timeout() {
        TwilioError::Unreachable(error.to_string())
    } else {
        TwilioError::Ambiguous(error.to_string())
    }
}

/// A message as Twilio holds it now, as far as a status check needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FetchedMessage {
    pub sid: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub error_code: Option<u32>,
}

impl TwilioClient {
    /// `GET …/Messages/{Sid}.json`: where Twilio says the message is now.
    pub async fn fetch_message(&self, sid: &str) -> Result<FetchedMessage, TwilioError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages/{sid}.json",
            self.settings.api_base.as_str().trim_end_matches('/'),
            self.settings.account_sid
        );
        let response = self
            .http()?
            .get(url)
            .basic_auth(&self.settings.account_sid, Some(&self.settings.auth_token))
            .send()
            .await
            .map_err(classify_transport_error)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| TwilioError::Ambiguous(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| TwilioError::Ambiguous(format!("unreadable message resource: {e}")));
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(TwilioError::Throttled { retry_after: None });
        }
        if status.is_server_error() {
            return Err(TwilioError::Ambiguous(format!("fetching a message answered HTTP {status}")));
        }
        let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        let code = body.as_ref().and_then(|b| b.code).unwrap_or(u32::from(status.as_u16()));
        let message = body.and_then(|b| b.message.or(b.detail).or(b.title)).unwrap_or_default();
        Err(TwilioError::Refused { http_status: status.as_u16(), code, message })
    }
}
