//! Watching a release after it goes live: the rollback triggers (`[env.NAME.watch]`,
//! defaulting to the promotion plan's: 5xx > 5 %, 4xx > 20 %, p95 > 3 s, edge function
//! errors > 1 %) judged over synthetic requests through the URL, CloudFront's error-rate
//! and edge function metrics, and named alarms.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::config::{Invalid, Key};

/// `[env.NAME.watch]` as written in driftless.toml.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWatch {
    /// Share of 5xx answers that rolls back (default 0.05; also CloudFront's
    /// 5xxErrorRate, in percent, compared as 5).
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Share of 4xx answers that rolls back (default 0.20).
    #[serde(default)]
    pub client_error_rate: Option<f64>,
    /// 95th-percentile latency of the synthetic requests, in ms, that rolls back
    /// (default 3000).
    #[serde(default)]
    pub p95_ms: Option<u64>,
    /// Share of driftless's edge function invocations that fail (execution or
    /// validation errors, from CloudWatch) that rolls back (default 0.01).
    #[serde(default)]
    pub edge_error_rate: Option<f64>,
    /// Time between rounds of synthetic requests (default "10s").
    #[serde(default)]
    pub interval: Option<String>,
    /// Paths per round besides the changed ones (default 20).
    #[serde(default)]
    pub sample: Option<usize>,
    /// CloudWatch alarms (us-east-1) whose `ALARM` state rolls back.
    #[serde(default)]
    pub alarms: Vec<String>,
}

/// The triggers, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    pub error_rate: f64,
    pub client_error_rate: f64,
    pub p95_ms: u64,
    pub edge_error_rate: f64,
    pub interval: SignedDuration,
    pub sample: usize,
    pub alarms: Vec<String>,
}

impl Default for Watch {
    fn default() -> Self {
        Self {
            error_rate: 0.05,
            client_error_rate: 0.20,
            p95_ms: 3000,
            edge_error_rate: 0.01,
            interval: SignedDuration::from_secs(10),
            sample: 20,
            alarms: Vec::new(),
        }
    }
}

/// Requests judged before a share can trigger (one early 500 is not 100 %).
pub const MIN_REQUESTS: usize = 20;

impl RawWatch {
    /// `at`: where this table is (`env.prod.watch`).
    pub fn validate(&self, at: &Key) -> Result<Watch, Invalid> {
        let d = Watch::default();
        let share = |v: Option<f64>, key: &str, default: f64| match v {
            None => Ok(default),
            Some(x) if (0.0..=1.0).contains(&x) => Ok(x),
            Some(x) => Err(Invalid::new(
                at.clone().then(key),
                format!("{at}.{key}: {x} is not a share between 0 and 1 (5 % is 0.05)"),
            )),
        };
        let interval = match &self.interval {
            None => d.interval,
            Some(t) => crate::text::parse_duration(t)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    Invalid::new(
                        at.clone().then("interval"),
                        format!("{at}.interval: {t:?} is not a duration (e.g. \"10s\")"),
                    )
                })?,
        };
        Ok(Watch {
            error_rate: share(self.error_rate, "error_rate", d.error_rate)?,
            client_error_rate: share(
                self.client_error_rate,
                "client_error_rate",
                d.client_error_rate,
            )?,
            p95_ms: self.p95_ms.unwrap_or(d.p95_ms),
            edge_error_rate: share(self.edge_error_rate, "edge_error_rate", d.edge_error_rate)?,
            interval,
            sample: self.sample.unwrap_or(d.sample),
            alarms: self.alarms.clone(),
        })
    }
}

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
