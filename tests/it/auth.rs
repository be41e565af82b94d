//! Token auth at the edge (issue 24): `[edge.auth]` with JWTs signed by a shared secret,
//! answered alike by `serve` and by the published CloudFront function (run in Node with
//! the KeyValueStore as moto holds it after `edge --apply`).

use driftless::edge::auth::{mint_cwt, mint_jwt};

use crate::serve::{free_port, get_from, serve};

const K1: &str = "k1-secret-0123456789abcdef0123456789-0123456789abcdef0123456789ab";
const K0: &str = "k0-previous-secret-fedcba9876543210-fedcba9876543210-fedcba98765";

const AUTH: &str = r#"
[edge.auth]
protect = ["/app/**", "/api/**"]
public = ["/app/login.html"]
login_url = "/app/login.html"
cookie = "session"

[edge.auth.jwt]
algorithms = ["HS256", "HS512"]
issuer = "https://auth.example.com"
audience = "site"
leeway = "30s"
keys = { k1 = "DRIFTLESS_TEST_JWT_K1", k0 = "DRIFTLESS_TEST_JWT_K0" }
"#;

/// The environment variables [`AUTH`]'s keys name, set.
fn secrets() -> Vec<(&'static str, String)> {
    vec![
        ("DRIFTLESS_TEST_JWT_K1", K1.to_owned()),
        ("DRIFTLESS_TEST_JWT_K0", K0.to_owned()),
    ]
}

/// An atomic environment `prod` on the local store with `config` appended and a `url`
/// on a free port: the project, and the port `serve` is to take.
fn local(tmp: &std::path::Path, config: &str) -> (crate::util::Project, u16) {
    let port = free_port();
    let p = crate::util::Project::atomic(
        &tmp.join("w"),
        &tmp.join("store"),
        &format!("url = \"http://127.0.0.1:{port}\"\n{config}"),
    );
    (p, port)
}

/// Each key written as a file whose body names it ("file KEY").
fn files(p: &crate::util::Project, keys: &[&str]) {
    for key in keys {
        p.write(key, &format!("file {key}"));
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// A token by `kid`'s secret with these claims over the good ones.
fn token(alg: &str, kid: &str, secret: &str, claims: serde_json::Value) -> String {
    let mut payload = serde_json::json!({
        "sub": "alice", "iss": "https://auth.example.com", "aud": "site", "exp": now() + 3600,
    });
    for (k, v) in claims.as_object().unwrap() {
        payload[k] = v.clone();
    }
    mint_jwt(alg, kid, secret, &payload).unwrap()
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// One request: a path and its headers.
struct Ask {
    what: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
}

fn ask(what: &'static str, path: &str, headers: Vec<(&'static str, String)>) -> Ask {
    Ask {
        what,
        path: path.to_owned(),
        headers,
    }
}

/// What a visitor got: status, Location, and which file (its body names it).
type Seen = (u16, Option<String>, Option<String>);

#[test]
fn jwt_auth_answers_alike_on_serve_and_in_the_function() {
    let tmp = tempfile::tempdir().unwrap();
    let site = TokenSite::new(tmp.path(), "au", "");
    let good = token("HS256", "k1", K1, serde_json::json!({}));
    let bearer = |t: &str| ("Authorization", format!("Bearer {t}"));
    let json = ("Accept", "application/json".to_owned());
    let html = ("Accept", "text/html,application/xhtml+xml".to_owned());
    let parts: Vec<&str> = good.split('.').collect();
    let page = |what, t: &str| ask(what, "/app/page.html", vec![bearer(t)]);
    let asks = vec![
        ask("valid bearer", "/app/", vec![bearer(&good), html.clone()]),
        ask(
            "valid cookie",
            "/app/page.html",
            vec![("Cookie", format!("theme=dark; session={good}"))],
        ),
        ask(
            "expired",
            "/app/page.html",
            vec![
                bearer(&token(
                    "HS256",
                    "k1",
                    K1,
                    serde_json::json!({ "exp": now() - 3600 }),
                )),
                html.clone(),
            ],
        ),
        ask(
            "expired, JSON",
            "/api/me.json",
            vec![
                bearer(&token(
                    "HS256",
                    "k1",
                    K1,
                    serde_json::json!({ "exp": now() - 3600 }),
                )),
                json.clone(),
            ],
        ),
        page(
            "expired within the leeway",
            &token("HS256", "k1", K1, serde_json::json!({ "exp": now() - 10 })),
        ),
        page(
            "not yet valid",
            &token(
                "HS256",
                "k1",
                K1,
                serde_json::json!({ "nbf": now() + 3600 }),
            ),
        ),
        page(
            "bad signature",
            &token("HS256", "k1", "not-the-secret", serde_json::json!({})),
        ),
        page(
            "wrong iss",
            &token(
                "HS256",
                "k1",
                K1,
                serde_json::json!({ "iss": "https://evil.example.com" }),
            ),
        ),
        page(
            "wrong aud",
            &token("HS256", "k1", K1, serde_json::json!({ "aud": "other" })),
        ),
        page(
            "aud array holding ours",
            &token(
                "HS256",
                "k1",
                K1,
                serde_json::json!({ "aud": ["other", "site"] }),
            ),
        ),
        page(
            "alg none",
            &format!("{}.{}.", b64(r#"{"alg":"none","kid":"k1"}"#), parts[1]),
        ),
        page(
            "alg none, a signature",
            &format!(
                "{}.{}.{}",
                b64(r#"{"alg":"none","kid":"k1"}"#),
                parts[1],
                parts[2]
            ),
        ),
        page(
            "HS384: not accepted",
            &token("HS384", "k1", K1, serde_json::json!({})),
        ),
        page(
            "alg switched to RS256",
            &format!(
                "{}.{}.{}",
                b64(r#"{"alg":"RS256","kid":"k1"}"#),
                parts[1],
                parts[2]
            ),
        ),
        page("HS512", &token("HS512", "k1", K1, serde_json::json!({}))),
        page("malformed: two parts", "abc.def"),
        page("malformed: not base64", "a$b.c*d.e!f"),
        page(
            "malformed: not JSON",
            &format!("{}.{}.{}", b64("nope"), parts[1], parts[2]),
        ),
        page(
            "exp as a string",
            &token(
                "HS256",
                "k1",
                K1,
                serde_json::json!({ "exp": (now() + 3600).to_string() }),
            ),
        ),
        ask("missing", "/app/", vec![]),
        ask("missing, JSON", "/api/me.json", vec![json.clone()]),
        ask("missing, query kept", "/app/page.html?tab=2&x=%20y", vec![]),
        ask("missing, encoded path", "/app%2Fpage.html", vec![]),
        ask("public path", "/app/login.html", vec![]),
        ask("unprotected", "/public.html", vec![]),
        ask("the root", "/", vec![]),
        page(
            "previous key k0",
            &token("HS256", "k0", K0, serde_json::json!({})),
        ),
        page(
            "unknown key id",
            &token("HS256", "k9", K1, serde_json::json!({})),
        ),
        page(
            "no kid, no default key",
            &token("HS256", "default", K1, serde_json::json!({})),
        ),
        ask(
            "header beats cookie",
            "/app/page.html",
            vec![bearer("bad.to.ken"), ("Cookie", format!("session={good}"))],
        ),
        ask(
            "Basic, then the cookie",
            "/app/page.html",
            vec![
                ("Authorization", "Basic dXNlcjpwYXNz".to_owned()),
                ("Cookie", format!("session={good}")),
            ],
        ),
        page(
            "token signed by k0 named k1",
            &token("HS256", "k1", K0, serde_json::json!({})),
        ),
        page(
            "a valid CWT, CWTs not accepted",
            &cwt_by_driftless("k1", K1),
        ),
    ];

    let (function, served, reads, size) = site.answers(&asks);

    let login = |next: &str| Some(format!("/app/login.html?next={next}"));
    let page = Some("app/page.html".to_owned());
    let expected: Vec<Seen> = vec![
        (200, None, Some("app/index.html".into())),
        (200, None, page.clone()),
        (302, login("%2Fapp%2Fpage.html"), None),
        (401, None, None),
        (200, None, page.clone()),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2Fpage.html"), None),
        (200, None, page.clone()),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2Fpage.html"), None),
        (200, None, page.clone()),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2F"), None),
        (401, None, None),
        (
            302,
            login("%2Fapp%2Fpage.html%3Ftab%3D2%26x%3D%2520y"),
            None,
        ),
        (302, login("%2Fapp%252Fpage.html"), None),
        (200, None, Some("app/login.html".into())),
        (200, None, Some("public.html".into())),
        (200, None, Some("index.html".into())),
        (200, None, page.clone()),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2Fpage.html"), None),
        (200, None, page.clone()),
        (302, login("%2Fapp%2Fpage.html"), None),
        (302, login("%2Fapp%2Fpage.html"), None),
    ];
    agree(&asks, &expected, &function, &served, &reads, size);
    // The 401 is JSON, never cached.
    let port = free_port();
    let _server = serve(&site.p, &site.env, port);
    let (status, head, body) = get_from(
        port,
        "127.0.0.1",
        "/api/me.json",
        "Accept: application/json\r\n",
    );
    assert_eq!(status, 401);
    assert!(
        head.contains("www-authenticate: bearer realm=\"driftless\""),
        "{head}"
    );
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert_eq!(body, br#"{"error":"unauthorized"}"#);
}

/// A CWT minted by driftless (`sign --cwt`'s code) with the good claims.
fn cwt_by_driftless(kid: &str, secret: &str) -> String {
    use coset::cbor::value::Value;
    mint_cwt(
        kid,
        secret,
        vec![
            (1, Value::from("https://auth.example.com")),
            (2, Value::from("alice")),
            (3, Value::from("site")),
            (4, Value::from(now() + 3600)),
        ],
    )
    .unwrap()
}

/// A CWT spec for `harness.cjs mint` (cose-js): kid k1's key, the good claims, then
/// `change` over them (a key or claim given as null is dropped).
fn cwt_spec(change: serde_json::Value) -> serde_json::Value {
    let mut claims = serde_json::json!({
        "1": "https://auth.example.com", "2": "alice", "3": "site", "4": now() + 3600,
    });
    let mut spec = serde_json::json!({ "key": K1, "kid": "k1" });
    for (k, v) in change.as_object().unwrap() {
        let target = if k.parse::<i64>().is_ok() {
            &mut claims
        } else {
            &mut spec
        };
        if v.is_null() {
            target.as_object_mut().unwrap().remove(k);
        } else {
            target[k] = v.clone();
        }
    }
    let labels: Vec<serde_json::Value> = claims
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| serde_json::json!([k.parse::<i64>().unwrap(), v]))
        .collect();
    spec["claims"] = labels.into();
    spec
}

#[test]
fn cwt_auth_answers_alike_on_serve_and_in_the_function() {
    let tmp = tempfile::tempdir().unwrap();
    let site = TokenSite::new(tmp.path(), "cw", "cwt = true\n");
    let bearer = |t: &str| ("Authorization", format!("Bearer {t}"));
    let ok: Seen = (200, None, Some("app/page.html".into()));
    let no: Seen = (
        302,
        Some("/app/login.html?next=%2Fapp%2Fpage.html".into()),
        None,
    );
    // Tokens MACed by cose-js: what each changes of the good one, and what it gets.
    let specs: Vec<(&'static str, serde_json::Value, Seen)> = vec![
        (
            "valid bearer",
            serde_json::json!({}),
            (200, None, Some("app/index.html".into())),
        ),
        ("valid cookie", serde_json::json!({}), ok.clone()),
        (
            "without the CWT tag",
            serde_json::json!({ "cwtTag": false }),
            ok.clone(),
        ),
        (
            "previous key k0",
            serde_json::json!({ "kid": "k0", "key": K0 }),
            ok.clone(),
        ),
        (
            "expired",
            serde_json::json!({ "4": now() - 3600 }),
            no.clone(),
        ),
        (
            "expired within the leeway",
            serde_json::json!({ "4": now() - 10 }),
            ok.clone(),
        ),
        (
            "not yet valid",
            serde_json::json!({ "5": now() + 3600 }),
            no.clone(),
        ),
        (
            "bad MAC",
            serde_json::json!({ "key": "not-the-secret" }),
            no.clone(),
        ),
        (
            "wrong iss",
            serde_json::json!({ "1": "https://evil.example.com" }),
            no.clone(),
        ),
        ("wrong aud", serde_json::json!({ "3": "other" }), no.clone()),
        (
            "aud as an array",
            serde_json::json!({ "3": ["other", "site"] }),
            no.clone(),
        ),
        (
            "alg HMAC 256/64",
            serde_json::json!({ "alg": "HS256/64" }),
            no.clone(),
        ),
        (
            "alg HMAC 384",
            serde_json::json!({ "alg": "HS384" }),
            no.clone(),
        ),
        (
            "without the COSE_Mac0 tag",
            serde_json::json!({ "coseTag": false, "cwtTag": false }),
            no.clone(),
        ),
        ("no exp", serde_json::json!({ "4": null }), no.clone()),
        (
            "exp not whole seconds",
            serde_json::json!({ "4": now() as f64 + 3600.5 }),
            no.clone(),
        ),
        (
            "exp as text",
            serde_json::json!({ "4": (now() + 3600).to_string() }),
            no.clone(),
        ),
        (
            "unknown key id",
            serde_json::json!({ "kid": "k9" }),
            no.clone(),
        ),
        (
            "no kid, no default key",
            serde_json::json!({ "kid": null }),
            no.clone(),
        ),
        (
            "MACed by k0, named k1",
            serde_json::json!({ "key": K0 }),
            no.clone(),
        ),
        (
            "over 1 KB",
            serde_json::json!({ "2": "a".repeat(1100) }),
            no.clone(),
        ),
        (
            "expired, JSON",
            serde_json::json!({ "4": now() - 3600 }),
            (401, None, None),
        ),
    ];
    let specs_json: Vec<serde_json::Value> =
        specs.iter().map(|(_, c, _)| cwt_spec(c.clone())).collect();
    let tokens = crate::edge::mint_cwts(&specs_json.into());
    let mut cases: Vec<(Ask, Seen)> = specs
        .iter()
        .zip(&tokens)
        .map(|((what, _, seen), t)| {
            let a = match *what {
                "valid bearer" => ask(what, "/app/", vec![bearer(t)]),
                "valid cookie" => ask(
                    what,
                    "/app/page.html",
                    vec![("Cookie", format!("theme=dark; session={t}"))],
                ),
                "expired, JSON" => ask(
                    what,
                    "/api/me.json",
                    vec![bearer(t), ("Accept", "application/json".to_owned())],
                ),
                _ => ask(what, "/app/page.html", vec![bearer(t)]),
            };
            (a, seen.clone())
        })
        .collect();
    let good = &tokens[0];
    let signed = site
        .p
        .cmd(&["sign", &site.env, "--cwt", "--kid", "k0", "--json"])
        .expect(0);
    let signed: serde_json::Value = serde_json::from_str(&signed.stdout).unwrap();
    assert_eq!(signed["kind"], "cwt", "{signed}");
    let signed = signed["token"].as_str().unwrap().to_owned();
    let trailing = {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut bytes = engine.decode(good).unwrap();
        bytes.push(0);
        engine.encode(bytes)
    };
    let page = |what, t: &str| ask(what, "/app/page.html", vec![bearer(t)]);
    cases.extend([
        (page("minted by sign --cwt", &signed), ok.clone()),
        (page("a byte after the token", &trailing), no.clone()),
        (page("cut short", &good[..good.len() - 12]), no.clone()),
        (page("not CBOR", "2D3R_____w"), no.clone()),
        (
            ask(
                "header beats cookie",
                "/app/page.html",
                vec![bearer(&tokens[4]), ("Cookie", format!("session={good}"))],
            ),
            no,
        ),
        (
            page(
                "a JWT still holds",
                &token("HS256", "k1", K1, serde_json::json!({})),
            ),
            ok,
        ),
    ]);
    let (asks, expected): (Vec<Ask>, Vec<Seen>) = cases.into_iter().unzip();
    let (function, served, reads, size) = site.answers(&asks);
    agree(&asks, &expected, &function, &served, &reads, size);
}

/// An atomic environment behind CloudFront (SeaweedFS and moto) with [`AUTH`] (and
/// `jwt_extra` in `[edge.auth.jwt]`): its secrets applied to the KeyValueStore and a
/// release of six files deployed.
struct TokenSite {
    s: &'static crate::servers::Servers,
    cf: crate::servers::BehindCloudFront,
    p: crate::util::Project,
    env: String,
    /// The KeyValueStore as moto holds it.
    held: serde_json::Map<String, serde_json::Value>,
    tmp: std::path::PathBuf,
}

impl TokenSite {
    fn new(tmp: &std::path::Path, tag: &str, jwt_extra: &str) -> Self {
        let s = crate::servers::servers();
        let cf = s.behind_cloudfront(&s.seaweedfs, tag);
        let env = cf.env.clone();
        let p = cf
            .project(
                &tmp.join("w"),
                &format!("{}{AUTH}{jwt_extra}", cf.config("atomic")),
            )
            .envs(secrets());
        files(
            &p,
            &[
                "index.html",
                "public.html",
                "app/index.html",
                "app/login.html",
                "app/page.html",
                "api/me.json",
            ],
        );
        p.cmd(&["edge", &env, "--apply", "--yes"])
            .expect(0)
            .mentions(&["write the token secrets to the KeyValueStore (2 key(s) to change; key ids now: k0, k1)"]);
        p.cmd(&["deploy", &env, "--yes"]).expect(0);
        // The secrets are written once: an apply that changes nothing else is a no-op.
        p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
        p.cmd(&["edge", &env, "--apply", "--yes"])
            .expect(0)
            .mentions(&["is up to date"]);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let kvs = s.key_value_store(&rt, &env);
        let held = crate::servers::Servers::kvs_values(&rt, &kvs);
        assert_eq!(held["auth:k1"], K1, "{held:?}");
        assert_eq!(held["auth:k0"], K0, "{held:?}");
        Self {
            s,
            cf,
            p,
            env,
            held,
            tmp: tmp.to_owned(),
        }
    }

    /// Each ask answered by the exported function in Node (against the bucket's keys and
    /// the KeyValueStore) and by `serve`: what each got, the function's KeyValueStore
    /// reads per ask, and its size.
    fn answers(&self, asks: &[Ask]) -> (Vec<Seen>, Vec<Seen>, Vec<u64>, usize) {
        let (s, cf, p, env) = (self.s, &self.cf, &self.p, &self.env);
        // The function, as published (exported), against the bucket and the store.
        let export = self.tmp.join("export");
        p.cmd(&["edge", env, "--export", export.to_str().unwrap()])
            .expect(0);
        let code = std::fs::read_to_string(export.join("function.js")).unwrap();
        crate::edge::assert_runs_on_cloudfront(&code);
        let size = code.len();
        let keys: Vec<String> = s
            .keys_under(&s.seaweedfs, &cf.bucket, "www/")
            .into_iter()
            .filter(|k| k.starts_with("slots/"))
            .collect();
        let cases: Vec<serde_json::Value> = asks
            .iter()
            .map(|a| {
                let headers: serde_json::Map<String, serde_json::Value> = a
                    .headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone().into()))
                    .collect();
                serde_json::json!({ "path": a.path, "headers": headers })
            })
            .collect();
        let answers = crate::edge::harness(&serde_json::json!({
            "code": code, "errors": [], "site": keys, "state": [], "kvs": self.held, "cases": cases,
            "count_reads": true,
        }));
        let function: Vec<Seen> = answers
            .iter()
            .map(|a| {
                let file = a["key"].as_str().map(|k| {
                    k.split_once('/')
                        .unwrap()
                        .1
                        .split_once('/')
                        .unwrap()
                        .1
                        .to_owned()
                });
                (
                    u16::try_from(a["status"].as_u64().unwrap()).unwrap(),
                    a["location"].as_str().map(str::to_owned),
                    file,
                )
            })
            .collect();
        let reads: Vec<u64> = answers
            .iter()
            .map(|a| a["reads"].as_u64().unwrap())
            .collect();

        let port = free_port();
        let _server = serve(p, env, port);
        let served: Vec<Seen> = asks
            .iter()
            .map(|a| {
                let extra: String = a
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}\r\n"))
                    .collect();
                let (status, head, body) = get_from(port, "127.0.0.1", &a.path, &extra);
                let body = String::from_utf8_lossy(&body).into_owned();
                let location = head
                    .lines()
                    .find_map(|l| l.strip_prefix("location: "))
                    .map(str::to_owned);
                (
                    status,
                    location,
                    body.strip_prefix("file ").map(str::to_owned),
                )
            })
            .collect();
        (function, served, reads, size)
    }
}

/// Every ask got what was expected, from `serve` and from the function, with at most three
/// KeyValueStore reads (the pointer with the release's rules, a protected path's token
/// secret, and one bucket of the release's routing table).
fn agree(
    asks: &[Ask],
    expected: &[Seen],
    function: &[Seen],
    served: &[Seen],
    reads: &[u64],
    size: usize,
) {
    assert_eq!(asks.len(), expected.len());
    for (i, a) in asks.iter().enumerate() {
        // (`get_from` gives the head in lower case.)
        let lower = (
            expected[i].0,
            expected[i].1.as_ref().map(|l| l.to_ascii_lowercase()),
            expected[i].2.clone(),
        );
        assert_eq!(served[i], lower, "serve: {} ({})", a.what, a.path);
        assert_eq!(
            function[i], expected[i],
            "function: {} ({})",
            a.what, a.path
        );
        assert!(
            reads[i] <= 3,
            "{}: {} KeyValueStore reads",
            a.what,
            reads[i]
        );
    }
    println!(
        "{} token cases: serve and the function agree; the function is {size} of 10240 bytes; KeyValueStore reads per request at most {}",
        asks.len(),
        reads.iter().max().unwrap()
    );
}

const SIGNED: &str = r#"
[edge.auth]
protect = ["/members/**"]
public = ["/members/join.html"]

[edge.auth.signed_cookies]
public_key = "keys/public_key.pem"
private_key_file = "keys/private_key.pem"
"#;

/// The test key pair where [`SIGNED`] names it.
fn install_keys(p: &crate::util::Project) {
    std::fs::create_dir_all(p.dir.join("keys")).unwrap();
    for name in ["public_key.pem", "private_key.pem"] {
        std::fs::write(p.dir.join("keys").join(name), fixture(name)).unwrap();
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/signed-cookies/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Signed cookies on `serve`, as CloudFront checks them on the protected behaviors:
/// `driftless sign --cookie` gets in; an expired, a tampered, a foreign-key or a missing
/// cookie gets 403; public and unprotected paths need none.
#[test]
fn signed_cookies_are_checked_by_serve() {
    use driftless::edge::signed;
    let tmp = tempfile::tempdir().unwrap();
    let (p, port) = local(tmp.path(), SIGNED);
    install_keys(&p);
    files(
        &p,
        &[
            "index.html",
            "members/index.html",
            "members/join.html",
            "members/a.pdf",
        ],
    );
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let _server = serve(&p, "prod", port);
    p.cmd(&["sign", "prod", "--cwt"])
        .expect(2)
        .mentions(&["this [edge.auth] uses signed cookies: drop --cwt"]);
    let minted = p
        .cmd(&["sign", "prod", "--cookie", "--json"])
        .expect(0)
        .json();
    assert_eq!(minted["resource"], "http*://127.0.0.1/*", "{minted}");
    let cookie = minted["cookie"].as_str().unwrap().to_owned();
    let key = signed::private_key(&fixture("private_key.pem")).unwrap();
    let now = now();
    let expired = {
        let policy = signed::policy("http*://127.0.0.1/*", now - 10);
        let c = signed::cookies(&policy, &key, "K1");
        c.iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let tampered = {
        // The signature of one policy on another (a later expiry).
        let good = signed::cookies(&signed::policy("http*://127.0.0.1/*", now + 60), &key, "K1");
        let later = signed::encode(signed::policy("http*://127.0.0.1/*", now + 86_400).as_bytes());
        format!(
            "CloudFront-Policy={later}; CloudFront-Signature={}; CloudFront-Key-Pair-Id=K1",
            good[1].1
        )
    };
    let other_site = {
        let c = signed::cookies(
            &signed::policy("https://elsewhere.example/*", now + 600),
            &key,
            "K1",
        );
        c.iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let get = |path: &str, cookie: Option<&str>| {
        let extra = cookie
            .map(|c| format!("Cookie: {c}\r\n"))
            .unwrap_or_default();
        let (status, _, body) = get_from(port, "127.0.0.1", path, &extra);
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    assert_eq!(
        get("/members/", Some(&cookie)),
        (200, "file members/index.html".into())
    );
    assert_eq!(
        get("/members/a.pdf", Some(&cookie)),
        (200, "file members/a.pdf".into())
    );
    assert_eq!(get("/members/a.pdf", Some(&expired)).0, 403, "expired");
    assert_eq!(get("/members/a.pdf", Some(&tampered)).0, 403, "tampered");
    assert_eq!(
        get("/members/a.pdf", Some(&other_site)).0,
        403,
        "another site's"
    );
    assert_eq!(get("/members/a.pdf", None).0, 403, "missing");
    assert_eq!(get("/members", None).0, 403, "the directory itself");
    assert_eq!(
        get("/members/join.html", None),
        (200, "file members/join.html".into())
    );
    assert_eq!(get("/", None), (200, "file index.html".into()));
    // verify carries signed cookies, and checks a protected file is refused without.
    p.cmd(&["verify", "prod", "--timeout", "5"])
        .expect(0)
        .mentions(&["token required"]);
    let url = p.cmd(&["sign", "prod", "/members/a.pdf"]).expect(0);
    assert!(
        url.stdout
            .starts_with(&format!("http://127.0.0.1:{port}/members/a.pdf?Policy=")),
        "{}",
        url.stdout
    );
}

/// Signed cookies behind CloudFront (moto): `edge --apply` uploads the public key, makes
/// a key group of it and a cache behavior per protected pattern trusting it (the public
/// exception first); `doctor` passes, fails once a behavior put before them by hand
/// would serve a protected path unsigned, and passes again after `edge --apply`; `sign`
/// names the public key as the Key-Pair-Id.
#[test]
fn signed_cookies_behind_cloudfront_are_applied_and_audited() {
    let s = crate::servers::servers();
    let cf = s.behind_cloudfront(&s.moto, "sc");
    let env = cf.env.clone();
    let tmp = tempfile::tempdir().unwrap();
    let p = cf
        .project(
            &tmp.path().join("w"),
            &format!("{}{SIGNED}", cf.config("atomic")),
        )
        .envs(vec![("AWS_ENDPOINT_URL_SECRETS_MANAGER", s.moto.clone())]);
    install_keys(&p);
    for key in ["index.html", "members/index.html", "members/join.html"] {
        p.write(key, &format!("file {key}"));
    }
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0).mentions(&[
        &format!("create CloudFront public key and key group driftless-{env}-"),
        "set the distribution's cache behaviors for [edge.auth]: /members/*, /members trust key group (new) (before them, open: /members/join.html)",
    ]);
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
    let keys: serde_json::Value =
        serde_json::from_slice(&s.aws(&s.moto, &["cloudfront", "list-public-keys"]).stdout)
            .unwrap();
    let key = keys["PublicKeyList"]["Items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| {
            k["Name"]
                .as_str()
                .unwrap()
                .starts_with(&format!("driftless-{env}-"))
        })
        .expect("the public key")
        .clone();
    let behaviors = |d: &serde_json::Value| -> Vec<(String, Vec<String>)> {
        d["DistributionConfig"]["CacheBehaviors"]["Items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|b| {
                let groups = b["TrustedKeyGroups"]["Items"]
                    .as_array()
                    .map(|a| a.iter().map(|g| g.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default();
                (b["PathPattern"].as_str().unwrap().to_owned(), groups)
            })
            .collect()
    };
    let dist = cf.distribution_config();
    let got = behaviors(&dist);
    let group = got[1].1.first().cloned().expect("a trusted key group");
    assert_eq!(
        got,
        [
            ("/members/join.html".to_owned(), vec![]),
            ("/members/*".to_owned(), vec![group.clone()]),
            ("/members".to_owned(), vec![group.clone()]),
        ]
    );
    let doctor = |code| {
        let d = p.cmd(&["doctor", &env, "--json"]).expect(code).json();
        d["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "edge.signed_cookies")
            .unwrap_or_else(|| panic!("no edge.signed_cookies in {d}"))
            .clone()
    };
    // moto's S3 hands out anything unsigned (it fails store.anonymous-read and
    // store.protected-private): doctor exits 1 whatever the edge says.
    let check = doctor(1);
    assert_eq!(check["level"], "pass", "{check}");
    assert!(check["seen"].as_str().unwrap().contains(&group), "{check}");
    // Someone puts a broader behavior first, trusting nothing.
    s.update_distribution(&cf.distribution, |config| {
        let mut first = config["CacheBehaviors"]["Items"][0].clone();
        first["PathPattern"] = "/members*".into();
        config["CacheBehaviors"]["Items"]
            .as_array_mut()
            .unwrap()
            .insert(0, first);
        config["CacheBehaviors"]["Quantity"] = 4.into();
    });
    let check = doctor(1);
    assert_eq!(check["level"], "fail", "{check}");
    assert!(
        check["seen"]
            .as_str()
            .unwrap()
            .contains("/members/x (protected by /members/**) reaches behavior /members*"),
        "{check}"
    );
    p.cmd(&["edge", &env, "--apply", "--yes"]).expect(0);
    assert_eq!(doctor(1)["level"], "pass");
    assert_eq!(
        behaviors(&cf.distribution_config())[3].0,
        "/members*",
        "theirs stays, after ours"
    );
    let minted = p
        .cmd(&["sign", &env, "--cookie", "--json"])
        .expect(0)
        .json();
    assert_eq!(minted["key_pair_id"], key["Id"], "{minted}");

    // The private key from AWS Secrets Manager (moto), then from an environment variable:
    // the same key signs.
    let secret = format!("driftless-test-{env}");
    s.aws(
        &s.moto,
        &[
            "secretsmanager",
            "create-secret",
            "--name",
            &secret,
            "--secret-string",
            &fixture("private_key.pem"),
        ],
    );
    let config = p.dir.join("driftless.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let public = driftless::edge::signed::public_key(&fixture("public_key.pem")).unwrap();
    let granted = |cookie: &str| {
        driftless::edge::signed::grants(cookie, &public, "https://any.example/members/x", now())
    };
    for (source, extra) in [
        (format!("private_key_secret = \"{secret}\""), None),
        (
            "private_key_env = \"DRIFTLESS_TEST_CF_KEY\"".to_owned(),
            Some(fixture("private_key.pem")),
        ),
    ] {
        std::fs::write(
            &config,
            text.replace("private_key_file = \"keys/private_key.pem\"", &source),
        )
        .unwrap();
        let mut run = p.cmd(&["sign", &env, "--cookie", "--json"]);
        if let Some(pem) = &extra {
            run = run.env("DRIFTLESS_TEST_CF_KEY", pem);
        }
        let minted = run.expect(0).json();
        assert!(
            granted(minted["cookie"].as_str().unwrap()),
            "{source}: {minted}"
        );
    }

    // A release that protects a path no behavior checks yet would go live unprotected:
    // refused (guard edge) until `edge --apply` adds the behaviors, then it deploys.
    std::fs::write(
        &config,
        text.replace(
            "protect = [\"/members/**\"]",
            "protect = [\"/members/**\", \"/admin/**\"]",
        ),
    )
    .unwrap();
    p.write("admin/index.html", "the admin page");
    let refused = p.cmd(&["deploy", &env, "--yes", "--json"]).expect(3).json();
    let text = refused.to_string();
    assert!(text.contains("\"edge\""), "{refused}");
    assert!(text.contains("/admin/**"), "{refused}");
    assert!(
        text.contains(&format!("driftless edge {env} --apply")),
        "{refused}"
    );
    p.cmd(&["edge", &env, "--apply", "--yes"])
        .expect(0)
        .mentions(&["/admin/*"]);
    p.cmd(&["deploy", &env, "--yes"]).expect(0);
}

/// With JWTs on `serve` (a local store): `sign` mints what gets in, as a bearer token or
/// as the cookie; `verify` carries one and checks that a protected file is refused
/// without; a key id that is not configured is refused by `sign`.
#[test]
fn a_token_from_sign_gets_in_and_verify_carries_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, port) = local(tmp.path(), AUTH);
    let p = p.envs(secrets());
    files(
        &p,
        &[
            "index.html",
            "app/index.html",
            "app/login.html",
            "api/me.json",
        ],
    );
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let _server = serve(&p, "prod", port);
    p.cmd(&["sign", "prod"])
        .expect(2)
        .mentions(&["edge.auth.jwt has 2 keys: name the one to sign with, --kid k0 | --kid k1"]);
    p.cmd(&["sign", "prod", "--kid", "k7"])
        .expect(2)
        .mentions(&["--kid k7: edge.auth.jwt.keys has no such key id (k0, k1)"]);
    p.cmd(&["sign", "prod", "--kid", "k1", "--cwt"])
        .expect(2)
        .mentions(&["--cwt: [edge.auth.jwt] does not accept CBOR Web Tokens; add `cwt = true`"]);
    let token = p
        .cmd(&["sign", "prod", "--kid", "k1", "--expires", "5m"])
        .expect(0);
    let token = token.stdout.trim();
    let (status, _, body) = get_from(
        port,
        "127.0.0.1",
        "/api/me.json",
        &format!("Authorization: Bearer {token}\r\n"),
    );
    assert_eq!(
        (status, body.as_slice()),
        (200, b"file api/me.json".as_slice())
    );
    let cookie = p
        .cmd(&["sign", "prod", "--kid", "k0", "--cookie"])
        .expect(0);
    assert!(cookie.stdout.starts_with("session="), "{}", cookie.stdout);
    let (status, _, _) = get_from(
        port,
        "127.0.0.1",
        "/app/",
        &format!("Cookie: {}\r\n", cookie.stdout.trim()),
    );
    assert_eq!(status, 200);
    assert_eq!(get_from(port, "127.0.0.1", "/app/", "").0, 302);
    p.cmd(&["verify", "prod", "--timeout", "5"])
        .expect(0)
        .mentions(&["token required"]);
}

/// Runs `node` on `script` with `env`, stdin closed: its stdout.
fn node(script: &str, env: &[(&str, &str)]) -> String {
    crate::serve::web_deps();
    let out = std::process::Command::new("node")
        .arg("--input-type=module")
        .arg("-e")
        .arg(script)
        .envs(env.iter().copied())
        .output()
        .expect("node (installed by scripts/web-test-deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The example login handler (examples/auth/login-handler.mjs), run as is: an RS256 ID
/// token from a stand-in identity provider (its JWKS served by `serve` at
/// /.well-known/jwks.json) is exchanged for signed cookies that `serve` accepts on the
/// protected paths; a forged token gets 401 and no cookie.
#[test]
fn the_example_login_handler_exchanges_an_id_token_for_signed_cookies() {
    let tmp = tempfile::tempdir().unwrap();
    let (p, port) = local(tmp.path(), SIGNED);
    install_keys(&p);
    // The identity provider's key pair (another one), its JWKS and two ID tokens.
    let provider = tmp.path().join("provider.pem");
    std::fs::write(
        &provider,
        node(
            "import { generateKeyPairSync } from 'node:crypto';
         const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
         process.stdout.write(privateKey.export({ type: 'pkcs8', format: 'pem' }));",
            &[],
        ),
    )
    .unwrap();
    let issuer = format!("http://127.0.0.1:{port}");
    let made: serde_json::Value = serde_json::from_str(&node(
        "import { createPrivateKey, createPublicKey, createSign } from 'node:crypto';
         import { readFileSync } from 'node:fs';
         const key = createPrivateKey(readFileSync(process.env.KEY));
         const jwk = { ...createPublicKey(key).export({ format: 'jwk' }), kid: 'idp-1', alg: 'RS256', use: 'sig' };
         const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
         const token = (claims) => {
           const signing = enc({ alg: 'RS256', kid: 'idp-1' }) + '.' + enc(claims);
           return signing + '.' + createSign('RSA-SHA256').update(signing).sign(key).toString('base64url');
         };
         const claims = { iss: process.env.ISS, aud: 'client', sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 };
         process.stdout.write(JSON.stringify({ jwks: { keys: [jwk] }, good: token(claims), forged: token({ ...claims, aud: 'other' }).replace(/\\.[^.]*$/, '.' + token(claims).split('.')[2]) }));",
        &[("KEY", provider.to_str().unwrap()), ("ISS", &issuer)],
    ))
    .unwrap();
    p.write(".well-known/jwks.json", &made["jwks"].to_string())
        .write("members/index.html", "members only")
        .write("index.html", "home");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let _server = serve(&p, "prod", port);

    let login_port = free_port();
    let handler = format!(
        "{}/examples/auth/login-handler.mjs",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut login = std::process::Command::new("node")
        .arg(&handler)
        .envs([
            ("OIDC_ISSUER", issuer.as_str()),
            ("OIDC_CLIENT_ID", "client"),
            ("CLOUDFRONT_KEY_PAIR_ID", "K2TESTKEY"),
            ("CLOUDFRONT_PRIVATE_KEY", &fixture("private_key.pem")),
            ("SITE", "http://127.0.0.1"),
            ("PROTECTED", "/members/*"),
            ("PORT", &login_port.to_string()),
        ])
        .spawn()
        .unwrap();
    let post = |token: &str| -> (u16, Vec<String>) {
        let body = serde_json::json!({ "id_token": token }).to_string();
        for _ in 0..100 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", login_port)) {
                use std::io::{Read as _, Write as _};
                write!(
                    s,
                    "POST /login HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
                let mut answer = String::new();
                s.read_to_string(&mut answer).unwrap();
                let status = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
                let cookies = answer
                    .lines()
                    .filter_map(|l| {
                        l.strip_prefix("set-cookie: ")
                            .or_else(|| l.strip_prefix("Set-Cookie: "))
                    })
                    .map(|c| c.split(';').next().unwrap().to_owned())
                    .collect();
                return (status, cookies);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the login handler did not listen");
    };
    let (status, cookies) = post(made["good"].as_str().unwrap());
    let (forged, none) = post(made["forged"].as_str().unwrap());
    let _ = login.kill();
    let _ = login.wait();
    assert_eq!((status, cookies.len()), (200, 3), "{cookies:?}");
    assert_eq!((forged, none.len()), (401, 0));
    let cookie = format!("Cookie: {}\r\n", cookies.join("; "));
    let (status, _, body) = get_from(port, "127.0.0.1", "/members/", &cookie);
    assert_eq!((status, body.as_slice()), (200, b"members only".as_slice()));
    assert_eq!(get_from(port, "127.0.0.1", "/members/", "").0, 403);
}
