//! The checks of `verify`: over real HTTP, through the environment's URL, that visitors
//! get the live release — each changed path's bytes (SHA-256 of the decoded body) and
//! headers, the edge behaviour, 404s, that the state prefix is not readable — then the
//! validation run (CDN cache status, TLS, HTTP → HTTPS, latency).

use std::time::{Duration, Instant};

use super::Target;
use crate::Error;
use crate::config::EdgeConfig;
use crate::digest::hash_bytes;
use crate::ledger::{Check, Entry, Release};
use crate::store::encode_key;

/// What a verify run found.
pub struct Run {
    pub checks: Vec<Check>,
    /// Nothing answered at all (then the validation run was skipped).
    pub unreachable: bool,
    pub started: Instant,
}

/// The checks for `target`: the changed paths (and their directory forms), the edge's
/// behaviour (SPA fallback, 404, compression, basic auth) and the state prefix.
fn checklist(target: &Target, edge: &EdgeConfig, state: &str) -> Vec<(String, String, Expect)> {
    let live = &target.live;
    let mut plan: Vec<(String, String, Expect)> = Vec::new();
    for (key, entry) in target.changed() {
        plan.push((
            "new content".into(),
            format!("/{}", encode_key(&key)),
            Expect::Content(entry.clone()),
        ));
        // Only a last segment that *is* the index name is a directory index
        // (`docs/error-index.html` is a page of its own).
        let dir = if key == edge.directory_index {
            Some("")
        } else {
            key.strip_suffix(&format!("/{}", edge.directory_index))
        };
        if let Some(dir) = dir {
            let slash = if dir.is_empty() {
                "/".to_owned()
            } else {
                format!("/{}/", encode_key(dir))
            };
            if !dir.is_empty() {
                plan.push((
                    "directory redirect".into(),
                    format!("/{}", encode_key(dir)),
                    Expect::Redirect(301, slash.clone()),
                ));
            }
            plan.push(("directory index".into(), slash, Expect::Content(entry)));
        }
    }
    let token = &crate::digest::unique_token()[..10];
    if let Some(spa) = edge
        .spa_fallback
        .as_ref()
        .and_then(|k| live.manifest.get(k))
    {
        plan.push((
            "SPA fallback".into(),
            format!("/driftless-verify-{token}/route"),
            Expect::Content(spa.clone()),
        ));
    }
    // The release's own redirects: a sample of its exact ones (a pattern's answer
    // depends on the path asked).
    for r in edge
        .redirects
        .iter()
        .filter(|r| {
            crate::config::Pattern::parse(&r.from).is_ok_and(|p| {
                !p.splat
                    && p.parts
                        .iter()
                        .all(|x| matches!(x, crate::config::Part::Literal(_)))
            })
        })
        .take(5)
    {
        let from = r.from.trim_start_matches('/');
        plan.push((
            "redirect".into(),
            format!("/{}", encode_key(from)),
            Expect::Redirect(r.status, crate::config::fill(&r.to, &[])),
        ));
    }
    let missing = format!("/driftless-verify-{token}.missing");
    plan.push(("unknown path is 404".into(), missing, Expect::Status(404)));
    plan.push((
        "state prefix denied".into(),
        format!("/{state}HEAD"),
        Expect::NotStatus(200),
    ));
    // Compression only applies above a minimum size: check the largest HTML page.
    if edge.compress
        && let Some((k, _)) = live
            .manifest
            .iter()
            .filter(|(k, e)| k.ends_with(".html") && e.size >= 1024)
            .max_by_key(|(_, e)| e.size)
    {
        plan.push((
            "compression offered".into(),
            format!("/{}", encode_key(k)),
            Expect::Compressed,
        ));
    }

    plan
}

/// Run every check through the URL, polling the failing ones until they pass or
/// `timeout` seconds (a CDN converges in its own time), then the validation run.
pub async fn run(
    target: &Target,
    edge: &EdgeConfig,
    state: &str,
    p95_budget: Option<u64>,
    timeout: u64,
    token: Option<(String, String)>,
) -> Result<Run, Error> {
    let (url, base, live) = (&target.url, &target.base, &target.live);
    let mut plan = checklist(target, edge, state);
    // Behind basic auth, verify authenticates (and checks that anonymous visitors cannot).
    let mut headers = reqwest::header::HeaderMap::new();
    // Behind `[edge.auth]`, verify carries a token `sign` minted, and checks that a
    // protected file is refused without one.
    if let Some((name, value)) = token {
        let name = reqwest::header::HeaderName::try_from(name)
            .map_err(|e| Error::Other(format!("token header: {e}")))?;
        let mut value = reqwest::header::HeaderValue::try_from(value)
            .map_err(|e| Error::Other(format!("token header: {e}")))?;
        value.set_sensitive(true);
        headers.insert(name, value);
        if let Some(protected) = edge.auth.as_ref().map(crate::edge::auth::Protected::of)
            && let Some(key) = live
                .manifest
                .keys()
                .find(|k| protected.covers(&format!("/{k}")))
        {
            plan.push((
                "token required".into(),
                format!("/{}", encode_key(key)),
                Expect::TokenRefused,
            ));
        }
    }
    // Basic auth on previews only leaves live public.
    let guarded = edge
        .basic_auth
        .as_ref()
        .filter(|a| !a.previews_only || target.preview.is_some());
    if let Some(auth) = guarded {
        let value = auth.header_value().map_err(Error::Usage)?;
        let mut value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|e| Error::Usage(format!("edge.basic_auth: {e}")))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        plan.push((
            "basic auth required".into(),
            "/".into(),
            Expect::Anonymous401,
        ));
    }
    let loopback = loopback_name(url);
    let build = |decode: bool, headers: &reqwest::header::HeaderMap| {
        let client = reqwest::Client::builder();
        let client = match &loopback {
            Some(host) => client.resolve(host, (std::net::Ipv4Addr::LOCALHOST, 0).into()),
            None => client,
        };
        client
            .default_headers(headers.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .gzip(decode)
            .brotli(decode)
            .build()
            .map_err(|e| Error::Other(format!("HTTP client: {e}")))
    };
    let clients = Clients {
        decoded: build(true, &headers)?,
        raw: build(false, &headers)?,
        anonymous: build(true, &reqwest::header::HeaderMap::new())?,
    };
    let edge_headers: Vec<(String, String)> = edge
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();

    // Poll until every check passes or the timeout: a CDN converges in its own time.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(timeout);
    let mut checks: Vec<Option<Check>> = vec![None; plan.len()];
    let mut pending: Vec<usize> = (0..plan.len()).collect();
    let unreachable = loop {
        let mut still = Vec::new();
        for i in pending {
            let (name, path, expect) = &plan[i];
            let check = run_check(&clients, base, &edge_headers, name, path, expect).await;
            if !check.ok {
                still.push(i);
            }
            checks[i] = Some(check);
        }
        // Nothing answers at all: polling will not make a server start.
        let unreachable = !still.is_empty()
            && still.iter().all(|i| {
                checks[*i]
                    .as_ref()
                    .is_some_and(|c| c.detail.starts_with(CONNECTION_FAILED))
            });
        if still.is_empty() || unreachable || Instant::now() >= deadline {
            break unreachable;
        }
        pending = still;
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let mut checks: Vec<Check> = checks.into_iter().flatten().collect();
    if !unreachable {
        let more = validation_run(&clients, url, live, &checks, p95_budget).await;
        checks.extend(more);
    }
    Ok(Run {
        checks,
        unreachable,
        started,
    })
}

/// What one check expects of one path.
#[derive(Debug, Clone)]
enum Expect {
    /// 200 with these bytes and the entry's headers (plus the edge headers).
    Content(Entry),
    Status(u16),
    NotStatus(u16),
    Compressed,
    /// Without credentials: 401 asking for them.
    Anonymous401,
    /// Without a token: refused (401, 403, or a redirect to the login page).
    TokenRefused,
    /// A redirect with this status and `Location` (a directory without its slash).
    Redirect(u16, String),
}

/// A `*.localhost` host of `url` (a preview on `serve`): such names are the loopback
/// address (RFC 6761 §6.3), whatever the system resolver says.
fn loopback_name(url: &str) -> Option<String> {
    let host = reqwest::Url::parse(url)
        .ok()?
        .host_str()?
        .to_ascii_lowercase();
    host.ends_with(".localhost").then_some(host)
}

/// The HTTP clients of one verify run: `decoded` (signed in, bodies decoded), `raw`
/// (signed in, bodies as sent) and `anonymous` (no credentials).
struct Clients {
    decoded: reqwest::Client,
    raw: reqwest::Client,
    anonymous: reqwest::Client,
}

async fn run_check(
    clients: &Clients,
    base: &str,
    edge_headers: &[(String, String)],
    name: &str,
    path: &str,
    expect: &Expect,
) -> Check {
    let Clients {
        decoded: client,
        raw,
        anonymous,
    } = clients;
    let url = format!("{base}{path}");
    let started = Instant::now();
    let result = match expect {
        Expect::Compressed => raw
            .get(&url)
            .header("Accept-Encoding", "br, gzip")
            .send()
            .await
            .map(|r| {
                match r
                    .headers()
                    .get("content-encoding")
                    .and_then(|v| v.to_str().ok())
                {
                    Some(enc) if enc == "br" || enc == "gzip" => Ok(format!("offered {enc}")),
                    other => Err(format!(
                        "no compression offered (content-encoding: {other:?})"
                    )),
                }
            }),
        Expect::Anonymous401 => anonymous.get(&url).send().await.map(|r| {
            let asks = r.headers().contains_key("www-authenticate");
            match r.status().as_u16() {
                401 if asks => Ok("401 with WWW-Authenticate".into()),
                other => Err(format!("HTTP {other} without credentials: not protected")),
            }
        }),
        Expect::TokenRefused => {
            anonymous
                .get(&url)
                .send()
                .await
                .map(|r| match r.status().as_u16() {
                    s @ (401 | 403 | 302) => Ok(format!("HTTP {s} without a token")),
                    other => Err(format!("HTTP {other} without a token: not protected")),
                })
        }
        _ => match content_request(client, raw, &url, expect).send().await {
            Err(e) => Err(e),
            Ok(r) => {
                let status = r.status().as_u16();
                let headers = r.headers().clone();
                let body = r.bytes().await.unwrap_or_default();
                Ok(judge(expect, status, &headers, &body, edge_headers))
            }
        },
    };
    let (ok, detail) = match result {
        Ok(Ok(d)) => (true, d),
        Ok(Err(d)) => (false, d),
        Err(e) => (
            false,
            format!("{CONNECTION_FAILED}: {}", connection_cause(&e, &url)),
        ),
    };
    Check {
        name: name.to_owned(),
        path: path.to_owned(),
        ok,
        detail,
        ms: Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
    }
}

fn info(name: &str, path: &str, ok: bool, detail: String) -> Check {
    Check {
        name: name.to_owned(),
        path: path.to_owned(),
        ok,
        detail,
        ms: None,
    }
}

/// The checks of the validation run beyond content: the CDN's cache status on a second
/// request for a cacheable asset (information), HTTP → HTTPS, and the p95 latency of
/// the content checks against `[env.NAME.verify] p95_ms`.
async fn validation_run(
    clients: &Clients,
    url: &str,
    live: &Release,
    checks: &[Check],
    p95_budget: Option<u64>,
) -> Vec<Check> {
    let mut out = Vec::new();
    let base = url.trim_end_matches('/');
    let cacheable = live.manifest.iter().find(|(_, e)| {
        e.cache_control.as_deref().is_some_and(|c| {
            let c = c.to_ascii_lowercase();
            c.contains("max-age")
                && !c.contains("no-cache")
                && !c.contains("no-store")
                && !c.contains("max-age=0")
        })
    });
    if let Some((key, _)) = cacheable {
        let path = format!("/{}", encode_key(key));
        let target = format!("{base}{path}");
        let _ = clients.decoded.get(&target).send().await;
        let detail = match clients.decoded.get(&target).send().await {
            Ok(r) => {
                let h = |n: &str| {
                    r.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                match (h("x-cache"), h("age")) {
                    (None, None) => {
                        "second request: no X-Cache or Age header (no CDN cache status)".to_owned()
                    }
                    (x, a) => format!(
                        "second request: X-Cache {}, Age {}",
                        x.as_deref().unwrap_or("-"),
                        a.as_deref().unwrap_or("-")
                    ),
                }
            }
            Err(e) => format!("second request failed: {e}"),
        };
        out.push(info("cache status", &path, true, detail));
    }
    if let Some(parsed) = reqwest::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "https")
    {
        let host = parsed.host_str().unwrap_or_default();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let (ok, detail) = match crate::check::tls::certificate(host, port).await {
            Ok(c) if c.expiring() => (true, format!("{}: renew it", c.describe())),
            Ok(c) => (true, c.describe()),
            Err(e) => (false, e),
        };
        out.push(info("TLS certificate", "https://", ok, detail));
        let (ok, detail) = match crate::check::tls::plain_http(url) {
            None => (true, format!("not checked: {url} names a port")),
            Some(plain) => match clients.raw.get(&plain).send().await {
                Ok(r) if crate::check::tls::redirects_to_https(&r) => {
                    (true, format!("{} to HTTPS", r.status().as_u16()))
                }
                Ok(r) => (
                    false,
                    format!("HTTP {} without a redirect to HTTPS", r.status().as_u16()),
                ),
                Err(e) => (false, format!("{plain}: {}", connection_cause(&e, &plain))),
            },
        };
        out.push(info("HTTP redirects to HTTPS", "http://", ok, detail));
    }
    let times: Vec<u64> = checks.iter().filter_map(|c| c.ms).collect();
    if !times.is_empty() {
        let p95 = crate::ledger::p95(&times);
        let (ok, detail) = match p95_budget {
            Some(b) if p95 > b => (
                false,
                format!(
                    "p95 {p95} ms over the budget of {b} ms ({} requests)",
                    times.len()
                ),
            ),
            Some(b) => (
                true,
                format!("p95 {p95} ms within {b} ms ({} requests)", times.len()),
            ),
            None => (
                true,
                format!(
                    "p95 {p95} ms ({} requests; set [env.NAME.verify] p95_ms for a budget)",
                    times.len()
                ),
            ),
        };
        out.push(info("latency", "*", ok, detail));
    }
    out
}

/// A precompressed object is served as stored: ask for its encoding and hash it raw.
/// Everything else is fetched decoded.
fn content_request(
    client: &reqwest::Client,
    raw: &reqwest::Client,
    url: &str,
    expect: &Expect,
) -> reqwest::RequestBuilder {
    match expect {
        Expect::Content(Entry {
            content_encoding: Some(enc),
            ..
        }) => raw.get(url).header("Accept-Encoding", &**enc),
        _ => client.get(url),
    }
}

fn judge(
    expect: &Expect,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    edge_headers: &[(String, String)],
) -> Result<String, String> {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match expect {
        Expect::Status(want) if status == *want => Ok(format!("HTTP {status}")),
        Expect::Status(want) => Err(format!("HTTP {status}, expected {want}")),
        Expect::NotStatus(bad) if status != *bad => Ok(format!("HTTP {status}")),
        Expect::NotStatus(bad) => Err(format!("HTTP {bad}: readable by anyone")),
        Expect::Compressed | Expect::Anonymous401 | Expect::TokenRefused => {
            unreachable!("handled with their own client")
        }
        Expect::Redirect(want, to) => {
            let location = header("location").unwrap_or_default();
            if status == *want && location == *to {
                Ok(format!("HTTP {status} → {location}"))
            } else {
                Err(format!(
                    "HTTP {status}{}, expected {want} → {to}",
                    if location.is_empty() {
                        String::new()
                    } else {
                        format!(" → {location}")
                    }
                ))
            }
        }
        Expect::Content(entry) => {
            if status != 200 {
                return Err(format!("HTTP {status}, expected 200"));
            }
            let got = hash_bytes(body);
            if got != entry.sha256 {
                return Err(format!(
                    "serves old bytes (sha256 {} ≠ {})",
                    &got[..12],
                    &entry.sha256[..12]
                ));
            }
            for (name, want) in [
                ("content-type", &entry.content_type),
                ("cache-control", &entry.cache_control),
                ("content-encoding", &entry.content_encoding),
            ] {
                if let Some(want) = want
                    && header(name).as_deref() != Some(&**want)
                {
                    return Err(format!("{name}: {:?}, expected {want:?}", header(name)));
                }
            }
            for (name, want) in edge_headers {
                if header(name).as_ref() != Some(want) {
                    return Err(format!("{name}: {:?}, expected {want:?}", header(name)));
                }
            }
            Ok("new bytes and headers".into())
        }
    }
}

/// What a failed request's details start with: no answer at all.
pub const CONNECTION_FAILED: &str = "no answer";

/// Why a request got no answer, in words: refused, DNS, TLS, timeout.
fn connection_cause(e: &reqwest::Error, url: &str) -> String {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_else(|| url.to_owned());
    let mut chain = Vec::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = src {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return format!(
                        "connection refused by {host}: is the server (or `driftless serve`) running?"
                    );
                }
                std::io::ErrorKind::ConnectionReset => {
                    return format!("connection reset by {host}");
                }
                _ => {}
            }
        }
        chain.push(err.to_string().to_lowercase());
        src = err.source();
    }
    let all = chain.join(" ");
    if e.is_timeout() {
        format!("{host} did not answer in time")
    } else if all.contains("dns") || all.contains("lookup") || all.contains("resolve") {
        format!("the name of {host} does not resolve (DNS)")
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        format!(
            "TLS failed with {host}: {}",
            chain.last().cloned().unwrap_or_default()
        )
    } else {
        format!(
            "cannot connect to {host}: {}",
            chain.last().cloned().unwrap_or_default()
        )
    }
}
