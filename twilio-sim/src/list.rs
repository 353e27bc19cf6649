//! Twilio's message list (`GET …/Messages.json`): filters, newest first, and paging by token.
//!
//! Twilio's paging: each page's `next_page_uri` carries `PageToken=PA<SID>` (after the last
//! message of the page) and `previous_page_uri` `PageToken=PB<SID>` (before its first); `Page` is
//! "simply for client state", and a `Page` past 0 without a `PageToken` is refused with Twilio's
//! "Paged requests must include a PageToken" (code 70002, as twilio-ruby#494 reports it).
//! Tokens name messages rather than offsets, so new messages arriving between two requests shift
//! nothing.

use chrono::NaiveDate;
use serde::Serialize;

use crate::api_error::ApiError;
use crate::resource::{MessageRecord, MessageResource};

const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// The query of a list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListQuery {
    to: Option<String>,
    from: Option<String>,
    /// `DateSent=YYYY-MM-DD`: sent that day (UTC).
    sent_on: Option<NaiveDate>,
    /// `DateSent<=YYYY-MM-DD` (the field is `DateSent<`): sent that day or before.
    sent_until: Option<NaiveDate>,
    /// `DateSent>=YYYY-MM-DD`: sent that day or after.
    sent_from: Option<NaiveDate>,
    page_size: usize,
    page: usize,
    token: Option<PageToken>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PageToken {
    /// The messages after (older than) this one.
    After(String),
    /// The messages before (newer than) this one.
    Before(String),
}

impl PageToken {
    fn parse(token: &str) -> Option<Self> {
        let is_message_sid = |sid: &str| sid.starts_with("SM") || sid.starts_with("MM");
        match token.split_at_checked(2)? {
            ("PA", sid) if is_message_sid(sid) => Some(Self::After(sid.to_owned())),
            ("PB", sid) if is_message_sid(sid) => Some(Self::Before(sid.to_owned())),
            _ => None,
        }
    }

    fn encode(&self) -> String {
        match self {
            Self::After(sid) => format!("PA{sid}"),
            Self::Before(sid) => format!("PB{sid}"),
        }
    }
}

impl ListQuery {
    /// Reads the raw query string. Unknown parameters are ignored and empty values count as
    /// absent; the first of repeated parameters counts.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
        let get = |name: &str| pairs.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str());
        let date = |name: &str| {
            get(name)
                .map(|value| {
                    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
                        // Twilio also takes date-times here; the simulator only understands dates.
                        invalid(name, value, "the simulator takes only YYYY-MM-DD dates")
                    })
                })
                .transpose()
        };
        let page_size = match get("PageSize") {
            None => DEFAULT_PAGE_SIZE,
            Some(value) => value
                .parse()
                .ok()
                .filter(|size| (1..=MAX_PAGE_SIZE).contains(size))
                .ok_or_else(|| invalid("PageSize", value, "it must be an integer from 1 to 1000"))?,
        };
        let page = match get("Page") {
            None => 0,
            Some(value) => value.parse().map_err(|_| invalid("Page", value, "it must be a non-negative integer"))?,
        };
        let token = get("PageToken")
            .map(|value| PageToken::parse(value).ok_or_else(|| invalid("PageToken", value, "it is not a page token")))
            .transpose()?;
        if page > 0 && token.is_none() {
            return Err(ApiError::bad_request(70002, "Unable to fetch page: Paged requests must include a PageToken"));
        }
        Ok(Self {
            to: get("To").map(str::to_owned),
            from: get("From").map(str::to_owned),
            sent_on: date("DateSent")?,
            sent_until: date("DateSent<")?,
            sent_from: date("DateSent>")?,
            page_size,
            page,
            token,
        })
    }

    fn matches(&self, record: &MessageRecord) -> bool {
        let message = &record.message;
        if self.to.as_ref().is_some_and(|to| *to != message.to)
            || self.from.as_ref().is_some_and(|from| message.from.as_ref() != Some(from))
        {
            return false;
        }
        let dated = self.sent_on.is_some() || self.sent_until.is_some() || self.sent_from.is_some();
        if !dated {
            return true;
        }
        // A message Twilio still holds has no `date_sent`, so no date filter finds it.
        let Some(sent) = record.sent_at.map(|at| at.date_naive()) else {
            return false;
        };
        self.sent_on.is_none_or(|day| sent == day)
            && self.sent_until.is_none_or(|day| sent <= day)
            && self.sent_from.is_none_or(|day| sent >= day)
    }

    /// `path` with this query's filters, then `PageSize`, `Page` and, if any, `PageToken`, in
    /// Twilio's order and encoding (`DateSent%3E=…`, `To=%2B1…`).
    fn uri(&self, path: &str, page: usize, token: Option<&PageToken>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        let dates = [("DateSent", self.sent_on), ("DateSent<", self.sent_until), ("DateSent>", self.sent_from)];
        for (name, value) in [("To", self.to.clone()), ("From", self.from.clone())]
            .into_iter()
            .chain(dates.map(|(name, day)| (name, day.map(|d| d.format("%Y-%m-%d").to_string()))))
        {
            if let Some(value) = value {
                query.append_pair(name, &value);
            }
        }
        query.append_pair("PageSize", &self.page_size.to_string());
        query.append_pair("Page", &page.to_string());
        if let Some(token) = token {
            query.append_pair("PageToken", &token.encode());
        }
        format!("{path}?{}", query.finish())
    }
}

fn invalid(name: &str, value: &str, why: &str) -> ApiError {
    // 20001 is the simulator's choice: Twilio's code for a malformed list parameter is not on record.
    ApiError::bad_request(20001, format!("Invalid value {value:?} for the {name} parameter: {why}."))
}

/// Twilio's `ListMessageResponse`.
#[derive(Debug, Serialize)]
pub(crate) struct MessagePage {
    messages: Vec<MessageResource>,
    end: usize,
    first_page_uri: String,
    next_page_uri: Option<String>,
    page: usize,
    page_size: usize,
    previous_page_uri: Option<String>,
    start: usize,
    uri: String,
}

/// One page of `account_sid`'s messages (`records` in creation order), newest first. `path` is
/// the list's path, for the page URIs.
pub(crate) fn page(
    records: &[MessageRecord],
    account_sid: &str,
    query: &ListQuery,
    path: &str,
) -> Result<MessagePage, ApiError> {
    // Newest first: the account's messages, latest created first.
    let newest_first: Vec<&MessageRecord> =
        records.iter().rev().filter(|r| r.message.account_sid == account_sid).collect();
    // The matching messages, each with its place in `newest_first`, so a token can be placed
    // among them even if its own message does not match (the filters changed between pages).
    let matching: Vec<(usize, &MessageRecord)> =
        newest_first.iter().copied().enumerate().filter(|(_, r)| query.matches(r)).collect();
    let place = |sid: &str| {
        newest_first.iter().position(|r| r.message.sid == sid).ok_or_else(|| invalid_token(query.token.as_ref()))
    };
    // Where the page begins among the matching messages.
    let offset = match &query.token {
        None => 0,
        Some(PageToken::After(sid)) => {
            let at = place(sid)?;
            matching.iter().filter(|(i, _)| *i <= at).count()
        }
        Some(PageToken::Before(sid)) => {
            let at = place(sid)?;
            matching.iter().filter(|(i, _)| *i < at).count().saturating_sub(query.page_size)
        }
    };
    let shown: Vec<&MessageRecord> = matching.iter().skip(offset).take(query.page_size).map(|(_, r)| *r).collect();
    // Twilio's `start` and `end` follow `Page`, like its page URIs, whatever arrived since.
    let start = query.page * query.page_size;
    let end = start + shown.len().saturating_sub(1);

    let next_page_uri = match shown.last() {
        Some(last) if offset + shown.len() < matching.len() => {
            Some(query.uri(path, query.page + 1, Some(&PageToken::After(last.message.sid.clone()))))
        }
        _ => None,
    };
    let previous_page_uri = (offset > 0).then(|| {
        let token = shown.first().map(|first| PageToken::Before(first.message.sid.clone()));
        query.uri(path, query.page.saturating_sub(1), token.as_ref())
    });
    Ok(MessagePage {
        messages: shown.iter().map(|r| r.to_resource()).collect(),
        end,
        first_page_uri: query.uri(path, 0, None),
        next_page_uri,
        page: query.page,
        page_size: query.page_size,
        previous_page_uri,
        start,
        uri: query.uri(path, query.page, query.token.as_ref()),
    })
}

fn invalid_token(token: Option<&PageToken>) -> ApiError {
    let value = token.map(PageToken::encode).unwrap_or_default();
    invalid("PageToken", &value, "it names no message of this account")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_with_twilio_defaults_and_limits() {
        let query = ListQuery::parse(None).unwrap();
        assert_eq!((query.page_size, query.page, query.token), (50, 0, None));

        let query =
            ListQuery::parse(Some("To=%2B15551234567&DateSent%3E=2024-03-01&DateSent<=2024-03-31&PageSize=1000"))
                .unwrap();
        assert_eq!(query.to.as_deref(), Some("+15551234567"));
        assert_eq!(query.sent_from, NaiveDate::from_ymd_opt(2024, 3, 1));
        assert_eq!(query.sent_until, NaiveDate::from_ymd_opt(2024, 3, 31));
        assert_eq!(query.page_size, 1000);

        let code = |q: &str| ListQuery::parse(Some(q)).err().map(|e| e.code);
        assert_eq!(code("PageSize=1001"), Some(20001));
        assert_eq!(code("PageSize=0"), Some(20001));
        assert_eq!(code("DateSent=2024-3-1x"), Some(20001));
        assert_eq!(code("DateSent>=Wed, 19 Jun 2019 22:04:00 -0000"), Some(20001));
        assert_eq!(code("PageToken=nonsense"), Some(20001));
        assert_eq!(code("Page=2"), Some(70002));
        assert_eq!(code("Page=2&PageToken=PASM0123"), None);
    }

    #[test]
    fn page_uris_are_in_twilios_order_and_encoding() {
        let query =
            ListQuery::parse(Some("PageSize=2&DateSent>=2008-01-02&From=%2B987654321&To=%2B123456789")).unwrap();
        let path = "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json";
        assert_eq!(
            query.uri(path, 1, Some(&PageToken::After("SMc26223853f8c46b4ab7dfaa6abba0a26".into()))),
            "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json?To=%2B123456789&From=%2B987654321\
             &DateSent%3E=2008-01-02&PageSize=2&Page=1&PageToken=PASMc26223853f8c46b4ab7dfaa6abba0a26"
        );
    }
}
