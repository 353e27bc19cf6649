//! Phone numbers in E.164, parsed with libphonenumber (the `phonenumber` crate) from whatever a
//! clinic typed: spaces, dashes, brackets, a leading `00`, or a national number read with the
//! clinic's default country.

use std::fmt;
use std::str::FromStr;

use phonenumber::country;
use serde::{Deserialize, Serialize};

/// Why a number cannot be texted. The `code` is stable and shown to API callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the number is empty")]
    Empty,
    #[error("the number contains letters")]
    ContainsLetters,
    #[error("the number has no country code and no default country is set")]
    MissingCountryCode,
    #[error("the number is too short")]
    TooShort,
    #[error("the number is too long")]
    TooLong,
    #[error("the country code is not a known one")]
    UnknownCountryCode,
    #[error("the number is not a valid number for its country")]
    NotValid,
}

impl PhoneError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::ContainsLetters => "contains_letters",
            Self::MissingCountryCode => "missing_country_code",
            Self::TooShort => "too_short",
            Self::TooLong => "too_long",
            Self::UnknownCountryCode => "unknown_country_code",
            Self::NotValid => "not_valid",
        }
    }
}

/// An ISO 3166-1 alpha-2 region, used to read numbers written without a country code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country(country::Id);

impl FromStr for Country {
    type Err = PhoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().to_ascii_uppercase().parse::<country::Id>().map(Country).map_err(|_| PhoneError::UnknownCountryCode)
    }
}

/// A valid phone number in E.164 form (`+14155550123`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

impl E164 {
    /// Parses what a person typed. Without a leading `+` (or international prefix) the number is
    /// read as national to `default_country`.
    pub fn parse(input: &str, default_country: Option<Country>) -> Result<Self, PhoneError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        // libphonenumber reads letters as keypad digits (1-800-FLOWERS); in a clinic's records
        // letters are a typing mistake or a note, never a number to text.
        if trimmed.chars().any(char::is_alphabetic) {
            return Err(PhoneError::ContainsLetters);
        }
        let digits = trimmed.chars().filter(char::is_ascii_digit).count();
        let international = trimmed.starts_with('+') || trimmed.starts_with("00");
        if !international && default_country.is_none() {
            return Err(PhoneError::MissingCountryCode);
        }
        if digits < 7 {
            return Err(PhoneError::TooShort);
        }
        let parsed = phonenumber::parse(default_country.map(|c| c.0), trimmed).map_err(|e| match e {
            phonenumber::ParseError::InvalidCountryCode => PhoneError::UnknownCountryCode,
            phonenumber::ParseError::TooLong => PhoneError::TooLong,
            phonenumber::ParseError::NoNumber
            | phonenumber::ParseError::TooShortAfterIdd
            | phonenumber::ParseError::TooShortNsn => PhoneError::TooShort,
            phonenumber::ParseError::MalformedInteger(_) => PhoneError::NotValid,
        })?;
        if !phonenumber::is_valid(&parsed) {
            return Err(PhoneError::NotValid);
        }
        Ok(Self(parsed.format().mode(phonenumber::Mode::E164).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number's ISO 3166-1 region (`US`), as Twilio's `FromCountry`/`ToCountry` give it;
    /// `None` when libphonenumber cannot tell (a shared country code without metadata).
    pub fn region(&self) -> Option<String> {
        let parsed = phonenumber::parse(None, &self.0).ok()?;
        parsed.country().id().map(|id| id.as_ref().to_owned())
    }

    /// For logs: country code and last two digits only (`+1•••••••23`).
    pub fn masked(&self) -> String {
        let digits: Vec<char> = self.0.chars().skip(1).collect();
        let keep_head = if digits.first() == Some(&'1') || digits.first() == Some(&'7') { 1 } else { 2 };
        let keep_tail = 2.min(digits.len().saturating_sub(keep_head));
        let hidden = digits.len().saturating_sub(keep_head + keep_tail);
        let head: String = digits.iter().take(keep_head).collect();
        let tail: String = digits.iter().skip(keep_head + hidden).collect();
        format!("+{head}{}{tail}", "•".repeat(hidden))
    }
}

impl TryFrom<String> for E164 {
    type Error = PhoneError;

    /// Stored values were validated when they were entered; reading them back checks only the
    /// E.164 shape, so a libphonenumber update that retires a range cannot make stored records
    /// unreadable.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let digits = value.strip_prefix('+').unwrap_or_default();
        let shaped =
            (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) && !digits.starts_with('0');
        if shaped { Ok(Self(value)) } else { Err(PhoneError::NotValid) }
    }
}

impl From<E164> for String {
    fn from(value: E164) -> Self {
        value.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_knows_its_region() {
        let region = |n: &str| E164::parse(n, None).ok().and_then(|e| e.region());
        assert_eq!(region("+14155550123").as_deref(), Some("US"));
        assert_eq!(region("+447400123456").as_deref(), Some("GB"));
        assert_eq!(region("+14165550123").as_deref(), Some("CA"));
    }

    fn us() -> Option<Country> {
        "US".parse().ok()
    }

    fn ok(input: &str, country: Option<Country>) -> String {
        match E164::parse(input, country) {
            Ok(n) => n.as_str().to_owned(),
            Err(e) => panic!("{input:?} should parse, got {e:?}"),
        }
    }

    #[test]
    fn common_formats_become_e164() {
        assert_eq!(ok("+14155550123", None), "+14155550123");
        assert_eq!(ok("+1 415 555 0123", None), "+14155550123");
        assert_eq!(ok("(415) 555-0123", us()), "+14155550123");
        assert_eq!(ok("415-555-0123", us()), "+14155550123");
        assert_eq!(ok(" 415.555.0123 ", us()), "+14155550123");
        assert_eq!(ok("1 415 555 0123", us()), "+14155550123");
        assert_eq!(ok("0412 345 678", "AU".parse().ok()), "+61412345678");
        assert_eq!(ok("0011 61 412 345 678", "AU".parse().ok()), "+61412345678");
        assert_eq!(ok("07911 123456", "GB".parse().ok()), "+447911123456");
        assert_eq!(ok("+44 7911 123456", us()), "+447911123456");
    }

    #[test]
    fn twilio_magic_test_numbers_are_valid() {
        assert_eq!(ok("+15005550006", None), "+15005550006");
        assert_eq!(ok("+15005550001", None), "+15005550001");
    }

    #[test]
    fn bad_input_says_why() {
        assert_eq!(E164::parse("", us()), Err(PhoneError::Empty));
        assert_eq!(E164::parse("   ", us()), Err(PhoneError::Empty));
        assert_eq!(E164::parse("415-555-CALL", us()), Err(PhoneError::ContainsLetters));
        assert_eq!(E164::parse("call mum", us()), Err(PhoneError::ContainsLetters));
        assert_eq!(E164::parse("415 555 0123", None), Err(PhoneError::MissingCountryCode));
        assert_eq!(E164::parse("555-12", us()), Err(PhoneError::TooShort));
        assert_eq!(E164::parse("+1 415", None), Err(PhoneError::TooShort));
        assert_eq!(E164::parse("+1415555012345678901", None), Err(PhoneError::TooLong));
        assert_eq!(E164::parse("+999 123 456 789", None), Err(PhoneError::UnknownCountryCode));
    }

    #[test]
    fn possible_but_invalid_numbers_are_refused() {
        // Right length for +1, but 555 is not an area code.
        assert_eq!(E164::parse("+15551230000", None), Err(PhoneError::NotValid));
        assert_eq!(E164::parse("+11234567890", None), Err(PhoneError::NotValid));
    }

    #[test]
    fn unknown_default_country_is_an_error() {
        assert_eq!("XX".parse::<Country>(), Err(PhoneError::UnknownCountryCode));
        assert!("us".parse::<Country>().is_ok());
    }

    #[test]
    fn stored_values_round_trip_through_serde() {
        let n = E164::parse("+14155550123", None).ok();
        let json = serde_json::to_string(&n).ok();
        assert_eq!(json.as_deref(), Some("\"+14155550123\""));
        assert!(serde_json::from_str::<E164>("\"not a number\"").is_err());
    }

    #[test]
    fn masked_keeps_country_and_last_two_digits() {
        let Ok(n) = E164::parse("+14155550123", None) else { panic!("valid") };
        assert_eq!(n.masked(), "+1••••••••23");
        let Ok(au) = E164::parse("+61412345678", None) else { panic!("valid") };
        assert_eq!(au.masked(), "+61•••••••78");
    }
}
