//! The outbox: one JSON object per line, appended to a file (`MANDAT_SMS_OUTBOX`).

use std::path::PathBuf;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::Mutex;

use super::{SmsError, SmsMessage, SmsSender};

pub struct OutboxSender {
    path: PathBuf,
    lock: Mutex<()>,
}

impl OutboxSender {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: Mutex::new(()),
        }
    }
}

#[async_trait]
impl SmsSender for OutboxSender {
    async fn send(&self, msg: &SmsMessage) -> Result<(), SmsError> {
        let mut line = serde_json::to_vec(msg).map_err(|e| SmsError::Unavailable(e.into()))?;
        line.push(b'\n');
        let _guard = self.lock.lock().await;
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(|e| SmsError::Unavailable(e.into()))?;
        f.write_all(&line)
            .await
            .map_err(|e| SmsError::Unavailable(e.into()))?;
        f.flush()
            .await
            .map_err(|e| SmsError::Unavailable(e.into()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::SmsKind;

    #[tokio::test]
    async fn appends_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.jsonl");
        let s = OutboxSender::new(p.clone());
        let m = SmsMessage {
            to: "+33612345678".into(),
            body: "Bonjour".into(),
            mandate_id: uuid::Uuid::nil(),
            challenge_id: uuid::Uuid::nil(),
            kind: SmsKind::Recap,
            sent_at: "2026-11-23T09:00:00Z".into(),
        };
        s.send(&m).await.unwrap();
        s.send(&SmsMessage {
            kind: SmsKind::Code,
            ..m.clone()
        })
        .await
        .unwrap();
        let text = std::fs::read_to_string(p).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["kind"], "recap");
        assert_eq!(lines[1]["kind"], "code");
        assert_eq!(lines[0]["to"], "+33612345678");
        assert!(!format!("{m:?}").contains("+33612345678"));
    }
}
