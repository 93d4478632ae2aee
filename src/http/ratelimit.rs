//! Per-IP token buckets (governor). Counters live in process memory: losing them on restart
//! is safe, and account lockouts — the limit that matters for guessing — live in the database.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `POST /api/v1/session` and step-up: 10 per minute.
    Login,
    /// Invitation pages and API: 30 per minute.
    Invitation,
    /// Public routes (consent, verification): 30 per minute.
    Public,
}

pub struct RateLimits {
    login: DefaultKeyedRateLimiter<IpAddr>,
    invitation: DefaultKeyedRateLimiter<IpAddr>,
    public: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimits")
    }
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login: RateLimiter::keyed(per_minute(10)),
            invitation: RateLimiter::keyed(per_minute(30)),
            public: RateLimiter::keyed(per_minute(30)),
            clock: DefaultClock::default(),
        }
    }
}

impl RateLimits {
    /// `Ok` or `429 rate_limited` with the seconds to wait.
    pub fn check(&self, limit: Limit, ip: IpAddr) -> Result<(), AppError> {
        let limiter = match limit {
            Limit::Login => &self.login,
            Limit::Invitation => &self.invitation,
            Limit::Public => &self.public,
        };
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            AppError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }
}
