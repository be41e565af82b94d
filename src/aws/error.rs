//! Why an AWS SDK request never got an answer, in one line of plain words.
//!
//! The SDK's own text for a dispatch failure is a nested debug dump (`dispatch failure:
//! io error … DispatchFailure(DispatchFailure { source: ConnectorError …`); a person
//! needs the cause — no credentials, connection refused, DNS, TLS, timeout — and the fix.

use std::error::Error as StdError;

/// The cause of a request that got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unanswered {
    /// The credential chain found nothing (or a profile could not be loaded).
    NoCredentials(String),
    Refused,
    Reset,
    Dns,
    Timeout,
    Tls(String),
    Other(String),
}

impl Unanswered {
    /// Walk an error's sources for the first cause a person can act on.
    pub(crate) fn of(err: &(dyn StdError + 'static)) -> Self {
        let mut texts = Vec::new();
        let mut src = Some(err);
        while let Some(e) = src {
            if let Some(c) =
                e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            {
                let why = StdError::source(c).map_or_else(|| c.to_string(), ToString::to_string);
                let why = if why.contains("no credentials found in chain") {
                    "none in the environment, the shared config and credentials files, SSO or instance metadata".to_owned()
                } else {
                    clean(&why)
                };
                return Self::NoCredentials(why);
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return Self::Refused,
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                        return Self::Reset;
                    }
                    std::io::ErrorKind::TimedOut => return Self::Timeout,
                    _ => {}
                }
            }
            texts.push(e.to_string());
            src = e.source();
        }
        let all = texts.join(" ").to_lowercase();
        let last = texts.last().map(|t| clean(t)).unwrap_or_default();
        if all.contains("dns error")
            || all.contains("failed to lookup")
            || all.contains("name or service not known")
        {
            Self::Dns
        } else if all.contains("timeout") || all.contains("timed out") {
            Self::Timeout
        } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
            Self::Tls(last)
        } else {
            Self::Other(last)
        }
    }

    /// One line: what failed talking to `target`, the likely cause, the fix. `profile`
    /// is the profile the environment asked for, if any.
    pub(crate) fn explain(&self, target: &str, profile: Option<&str>) -> String {
        let profile = profile.map(|p| (p.to_owned(), "")).or_else(|| {
            std::env::var("AWS_PROFILE")
                .ok()
                .map(|p| (p, " (from AWS_PROFILE)"))
        });
        match self {
            Self::NoCredentials(why) => match profile {
                Some((name, from)) => format!(
                    "no AWS credentials for {target}: profile {name:?}{from} was not found or gave none ({why})\n  → check [profile {name}] in ~/.aws/config and ~/.aws/credentials; for an SSO profile run `aws sso login --profile {name}`"
                ),
                None => format!(
                    "no AWS credentials for {target} ({why})\n  → set AWS_PROFILE (or `profile` for this environment in driftless.toml), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; for an SSO profile run `aws sso login`"
                ),
            },
            Self::Refused => format!(
                "cannot reach {target}: connection refused\n  → is the server running and the endpoint (port) right?"
            ),
            Self::Reset => format!(
                "cannot reach {target}: the connection was reset\n  → a proxy or firewall in between? try again"
            ),
            Self::Dns => format!(
                "cannot reach {target}: its host name does not resolve\n  → check the endpoint / region spelling and your network"
            ),
            Self::Timeout => format!(
                "cannot reach {target}: no answer in time\n  → is the endpoint reachable from here (VPN, firewall)?"
            ),
            Self::Tls(why) => format!(
                "cannot reach {target}: TLS failed ({why})\n  → check the endpoint's certificate, or use http:// for a local server"
            ),
            Self::Other(why) => format!("cannot reach {target}: {why}"),
        }
    }
}

/// Any SDK error as one line: an answer's code and message, or why there was none.
pub(crate) fn one_line<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    target: &str,
    profile: Option<&str>,
) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    use aws_sdk_s3::error::{ProvideErrorMetadata as _, SdkError};
    match err {
        SdkError::DispatchFailure(_)
        | SdkError::ConstructionFailure(_)
        // One line: the advice after the reason, not below it.
        | SdkError::TimeoutError(_) => Unanswered::of(err)
            .explain(target, profile)
            .replace("\n  → ", " — "),
        _ => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            let code = err.code().unwrap_or("error");
            let message = err.message().map_or_else(|| clean(&err.to_string()), clean);
            format!(
                "{target} answered {}{code}: {message}",
                status.map(|s| format!("HTTP {s} ")).unwrap_or_default()
            )
        }
    }
}

/// An error and its causes as one line ("a: b: c"), each cleaned, repeats dropped.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let part = clean(&e.to_string());
        if !part.is_empty() && !parts.iter().any(|p| p.contains(&part)) {
            parts.push(part);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The SDK's messages without their debug tails, cut at a word boundary.
fn clean(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    // A debug dump starts at the last " (" before the first '{'.
    let cut = first
        .find('{')
        .and_then(|brace| first[..brace].rfind(" ("))
        .map_or(first, |i| &first[..i]);
    let cut = cut.trim_end_matches(|c: char| c == ':' || c.is_whitespace());
    if cut.len() <= 200 {
        return cut.to_owned();
    }
    let end = cut[..cut.floor_char_boundary(200)]
        .rfind(' ')
        .unwrap_or(200);
    format!("{}…", &cut[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_causes_are_found_through_the_chain() {
        #[derive(Debug)]
        struct Wrap(std::io::Error);
        impl std::fmt::Display for Wrap {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "dispatch failure: DispatchFailure(DispatchFailure { source: ConnectorError",
                )
            }
        }
        impl StdError for Wrap {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let e = Wrap(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let u = Unanswered::of(&e);
        assert_eq!(u, Unanswered::Refused);
        let line = u.explain("s3://b at http://127.0.0.1:1", None);
        assert!(
            line.contains("connection refused") && !line.contains('{'),
            "{line}"
        );
    }

    #[test]
    fn debug_tails_are_cut() {
        assert_eq!(
            clean("io error: client error (Connect): tcp connect error (DispatchFailure { x })"),
            "io error: client error (Connect): tcp connect error"
        );
    }
}
