//! `[env.NAME.watch]`: the rollback triggers of `watch` — the promotion plan's by
//! default: 5xx > 5 %, 4xx > 20 %, p95 > 3 s, edge function errors > 1 %.

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use super::{Invalid, Key};

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
