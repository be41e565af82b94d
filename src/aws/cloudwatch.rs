//! CloudWatch for `watch` and `doctor`: CloudFront's error rates and the edge function's
//! errors (`AWS/CloudFront`, `Region=Global`, read in us-east-1), and alarms.

use jiff::{SignedDuration, Timestamp};

use crate::config::{EnvConfig, Watch};

/// A CloudWatch client for the environment's credentials, in us-east-1 (where
/// CloudFront's metrics and their alarms live).
pub async fn client(env: &EnvConfig) -> aws_sdk_cloudwatch::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"));
    if let Some(p) = &env.profile {
        loader = loader.profile_name(p);
    }
    aws_sdk_cloudwatch::Client::new(&loader.load().await)
}

/// CloudWatch, for an environment with a CloudFront distribution or alarms to read.
pub struct Cloud {
    client: Option<aws_sdk_cloudwatch::Client>,
    distribution: Option<String>,
    /// driftless's edge function for this environment (its error metrics).
    function: Option<String>,
    /// What could not be read, said once per window.
    warned: std::sync::Mutex<std::collections::HashSet<&'static str>>,
}

impl Cloud {
    /// CloudWatch for `env`, with the metrics of its distribution and of its edge function
    /// (named `function`).
    pub async fn connect(env: &EnvConfig, function: Option<String>) -> Self {
        let distribution = env.cdn.as_ref().map(|c| c.cloudfront.clone());
        let function = distribution.as_ref().and(function);
        let client = if distribution.is_none() && env.watch.alarms.is_empty() {
            None
        } else {
            Some(client(env).await)
        };
        Self {
            client,
            distribution,
            function,
            warned: std::sync::Mutex::default(),
        }
    }

    fn warn(&self, what: &'static str, why: String) {
        let first = self
            .warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(what);
        if first {
            eprintln!(
                "driftless: warning: CloudWatch {what} could not be read ({why}); the watch goes on without it"
            );
        }
    }

    pub fn describe(&self, w: &Watch) -> String {
        let mut parts = Vec::new();
        if let Some(d) = &self.distribution {
            parts.push(format!("CloudFront {d}'s 5xx/4xx error rates"));
        }
        if let Some(f) = &self.function {
            parts.push(format!("edge function {f}'s errors"));
        }
        if !w.alarms.is_empty() {
            parts.push(format!("alarms {}", w.alarms.join(", ")));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(", and {}", parts.join(" and "))
        }
    }

    /// The datapoints of one `AWS/CloudFront` metric (`Region=Global` and `dimension`)
    /// since `start`, minute by minute; `None` (warned once) when CloudWatch cannot be read.
    async fn points(
        &self,
        client: &aws_sdk_cloudwatch::Client,
        metric: &'static str,
        dimension: (&str, &str),
        statistic: aws_sdk_cloudwatch::types::Statistic,
        start: Timestamp,
    ) -> Option<Vec<f64>> {
        use aws_sdk_cloudwatch::primitives::DateTime;
        use aws_sdk_cloudwatch::types::{Datapoint, Dimension, Statistic};
        let got = client
            .get_metric_statistics()
            .namespace("AWS/CloudFront")
            .metric_name(metric)
            .dimensions(
                Dimension::builder()
                    .name(dimension.0)
                    .value(dimension.1)
                    .build(),
            )
            .dimensions(Dimension::builder().name("Region").value("Global").build())
            .start_time(DateTime::from_secs(start.as_second()))
            .end_time(DateTime::from_secs(Timestamp::now().as_second() + 60))
            .period(60)
            .statistics(statistic.clone())
            .send()
            .await;
        match got {
            Ok(s) => Some(
                s.datapoints()
                    .iter()
                    .filter_map(|p| match statistic {
                        Statistic::Sum => p.sum(),
                        _ => Datapoint::average(p),
                    })
                    .collect(),
            ),
            Err(e) => {
                self.warn(metric, super::error::one_line(&e, "CloudWatch", None));
                None
            }
        }
    }

    /// A metric above its threshold or an alarm in `ALARM`, in words. Failures to read
    /// CloudWatch are reported once per round as warnings, never as triggers.
    pub async fn trigger(&self, w: &Watch, since: Timestamp) -> Option<String> {
        use aws_sdk_cloudwatch::types::{StateValue, Statistic};
        let client = self.client.as_ref()?;
        let start = since
            .checked_sub(SignedDuration::from_secs(60))
            .unwrap_or(since);
        if let Some(d) = &self.distribution {
            for (metric, limit) in [
                ("5xxErrorRate", w.error_rate),
                ("4xxErrorRate", w.client_error_rate),
            ] {
                let points = self
                    .points(
                        client,
                        metric,
                        ("DistributionId", d),
                        Statistic::Average,
                        start,
                    )
                    .await;
                let worst = points
                    .unwrap_or_default()
                    .into_iter()
                    .fold(0.0_f64, f64::max);
                if worst > limit * 100.0 {
                    return Some(format!(
                        "CloudFront {metric} {worst:.1}% > {:.1}% (CloudWatch, distribution {d})",
                        limit * 100.0
                    ));
                }
            }
        }
        if let Some(f) = &self.function {
            let mut sums = [0.0_f64; 3];
            for (sum, metric) in sums.iter_mut().zip([
                "FunctionInvocations",
                "FunctionExecutionErrors",
                "FunctionValidationErrors",
            ]) {
                let points = self
                    .points(client, metric, ("FunctionName", f), Statistic::Sum, start)
                    .await;
                *sum = points.unwrap_or_default().into_iter().sum();
            }
            let [invocations, execution, validation] = sums;
            let errors = execution + validation;
            if invocations > 0.0 && errors / invocations > w.edge_error_rate {
                return Some(format!(
                    "edge function {f} errors {:.1}% > {:.1}% ({errors} of {invocations} invocations: {execution} execution, {validation} validation; CloudWatch)",
                    errors / invocations * 100.0,
                    w.edge_error_rate * 100.0
                ));
            }
        }
        if !w.alarms.is_empty() {
            match client
                .describe_alarms()
                .set_alarm_names(Some(w.alarms.clone()))
                .send()
                .await
            {
                Ok(a) => {
                    if let Some(alarm) = a
                        .metric_alarms()
                        .iter()
                        .find(|m| m.state_value() == Some(&StateValue::Alarm))
                    {
                        return Some(format!(
                            "CloudWatch alarm {} is in ALARM{}",
                            alarm.alarm_name().unwrap_or_default(),
                            alarm
                                .state_reason()
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default()
                        ));
                    }
                }
                Err(e) => self.warn("alarms", super::error::one_line(&e, "CloudWatch", None)),
            }
        }
        None
    }
}
