//! Watching a release after it goes live: the rollback triggers (`[env.NAME.watch]`,
//! defaulting to the promotion plan's: 5xx > 5 %, 4xx > 20 %, p95 > 3 s, edge function
//! errors > 1 %) judged over synthetic requests through the URL, CloudFront's error-rate
//! and edge function metrics, and named alarms.

use crate::config::Watch;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Requests judged before a share can trigger (one early 500 is not 100 %).
pub const MIN_REQUESTS: usize = 20;

/// The 95th percentile of `latencies_ms` (nearest rank; 0 for none): for `watch`'s
/// synthetic requests and `verify`'s checks alike.
pub fn p95(latencies_ms: &[u64]) -> u64 {
    if latencies_ms.is_empty() {
        return 0;
    }
    let mut v = latencies_ms.to_vec();
    v.sort_unstable();
    let rank = (v.len() * 95).div_ceil(100).max(1);
    v[rank - 1]
}

/// What the synthetic requests saw so far.
///
/// A request that got no answer (connection refused or reset, DNS, timeout) is counted
/// apart and never as an error of the site: it is as likely the runner's network as the
/// release, and rolling production back on a network blip is a disaster of its own. Rates
/// and latency are judged over answered requests only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Tally {
    pub requests: usize,
    pub server_errors: usize,
    pub client_errors: usize,
    /// Requests that got no answer (not counted in the rates).
    pub unanswered: usize,
    #[serde(skip)]
    pub latencies_ms: Vec<u64>,
}

impl Tally {
    pub fn add(&mut self, status: Option<u16>, ms: u64) {
        self.requests += 1;
        match status {
            None => self.unanswered += 1,
            Some(s) => {
                self.latencies_ms.push(ms);
                if s >= 500 {
                    self.server_errors += 1;
                } else if s >= 400 {
                    self.client_errors += 1;
                }
            }
        }
    }

    /// Requests the site answered (with any status).
    pub fn answered(&self) -> usize {
        self.requests - self.unanswered
    }

    /// Enough answers to judge the release by.
    pub fn conclusive(&self) -> bool {
        self.answered() >= MIN_REQUESTS
    }

    /// The 95th percentile latency of the answered requests (nearest rank).
    pub fn p95(&self) -> u64 {
        p95(&self.latencies_ms)
    }

    #[expect(
        clippy::cast_precision_loss,
        reason = "a share, for display and comparison"
    )]
    fn share(&self, n: usize) -> f64 {
        if self.answered() == 0 {
            0.0
        } else {
            n as f64 / self.answered() as f64
        }
    }

    /// "; 6 unanswered, not counted" when some requests got no answer.
    fn unanswered_note(&self) -> String {
        if self.unanswered == 0 {
            String::new()
        } else {
            format!("; {} unanswered, not counted", self.unanswered)
        }
    }

    /// The first trigger the site's answers fire, in words. Unanswered requests alone
    /// never fire one.
    pub fn trigger(&self, w: &Watch) -> Option<String> {
        if !self.conclusive() {
            return None;
        }
        let (e, c) = (
            self.share(self.server_errors),
            self.share(self.client_errors),
        );
        if e > w.error_rate {
            return Some(format!(
                "5xx rate {:.1}% > {:.1}% ({} of {} answered synthetic requests{})",
                e * 100.0,
                w.error_rate * 100.0,
                self.server_errors,
                self.answered(),
                self.unanswered_note()
            ));
        }
        if c > w.client_error_rate {
            return Some(format!(
                "4xx rate {:.1}% > {:.1}% ({} of {} answered synthetic requests{})",
                c * 100.0,
                w.client_error_rate * 100.0,
                self.client_errors,
                self.answered(),
                self.unanswered_note()
            ));
        }
        let p95 = self.p95();
        if p95 > w.p95_ms {
            return Some(format!(
                "p95 latency {p95} ms > {} ms (answered synthetic requests{})",
                w.p95_ms,
                self.unanswered_note()
            ));
        }
        None
    }
}

/// A watch of one release, kept in `watches/<release>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Watched {
    pub release: String,
    pub from: Timestamp,
    pub until: Timestamp,
    pub tally: Tally,
    pub p95_ms: u64,
    pub healthy: bool,
    /// What fired, if anything.
    #[serde(default)]
    pub trigger: Option<String>,
    /// The release rolled back to, if the watch did.
    #[serde(default)]
    pub rolled_back_to: Option<String>,
    pub by: crate::ledger::Actor,
}

impl Watched {
    /// "watched 15m, healthy (120 requests, p95 80 ms)" / "watched 2m: 5xx rate … — rolled back".
    pub fn describe(&self) -> String {
        let span = self.until.duration_since(self.from);
        let mins = span.as_secs() / 60;
        let span = if mins > 0 {
            format!("{mins}m")
        } else {
            format!("{}s", span.as_secs())
        };
        match (&self.trigger, &self.rolled_back_to) {
            (None, _) if !self.healthy => format!(
                "watched {span}: could not tell ({} of {} requests answered)",
                self.tally.answered(),
                self.tally.requests
            ),
            (None, _) => format!(
                "watched {span}, healthy ({} requests, p95 {} ms{})",
                self.tally.requests,
                self.p95_ms,
                if self.tally.unanswered > 0 {
                    format!(", {} unanswered", self.tally.unanswered)
                } else {
                    String::new()
                }
            ),
            (Some(t), Some(to)) => format!("watched {span}: {t} — rolled back to {to}"),
            (Some(t), None) => format!("watched {span}: {t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Key;
    use crate::config::RawWatch;

    #[test]
    fn triggers_wait_for_enough_requests_and_name_the_numbers() {
        let w = Watch::default();
        let mut t = Tally::default();
        t.add(Some(500), 10);
        assert_eq!(t.trigger(&w), None, "one early 500 is not a rate");
        for _ in 0..19 {
            t.add(Some(200), 10);
        }
        // 1 of 20 = 5 %: not above the threshold.
        assert_eq!(t.trigger(&w), None);
        // Unanswered requests are not errors of the site, whatever their number.
        for _ in 0..100 {
            t.add(None, 10_000);
        }
        assert_eq!(t.trigger(&w), None);
        assert_eq!(t.p95(), 10, "no answer, no latency");
        t.add(Some(503), 10);
        let fired = t.trigger(&w).unwrap();
        assert!(
            fired.starts_with("5xx rate 9.5% > 5.0% (2 of 21 answered"),
            "{fired}"
        );
        assert!(fired.contains("100 unanswered, not counted"), "{fired}");
        let mut silent = Tally::default();
        for _ in 0..50 {
            silent.add(None, 10);
        }
        assert!(!silent.conclusive());
        assert_eq!(silent.trigger(&w), None);
        let mut slow = Tally::default();
        for i in 0..20 {
            slow.add(Some(200), if i < 18 { 10 } else { 5000 });
        }
        assert_eq!(slow.p95(), 5000);
        assert_eq!(
            slow.trigger(&w).unwrap(),
            "p95 latency 5000 ms > 3000 ms (answered synthetic requests)"
        );
        assert!(
            RawWatch {
                error_rate: Some(5.0),
                ..RawWatch::default()
            }
            .validate(&Key::of("env.prod.watch"))
            .is_err()
        );
    }
}
