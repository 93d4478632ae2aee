//! Failed consent-code entries per client (IP): at most 4 in any 60 seconds, on top of the
//! 5 attempts per challenge (as the UK's use-an-lpa does). In process memory: losing the
//! counters on restart is safe, the per-challenge count lives in the database.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use crate::error::AppError;

pub const MAX_FAILURES: usize = 4;
pub const WINDOW: Duration = Duration::seconds(60);

#[derive(Debug, Default)]
pub struct CodeFailures(Mutex<HashMap<IpAddr, VecDeque<DateTime<Utc>>>>);

impl CodeFailures {
    /// `429` while the client has [`MAX_FAILURES`] failures within [`WINDOW`].
    pub fn check(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<(), AppError> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(q) = map.get_mut(&ip) else {
            return Ok(());
        };
        while q.front().is_some_and(|t| now - *t >= WINDOW) {
            q.pop_front();
        }
        match q.front() {
            Some(oldest) if q.len() >= MAX_FAILURES => Err(AppError::RateLimited {
                retry_after_secs: u64::try_from((WINDOW - (now - *oldest)).num_seconds())
                    .unwrap_or(1)
                    .max(1),
            }),
            None => {
                map.remove(&ip);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub fn record(&self, ip: IpAddr, now: DateTime<Utc>) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > 100_000 {
            // Bounded memory: forget everyone (safe: the per-challenge limit still holds).
            map.clear();
        }
        map.entry(ip).or_default().push_back(now);
    }

    /// Forgets the clients whose failures all left the window (run on a timer by `serve`).
    pub fn trim(&self, now: DateTime<Utc>) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, q| q.back().is_some_and(|t| now - *t < WINDOW));
        map.shrink_to_fit();
    }

    /// Clients currently remembered.
    pub fn tracked(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn four_failures_per_minute() {
        let f = CodeFailures::default();
        let ip: IpAddr = [203, 0, 113, 7].into();
        let other: IpAddr = [203, 0, 113, 8].into();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
        for i in 0..4 {
            assert!(f.check(ip, t0 + Duration::seconds(i)).is_ok());
            f.record(ip, t0 + Duration::seconds(i));
        }
        match f.check(ip, t0 + Duration::seconds(10)) {
            Err(AppError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 50),
            other => panic!("{other:?}"),
        }
        assert!(f.check(other, t0 + Duration::seconds(10)).is_ok());
        assert!(
            f.check(ip, t0 + Duration::seconds(60)).is_ok(),
            "the oldest left the window"
        );
    }
}
