//! SMS templates and the appointment types that use them for reminders.

use serde::{Deserialize, Serialize};

use crate::clinic_records::ClinicRecord;
use crate::ids::ClinicId;
use crate::templates::TemplateBody;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsTemplate {
    pub id: String,
    pub clinic_id: ClinicId,
    pub name: String,
    pub body: TemplateBody,
}

impl ClinicRecord for SmsTemplate {
    const KIND: &'static str = "TEMPLATE";

    fn id(&self) -> &str {
        &self.id
    }

    fn clinic_id(&self) -> &ClinicId {
        &self.clinic_id
    }
}

/// An appointment type; with no reminder template, its appointments get no reminder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentType {
    pub id: String,
    pub clinic_id: ClinicId,
    pub name: String,
    #[serde(default)]
    pub reminder_template_id: Option<String>,
}

impl ClinicRecord for AppointmentType {
    const KIND: &'static str = "APPTTYPE";

    fn id(&self) -> &str {
        &self.id
    }

    fn clinic_id(&self) -> &ClinicId {
        &self.clinic_id
    }
}
