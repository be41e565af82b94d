//! `driftless serve`: a local preview of an environment's live release (following HEAD)
//! or of a directory, applying exactly the edge rules. It is also the stand-in CDN that
//! the `verify` tests run against. It never serves the state prefix.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Response, StatusCode, header};
use tokio::sync::Mutex;

use super::Ctx;
use crate::Error;
use crate::edge::{Outcome, resolve};
use crate::ledger::Manifest;

mod body;
mod site;

use body::{clamp_range, none_match, plain};
use site::{Found, Served, Site, Sought, View, deployable};

/// A `Host` header's host, without the port.
fn without_port(host: &str) -> &str {
    host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

/// `[edge.auth]`: the answer to a request for a protected path without a token that
/// holds, as the function gives it (a path that does not decode, or asks for `//`, is
/// left to the rules: 400 or a redirect, before any auth).
fn token_refusal(s: &Served, view: &View, asked: &Asked) -> Option<Response<Body>> {
    use crate::edge::auth;
    let (rules, protected) = (view.edge.auth.as_ref()?, view.protected.as_ref()?);
    let path = crate::edge::decode_uri_component(&asked.path)?;
    if asked.path.contains("//") || !protected.covers(&path) {
        return None;
    }
    if let Some(key) = &s.signed {
        // As CloudFront: the three cookies, for this URL (no port: CloudFront's URLs
        // have none), now; else 403.
        let host = without_port(asked.host.as_deref().unwrap_or("localhost"));
        let url = format!("http://{host}{}", asked.path);
        let now = jiff::Timestamp::now().as_second();
        if asked
            .cookie
            .as_deref()
            .is_some_and(|c| crate::edge::signed::grants(c, key, &url, now))
        {
            return None;
        }
        let mut r = plain(
            StatusCode::FORBIDDEN,
            "forbidden: no valid CloudFront signed cookies\n",
        );
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Some(r);
    }
    let token = auth::token(rules, asked.auth.as_deref(), asked.cookie.as_deref());
    let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let holds = match (&s.jwt, token) {
        (Some(jwt), Some(t)) => auth::token_holds(t, jwt, now),
        _ => false,
    };
    if holds {
        return None;
    }
    let raw = match &asked.query {
        Some(q) => format!("{}?{q}", asked.path),
        None => asked.path.clone(),
    };
    let mut r = match auth::refusal(rules, asked.accept.as_deref(), &raw) {
        auth::Refused::Login(location) => {
            let mut r = plain(StatusCode::FOUND, "");
            if let Ok(v) = HeaderValue::try_from(location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        auth::Refused::Unauthorized => {
            let mut r = Response::new(Body::from(auth::UNAUTHORIZED_BODY));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"driftless\""),
            );
            r
        }
    };
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(r)
}

/// `r` with the canary cookie holding `bucket`, if there is one to set.
fn pinned(mut r: Response<Body>, bucket: Option<u8>) -> Response<Body> {
    if let Some(b) = bucket {
        let cookie = format!(
            "{}={b}; {}",
            crate::edge::CANARY_COOKIE,
            crate::edge::CANARY_COOKIE_ATTRIBUTES
        );
        if let Ok(v) = HeaderValue::try_from(cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    r
}

/// What `answer` needs of a request: owned values only (a request body is not `Sync`).
struct Asked {
    method: Method,
    host: Option<String>,
    path: String,
    query: Option<String>,
    auth: Option<String>,
    accept: Option<String>,
    range: Option<String>,
    if_none_match: Option<String>,
    /// The visitor's address, user agent and cookies: their canary bucket.
    ip: String,
    user_agent: String,
    cookie: Option<String>,
}

fn asked(req: &Request, peer: std::net::SocketAddr) -> Asked {
    let header_text = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    Asked {
        method: req.method().clone(),
        // HTTP/2 carries the host in the URI's authority, HTTP/1.1 in `Host`.
        host: req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| header_text(header::HOST)),
        path: req.uri().path().to_owned(),
        query: req.uri().query().map(str::to_owned),
        auth: header_text(header::AUTHORIZATION),
        accept: header_text(header::ACCEPT),
        range: header_text(header::RANGE),
        if_none_match: header_text(header::IF_NONE_MATCH),
        ip: peer.ip().to_string(),
        user_agent: header_text(header::USER_AGENT).unwrap_or_default(),
        cookie: header_text(header::COOKIE),
    }
}

async fn handle(
    State(s): State<Arc<Served>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    req: Request,
) -> Response<Body> {
    let asked = asked(&req, peer);
    drop(req);
    let sought = s.sought(asked.host.as_deref());
    let (mut resp, view) = match answer(&s, &asked, &sought).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("driftless serve: {e}");
            let failed = plain(
                StatusCode::BAD_GATEWAY,
                "driftless serve: the store could not be read\n",
            );
            (failed, None)
        }
    };
    // The headers of the release answered for (the config's, before one is known).
    let headers = view.as_ref().map_or(&s.edge.headers, |v| &v.edge.headers);
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    if matches!(sought, Sought::Preview(_)) {
        // A preview is never to be found by a search engine.
        resp.headers_mut().insert(
            HeaderName::from_static("x-robots-tag"),
            HeaderValue::from_static("noindex"),
        );
    }
    resp
}

/// The answer to one request, and the release view it was answered from (`None`:
/// refused before one was chosen, or a directory).
async fn answer(
    s: &Served,
    asked: &Asked,
    sought: &Sought,
) -> Result<(Response<Body>, Option<Arc<View>>), Error> {
    let (method, auth) = (&asked.method, asked.auth.as_deref());
    if method != Method::GET && method != Method::HEAD {
        return Ok((
            plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
            None,
        ));
    }
    let previewing = matches!(sought, Sought::Preview(_));
    if let Some(expected) = &s.auth
        && (previewing || !s.edge.basic_auth.as_ref().is_some_and(|a| a.previews_only))
        && auth.map(crate::edge::canonical_authorization).as_deref() != Some(expected.as_str())
    {
        let mut r = plain(StatusCode::UNAUTHORIZED, "authentication required\n");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"driftless\""),
        );
        return Ok((r, None));
    }
    // A canary's visitors without the cookie get it on an answer from the store (what
    // the edge's viewer-response function sees), never on one the rules made.
    let mut pin = None;
    let manifest = match sought {
        Sought::Live => match s.canary(asked).await? {
            (Some(m), p) => {
                pin = p;
                Some(m)
            }
            (None, p) => {
                pin = p;
                s.manifest().await?
            }
        },
        Sought::Preview(name) => match s.preview(name).await? {
            Found::Manifest(m) => Some(m),
            Found::Unknown => {
                let r = plain(StatusCode::NOT_FOUND, &format!("no preview {name} here\n"));
                return Ok((r, None));
            }
            Found::Expired => {
                let mut r = Response::new(Body::from(crate::edge::expired_preview_page(name)));
                *r.status_mut() = StatusCode::GONE;
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return Ok((r, None));
            }
        },
    };
    let view = manifest.clone().unwrap_or_else(|| s.dir_view.clone());
    // The release's rules decide which paths need a token, as they decide the rest.
    if let Some(refused) = token_refusal(s, &view, asked) {
        return Ok((refused, Some(view)));
    }
    let r = route(
        s,
        asked,
        &view,
        manifest.as_deref().map(|v| &v.manifest),
        pin,
    )
    .await?;
    Ok((r, Some(view)))
}

/// What the rules of `view` make of the request, and the bytes they point at.
async fn route(
    s: &Served,
    asked: &Asked,
    view: &View,
    manifest: Option<&Manifest>,
    pin: Option<u8>,
) -> Result<Response<Body>, Error> {
    let (method, path) = (&asked.method, asked.path.as_str());
    let files = match manifest {
        Some(_) => None,
        None => s.dir_files().await?,
    };
    let exists = |key: &str| match (&manifest, &files) {
        (Some(m), _) => m.contains_key(key),
        (None, Some(f)) => s.dir_path(key, f).is_some(),
        (None, None) => false,
    };
    let hidden: Vec<&str> = s.hidden.iter().map(String::as_str).collect();
    match resolve(&view.edge, path, asked.query.as_deref(), &exists, &hidden) {
        Outcome::BadRequest => Ok(plain(StatusCode::BAD_REQUEST, "bad request\n")),
        Outcome::NotFound => Ok(pinned(plain(StatusCode::NOT_FOUND, "not found\n"), pin)),
        Outcome::Redirect { status, location } => {
            let mut r = plain(
                StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY),
                "",
            );
            if let Ok(v) = HeaderValue::try_from(location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            Ok(r)
        }
        Outcome::Serve { key, status } => {
            let Some(content) = s.content(&key, manifest).await? else {
                return Ok(pinned(plain(StatusCode::NOT_FOUND, "not found\n"), pin));
            };
            let total = content.len;
            let mut r = if status == 200
                && asked
                    .if_none_match
                    .as_deref()
                    .is_some_and(|h| none_match(h, &content.etag))
            {
                // The client has these bytes: no body (If-None-Match wins over Range).
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::NOT_MODIFIED;
                r
            } else {
                // A single byte range, as real servers answer it (multiple ranges: the
                // whole body, which HTTP allows).
                let range = match (&asked.range, status) {
                    (Some(r), 200) => {
                        let r = clamp_range(r, total);
                        match http_range_header::parse_range_header(&r)
                            .and_then(|p| p.validate(total))
                        {
                            Ok(ranges) if ranges.len() == 1 => Some(Ok(ranges[0].clone())),
                            Ok(_) => None,
                            Err(_) => Some(Err(())),
                        }
                    }
                    _ => None,
                };
                let (code, start, len) = match range {
                    Some(Err(())) => {
                        let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "");
                        if let Ok(v) = HeaderValue::try_from(format!("bytes */{total}")) {
                            r.headers_mut().insert(header::CONTENT_RANGE, v);
                        }
                        return Ok(r);
                    }
                    Some(Ok(span)) => (
                        StatusCode::PARTIAL_CONTENT,
                        *span.start(),
                        *span.end() - *span.start() + 1,
                    ),
                    None => (
                        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                        0,
                        total,
                    ),
                };
                let body = if *method == Method::HEAD {
                    Body::empty()
                } else {
                    content.reader.body(start, len)
                };
                let mut r = Response::new(body);
                *r.status_mut() = code;
                if code == StatusCode::PARTIAL_CONTENT
                    && let Ok(v) =
                        HeaderValue::try_from(format!("bytes {start}-{}/{total}", start + len - 1))
                {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                r
            };
            let h = r.headers_mut();
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            if status == 200
                && let Ok(v) = HeaderValue::try_from(content.etag.as_str())
            {
                h.insert(header::ETAG, v);
            }
            for (name, value) in [
                (header::CONTENT_TYPE, content.attrs.content_type),
                (header::CACHE_CONTROL, content.attrs.cache_control),
                (header::CONTENT_ENCODING, content.attrs.content_encoding),
            ] {
                if let Some(v) = value.and_then(|v| HeaderValue::try_from(v).ok()) {
                    h.insert(name, v);
                }
            }
            Ok(pinned(r, pin))
        }
    }
}

pub(super) async fn serve(
    ctx: &Ctx,
    target: Option<&str>,
    bind: &str,
    port: u16,
) -> Result<(), Error> {
    let config = &ctx.config;
    let (site, what, hidden) = match target {
        Some(name) if config.envs.contains_key(name) => {
            let ec = ctx.env(name).await?;
            let hidden = vec![ec.cfg.state_prefix.clone(), ".driftless-store/".into()];
            (
                Site::Env {
                    ledger: ec.ledger.clone(),
                    cache: Mutex::new(None),
                },
                format!(
                    "the live release of {name} ({})",
                    ec.ledger.store().location()
                ),
                hidden,
            )
        }
        other => {
            let dir = other.map_or_else(|| config.site.clone(), PathBuf::from);
            let root = dir.canonicalize().map_err(|_| {
                Error::Usage(format!(
                    "{}: not an environment ({}) or a directory",
                    dir.display(),
                    config.envs.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            let mut hidden = vec![
                ".driftless/".into(),
                ".driftless-store/".into(),
                ".git/".into(),
            ];
            // The project folder itself as the site (`site = "."`): its config is not a page.
            if config.dir.canonicalize().is_ok_and(|d| d == root) {
                hidden.push(crate::config::FILE_NAME.into());
                hidden.push(crate::config::SCHEMA_FILE.into());
            }
            let what = format!("the directory {}", root.display());
            // What a deploy of it would refuse, `serve` refuses to start on.
            let files = deployable(&root, config)?;
            (
                Site::Dir {
                    root,
                    rules: config.rules.clone(),
                    config: Box::new(config.clone()),
                    files: Mutex::new(Some((Arc::new(files), Instant::now()))),
                },
                what,
                hidden,
            )
        }
    };
    let auth = config.edge.auth_header().map_err(Error::Usage)?;
    let jwt = match config.edge.jwt() {
        Some(j) => Some(crate::edge::auth::JwtRules::of(j).map_err(Error::Usage)?),
        None => None,
    };
    let signed = crate::apply::edge::environment::signed_public_key(config)?.map(|(_, key)| key);
    let mut preview_hosts = Vec::new();
    if let Some(env) = target.and_then(|t| config.envs.get(t)) {
        preview_hosts.push(".localhost".to_owned());
        if let Some(host) = env.preview_host() {
            preview_hosts.insert(0, host);
        }
    }
    let served = Arc::new(Served {
        edge: config.edge.clone(),
        site,
        preview_hosts,
        releases: Mutex::new(std::collections::HashMap::new()),
        hidden,
        auth,
        dir_view: Arc::new(View::of(&config.edge, None, Manifest::new())),
        jwt,
        signed,
        removed_releases: config.retention.removed_releases,
    });
    let mut app = Router::new().fallback(handle).with_state(served);
    if config.edge.compress {
        use tower_http::compression::predicate::{DefaultPredicate, Predicate as _};
        // A byte range is of the identity encoding: never compress a partial answer.
        let whole =
            |status: StatusCode,
             _: axum::http::Version,
             _: &axum::http::HeaderMap,
             _: &axum::http::Extensions| { status != StatusCode::PARTIAL_CONTENT };
        app = app.layer(
            tower_http::compression::CompressionLayer::new()
                .compress_when(DefaultPredicate::new().and(whole)),
        );
    }
    let listener = tokio::net::TcpListener::bind((bind, port))
        .await
        .map_err(|e| Error::Usage(format!("cannot listen on {bind}:{port}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Other(format!("serve: {e}")))?;
    let url = format!("http://{addr}/");
    ctx.out.say(format!(
        "Serving {what} on {url} with the [edge] rules (Ctrl-C to stop)"
    ));
    if ctx.out.json {
        // One line, at once: a script starting `serve --port 0 --json` reads the port.
        crate::ui::stdout_line(
            &serde_json::json!({ "url": url, "port": addr.port(), "bind": bind, "serving": what })
                .to_string(),
        );
    }
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| Error::Other(format!("serve: {e}")))
}
