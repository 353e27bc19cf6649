//! Twilio resource identifiers: a two-letter type prefix and 32 hex digits.

/// Whether `candidate` is a SID of the given type, as Twilio's OpenAPI patterns define them
/// (`^AC[0-9a-fA-F]{32}$` and friends).
pub(crate) fn is_sid(prefix: &str, candidate: &str) -> bool {
    candidate.len() == prefix.len() + 32
        && candidate.starts_with(prefix)
        && candidate[prefix.len()..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// A fresh message SID. Twilio's are lowercase hex; random rather than sequential so that a
/// client which accidentally depends on ordering or guessing them fails here too.
pub(crate) fn new_message_sid() -> String {
    let bytes: [u8; 16] = rand::random();
    let mut sid = String::with_capacity(34);
    sid.push_str("SM");
    for byte in bytes {
        sid.push_str(&format!("{byte:02x}"));
    }
    sid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_sids_are_well_formed_and_distinct() {
        let a = new_message_sid();
        let b = new_message_sid();
        assert!(is_sid("SM", &a), "{a}");
        assert_eq!(a, a.to_lowercase().replacen("sm", "SM", 1));
        assert_ne!(a, b);
    }

    #[test]
    fn patterns() {
        assert!(is_sid("AC", &format!("AC{}", "aB3".repeat(10) + "00")));
        assert!(!is_sid("AC", &format!("AC{}", "a".repeat(31))));
        assert!(!is_sid("AC", &format!("MG{}", "a".repeat(32))));
        assert!(!is_sid("MG", &format!("MG{}", "g".repeat(32))));
        assert!(!is_sid("AC", "null"));
    }
}
