//! Use cases. Each public function is one transaction: it reads, decides, writes the change
//! and its audit events, and commits — or changes nothing.

pub mod accounts;
pub mod audit;
pub mod cards;
pub mod consent;
pub mod directory;
pub mod factors;
pub mod idempotency;
pub mod keys;
pub mod lifecycle;
pub mod mandates;
pub mod members;
pub mod organisations;
mod pii;
pub mod retention;
pub mod sms_replies;
pub mod usagers;
pub mod users;
pub mod verification;

use crate::audit::Actor;

/// Who is asking, and the request it belongs to (for audit events).
#[derive(Debug, Clone)]
pub struct Ctx {
    pub actor: Actor,
    pub request_id: Option<String>,
}

impl Ctx {
    pub fn system() -> Self {
        Self {
            actor: Actor::system(),
            request_id: None,
        }
    }
}
