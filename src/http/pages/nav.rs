//! What every logged-in page shows around its content: who is logged in, the organisation
//! acted for (and the switcher), the sections this account may open, and the CSRF token of
//! its forms.

use uuid::Uuid;

use super::csrf;
use crate::app::AppState;
use crate::error::AppError;
use crate::http::auth::Session;

#[derive(Clone)]
pub struct NavOrg {
    pub id: String,
    pub name: String,
    pub current: bool,
}

#[derive(Clone)]
pub struct Nav {
    pub display_name: String,
    pub csrf: String,
    pub organisations: Vec<NavOrg>,
    pub current_org_name: String,
    pub current_org_id: Option<Uuid>,
    pub is_member: bool,
    pub is_referent: bool,
    pub is_dpo: bool,
    pub is_admin: bool,
    /// The section of the page, for `aria-current` in the menu.
    pub section: &'static str,
}

impl Nav {
    pub fn new(state: &AppState, s: &Session) -> Result<Self, AppError> {
        let current = s.current_organisation_id;
        let organisations: Vec<NavOrg> = s
            .memberships
            .iter()
            .map(|m| NavOrg {
                id: m.organisation_id.to_string(),
                name: m.organisation_name.clone(),
                current: Some(m.organisation_id) == current,
            })
            .collect();
        let current_org_name = organisations
            .iter()
            .find(|o| o.current)
            .map(|o| o.name.clone())
            .unwrap_or_default();
        Ok(Self {
            display_name: s.display_name.clone(),
            csrf: csrf::session_token(state, &s.id_hash)?,
            is_member: !organisations.is_empty(),
            is_referent: s
                .memberships
                .iter()
                .any(|m| Some(m.organisation_id) == current && m.role == "referent"),
            organisations,
            current_org_name,
            current_org_id: current,
            is_dpo: s.is_dpo,
            is_admin: s.is_admin,
            section: "",
        })
    }

    pub fn at(mut self, section: &'static str) -> Self {
        self.section = section;
        self
    }

    /// The page to land on after logging in.
    pub fn home_path(&self) -> &'static str {
        if self.is_member {
            "/espace-aidant"
        } else if self.is_admin {
            "/admin"
        } else if self.is_dpo {
            "/dpo"
        } else {
            "/"
        }
    }
}
