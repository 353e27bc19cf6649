//! How many SMS segments Twilio reports for a body (`num_segments`).
//!
//! Twilio sends GSM-7 when every character is in the GSM 03.38 alphabet (extension characters
//! take two septets) and UCS-2 otherwise. A single segment holds 160 septets or 70 UCS-2 units;
//! a concatenated one loses room to its header and holds 153 or 67. This ignores that a segment
//! boundary never splits an escape pair or a surrogate pair, which can add a segment in rare
//! bodies: close enough for a simulator.

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
    ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

pub(crate) fn count(body: &str) -> u32 {
    match gsm7_septets(body) {
        Some(septets) => segments(septets, 160, 153),
        None => segments(body.encode_utf16().count(), 70, 67),
    }
}

fn gsm7_septets(body: &str) -> Option<usize> {
    body.chars().try_fold(0, |septets, c| {
        if GSM7_BASIC.contains(c) {
            Some(septets + 1)
        } else if GSM7_EXTENSION.contains(c) {
            Some(septets + 2)
        } else {
            None
        }
    })
}

fn segments(units: usize, single: usize, concatenated: usize) -> u32 {
    let count = if units <= single { 1 } else { units.div_ceil(concatenated) };
    u32::try_from(count).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn gsm7_bodies() {
        assert_eq!(count(""), 1);
        assert_eq!(count(&"a".repeat(160)), 1);
        assert_eq!(count(&"a".repeat(161)), 2);
        assert_eq!(count(&"a".repeat(306)), 2);
        assert_eq!(count(&"a".repeat(307)), 3);
        assert_eq!(count("Reminder: Dr. Müller, 10:30 @ Ørsted St. £5 fee"), 1);
    }

    #[test]
    fn extension_characters_take_two_septets() {
        assert_eq!(count(&"€".repeat(80)), 1);
        assert_eq!(count(&"€".repeat(81)), 2);
    }

    #[test]
    fn anything_else_switches_to_ucs2() {
        assert_eq!(count(&format!("{}👍", "a".repeat(68))), 1);
        assert_eq!(count(&format!("{}👍", "a".repeat(69))), 2);
        assert_eq!(count(&"ç".repeat(134)), 2);
        assert_eq!(count(&"ç".repeat(135)), 3);
    }
}
