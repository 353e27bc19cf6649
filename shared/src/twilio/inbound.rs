//! Twilio's inbound-message webhook form read into an [`InboundText`]. Twilio adds fields without
//! notice, so anything not read here is ignored.

use crate::message::InboundText;
use crate::phone::E164;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InboundFormError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{0} is not valid")]
    Invalid(&'static str),
}

/// Reads the fields we use; `MessageSid`, `From` and `To` are required.
pub fn parse(form: &[(String, String)]) -> Result<InboundText, InboundFormError> {
    let value = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let required = |name: &'static str| value(name).ok_or(InboundFormError::Missing(name));
    let number = |name: &'static str| {
        required(name).and_then(|v| E164::try_from(v.to_owned()).map_err(|_| InboundFormError::Invalid(name)))
    };
    let message_sid = required("MessageSid")?;
    // A SID names an item key: printable, no separator, Twilio's 34 characters at most a few more.
    let sid_ok = message_sid.len() <= 64 && message_sid.chars().all(|c| c.is_ascii_alphanumeric());
    if !sid_ok {
        return Err(InboundFormError::Invalid("MessageSid"));
    }
    Ok(InboundText {
        message_sid: message_sid.to_owned(),
        from: number("From")?,
        to: number("To")?,
        body: value("Body").unwrap_or_default().to_owned(),
        messaging_service_sid: value("MessagingServiceSid").map(str::to_owned),
        opt_out_type: value("OptOutType").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    const SID: &str = "SM0123456789abcdef0123456789abcdef";

    #[test]
    fn reads_twilios_fields_and_ignores_the_rest() {
        let text = parse(&form(&[
            ("MessageSid", SID),
            ("From", "+14155550123"),
            ("To", "+15017122661"),
            ("Body", " Stop "),
            ("OptOutType", "STOP"),
            ("FieldAddedNextYear", "x"),
        ]));
        let Ok(text) = text else { panic!("parses: {text:?}") };
        assert_eq!(
            (text.message_sid.as_str(), text.from.as_str(), text.to.as_str()),
            (SID, "+14155550123", "+15017122661")
        );
        assert_eq!((text.body.as_str(), text.opt_out_type.as_deref()), (" Stop ", Some("STOP")));
        assert_eq!(text.messaging_service_sid, None);
    }

    #[test]
    fn sid_from_and_to_are_required_and_must_be_sound() {
        let full = [("MessageSid", SID), ("From", "+14155550123"), ("To", "+15017122661")];
        for missing in ["MessageSid", "From", "To"] {
            let without: Vec<_> = full.iter().copied().filter(|(k, _)| *k != missing).collect();
            assert_eq!(parse(&form(&without)), Err(InboundFormError::Missing(missing)));
            let empty: Vec<_> = full.iter().map(|&(k, v)| if k == missing { (k, "") } else { (k, v) }).collect();
            assert_eq!(parse(&form(&empty)), Err(InboundFormError::Missing(missing)));
        }
        let bad_number = [("MessageSid", SID), ("From", "+1 415"), ("To", "+15017122661")];
        assert_eq!(parse(&form(&bad_number)), Err(InboundFormError::Invalid("From")));
        let bad_sid = [("MessageSid", "SM#1"), ("From", "+14155550123"), ("To", "+15017122661")];
        assert_eq!(parse(&form(&bad_sid)), Err(InboundFormError::Invalid("MessageSid")));
    }
}
