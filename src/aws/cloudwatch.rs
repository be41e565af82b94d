//! CloudWatch for `watch` and `doctor`: CloudFront's error rates and the edge function's
//! errors (`AWS/CloudFront`, `Region=Global`, read in us-east-1), and alarms.

use jiff::Timestamp;

use crate::config::{EnvConfig, Watch};

/// A CloudWatch client for the environment's credentials, in us-east-1 (where
/// CloudFront's metrics and their alarms live).
pub async fn client(env: &EnvConfig) -> aws_sdk_cloudwatch::Client {
    let loader = crate::aws::loader_for(env.profile.as_deref(), Some("us-east-1")).await;
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

    /// Whether there is anything to read (a distribution, or alarms).
    pub fn enabled(&self) -> bool {
        self.client.is_some()
    }

    pub fn distribution(&self) -> Option<&str> {
        self.distribution.as_deref()
    }

    pub fn function(&self) -> Option<&str> {
        self.function.as_deref()
    }

    /// The worst minute of the distribution's `metric` (an error rate, in percent) since
    /// `start`; 0 when there is no datapoint or it cannot be read (warned once).
    pub async fn worst_rate(&self, metric: &'static str, start: Timestamp) -> f64 {
        use aws_sdk_cloudwatch::types::Statistic;
        let (Some(client), Some(d)) = (&self.client, &self.distribution) else {
            return 0.0;
        };
        self.points(
            client,
            metric,
            ("DistributionId", d),
            Statistic::Average,
            start,
        )
        .await
        .unwrap_or_default()
        .into_iter()
        .fold(0.0_f64, f64::max)
    }

    /// The edge function's invocations, execution errors and validation errors since
    /// `start` (sums; 0 where unreadable, warned once).
    pub async fn edge_sums(&self, start: Timestamp) -> [f64; 3] {
        use aws_sdk_cloudwatch::types::Statistic;
        let mut sums = [0.0_f64; 3];
        let (Some(client), Some(f)) = (&self.client, &self.function) else {
            return sums;
        };
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
        sums
    }

    /// The first of `names` in `ALARM`, with its reason (unreadable: warned once, `None`).
    pub async fn in_alarm(&self, names: &[String]) -> Option<(String, Option<String>)> {
        use aws_sdk_cloudwatch::types::StateValue;
        let client = self.client.as_ref()?;
        match client
            .describe_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .send()
            .await
        {
            Ok(a) => a
                .metric_alarms()
                .iter()
                .find(|m| m.state_value() == Some(&StateValue::Alarm))
                .map(|m| {
                    (
                        m.alarm_name().unwrap_or_default().to_owned(),
                        m.state_reason().map(str::to_owned),
                    )
                }),
            Err(e) => {
                self.warn("alarms", super::error::one_line(&e, "CloudWatch", None));
                None
            }
        }
    }
}
