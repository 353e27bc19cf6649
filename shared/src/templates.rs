//! SMS templates a clinic writes once and sends many times, with `{{placeholders}}` filled in
//! from the client, patient and appointment. A template is checked when it is saved, so a typo
//! such as `{{pet_name}}` is caught then rather than texted to clients.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::message::MAX_BODY_CHARS;
use crate::segments::{self, SegmentInfo};

/// A value a template can insert, written `{{name}}` (spaces inside the braces allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placeholder {
    ClientFirstName,
    ClientLastName,
    ClientFullName,
    PatientName,
    AppointmentDate,
    AppointmentTime,
    AppointmentType,
    BusinessName,
    BusinessPhone,
    ClinicName,
}

impl Placeholder {
    /// Every placeholder, in the order a clinic is shown them.
    pub const ALL: [Placeholder; 10] = [
        Self::ClientFirstName,
        Self::ClientLastName,
        Self::ClientFullName,
        Self::PatientName,
        Self::AppointmentDate,
        Self::AppointmentTime,
        Self::AppointmentType,
        Self::BusinessName,
        Self::BusinessPhone,
        Self::ClinicName,
    ];

    /// The name written between the braces.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientFirstName => "client_first_name",
            Self::ClientLastName => "client_last_name",
            Self::ClientFullName => "client_full_name",
            Self::PatientName => "patient_name",
            Self::AppointmentDate => "appointment_date",
            Self::AppointmentTime => "appointment_time",
            Self::AppointmentType => "appointment_type",
            Self::BusinessName => "business_name",
            Self::BusinessPhone => "business_phone",
            Self::ClinicName => "clinic_name",
        }
    }

    /// The placeholder with this exact name (case matters, as in the template).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// Why a template cannot be saved. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template is empty")]
    Empty,
    #[error("the template has {0} characters; at most {MAX_BODY_CHARS} can be sent")]
    TooLong(usize),
    /// Every unknown name, in the order written, once each.
    #[error(
        "unknown placeholder{} {}; use one of: {}",
        if .0.len() == 1 { "" } else { "s" },
        braced(.0.iter().map(String::as_str)),
        braced(Placeholder::ALL.iter().map(|p| p.as_str()))
    )]
    UnknownPlaceholders(Vec<String>),
    /// `excerpt` is the template from the unclosed `{{`, shortened.
    #[error("\"{excerpt}\" opens a placeholder with {{{{ but never closes it with }}}}")]
    Unclosed { excerpt: String },
}

/// `{{a}}, {{b}}` for an error message.
fn braced<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.map(|n| format!("{{{{{n}}}}}")).collect::<Vec<_>>().join(", ")
}

/// A template body that renders: not blank, at most 1,600 characters, every `{{` closed and
/// naming a known placeholder. The rendered text can still be longer than the template; the
/// message built from it is checked again when sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TemplateBody(String);

impl TemplateBody {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.trim().is_empty() {
            return Err(TemplateError::Empty);
        }
        let chars = text.chars().count();
        if chars > MAX_BODY_CHARS {
            return Err(TemplateError::TooLong(chars));
        }
        let mut unknown: Vec<String> = Vec::new();
        for piece in pieces(text) {
            match piece {
                // A broken structure is reported first: what follows it cannot be read as placeholders.
                Piece::Unclosed(rest) => return Err(TemplateError::Unclosed { excerpt: excerpt(rest) }),
                Piece::Unknown { name, .. } if !unknown.iter().any(|u| u == name) => unknown.push(name.to_owned()),
                _ => {}
            }
        }
        if unknown.is_empty() { Ok(Self(text.to_owned())) } else { Err(TemplateError::UnknownPlaceholders(unknown)) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text with every placeholder replaced from `ctx`.
    pub fn render(&self, ctx: &RenderContext) -> String {
        let mut out = String::with_capacity(self.0.len());
        for piece in pieces(&self.0) {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Known(placeholder) => out.push_str(&ctx.value(placeholder)),
                // `parse` refused these; kept verbatim rather than dropped should one slip through.
                Piece::Unknown { raw, .. } | Piece::Unclosed(raw) => out.push_str(raw),
            }
        }
        out
    }

    /// The placeholders used, each once, in the order they first appear.
    pub fn placeholders(&self) -> Vec<Placeholder> {
        let mut used = Vec::new();
        for piece in pieces(&self.0) {
            if let Piece::Known(p) = piece
                && !used.contains(&p)
            {
                used.push(p);
            }
        }
        used
    }
}

impl TryFrom<String> for TemplateBody {
    type Error = TemplateError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<TemplateBody> for String {
    fn from(body: TemplateBody) -> Self {
        body.0
    }
}

/// A part of a template's text.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Known(Placeholder),
    /// `raw` is the whole `{{ … }}`; `name` the trimmed text inside.
    Unknown {
        raw: &'a str,
        name: &'a str,
    },
    /// The rest of the template from a `{{` that is never closed.
    Unclosed(&'a str),
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let inside = &rest[open + 2..];
        match inside.find("}}") {
            // `{{ a {{b}}`: the first `{{` is the unclosed one.
            Some(close) if !inside[..close].contains("{{") => {
                let name = inside[..close].trim();
                out.push(match Placeholder::from_name(name) {
                    Some(p) => Piece::Known(p),
                    None => Piece::Unknown { raw: &rest[open..open + 2 + close + 2], name },
                });
                rest = &inside[close + 2..];
            }
            _ => {
                out.push(Piece::Unclosed(&rest[open..]));
                return out;
            }
        }
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// Enough of the text after an unclosed `{{` for the clinic to find it.
fn excerpt(rest: &str) -> String {
    const SHOWN: usize = 30;
    let mut shown: String = rest.chars().take(SHOWN).collect();
    if rest.chars().nth(SHOWN).is_some() {
        shown.push('…');
    }
    shown
}

/// What a template is rendered with, for one client and appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderContext {
    pub client_first_name: String,
    /// May be empty; `client_full_name` then is the first name alone.
    pub client_last_name: String,
    /// The patients the text is about, in the order to name them; several for a multi-pet visit.
    pub patient_names: Vec<String>,
    pub appointment_start: DateTime<Utc>,
    /// The business's zone: dates and times are written as the clinic's clients read them.
    pub time_zone: Tz,
    pub appointment_type: String,
    pub business_name: String,
    /// Renders as empty text when the business has none.
    pub business_phone: Option<String>,
    pub clinic_name: String,
}

impl RenderContext {
    fn value(&self, placeholder: Placeholder) -> String {
        let local = || self.appointment_start.with_timezone(&self.time_zone);
        match placeholder {
            Placeholder::ClientFirstName => self.client_first_name.trim().to_owned(),
            Placeholder::ClientLastName => self.client_last_name.trim().to_owned(),
            Placeholder::ClientFullName => {
                format!("{} {}", self.client_first_name.trim(), self.client_last_name.trim()).trim().to_owned()
            }
            Placeholder::PatientName => join_names(&self.patient_names),
            // "Tuesday 24 November"
            Placeholder::AppointmentDate => local().format("%A %-d %B").to_string(),
            // "9:05 AM"
            Placeholder::AppointmentTime => local().format("%-I:%M %p").to_string(),
            Placeholder::AppointmentType => self.appointment_type.trim().to_owned(),
            Placeholder::BusinessName => self.business_name.trim().to_owned(),
            Placeholder::BusinessPhone => self.business_phone.as_deref().unwrap_or_default().trim().to_owned(),
            Placeholder::ClinicName => self.clinic_name.trim().to_owned(),
        }
    }
}

/// "Max", "Max and Bella", "Max, Bella and Coco". Blank names are skipped.
fn join_names(names: &[String]) -> String {
    let names: Vec<&str> = names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()).collect();
    match names.as_slice() {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A rendered template and what it will cost to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub text: String,
    #[serde(flatten)]
    pub segments: SegmentInfo,
}

pub fn preview(body: &TemplateBody, ctx: &RenderContext) -> Preview {
    let text = body.render(ctx);
    let segments = segments::analyse(&text);
    Preview { text, segments }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segments::Encoding;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    fn ctx() -> RenderContext {
        RenderContext {
            client_first_name: "Dana".into(),
            client_last_name: "Whitfield".into(),
            patient_names: vec!["Max".into()],
            appointment_start: at("2026-11-24T14:05:00Z"),
            time_zone: chrono_tz::America::New_York,
            appointment_type: "vaccination".into(),
            business_name: "Harbour Vets".into(),
            business_phone: Some("+1 415 555 0123".into()),
            clinic_name: "Harbour Vets Downtown".into(),
        }
    }

    fn body(text: &str) -> TemplateBody {
        TemplateBody::parse(text).unwrap_or_else(|e| panic!("{text:?} is a valid template: {e}"))
    }

    #[test]
    fn every_placeholder_renders() {
        let text = Placeholder::ALL.iter().map(|p| format!("{{{{{}}}}}", p.as_str())).collect::<Vec<_>>().join("|");
        assert_eq!(
            body(&text).render(&ctx()),
            "Dana|Whitfield|Dana Whitfield|Max|Tuesday 24 November|9:05 AM|vaccination|Harbour Vets|\
             +1 415 555 0123|Harbour Vets Downtown"
        );
    }

    #[test]
    fn every_placeholder_is_found_by_its_name() {
        for p in Placeholder::ALL {
            assert_eq!(Placeholder::from_name(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).ok(), Some(serde_json::Value::from(p.as_str())));
        }
    }

    #[test]
    fn spaces_inside_the_braces_are_allowed() {
        let rendered = body("Hi {{ client_first_name }}, {{patient_name }} is due").render(&ctx());
        assert_eq!(rendered, "Hi Dana, Max is due");
    }

    #[test]
    fn text_without_placeholders_renders_unchanged() {
        let text = "Closed today { and } single braces stay }} as written";
        assert_eq!(body(text).render(&ctx()), text);
        assert!(body(text).placeholders().is_empty());
    }

    #[test]
    fn unknown_placeholders_are_refused_listing_each_once_in_order() {
        let err = TemplateBody::parse("{{pet_name}} {{client_first_name}} {{ owner }} {{pet_name}}");
        assert_eq!(err, Err(TemplateError::UnknownPlaceholders(vec!["pet_name".into(), "owner".into()])));
        let message = err.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.starts_with("unknown placeholders {{pet_name}}, {{owner}}; use one of: "), "{message}");
        assert!(message.contains("{{client_first_name}}, {{client_last_name}}"), "{message}");
        assert!(message.ends_with("{{clinic_name}}"), "{message}");
    }

    #[test]
    fn one_unknown_placeholder_is_named_in_the_singular() {
        let message = TemplateBody::parse("See {{pet_name}} soon").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.starts_with("unknown placeholder {{pet_name}}; use one of: {{client_first_name}}"),
            "{message}"
        );
    }

    #[test]
    fn names_are_case_sensitive() {
        assert_eq!(
            TemplateBody::parse("{{Client_First_Name}}"),
            Err(TemplateError::UnknownPlaceholders(vec!["Client_First_Name".into()]))
        );
    }

    #[test]
    fn unclosed_braces_are_refused() {
        assert_eq!(
            TemplateBody::parse("Hi {{client_first_name, see you"),
            Err(TemplateError::Unclosed { excerpt: "{{client_first_name, see you".into() })
        );
        assert_eq!(
            TemplateBody::parse("Hi {{ see {{patient_name}}"),
            Err(TemplateError::Unclosed { excerpt: "{{ see {{patient_name}}".into() })
        );
        let long = format!("Hi {{{{client_first_name {}", "x".repeat(50));
        let message = TemplateBody::parse(&long).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            message,
            "\"{{client_first_name xxxxxxxxxx…\" opens a placeholder with {{ but never closes it with }}"
        );
    }

    #[test]
    fn blank_and_overlong_bodies_are_refused() {
        assert_eq!(TemplateBody::parse(""), Err(TemplateError::Empty));
        assert_eq!(TemplateBody::parse(" \n\t"), Err(TemplateError::Empty));
        assert!(TemplateBody::parse(&"é".repeat(1600)).is_ok());
        assert_eq!(TemplateBody::parse(&"a".repeat(1601)), Err(TemplateError::TooLong(1601)));
    }

    #[test]
    fn dates_and_times_are_written_in_the_business_zone_across_dst() {
        // 8 March 2026 is the day New York moves to EDT (UTC−4) at 2 AM; 15:00Z is 11 AM there.
        let ctx = RenderContext { appointment_start: at("2026-03-08T15:00:00Z"), ..ctx() };
        assert_eq!(body("{{appointment_date}} at {{appointment_time}}").render(&ctx), "Sunday 8 March at 11:00 AM");
        let evening = RenderContext { appointment_start: at("2026-03-08T23:30:00Z"), ..ctx };
        assert_eq!(body("{{appointment_time}}").render(&evening), "7:30 PM");
    }

    #[test]
    fn patient_names_are_joined_naturally() {
        let names = |names: &[&str]| {
            let ctx = RenderContext { patient_names: names.iter().map(|n| (*n).to_owned()).collect(), ..ctx() };
            body("{{patient_name}}").render(&ctx)
        };
        assert_eq!(names(&[]), "");
        assert_eq!(names(&["Max"]), "Max");
        assert_eq!(names(&["Max", "Bella"]), "Max and Bella");
        assert_eq!(names(&["Max", "Bella", "Coco"]), "Max, Bella and Coco");
        assert_eq!(names(&["Max", " ", "Coco"]), "Max and Coco");
    }

    #[test]
    fn missing_values_render_as_empty_text() {
        let ctx = RenderContext { business_phone: None, client_last_name: String::new(), ..ctx() };
        assert_eq!(body("[{{business_phone}}] {{client_full_name}}.").render(&ctx), "[] Dana.");
    }

    #[test]
    fn placeholders_are_listed_once_in_order_of_first_use() {
        let template = body("{{patient_name}} {{client_first_name}} {{ patient_name }}");
        assert_eq!(template.placeholders(), vec![Placeholder::PatientName, Placeholder::ClientFirstName]);
    }

    #[test]
    fn a_preview_that_renders_past_160_characters_is_two_segments() {
        let template = body(
            "{{patient_name}} is due for a check-up at {{clinic_name}}. Book online or reply to this text and we \
             will find a time that suits you. Thank you!",
        );
        let ctx = RenderContext {
            patient_names: vec!["Max".into(), "Bella".into(), "Coco".into()],
            clinic_name: "Harbour Veterinary Hospital Downtown".into(),
            ..ctx()
        };
        let preview = preview(&template, &ctx);
        assert!(template.as_str().chars().count() <= 160, "the template alone fits in one segment");
        assert_eq!(preview.text.chars().count(), 167, "{}", preview.text);
        assert_eq!((preview.segments.encoding, preview.segments.segments), (Encoding::Gsm7, 2));
    }

    #[test]
    fn a_preview_with_a_curly_apostrophe_is_ucs2() {
        let preview = preview(&body("{{patient_name}}’s check-up is on {{appointment_date}}"), &ctx());
        assert_eq!(preview.text, "Max’s check-up is on Tuesday 24 November");
        assert_eq!((preview.segments.encoding, preview.segments.segments), (Encoding::Ucs2, 1));
    }

    #[test]
    fn a_preview_serialises_its_segments_alongside_the_text() {
        let json = serde_json::to_value(preview(&body("Hi {{client_first_name}}"), &ctx())).unwrap_or_default();
        assert_eq!(json["text"], "Hi Dana");
        assert_eq!(json["encoding"], "gsm7");
        assert_eq!(json["segments"], 1);
        assert_eq!(json["units_left_in_segment"], 153);
    }

    #[test]
    fn a_template_round_trips_through_serde_and_is_checked_on_the_way_in() {
        let json = serde_json::to_string(&body("Hi {{client_first_name}}")).unwrap_or_default();
        assert_eq!(json, r#""Hi {{client_first_name}}""#);
        assert!(serde_json::from_str::<TemplateBody>(&json).is_ok());
        assert!(serde_json::from_str::<TemplateBody>(r#""Hi {{pet_name}}""#).is_err());
    }
}
