//! Outgoing SMS: a [`SmsSender`] trait and the outbox implementation (JSON lines appended
//! to a file, what tests and local runs read). The consent messages are written here. Use
//! cases never call a sender: they queue messages in their transaction and the worker of
//! [`delivery`] sends them after the commit.

pub mod delivery;
pub mod http;
pub mod inbound;
mod outbox;

use async_trait::async_trait;
use serde::Serialize;
use uuid::Uuid;

pub use delivery::Delivery;
pub use outbox::OutboxSender;

use crate::config::SmsProvider;

/// What a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsKind {
    Recap,
    Code,
    Receipt,
    /// The access code of a vault entry handed over to its usager.
    #[serde(rename = "vault_access_code")]
    VaultAccessCode,
}

impl SmsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recap => "recap",
            Self::Code => "code",
            Self::Receipt => "receipt",
            Self::VaultAccessCode => "vault_access_code",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "recap" => Some(Self::Recap),
            "code" => Some(Self::Code),
            "receipt" => Some(Self::Receipt),
            "vault_access_code" => Some(Self::VaultAccessCode),
            _ => None,
        }
    }
}

/// One message. `Debug` hides the number and the body (they hold personal data and codes).
#[derive(Clone, Serialize)]
pub struct SmsMessage {
    pub to: String,
    pub body: String,
    pub mandate_id: Uuid,
    pub challenge_id: Uuid,
    pub kind: SmsKind,
    pub sent_at: String,
}

impl std::fmt::Debug for SmsMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsMessage")
            .field("mandate_id", &self.mandate_id)
            .field("challenge_id", &self.challenge_id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("sms provider unavailable")]
    Unavailable(#[source] anyhow::Error),
}

#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    async fn send(&self, msg: &SmsMessage) -> Result<(), SmsError>;
}

/// A sender that cannot send (the HTTP client could not be built): every message fails and
/// is retried, then audited as `sms.failed`; the printed channel still works.
pub struct UnavailableSender;

#[async_trait]
impl SmsSender for UnavailableSender {
    async fn send(&self, _msg: &SmsMessage) -> Result<(), SmsError> {
        Err(SmsError::Unavailable(anyhow::anyhow!(
            "the HTTP SMS client could not be built"
        )))
    }
}

/// The sender the configuration names.
pub fn from_config(provider: &SmsProvider) -> std::sync::Arc<dyn SmsSender> {
    match provider {
        SmsProvider::Outbox { path } => std::sync::Arc::new(OutboxSender::new(path.clone())),
        SmsProvider::Http { url, token } => match http::HttpSender::new(url, token.clone()) {
            Ok(s) => std::sync::Arc::new(s),
            Err(e) => {
                tracing::error!(error = %e.without_url(), "cannot build the HTTP SMS client");
                std::sync::Arc::new(UnavailableSender)
            }
        },
    }
}

/// The recap of the terms (first message).
pub fn recap_text(organisation: &str, demarches: &[&str], duration: &str, link: &str) -> String {
    format!(
        "{organisation} vous propose un mandat pour faire en votre nom ces démarches : {}. Durée : {duration}. \
         Conditions complètes : {link} . Vous allez recevoir un code pour donner votre accord.",
        demarches.join(", ")
    )
}

/// The code (second message).
pub fn code_text(code: &str, link: &str) -> String {
    format!(
        "Votre code d'accord pour le mandat : {code}. Valable 10 minutes. Donnez-le à votre aidant \
         ou saisissez-le ici pour accepter ou refuser : {link} . Ne le communiquez à personne d'autre."
    )
}
