//! `X-Twilio-Signature`: HMAC-SHA1 over the URL Twilio was configured with, followed by every
//! POST parameter as `name` + `value`, names in byte order and the distinct values of a repeated
//! name in byte order, keyed with the account's primary auth token, standard Base64.
//!
//! Verification accepts the URL as given, with its default port removed, and with the default
//! port added: Twilio keeps an explicit port when it signs SMS webhooks, and proxies in front of
//! us may add or drop `:443`.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

type HmacSha1 = Hmac<Sha1>;

/// The signature Twilio would send for a form-encoded POST of `params` to `url`.
pub fn sign<'a, I>(auth_token: &str, url: &str, params: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut by_name: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, value) in params {
        by_name.entry(name).or_default().insert(value);
    }
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = HmacSha1::new_from_slice(auth_token.as_bytes()) else {
        unreachable!("HMAC-SHA1 takes keys of any length")
    };
    mac.update(url.as_bytes());
    for (name, values) in &by_name {
        for value in values {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a request's signature. `params` are the decoded form parameters (empty for a JSON body,
/// whose integrity is checked through the `bodySHA256` query parameter instead).
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let pairs = || params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let mut matched = false;
    // Evaluate every candidate so the time taken does not depend on which one matched.
    for candidate in url_variants(url) {
        let expected = sign(auth_token, &candidate, pairs());
        matched |= bool::from(expected.as_bytes().ct_eq(signature.as_bytes()));
    }
    matched
}

/// For `application/json` webhooks: the signature covers the URL only, and the URL carries the
/// body's SHA-256 (lowercase hex) as `bodySHA256`.
pub fn verify_json_body(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let Ok(parsed) = Url::parse(url) else {
        return false;
    };
    let Some((_, declared)) = parsed.query_pairs().find(|(k, _)| k == "bodySHA256") else {
        return false;
    };
    let actual = hex_lower(&Sha256::digest(body));
    let body_ok = bool::from(actual.as_bytes().ct_eq(declared.as_bytes()));
    verify(auth_token, url, &[], signature) & body_ok
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The URL as given, plus the same URL without and with the scheme's default port.
/// Rebuilt by string surgery rather than `Url::to_string`, which would re-encode the query and
/// drop an explicit default port.
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    // The scheme's default, not `port_or_known_default`, which returns an explicit port: that
    // would let a signature made without a non-default port verify for the URL with it.
    let Some(default_port) = Url::parse(url).ok().and_then(|u| match u.scheme() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }) else {
        return variants;
    };
    let Some(scheme_end) = url.find("://").map(|i| i + "://".len()) else {
        return variants;
    };
    let authority_end = url[scheme_end..].find(['/', '?', '#']).map_or(url.len(), |i| scheme_end + i);
    let (prefix, authority, rest) = (&url[..scheme_end], &url[scheme_end..authority_end], &url[authority_end..]);
    // Twilio drops user:pass@ when it signs.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let explicit_port = host_port
        .rsplit_once(':')
        .filter(|(host, port)| !host.ends_with(']') || !port.is_empty())
        .and_then(|(host, port)| port.parse::<u16>().ok().map(|p| (host, p)));
    match explicit_port {
        Some((host, port)) if port == default_port => variants.push(format!("{prefix}{host}{rest}")),
        Some(_) => {}
        None => variants.push(format!("{prefix}{host_port}:{default_port}{rest}")),
    }
    if host_port != authority {
        variants.push(format!("{prefix}{host_port}{rest}"));
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";

    fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
        params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn voice_params() -> Vec<(String, String)> {
        owned(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ])
    }

    fn signed(url: &str, params: &[(String, String)]) -> String {
        sign(TOKEN, url, params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    #[test]
    fn docs_vector_without_port() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(signed(url, &voice_params()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(verify(TOKEN, url, &voice_params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    }

    #[test]
    fn explicit_default_port_is_signed_as_written_and_verified_either_way() {
        let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(signed(with_port, &voice_params()), "kvajT1Ptam85bY51eRf/AJRuM3w=");
        // Signed with the port, received without it (a proxy dropped it), and the reverse.
        let without = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(verify(TOKEN, without, &voice_params(), "kvajT1Ptam85bY51eRf/AJRuM3w="));
        assert!(verify(TOKEN, with_port, &voice_params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    }

    #[test]
    fn non_default_port_is_kept() {
        let url = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
        assert_eq!(signed(url, &voice_params()), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=");
        assert!(verify(TOKEN, url, &voice_params(), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="));
        let wrong_port = "http://mycompany.com:1235/myapp.php?foo=1&bar=2";
        assert!(!verify(TOKEN, wrong_port, &voice_params(), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="));
        // Signed without the port, received for the URL with it, and the reverse: both refused.
        let portless = "http://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(!verify(TOKEN, url, &voice_params(), &signed(portless, &voice_params())));
        assert!(!verify(TOKEN, portless, &voice_params(), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="));
    }

    #[test]
    fn http_default_port() {
        let url = "http://mycompany.com:80/myapp.php?foo=1&bar=2";
        assert_eq!(signed(url, &voice_params()), "0ZXoZLH/DfblKGATFgpif+LLRf4=");
        let without = "http://mycompany.com/myapp.php?foo=1&bar=2";
        assert!(verify(TOKEN, without, &voice_params(), "0ZXoZLH/DfblKGATFgpif+LLRf4="));
    }

    #[test]
    fn repeated_parameters_sign_their_distinct_values_in_order() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let params = owned(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(signed(url, &params), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
        assert!(!verify(TOKEN, url, &params, "tM//N+MVWOh7+ol2z8YCNxSY0Eg="));
    }

    #[test]
    fn json_body_is_checked_through_its_hash() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let body = br#"{"property": "value", "boolean": true}"#;
        assert_eq!(signed(url, &[]), "a9nBmqA0ju/hNViExpshrM61xv4=");
        assert!(verify_json_body(TOKEN, url, body, "a9nBmqA0ju/hNViExpshrM61xv4="));
        assert!(!verify_json_body(TOKEN, url, b"{}", "a9nBmqA0ju/hNViExpshrM61xv4="));
    }

    #[test]
    fn docs_example_com_vector() {
        let url = "https://example.com/myapp.php?foo=1&bar=2";
        let params = owned(&[
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675310"),
            ("Caller", "+14158675310"),
            ("CallSid", "CA1234567890ABCDE"),
        ]);
        assert_eq!(signed(url, &params), "L/OH5YylLD5NRKLltdqwSvS0BnU=");
    }

    #[test]
    fn status_callback_vector() {
        let sid = format!("SM{}", "a".repeat(32));
        let account = format!("AC{}", "a".repeat(32));
        let params = owned(&[
            ("MessageSid", &sid),
            ("MessageStatus", "delivered"),
            ("AccountSid", &account),
            ("From", "+15005550006"),
            ("To", "+15551234567"),
            ("ApiVersion", "2010-04-01"),
            ("SmsSid", &sid),
            ("SmsStatus", "delivered"),
        ]);
        let url = "https://example.com/twilio/status";
        assert_eq!(signed(url, &params), "FoIsk/Nzr58xdafJ/XqhT23bkCQ=");
    }

    #[test]
    fn unicode_and_empty_values_vector() {
        let sid = format!("SM{}", "b".repeat(32));
        let params = owned(&[
            ("Body", "héllo wörld 👍"),
            ("From", "+15551234567"),
            ("To", "+15005550006"),
            ("NumMedia", "0"),
            ("OptOutType", ""),
            ("MessageSid", &sid),
        ]);
        let url = "https://example.com/twilio/inbound";
        assert_eq!(signed(url, &params), "KZSyoJsYgM0yXGyprDnx5WPHJ1I=");
        // An empty value still contributes its name.
        let without_empty: Vec<_> = params.iter().filter(|(k, _)| k != "OptOutType").cloned().collect();
        assert!(!verify(TOKEN, url, &without_empty, "KZSyoJsYgM0yXGyprDnx5WPHJ1I="));
    }

    #[test]
    fn wrong_token_tampered_value_or_trailing_slash_fail() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let sig = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(!verify("54321", url, &voice_params(), sig));
        let mut tampered = voice_params();
        tampered[1].1 = "1235".into();
        assert!(!verify(TOKEN, url, &tampered, sig));
        assert!(!verify(TOKEN, "https://mycompany.com/myapp.php/?foo=1&bar=2", &voice_params(), sig));
        assert!(!verify(TOKEN, url, &voice_params(), ""));
    }

    #[test]
    fn user_info_is_not_signed() {
        let url = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
        assert!(verify(TOKEN, url, &voice_params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    }
}
