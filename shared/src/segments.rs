//! How many SMS segments a text costs. Carriers bill and deliver per segment, so a clinic sees the
//! count before it sends: GSM-7 when every character is in the GSM 03.38 alphabet, UCS-2
//! otherwise (one curly apostrophe is enough to switch a whole text to UCS-2).

use serde::{Deserialize, Serialize};

/// Septets in a text sent as one GSM-7 segment.
const GSM7_SINGLE: usize = 160;
/// Septets per segment once a GSM-7 text is split: 7 septets go to the concatenation header.
const GSM7_MULTI: usize = 153;
/// UTF-16 code units in a text sent as one UCS-2 segment.
const UCS2_SINGLE: usize = 70;
/// UTF-16 code units per segment once a UCS-2 text is split: 3 go to the concatenation header.
const UCS2_MULTI: usize = 67;

/// The alphabet a text is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// The GSM 03.38 7-bit alphabet with its extension table.
    Gsm7,
    /// UTF-16, for anything outside GSM-7.
    Ucs2,
}

/// What a text costs to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SegmentInfo {
    pub encoding: Encoding,
    /// Unicode scalar values, as `MessageBody` counts them against Twilio's 1,600 limit; a
    /// multi-codepoint emoji (flags, skin tones, families) counts as several.
    pub characters: usize,
    /// GSM-7 septets (an extension-table character takes 2) or UTF-16 code units (a character
    /// outside the Basic Multilingual Plane, such as most emoji, takes 2).
    pub units: usize,
    /// 0 for an empty text.
    pub segments: u32,
    /// How many more units fit before another segment is needed. For an empty text, what fits
    /// in the first segment. A character that takes 2 units needs 2 of these.
    pub units_left_in_segment: usize,
}

/// Counts the encoding, units and segments of `text` exactly as the handset will split it.
pub fn analyse(text: &str) -> SegmentInfo {
    let characters = text.chars().count();
    let encoding = if text.chars().all(|c| gsm7_septets(c).is_some()) { Encoding::Gsm7 } else { Encoding::Ucs2 };
    // Each character's width in the units of its encoding; for GSM-7, every character was checked above.
    let width = |c: char| match encoding {
        Encoding::Gsm7 => gsm7_septets(c).unwrap_or(2),
        Encoding::Ucs2 => c.len_utf16(),
    };
    let (single, multi) = match encoding {
        Encoding::Gsm7 => (GSM7_SINGLE, GSM7_MULTI),
        Encoding::Ucs2 => (UCS2_SINGLE, UCS2_MULTI),
    };
    let units: usize = text.chars().map(width).sum();

    let (segments, units_left_in_segment) = if units == 0 {
        (0, single)
    } else if units <= single {
        (1, single - units)
    } else {
        // Greedy packing, as handsets do: an escape pair or a surrogate pair that does not fit
        // whole moves to the next segment, leaving a unit unused. Counting `units / multi`
        // would undercount those texts.
        let mut segments = 1;
        let mut used = 0;
        for w in text.chars().map(width) {
            if used + w > multi {
                segments += 1;
                used = 0;
            }
            used += w;
        }
        (segments, multi - used)
    };

    SegmentInfo { encoding, characters, units, segments, units_left_in_segment }
}

/// Septets a character takes in GSM-7: 1 in the basic set, 2 in the extension table (ESC + char),
/// `None` when GSM-7 cannot carry it.
fn gsm7_septets(c: char) -> Option<usize> {
    match c {
        'A'..='Z' | 'a'..='z' | '0'..='9' => Some(1),
        // The rest of the basic set, in table order (0x1B is the escape itself, not a character).
        '@' | '£' | '$' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | '\n' | 'Ø' | 'ø' | '\r' | 'Å' | 'å'
        | '\u{0394}' | '_' | '\u{03A6}' | '\u{0393}' | '\u{039B}' | '\u{03A9}' | '\u{03A0}' | '\u{03A8}'
        | '\u{03A3}' | '\u{0398}' | '\u{039E}' | 'Æ' | 'æ' | 'ß' | 'É' | ' ' | '!' | '"' | '#' | '¤' | '%' | '&'
        | '\'' | '(' | ')' | '*' | '+' | ',' | '-' | '.' | '/' | ':' | ';' | '<' | '=' | '>' | '?' | '¡' | 'Ä'
        | 'Ö' | 'Ñ' | 'Ü' | '§' | '¿' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à' => Some(1),
        // The extension table: sent as ESC followed by the character.
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gsm(n: usize) -> String {
        "a".repeat(n)
    }

    fn segments(text: &str) -> u32 {
        analyse(text).segments
    }

    #[test]
    fn an_empty_text_is_zero_segments() {
        let info = analyse("");
        assert_eq!((info.encoding, info.characters, info.units, info.segments), (Encoding::Gsm7, 0, 0, 0));
        assert_eq!(info.units_left_in_segment, 160);
    }

    #[test]
    fn gsm_texts_split_at_160_then_every_153_septets() {
        assert_eq!(segments(&gsm(1)), 1);
        assert_eq!(segments(&gsm(160)), 1);
        assert_eq!(segments(&gsm(161)), 2);
        assert_eq!(segments(&gsm(306)), 2);
        assert_eq!(segments(&gsm(307)), 3);
        assert_eq!(segments(&gsm(459)), 3);
        assert_eq!(segments(&gsm(460)), 4);
    }

    #[test]
    fn ucs2_texts_split_at_70_then_every_67_units() {
        let ucs2 = |n: usize| "ê".repeat(n);
        assert_eq!(analyse(&ucs2(70)).encoding, Encoding::Ucs2);
        assert_eq!(segments(&ucs2(70)), 1);
        assert_eq!(segments(&ucs2(71)), 2);
        assert_eq!(segments(&ucs2(134)), 2);
        assert_eq!(segments(&ucs2(135)), 3);
    }

    #[test]
    fn extension_characters_take_two_septets() {
        for c in ["€", "{", "}", "^", "\\", "[", "]", "~", "|", "\u{0C}"] {
            let info = analyse(c);
            assert_eq!((info.encoding, info.characters, info.units), (Encoding::Gsm7, 1, 2), "{c:?}");
        }
        // 159 septets of text plus one euro sign no longer fit in a single segment.
        assert_eq!(segments(&format!("{}€", gsm(158))), 1);
        assert_eq!(segments(&format!("{}€", gsm(159))), 2);
    }

    #[test]
    fn an_escape_pair_is_never_split_across_segments() {
        // 152 + 2 + 152 = 306 septets would fit in two segments, but the `^` cannot start in the
        // last septet of the first one, so it opens the second and the final `a` needs a third.
        let text = format!("{}^{}", gsm(152), gsm(152));
        let info = analyse(&text);
        assert_eq!((info.units, info.segments), (306, 3));
        assert_eq!(info.units_left_in_segment, 152);
        // One septet earlier, the pair fits at the end of the first segment.
        assert_eq!(segments(&format!("{}^{}", gsm(151), gsm(153))), 2);
    }

    #[test]
    fn an_emoji_makes_the_text_ucs2_and_takes_two_units() {
        let info = analyse("See you soon 🐶");
        assert_eq!(info.encoding, Encoding::Ucs2);
        assert_eq!((info.characters, info.units, info.segments), (14, 15, 1));
        assert_eq!(info.units_left_in_segment, 55);
    }

    #[test]
    fn a_surrogate_pair_is_never_split_across_segments() {
        // 66 + 2 + 66 = 134 units would fit in two segments, but the emoji cannot straddle the
        // 67-unit boundary.
        let text = format!("{}🐶{}", gsm(66), gsm(66));
        let info = analyse(&text);
        assert_eq!((info.encoding, info.units, info.segments), (Encoding::Ucs2, 134, 3));
        assert_eq!(info.units_left_in_segment, 66);
        assert_eq!(segments(&format!("{}🐶{}", gsm(65), gsm(67))), 2);
    }

    #[test]
    fn units_left_counts_down_within_the_current_segment() {
        assert_eq!(analyse(&gsm(100)).units_left_in_segment, 60);
        assert_eq!(analyse(&gsm(160)).units_left_in_segment, 0);
        assert_eq!(analyse(&gsm(161)).units_left_in_segment, 153 - 8);
        assert_eq!(analyse(&gsm(306)).units_left_in_segment, 0);
        assert_eq!(analyse(&"ê".repeat(71)).units_left_in_segment, 67 - 4);
    }

    #[test]
    fn crlf_counts_as_two_characters() {
        let info = analyse("Hi\r\nthere");
        assert_eq!((info.encoding, info.characters, info.units), (Encoding::Gsm7, 9, 9));
    }

    #[test]
    fn e_acute_is_gsm_but_e_circumflex_is_not() {
        assert_eq!(analyse("Café").encoding, Encoding::Gsm7);
        assert_eq!(analyse("Crêpe").encoding, Encoding::Ucs2);
        assert_eq!(analyse("Rex’s visit").encoding, Encoding::Ucs2);
    }

    #[test]
    fn greek_capitals_in_the_basic_set_are_gsm() {
        let info = analyse("ΔΦΓΛΩΠΨΣΘΞ");
        assert_eq!((info.encoding, info.units), (Encoding::Gsm7, 10));
    }

    #[test]
    fn the_alphabet_has_127_basic_and_10_extension_characters() {
        // 128 basic positions less the escape; a typo in the table would change these counts.
        let count = |septets| (0..=0xFFFF).filter_map(char::from_u32).filter(|&c| gsm7_septets(c) == septets).count();
        assert_eq!(count(Some(1)), 127);
        assert_eq!(count(Some(2)), 10);
    }

    #[test]
    fn encoding_serialises_in_snake_case() {
        let json = serde_json::to_string(&analyse("hi")).unwrap_or_default();
        assert!(json.contains(r#""encoding":"gsm7""#), "{json}");
        assert_eq!(serde_json::to_string(&Encoding::Ucs2).unwrap_or_default(), r#""ucs2""#);
    }
}
