//! Per-client token buckets (governor). Counters live in process memory: losing them on
//! restart is safe, and account lockouts — the limit that matters for guessing — live in the
//! database.
//!
//! A client is an IPv4 address or an IPv6 /64 (one subscriber line or host usually holds a
//! whole /64: counting single IPv6 addresses would let it rotate through 2^64 of them).
//! [`RateLimits::trim`] forgets the clients whose buckets are full again; `serve` runs it every
//! [`TRIM_EVERY`] (see [`run_trimmer`]), so memory stays bounded by the clients of the last
//! minute.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::AppError;

/// How often `serve` trims the in-memory rate-limit maps.
pub const TRIM_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `POST /api/v1/session` and step-up: 10 per minute.
    Login,
    /// Invitation pages and API: 30 per minute.
    Invitation,
    /// Public routes (consent, verification): 30 per minute.
    Public,
}

/// The key a per-client limit counts under: an IPv4 address (an IPv4-mapped IPv6 address
/// counts as its IPv4 address), or the /64 network of an IPv6 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
    }
}

type KeyedBy<K, C> =
    RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Keyed<C> = KeyedBy<IpAddr, C>;

/// The per-client limit of the OpenID Connect back channel by default (requests per second
/// and client, for each of the token, userinfo and revocation endpoints).
pub const OIDC_CLIENT_RATE: u32 = 1000;

pub struct RateLimits<C: Clock = DefaultClock> {
    login: Keyed<C>,
    invitation: Keyed<C>,
    public: Keyed<C>,
    /// Partner clients of the OpenID Connect provider, by endpoint and client, counted once
    /// the client is authenticated (its access token, for userinfo): another party naming a
    /// client cannot spend its budget.
    oidc: KeyedBy<(&'static str, uuid::Uuid), C>,
    clock: C,
}

impl<C: Clock> std::fmt::Debug for RateLimits<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimits")
    }
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(OIDC_CLIENT_RATE)
    }
}

impl RateLimits {
    /// The limits, with `oidc_client_rate` requests per second and partner client.
    pub fn new(oidc_client_rate: u32) -> Self {
        Self::with_clock(DefaultClock::default(), oidc_client_rate)
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    /// The limits on a given clock (tests use a fake one).
    pub fn with_clock(clock: C, oidc_client_rate: u32) -> Self {
        let keyed = |n| {
            RateLimiter::new(
                per_minute(n),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            )
        };
        Self {
            login: keyed(10),
            invitation: keyed(30),
            public: keyed(30),
            oidc: RateLimiter::new(
                Quota::per_second(NonZeroU32::new(oidc_client_rate).unwrap_or(NonZeroU32::MIN)),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
            clock,
        }
    }

    fn limiter(&self, limit: Limit) -> &Keyed<C> {
        match limit {
            Limit::Login => &self.login,
            Limit::Invitation => &self.invitation,
            Limit::Public => &self.public,
        }
    }

    /// `Ok` or `429 rate_limited` with the seconds to wait.
    pub fn check(&self, limit: Limit, ip: IpAddr) -> Result<(), AppError> {
        self.limiter(limit)
            .check_key(&client_key(ip))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                AppError::RateLimited {
                    retry_after_secs: wait.as_secs().max(1),
                }
            })
    }

    /// Whether a partner client may make one more request to an OpenID Connect endpoint.
    pub fn admit_client(&self, endpoint: &'static str, client: uuid::Uuid) -> bool {
        self.oidc.check_key(&(endpoint, client)).is_ok()
    }

    /// Forgets every client whose bucket is full again (it would start fresh anyway).
    pub fn trim(&self) {
        for l in [&self.login, &self.invitation, &self.public] {
            l.retain_recent();
            l.shrink_to_fit();
        }
        self.oidc.retain_recent();
        self.oidc.shrink_to_fit();
    }

    /// Clients currently remembered by one limit.
    pub fn tracked(&self, limit: Limit) -> usize {
        self.limiter(limit).len()
    }
}

/// Trims the rate-limit maps and the consent-code failure counts every [`TRIM_EVERY`], until
/// `shutdown` changes.
pub async fn run_trimmer(
    limits: Arc<RateLimits>,
    code_failures: Arc<super::code_failures::CodeFailures>,
    clock: Arc<dyn crate::clock::Clock>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(TRIM_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        limits.trim();
        code_failures.trim(clock.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn allowed(l: &RateLimits<FakeRelativeClock>, limit: Limit, addr: &str) -> bool {
        l.check(limit, ip(addr)).is_ok()
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_a_bucket() {
        let l = RateLimits::with_clock(FakeRelativeClock::default(), 3);
        for i in 0..10 {
            assert!(allowed(
                &l,
                Limit::Login,
                &format!("2001:db8:1:2::{:x}", i + 1)
            ));
        }
        // Another address of the same /64: the bucket is empty.
        assert!(!allowed(
            &l,
            Limit::Login,
            "2001:db8:1:2:ffff:ffff:ffff:ffff"
        ));
        // Another /64 (differs in the fourth group): its own bucket.
        assert!(allowed(&l, Limit::Login, "2001:db8:1:3::1"));
        // IPv4 addresses stay distinct; an IPv4-mapped address is its IPv4 address.
        for _ in 0..10 {
            assert!(allowed(&l, Limit::Login, "203.0.113.7"));
        }
        assert!(!allowed(&l, Limit::Login, "::ffff:203.0.113.7"));
        assert!(allowed(&l, Limit::Login, "203.0.113.8"));
        assert_eq!(l.tracked(Limit::Login), 4);
    }

    #[test]
    fn each_partner_client_has_its_own_budget_per_endpoint() {
        let clock = FakeRelativeClock::default();
        let l = RateLimits::with_clock(clock.clone(), 3);
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        for _ in 0..3 {
            assert!(l.admit_client("token", a));
        }
        assert!(
            !l.admit_client("token", a),
            "the fourth in the second is refused"
        );
        assert!(
            l.admit_client("userinfo", a),
            "another endpoint, another budget"
        );
        assert!(l.admit_client("token", b), "another client, another budget");
        clock.advance(Duration::from_millis(400));
        assert!(l.admit_client("token", a), "refilled at 3 per second");
    }

    #[test]
    fn client_key_masks_the_interface_identifier() {
        assert_eq!(
            client_key(ip("2001:db8:aa:bb:1:2:3:4")),
            ip("2001:db8:aa:bb::")
        );
        assert_eq!(client_key(ip("198.51.100.1")), ip("198.51.100.1"));
        assert_eq!(client_key(ip("::ffff:198.51.100.1")), ip("198.51.100.1"));
    }

    #[test]
    fn trimming_forgets_clients_whose_bucket_refilled() {
        let clock = FakeRelativeClock::default();
        let l = RateLimits::with_clock(clock.clone(), 3);
        assert!(allowed(&l, Limit::Login, "203.0.113.1"));
        assert!(allowed(&l, Limit::Public, "2001:db8::1"));
        clock.advance(Duration::from_secs(50));
        assert!(allowed(&l, Limit::Login, "203.0.113.2"));
        assert_eq!(l.tracked(Limit::Login), 2);
        l.trim();
        // 203.0.113.1's single request was 50 s ago: refilled at 10 per minute (6 s a token).
        assert_eq!(l.tracked(Limit::Login), 1, "the stale client is forgotten");
        assert_eq!(l.tracked(Limit::Public), 0);
        clock.advance(Duration::from_secs(60));
        l.trim();
        assert_eq!(l.tracked(Limit::Login), 0);
        // A client still limited is kept (its count must survive the trim).
        for _ in 0..10 {
            assert!(allowed(&l, Limit::Login, "203.0.113.3"));
        }
        l.trim();
        assert_eq!(l.tracked(Limit::Login), 1);
        assert!(!allowed(&l, Limit::Login, "203.0.113.3"));
    }

    #[test]
    fn trimming_code_failures_forgets_old_clients() {
        use chrono::TimeZone as _;
        let f = super::super::code_failures::CodeFailures::default();
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
        f.begin(ip("203.0.113.1"), t0).unwrap().finish(true, t0);
        let t1 = t0 + chrono::Duration::seconds(30);
        f.begin(ip("203.0.113.2"), t1).unwrap().finish(true, t1);
        assert_eq!(f.len(), 2);
        f.trim(t0 + chrono::Duration::seconds(61));
        assert_eq!(
            f.len(),
            1,
            "the client whose failures left the window is gone"
        );
        f.trim(t0 + chrono::Duration::seconds(91));
        assert_eq!(f.len(), 0);
    }
}
