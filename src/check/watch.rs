//! When a watched release is rolled back — the one place that decides it: the rollback
//! triggers (`[env.NAME.watch]`, defaulting to the promotion plan's: 5xx > 5 %, 4xx > 20 %,
//! p95 > 3 s, edge function errors > 1 %) judged over the synthetic requests' answers
//! (never over requests that got none), CloudFront's error-rate and edge function
//! metrics, and named alarms.

use std::time::{Duration, Instant};

use futures::StreamExt as _;

use super::Target;
use crate::Error;
use crate::config::{EdgeConfig, Watch};
use crate::ledger::Tally;

impl Tally {
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

/// The first trigger CloudWatch fires for a window that began at `since`, in words.
/// Failures to read CloudWatch are warned once, never triggers.
pub async fn cloud_trigger(
    cloud: &crate::aws::cloudwatch::Cloud,
    w: &Watch,
    since: jiff::Timestamp,
) -> Option<String> {
    if !cloud.enabled() {
        return None;
    }
    let start = since
        .checked_sub(jiff::SignedDuration::from_secs(60))
        .unwrap_or(since);
    if let Some(d) = cloud.distribution() {
        for (metric, limit) in [
            ("5xxErrorRate", w.error_rate),
            ("4xxErrorRate", w.client_error_rate),
        ] {
            let worst = cloud.worst_rate(metric, start).await;
            if worst > limit * 100.0 {
                return Some(format!(
                    "CloudFront {metric} {worst:.1}% > {:.1}% (CloudWatch, distribution {d})",
                    limit * 100.0
                ));
            }
        }
    }
    if let Some(f) = cloud.function() {
        let [invocations, execution, validation] = cloud.edge_sums(start).await;
        let errors = execution + validation;
        if invocations > 0.0 && errors / invocations > w.edge_error_rate {
            return Some(format!(
                "edge function {f} errors {:.1}% > {:.1}% ({errors} of {invocations} invocations: {execution} execution, {validation} validation; CloudWatch)",
                errors / invocations * 100.0,
                w.edge_error_rate * 100.0
            ));
        }
    }
    if !w.alarms.is_empty()
        && let Some((name, reason)) = cloud.in_alarm(&w.alarms).await
    {
        return Some(format!(
            "CloudWatch alarm {name} is in ALARM{}",
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        ));
    }
    None
}

/// The synthetic requests of a watch: every changed path and a sample of the others,
/// through the environment's URL (with the site's credentials behind basic auth).
pub struct Probe {
    client: reqwest::Client,
    auth: Option<String>,
    /// The canary cookie every request carries: pinned to one side of a canary.
    cookie: Option<String>,
    base: String,
    pub paths: Vec<String>,
}

impl Probe {
    pub fn new(target: &Target, edge: &EdgeConfig, sample: usize) -> Result<Self, Error> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| Error::Other(format!("HTTP client: {e}")))?,
            auth: edge.auth_header().map_err(Error::Usage)?,
            cookie: None,
            base: target.base.clone(),
            paths: paths(target, sample),
        })
    }

    /// Every request as a visitor of canary bucket `bucket` (0: always on a canary's
    /// side, 99: always on live's, whatever the share).
    pub fn pinned(mut self, bucket: u8) -> Self {
        self.cookie = Some(format!("{}={bucket}", crate::edge::CANARY_COOKIE));
        self
    }

    /// One round: every path requested (8 at a time), each answer (or none) counted.
    pub async fn round(&self, tally: &mut Tally) {
        let round: Vec<(Option<u16>, u64)> = futures::stream::iter(&self.paths)
            .map(|p| {
                let (client, auth, cookie, url) = (
                    &self.client,
                    self.auth.as_deref(),
                    self.cookie.as_deref(),
                    format!("{}{p}", self.base),
                );
                async move {
                    let t = Instant::now();
                    let mut req = client.get(&url);
                    if let Some(a) = auth {
                        req = req.header("Authorization", a);
                    }
                    if let Some(c) = cookie {
                        req = req.header("Cookie", c);
                    }
                    let status = req.send().await.ok().map(|r| r.status().as_u16());
                    let ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
                    (status, ms)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for (status, ms) in round {
            tally.add(status, ms);
        }
    }
}

/// The paths one round requests: every changed key, then `sample` others spread over
/// the site (so a large site is sampled, not crawled).
fn paths(target: &Target, sample: usize) -> Vec<String> {
    let live = &target.live;
    let changed: Vec<String> = target.changed().into_iter().map(|(k, _)| k).collect();
    let step = (live.manifest.len() / sample.max(1)).max(1);
    let mut keys = changed.clone();
    keys.extend(
        live.manifest
            .keys()
            .step_by(step)
            .filter(|k| !changed.contains(k))
            .take(sample)
            .cloned(),
    );
    keys.iter()
        .map(|k| format!("/{}", crate::store::encode_key(k)))
        .collect()
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
