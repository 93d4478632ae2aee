//! Pure domain types and rules: no I/O, no HTTP, no SQL.

pub mod account;
pub mod audit_query;
pub mod consent;
pub mod demarche;
pub mod mandate;
pub mod organisation;
pub mod search;
pub mod terms;
pub mod text;
pub mod time;
pub mod usager;
pub mod wording;

/// A validation failure on one input field; the message is French and safe to show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: &str) -> Self {
        Self {
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}
