//! Twilio's default keywords (FACTS §7): a text whose whole body, trimmed and in any case, is one
//! of them opts the number out, back in, or asks for help. Twilio answers them itself; we keep
//! our own record so nothing is sent to an opted-out number. With Advanced Opt-Out, Twilio says
//! what it read in `OptOutType`, and that wins.

/// Stop all texts.
pub const OPT_OUT: [&str; 8] = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"];
/// Texts may start again.
pub const OPT_IN: [&str; 3] = ["START", "YES", "UNSTOP"];
/// Twilio sends its help text.
pub const HELP: [&str; 2] = ["HELP", "INFO"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    OptOut,
    OptIn,
    Help,
}

/// What an inbound text asks for, if it is a keyword.
pub fn classify(body: &str, opt_out_type: Option<&str>) -> Option<Keyword> {
    let from_twilio = opt_out_type.map(str::trim).and_then(|t| match t.to_ascii_uppercase().as_str() {
        "STOP" => Some(Keyword::OptOut),
        "START" => Some(Keyword::OptIn),
        "HELP" => Some(Keyword::Help),
        _ => None,
    });
    from_twilio.or_else(|| keyword_of(body))
}

fn keyword_of(body: &str) -> Option<Keyword> {
    let word = body.trim().to_uppercase();
    if OPT_OUT.contains(&word.as_str()) {
        Some(Keyword::OptOut)
    } else if OPT_IN.contains(&word.as_str()) {
        Some(Keyword::OptIn)
    } else if HELP.contains(&word.as_str()) {
        Some(Keyword::Help)
    } else {
        None
    }
}

/// Whether Twilio reads `word` as one of its keywords (so it can mean nothing else to us).
pub fn is_reserved(word: &str) -> bool {
    keyword_of(word).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_keyword_whole_body_any_case_trimmed() {
        for word in OPT_OUT {
            assert_eq!(classify(word, None), Some(Keyword::OptOut), "{word}");
            assert_eq!(classify(&format!("  {}\n", word.to_lowercase()), None), Some(Keyword::OptOut), "{word}");
        }
        for word in OPT_IN {
            assert_eq!(classify(&format!(" {word} "), None), Some(Keyword::OptIn), "{word}");
        }
        for word in HELP {
            assert_eq!(classify(&word.to_lowercase(), None), Some(Keyword::Help), "{word}");
        }
        assert_eq!(classify("Stop", None), Some(Keyword::OptOut));
    }

    #[test]
    fn anything_more_than_the_keyword_is_just_a_text() {
        for body in ["STOP PLEASE", "please stop", "STOP.", "", "C", "CONFIRM", "yes please", "S T O P"] {
            assert_eq!(classify(body, None), None, "{body:?}");
        }
    }

    #[test]
    fn twilios_reading_wins_when_it_gives_one() {
        assert_eq!(classify("ARRET", Some("STOP")), Some(Keyword::OptOut));
        assert_eq!(classify("STOP", Some("START")), Some(Keyword::OptIn));
        assert_eq!(classify("aide", Some("help")), Some(Keyword::Help));
        assert_eq!(classify("STOP", Some("")), Some(Keyword::OptOut), "empty: read the body");
        assert_eq!(classify("hello", Some("SOMETHING_NEW")), None);
    }

    #[test]
    fn reserved_words_are_twilios_keywords() {
        assert!(is_reserved("yes") && is_reserved(" Stop ") && is_reserved("INFO"));
        assert!(!is_reserved("C") && !is_reserved("CONFIRM") && !is_reserved("OK"));
    }
}
