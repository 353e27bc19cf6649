//! A phone texting one of the accounts' numbers: the simulator posts Twilio's inbound-message
//! webhook, with Twilio's parameters and `X-Twilio-Signature`, to the URL configured for the
//! number (or its Messaging Service), or to a URL the caller names. What was posted and how the
//! webhook answered is kept for tests to read.

use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};
use shared::phone::E164;
use shared::twilio::signature;

use crate::resource::API_VERSION;
use crate::sid::new_message_sid;
use crate::state::{SimState, lock};

/// Twilio's reading of a keyword text, sent as `OptOutType` by a Messaging Service with Advanced
/// Opt-Out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OptOutType {
    Stop,
    Start,
    Help,
}

impl OptOutType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "STOP",
            Self::Start => "START",
            Self::Help => "HELP",
        }
    }
}

/// A text a phone sends: `{"from": "+1…", "to": "+1…", "body": "…", "opt_out_type": "STOP",
/// "duplicate": true, "url": "http://…"}` (the last three optional).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundText {
    /// The patient's phone (E.164).
    pub from: String,
    /// One of the accounts' numbers (E.164).
    pub to: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub opt_out_type: Option<OptOutType>,
    /// Posts the same text (same `MessageSid`) twice, as Twilio sometimes does.
    #[serde(default)]
    pub duplicate: bool,
    /// Where to post instead of the number's configured inbound URL.
    #[serde(default)]
    pub url: Option<String>,
}

impl InboundText {
    pub fn new(from: &str, to: &str, body: &str) -> Self {
        Self { from: from.into(), to: to.into(), body: body.into(), opt_out_type: None, duplicate: false, url: None }
    }
}

/// One inbound text as posted: the URL, the signed fields, and the webhook's answer to each
/// delivery (one status per post; 0 when the webhook could not be reached).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboundDelivery {
    pub message_sid: String,
    pub url: String,
    pub params: Vec<(String, String)>,
    pub signature: String,
    pub response_statuses: Vec<u16>,
}

/// Builds, signs and posts the text; refused when no account owns `to` or no URL is known.
pub(crate) async fn deliver(state: &Arc<SimState>, text: InboundText) -> anyhow::Result<InboundDelivery> {
    let from = E164::parse(&text.from, None).map_err(|e| anyhow!("`from` is not an E.164 number: {e}"))?;
    let to = E164::parse(&text.to, None).map_err(|e| anyhow!("`to` is not an E.164 number: {e}"))?;
    let Some(account) = state.accounts.iter().find(|a| a.owns_sender(to.as_str())) else {
        bail!("no account owns {}: Twilio would not route the text anywhere", to.as_str());
    };
    let service = account.messaging_services.iter().find(|s| s.numbers.iter().any(|n| n == to.as_str()));
    let url = match &text.url {
        Some(url) => url.clone(),
        None => state
            .inbound_url(service.map(|s| s.sid.as_str()), to.as_str())
            .with_context(|| format!("no inbound URL is configured for {}", to.as_str()))?,
    };
    let sid = new_message_sid();
    let mut params: Vec<(String, String)> = vec![
        ("ToCountry".into(), to.region().unwrap_or_default()),
        ("SmsMessageSid".into(), sid.clone()),
        ("NumMedia".into(), "0".into()),
        ("SmsSid".into(), sid.clone()),
        ("SmsStatus".into(), "received".into()),
        ("Body".into(), text.body.clone()),
        ("FromCountry".into(), from.region().unwrap_or_default()),
        ("To".into(), to.as_str().to_owned()),
        ("NumSegments".into(), crate::segments::count(&text.body).max(1).to_string()),
        ("MessageSid".into(), sid.clone()),
        ("AccountSid".into(), account.sid.clone()),
        ("From".into(), from.as_str().to_owned()),
        ("ApiVersion".into(), API_VERSION.to_owned()),
    ];
    if let Some(service) = service {
        params.push(("MessagingServiceSid".into(), service.sid.clone()));
    }
    if let Some(kind) = text.opt_out_type {
        params.push(("OptOutType".into(), kind.as_str().to_owned()));
    }
    let signature =
        signature::sign(&account.auth_token, &url, params.iter().map(|(name, value)| (name.as_str(), value.as_str())));
    let mut response_statuses = Vec::new();
    for _ in 0..if text.duplicate { 2 } else { 1 } {
        let answer = state.http.post(&url).header("X-Twilio-Signature", &signature).form(&params).send().await;
        response_statuses.push(match answer {
            Ok(response) => response.status().as_u16(),
            Err(error) => {
                tracing::warn!(%url, %error, "inbound webhook unreachable");
                0
            }
        });
    }
    let delivery = InboundDelivery { message_sid: sid, url, params, signature, response_statuses };
    lock(&state.inbound).push(delivery.clone());
    Ok(delivery)
}
