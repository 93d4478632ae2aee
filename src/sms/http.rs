//! A generic HTTP SMS provider: one JSON `POST` per message with a bearer token,
//! `{"to","body","reference"}` (`reference` = the consent challenge, for the provider's
//! delivery receipts). Any answer but 2xx, a timeout or a connection error is a failure: the
//! delivery worker retries it with backoff and audits `sms.failed` after its last attempt.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret as _, SecretString};

use super::{SmsError, SmsMessage, SmsSender};

/// Connecting and the whole request must fit in these (the worker retries later).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct HttpSender {
    client: reqwest::Client,
    url: String,
    token: SecretString,
}

impl HttpSender {
    pub fn new(url: &str, token: SecretString) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            url: url.to_owned(),
            token,
        })
    }
}

#[async_trait]
impl SmsSender for HttpSender {
    async fn send(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        let res = self
            .client
            .post(&self.url)
            .bearer_auth(self.token.expose_secret())
            .json(&serde_json::json!({
                "to": msg.to,
                "body": msg.body,
                "reference": msg.challenge_id,
            }))
            .send()
            .await
            // Neither the URL (it may hold a key) nor the message goes into the error.
            .map_err(|e| SmsError::Unavailable(anyhow::anyhow!("{}", e.without_url())))?;
        let status = res.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(SmsError::Unavailable(anyhow::anyhow!(
                "the SMS provider answered {status}"
            )))
        }
    }
}
