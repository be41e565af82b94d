//! Tell people when an environment changes: `[[notify]]` webhooks, called after a
//! deploy, promotion, rollback (manual or automatic), refusal, hold or unhold.
//!
//! A generic webhook gets the event as JSON, signed with HMAC-SHA256 of the exact body
//! (`X-Driftless-Signature: sha256=<hex>`, the secret read from an environment variable,
//! never from the file); a Slack incoming webhook gets a message. A notification that
//! fails never fails the command: it is reported on stderr and journalled.

use crate::config::Format;
use crate::config::Webhook;
use std::time::Duration;

use hmac::Mac as _;
use serde::Serialize;

use crate::ledger::{Actor, Ledger, ReleaseRef};

/// Whether this run already sent its refusal (a refusal found late, outside a plan, is
/// sent once by the command dispatcher).
static REFUSAL_SENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn refusal_sent() -> bool {
    REFUSAL_SENT.load(std::sync::atomic::Ordering::Relaxed)
}

/// What happened, as sent.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Event<'a> {
    pub event: &'a str,
    pub env: &'a str,
    pub at: jiff::Timestamp,
    pub by: &'a Actor,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<&'a ReleaseRef>,
    /// One line a person reads (the refusal, the hold reason, the rollback target).
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<&'a str>,
}

impl Webhook {
    fn wants(&self, event: &Event<'_>) -> bool {
        (self.events.is_empty() || self.events.iter().any(|e| e == event.event))
            && (self.envs.is_empty() || self.envs.iter().any(|e| e == event.env))
    }

    /// The body and headers to send.
    fn request(&self, event: &Event<'_>) -> Result<Request, String> {
        match self.format {
            Format::Json => {
                let body = serde_json::to_vec(event).expect("events serialise");
                let mut headers = vec![("X-Driftless-Event", event.event.to_owned())];
                if let Some(var) = &self.secret_env {
                    let secret = std::env::var(var)
                        .map_err(|_| format!("the signing secret ${var} is not set"))?;
                    headers.push((
                        "X-Driftless-Signature",
                        format!("sha256={}", sign(secret.as_bytes(), &body)),
                    ));
                }
                Ok((body, headers))
            }
            Format::Slack => {
                let text = format!(
                    "*driftless* · `{}` · {}: {}{}",
                    event.env,
                    event.event,
                    event.summary,
                    event
                        .url
                        .map(|u| format!(" · <{u}|{u}>"))
                        .unwrap_or_default()
                );
                Ok((
                    serde_json::to_vec(&serde_json::json!({ "text": text })).expect("serialises"),
                    Vec::new(),
                ))
            }
        }
    }
}

/// A body and its headers, ready to POST.
type Request = (Vec<u8>, Vec<(&'static str, String)>);

/// HMAC-SHA256 of `body` with `secret`, hex.
pub(crate) fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Send `event` to every webhook that wants it. Failures are reported and journalled,
/// never returned: a deploy that succeeded stays a success.
pub(crate) async fn send(
    hooks: &[Webhook],
    ledger: Option<&Ledger>,
    event: &Event<'_>,
) -> Vec<String> {
    if event.event == "refused" {
        REFUSAL_SENT.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let wanted: Vec<&Webhook> = hooks.iter().filter(|h| h.wants(event)).collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => return vec![format!("notifications: {e}")],
    };
    let mut failures = Vec::new();
    for hook in wanted {
        let shown = redact(&hook.url);
        let result = match hook.request(event) {
            Err(e) => Err(e),
            Ok((body, headers)) => {
                let mut last = String::new();
                let mut sent = false;
                for attempt in 0..3 {
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
                    }
                    let mut req = client
                        .post(&hook.url)
                        .header("Content-Type", "application/json")
                        .header(
                            "User-Agent",
                            concat!("driftless/", env!("CARGO_PKG_VERSION")),
                        );
                    for (k, v) in &headers {
                        req = req.header(*k, v);
                    }
                    match req.body(body.clone()).send().await {
                        Ok(r) if r.status().is_success() => {
                            sent = true;
                            break;
                        }
                        Ok(r) => last = format!("HTTP {}", r.status().as_u16()),
                        Err(e) => {
                            last = crate::aws::error::Unanswered::of(&e).explain(&shown, None)
                        }
                    }
                }
                if sent { Ok(()) } else { Err(last) }
            }
        };
        if let Err(why) = result {
            let line = format!(
                "notification to {shown} failed ({})",
                why.lines().next().unwrap_or("")
            );
            eprintln!("warning: {line}; the {} itself is done", event.event);
            if let Some(l) = ledger {
                l.journal(
                    event.by,
                    "notify-failed",
                    event.release.map(|r| r.id.as_str()),
                    serde_json::json!({ "url": shown, "event": event.event, "why": why }),
                )
                .await;
            }
            failures.push(line);
        }
    }
    failures
}

/// A webhook URL as shown to people: scheme, host and the first path segment (Slack and
/// most services put the secret in the path).
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(webhook)".into(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            super::sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn secrets_in_urls_are_not_shown() {
        let shown = super::redact("https://hooks.slack.com/services/T000/B000/XXXXSECRET");
        assert!(
            !shown.contains("SECRET") && shown.starts_with("https://hooks.slack.com"),
            "{shown}"
        );
    }
}
