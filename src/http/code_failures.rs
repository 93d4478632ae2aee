//! Failed consent-code entries per client (IP; IPv6 grouped by /64): at most 4 in any 60
//! seconds, on top of the 5 attempts per challenge (as the UK's use-an-lpa does). In process
//! memory: losing the counters on restart is safe, the per-challenge count lives in the
//! database.
//!
//! Check and record are one step: [`CodeFailures::begin`] checks the client's failures *and*
//! its entries still in flight under one lock, and reserves a place for this entry; the
//! entry then ends as a failure or not ([`CodeEntry::finish`]). Parallel requests cannot all
//! pass the check before the first failure is recorded: a fifth entry is refused while four
//! are being judged. An entry dropped unfinished (the request was cancelled) counts as a
//! failure.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

use super::ratelimit::client_key;
use crate::error::AppError;

pub const MAX_FAILURES: usize = 4;
pub const WINDOW: Duration = Duration::seconds(60);
/// Clients tracked at most (bounded memory); past it, idle clients are forgotten first.
const MAX_CLIENTS: usize = 100_000;

#[derive(Debug, Default)]
struct Client {
    failures: VecDeque<DateTime<Utc>>,
    in_flight: usize,
}

impl Client {
    fn forget_before(&mut self, now: DateTime<Utc>) {
        while self.failures.front().is_some_and(|t| now - *t >= WINDOW) {
            self.failures.pop_front();
        }
    }

    fn idle(&self) -> bool {
        self.failures.is_empty() && self.in_flight == 0
    }
}

#[derive(Debug, Default)]
pub struct CodeFailures(Mutex<HashMap<IpAddr, Client>>);

/// One code entry in flight; end it with [`CodeEntry::finish`].
#[must_use = "an entry counts as a failure unless finished"]
pub struct CodeEntry<'a> {
    owner: &'a CodeFailures,
    key: IpAddr,
    started: DateTime<Utc>,
    done: bool,
}

impl CodeFailures {
    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Client>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a code entry: `429` while the client's failures within [`WINDOW`] and its
    /// entries in flight reach [`MAX_FAILURES`]; otherwise the entry holds a place until it
    /// is finished.
    pub fn begin(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<CodeEntry<'_>, AppError> {
        let key = client_key(ip);
        let mut map = self.clients();
        if map.len() >= MAX_CLIENTS && !map.contains_key(&key) {
            trim_map(&mut map, now);
            if map.len() >= MAX_CLIENTS {
                // Still full of active clients: forget them rather than grow (the
                // per-challenge limit still holds).
                map.retain(|_, c| c.in_flight > 0);
            }
        }
        let client = map.entry(key).or_default();
        client.forget_before(now);
        if client.failures.len() + client.in_flight >= MAX_FAILURES {
            let retry_after = match client.failures.front() {
                Some(oldest) if client.failures.len() >= MAX_FAILURES => {
                    u64::try_from((WINDOW - (now - *oldest)).num_seconds()).unwrap_or(1)
                }
                _ => 1,
            };
            return Err(AppError::RateLimited {
                retry_after_secs: retry_after.max(1),
            });
        }
        client.in_flight += 1;
        Ok(CodeEntry {
            owner: self,
            key,
            started: now,
            done: false,
        })
    }

    /// Forgets clients with no failure within [`WINDOW`] and nothing in flight.
    pub fn trim(&self, now: DateTime<Utc>) {
        trim_map(&mut self.clients(), now);
    }

    /// Clients tracked now.
    pub fn len(&self) -> usize {
        self.clients().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn end(&self, key: IpAddr, failed_at: Option<DateTime<Utc>>) {
        let mut map = self.clients();
        let Some(client) = map.get_mut(&key) else {
            return;
        };
        client.in_flight = client.in_flight.saturating_sub(1);
        if let Some(t) = failed_at {
            client.failures.push_back(t);
        }
        if client.idle() {
            map.remove(&key);
        }
    }
}

fn trim_map(map: &mut HashMap<IpAddr, Client>, now: DateTime<Utc>) {
    map.retain(|_, c| {
        c.forget_before(now);
        !c.idle()
    });
}

impl CodeEntry<'_> {
    /// Ends the entry: `failed` records a failure at `now` (a wrong code, a locked or
    /// unknown challenge); otherwise the place is given back.
    pub fn finish(mut self, failed: bool, now: DateTime<Utc>) {
        self.done = true;
        self.owner.end(self.key, failed.then_some(now));
    }
}

impl Drop for CodeEntry<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.owner.end(self.key, Some(self.started));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap()
    }

    #[test]
    fn four_failures_per_minute() {
        let f = CodeFailures::default();
        let ip: IpAddr = [203, 0, 113, 7].into();
        let other: IpAddr = [203, 0, 113, 8].into();
        let t0 = t0();
        for i in 0..4 {
            let now = t0 + Duration::seconds(i);
            f.begin(ip, now).unwrap().finish(true, now);
        }
        match f.begin(ip, t0 + Duration::seconds(10)) {
            Err(AppError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 50),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("a fifth failure within the minute"),
        }
        f.begin(other, t0 + Duration::seconds(10))
            .unwrap()
            .finish(false, t0);
        assert!(
            f.begin(ip, t0 + Duration::seconds(60)).is_ok(),
            "the oldest left the window"
        );
    }

    #[test]
    fn successes_do_not_count() {
        let f = CodeFailures::default();
        let ip: IpAddr = [203, 0, 113, 7].into();
        for _ in 0..10 {
            f.begin(ip, t0()).unwrap().finish(false, t0());
        }
        assert!(f.is_empty(), "nothing left for a client without failures");
    }

    #[test]
    fn entries_in_flight_hold_their_place() {
        // What parallel requests do: every check happens before any result is known.
        let f = CodeFailures::default();
        let ip: IpAddr = [198, 51, 100, 1].into();
        let entries: Vec<_> = (0..10).filter_map(|_| f.begin(ip, t0()).ok()).collect();
        assert_eq!(entries.len(), MAX_FAILURES, "only four entries at once");
        for e in entries {
            e.finish(true, t0());
        }
        assert!(f.begin(ip, t0()).is_err(), "four failures recorded");
    }

    #[test]
    fn parallel_threads_cannot_pass_together() {
        let f = std::sync::Arc::new(CodeFailures::default());
        let ip: IpAddr = [198, 51, 100, 2].into();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
        let admitted: usize = (0..16)
            .map(|_| {
                let (f, barrier) = (f.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    match f.begin(ip, t0()) {
                        Ok(e) => {
                            // Judged while the others check; then a wrong code.
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            e.finish(true, t0());
                            1
                        }
                        Err(_) => 0,
                    }
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert!(admitted <= MAX_FAILURES, "{admitted} entries admitted");
        assert!(f.begin(ip, t0()).is_err());
    }

    #[test]
    fn an_unfinished_entry_counts_as_a_failure() {
        let f = CodeFailures::default();
        let ip: IpAddr = [198, 51, 100, 3].into();
        for _ in 0..4 {
            drop(f.begin(ip, t0()).unwrap());
        }
        assert!(f.begin(ip, t0()).is_err());
    }

    #[test]
    fn ipv6_clients_are_grouped_by_64() {
        let f = CodeFailures::default();
        for i in 0..4u16 {
            let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, 9, 9, i));
            f.begin(ip, t0()).unwrap().finish(true, t0());
        }
        let same = IpAddr::V6(std::net::Ipv6Addr::new(
            0x2001, 0xdb8, 1, 2, 0xffff, 0, 0, 1,
        ));
        assert!(f.begin(same, t0()).is_err());
        let next = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert!(f.begin(next, t0()).is_ok());
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().unwrap();
        assert_eq!(client_key(mapped), IpAddr::from([203, 0, 113, 9]));
    }

    #[test]
    fn trim_forgets_idle_clients() {
        let f = CodeFailures::default();
        let ip: IpAddr = [192, 0, 2, 1].into();
        f.begin(ip, t0()).unwrap().finish(true, t0());
        let held = f.begin([192, 0, 2, 2].into(), t0()).unwrap();
        f.trim(t0() + Duration::seconds(30));
        assert_eq!(f.len(), 2);
        f.trim(t0() + WINDOW);
        assert_eq!(f.len(), 1, "the entry in flight stays");
        held.finish(false, t0());
        assert!(f.is_empty());
    }
}
