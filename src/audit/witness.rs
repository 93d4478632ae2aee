//! The HTTP witness sink: every signed checkpoint is POSTed, as the same JSON record as a line
//! of the witness file, to an endpoint outside the database (`MANDAT_CHECKPOINT_WITNESS_URL`).
//!
//! Delivery never blocks a request nor the checkpoint writer: the writer only pushes the
//! record into a bounded in-memory queue; one background task delivers the queue in order,
//! retrying the head with exponential backoff until the endpoint answers 2xx (at least once:
//! a record may arrive twice, never out of order). When the queue is full the oldest record
//! is dropped — the newest checkpoint commits to everything an older one did — and counted.
//! Failures are logged (host and status only: the URL or the token may be secret) and counted
//! in [`WitnessStats`]; they do not make `/readyz` fail, since the log itself is intact.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::{Notify, watch};

use super::checkpoint::WitnessRecord;

/// Records kept waiting at most.
pub const QUEUE_CAPACITY: usize = 1024;
/// Time allowed to one POST.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time given to the queue at shutdown.
pub const DRAIN_ON_SHUTDOWN: Duration = Duration::from_secs(3);

/// Retry delays: `initial`, doubled after each failure, at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(60),
        }
    }
}

/// Counters of the sink, for operators and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WitnessStats {
    pub queued: usize,
    pub delivered: u64,
    pub failures: u64,
    pub dropped: u64,
}

struct Inner {
    client: reqwest::Client,
    url: String,
    /// What logs may say about the endpoint.
    host: String,
    token: Option<SecretString>,
    backoff: Backoff,
    queue: Mutex<VecDeque<WitnessRecord>>,
    wake: Notify,
    delivered: AtomicU64,
    failures: AtomicU64,
    dropped: AtomicU64,
}

/// A handle on the sink; clones share one queue.
#[derive(Clone)]
pub struct HttpWitness(std::sync::Arc<Inner>);

impl std::fmt::Debug for HttpWitness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HttpWitness({})", self.0.host)
    }
}

impl HttpWitness {
    pub fn new(
        url: &str,
        token: Option<SecretString>,
        backoff: Backoff,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "?".into());
        Ok(Self(std::sync::Arc::new(Inner {
            client,
            url: url.to_owned(),
            host,
            token,
            backoff,
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            delivered: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        })))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<WitnessRecord>> {
        self.0
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a record for delivery; never waits.
    pub fn enqueue(&self, record: WitnessRecord) {
        let dropped = {
            let mut q = self.queue();
            let dropped = if q.len() >= QUEUE_CAPACITY {
                q.pop_front()
            } else {
                None
            };
            q.push_back(record);
            dropped
        };
        if let Some(old) = dropped {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                witness.host = %self.0.host,
                audit.tree_size = old.tree_size,
                "checkpoint witness queue full: dropped the oldest undelivered checkpoint (newer ones cover it)"
            );
        }
        self.0.wake.notify_one();
    }

    pub fn stats(&self) -> WitnessStats {
        WitnessStats {
            queued: self.queue().len(),
            delivered: self.0.delivered.load(Ordering::Relaxed),
            failures: self.0.failures.load(Ordering::Relaxed),
            dropped: self.0.dropped.load(Ordering::Relaxed),
        }
    }

    /// One delivery attempt; the error says what went wrong without the URL or the token.
    async fn post(&self, record: &WitnessRecord) -> Result<(), String> {
        let body = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        let mut req = self
            .0
            .client
            .post(&self.0.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(t) = &self.0.token {
            req = req.bearer_auth(t.expose_secret());
        }
        match req.send().await {
            Ok(res) if res.status().is_success() => Ok(()),
            Ok(res) => Err(format!("answered HTTP {}", res.status().as_u16())),
            Err(e) => Err(e.without_url().to_string()),
        }
    }

    /// Removes the head once delivered (unless the queue overflowed and dropped it meanwhile).
    fn delivered(&self, record: &WitnessRecord) {
        let mut q = self.queue();
        if q.front() == Some(record) {
            q.pop_front();
        }
        self.0.delivered.fetch_add(1, Ordering::Relaxed);
    }

    /// Delivers the queue in order until `shutdown` turns true, then tries what is left for
    /// at most [`DRAIN_ON_SHUTDOWN`].
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut delay = self.0.backoff.initial;
        let mut attempt: u32 = 0;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let head = self.queue().front().cloned();
            let Some(record) = head else {
                tokio::select! {
                    () = self.0.wake.notified() => {}
                    r = shutdown.changed() => if r.is_err() { break },
                }
                continue;
            };
            match self.post(&record).await {
                Ok(()) => {
                    self.delivered(&record);
                    delay = self.0.backoff.initial;
                    attempt = 0;
                }
                Err(why) => {
                    attempt += 1;
                    self.0.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        witness.host = %self.0.host,
                        audit.tree_size = record.tree_size,
                        attempt,
                        retry_in_ms = delay.as_millis() as u64,
                        error = %why,
                        "checkpoint witness delivery failed; will retry"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        r = shutdown.changed() => if r.is_err() { break },
                    }
                    delay = (delay * 2).min(self.0.backoff.max);
                }
            }
        }
        let drain = async {
            loop {
                let head = self.queue().front().cloned();
                let Some(record) = head else { break };
                if self.post(&record).await.is_err() {
                    break;
                }
                self.delivered(&record);
            }
        };
        let _ = tokio::time::timeout(DRAIN_ON_SHUTDOWN, drain).await;
        let left = self.queue().len();
        if left > 0 {
            tracing::warn!(
                witness.host = %self.0.host,
                undelivered = left,
                "stopping with undelivered checkpoints; the newest stored one is sent again at the next start"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u64) -> WitnessRecord {
        WitnessRecord {
            tree_size: n,
            root_hash: String::new(),
            timestamp: String::new(),
            note: String::new(),
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let w = HttpWitness::new("http://127.0.0.1:9/x", None, Backoff::default()).unwrap();
        for n in 0..(QUEUE_CAPACITY as u64 + 3) {
            w.enqueue(rec(n));
        }
        let s = w.stats();
        assert_eq!((s.queued, s.dropped), (QUEUE_CAPACITY, 3));
        assert_eq!(w.queue().front().map(|r| r.tree_size), Some(3));
        assert!(!format!("{w:?}").contains("/x"));
    }
}
