//! `watch`: through `serve` behind a fault-injecting proxy, a release that answers 10 %
//! of requests with 500 is rolled back automatically (byte for byte), held with the
//! trigger named, exit 3; a healthy window is recorded; a release that is no longer live
//! is never rolled back; a CloudWatch alarm in ALARM and a 5xxErrorRate above the
//! threshold (moto) trigger the same rollback.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::serve::{free_port, serve};
use crate::util::{Done, Project, site_files};

/// An HTTP proxy in front of `serve` answering every `every`-th request with 500 while
/// `faulty` is set. One request per connection.
struct FaultProxy {
    port: u16,
    faulty: Arc<AtomicBool>,
    seen: Arc<AtomicU64>,
    /// Milliseconds added before each answer.
    delay_ms: Arc<AtomicU64>,
    /// While set, every connection is closed unanswered (the URL unreachable).
    down: Arc<AtomicBool>,
}

fn fault_proxy(upstream: u16, every: u64) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let faulty = Arc::new(AtomicBool::new(true));
    let seen = Arc::new(AtomicU64::new(0));
    let delay_ms = Arc::new(AtomicU64::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let (f, n, d, x) = (faulty.clone(), seen.clone(), delay_ms.clone(), down.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            if x.load(Ordering::Relaxed) {
                drop(conn);
                continue;
            }
            let (f, n, d) = (f.clone(), n.clone(), d.clone());
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(d.load(Ordering::Relaxed)));
                relay(conn, upstream, every, &f, &n);
            });
        }
    });
    FaultProxy {
        port,
        faulty,
        seen,
        delay_ms,
        down,
    }
}

fn relay(mut client: TcpStream, upstream: u16, every: u64, faulty: &AtomicBool, seen: &AtomicU64) {
    let Some(head) = read_head(&mut client) else {
        return;
    };
    let n = seen.fetch_add(1, Ordering::Relaxed) + 1;
    if faulty.load(Ordering::Relaxed) && n.is_multiple_of(every) {
        let _ = client.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\nConnection: close\r\n\r\nbroken",
        );
        return;
    }
    forward(&mut client, &head, upstream);
}

/// A request's head (bodiless requests only), or `None` when the client went away.
pub(crate) fn read_head(client: &mut impl std::io::Read) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(buf)
}

/// Send a request head to `upstream` with `Connection: close` and copy the whole answer
/// back: one request per connection.
pub(crate) fn forward(client: &mut impl std::io::Write, head: &[u8], upstream: u16) {
    let head = String::from_utf8_lossy(head);
    let request: String = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect::<Vec<_>>()
        .join("\r\n")
        .replacen("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1);
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let _ = server.write_all(request.as_bytes());
    let mut response = Vec::new();
    let _ = server.read_to_end(&mut response);
    let _ = client.write_all(&response);
}

const WATCH: &str = "[env.prod.watch]\ninterval = \"100ms\"\nsample = 6\n";

fn config(store: &std::path::Path, url_port: u16, extra: &str) -> String {
    format!(
        "site = \"site\"\n[env.prod]\nstore = \"file://{}\"\nurl = \"http://127.0.0.1:{url_port}\"\n{extra}\n{WATCH}",
        store.display()
    )
}

fn release(p: &Project, n: u32) {
    p.write("index.html", &format!("<h1>release {n}</h1>"))
        .write("about.html", &format!("about {n}"))
        .write("app.js", &format!("console.log({n})"))
        .write("style.css", "body{}")
        .write("docs/index.html", "docs");
}

/// A project on the local store whose `url` goes through a fault proxy in front of
/// `serve prod`; releases 1 and 2 deployed.
fn setup(
    t: &std::path::Path,
    every: u64,
    extra: &str,
) -> (Project, FaultProxy, crate::serve::Server, String) {
    let store = t.join("store");
    let serve_port = free_port();
    let proxy = fault_proxy(serve_port, every);
    let p = Project::with_config(&t.join("w"), &config(&store, proxy.port, extra));
    release(&p, 1);
    let r1 = p
        .cmd(&["--json", "deploy", "prod", "--yes"])
        .expect(0)
        .release_id();
    let server = serve(&p, "prod", serve_port);
    release(&p, 2);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    (p, proxy, server, r1)
}

#[test]
fn a_release_serving_errors_is_rolled_back_and_held() {
    let t = tempfile::tempdir().unwrap();
    let (p, proxy, _server, r1) = setup(t.path(), 10, "");
    let done = p.cmd(&["watch", "prod", "--for", "60s"]).expect(3);
    done.mentions(&["5xx rate", "> 5.0%", "rolled back to", &r1, "on hold"]);
    assert!(proxy.seen.load(Ordering::Relaxed) >= 20);
    // Release 1 is live again, byte for byte.
    let store = site_files(&t.path().join("store"));
    assert_eq!(store["index.html"], b"<h1>release 1</h1>".to_vec());
    assert_eq!(store["app.js"], b"console.log(1)".to_vec());
    p.cmd(&["status", "prod"]).expect(0).mentions(&[
        "ON HOLD",
        "auto-rollback",
        "failed its watch",
        "5xx rate",
    ]);
    p.cmd(&["log", "prod", "--limit", "2"])
        .expect(0)
        .mentions(&["rolled back to"]);
    // The next deploy does not silently re-ship it.
    p.cmd(&[
        "deploy",
        "prod",
        "--yes",
        "--force",
        "stale-base",
        "--force",
        "revert",
    ])
    .expect(3)
    .mentions(&["on hold", "auto-rollback"]);
}

#[test]
fn a_healthy_window_is_recorded_with_the_release() {
    let t = tempfile::tempdir().unwrap();
    let (p, proxy, _server, _) = setup(t.path(), 10, "");
    proxy.faulty.store(false, Ordering::Relaxed);
    let done = p.cmd(&["--json", "watch", "prod", "--for", "3s"]).expect(0);
    let doc = done.json();
    assert_eq!(doc["result"], "healthy", "{doc}");
    assert!(
        doc["watch"]["tally"]["requests"].as_u64().unwrap() >= 20,
        "{doc}"
    );
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["watch    watched 3s, healthy"]);
    p.cmd(&["log", "prod", "--limit", "1"])
        .expect(0)
        .mentions(&["watched 3s, healthy"]);
    // --no-rollback only reports: exit 1, nothing changed.
    proxy.faulty.store(true, Ordering::Relaxed);
    p.cmd(&["watch", "prod", "--for", "60s", "--no-rollback"])
        .expect(1)
        .mentions(&["failed its watch", "--no-rollback: nothing was changed"]);
    assert_eq!(
        site_files(&t.path().join("store"))["index.html"],
        b"<h1>release 2</h1>".to_vec()
    );
}

/// Regression (issue 20.3): requests that get no answer are the runner's network
/// trouble until something else says otherwise. With the URL unreachable for the first
/// seconds of the window and healthy after, the release is not rolled back and the
/// unanswered requests are named apart; unreachable for the whole window, the watch
/// says it could not tell (exit 1), never "healthy", and changes nothing.
#[test]
fn unanswered_requests_alone_never_roll_back() {
    let t = tempfile::tempdir().unwrap();
    let (p, proxy, _server, _) = setup(t.path(), 10, "");
    proxy.faulty.store(false, Ordering::Relaxed);
    proxy.down.store(true, Ordering::Relaxed);
    let up = {
        let down = proxy.down.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(2));
            down.store(false, Ordering::Relaxed);
        })
    };
    let done = p.cmd(&["--json", "watch", "prod", "--for", "5s"]).run();
    up.join().unwrap();
    assert_eq!(done.code, 0, "{}", done.all());
    let doc = done.json();
    assert_eq!(doc["result"], "healthy", "{doc}");
    let tally = &doc["watch"]["tally"];
    assert!(tally["unanswered"].as_u64().unwrap() > 0, "{doc}");
    assert_eq!(tally["server_errors"], 0, "{doc}");
    assert!(done.stderr.contains("unanswered"), "{}", done.stderr);
    assert_eq!(
        site_files(&t.path().join("store"))["index.html"],
        b"<h1>release 2</h1>".to_vec()
    );

    proxy.down.store(true, Ordering::Relaxed);
    let done = p.cmd(&["watch", "prod", "--for", "2s"]).expect(1);
    done.mentions(&["could not tell", "unanswered", "nothing was rolled back"]);
    assert_eq!(
        site_files(&t.path().join("store"))["index.html"],
        b"<h1>release 2</h1>".to_vec()
    );
    let status = p.cmd(&["status", "prod"]).expect(0);
    assert!(!status.stdout.contains("ON HOLD"), "{}", status.stdout);
    // The inconclusive window is journalled, not recorded as a verdict on the release.
    assert!(
        status.stdout.contains("watched 5s, healthy"),
        "{}",
        status.stdout
    );
}

/// The watch fires and plans its rollback; before it takes the lock, release 3 lands:
/// the rollback is refused by the compare-and-swap and nothing is rolled back.
#[test]
fn a_release_that_is_no_longer_live_is_never_rolled_back() {
    let t = tempfile::tempdir().unwrap();
    let (p, _proxy, _server, _) = setup(t.path(), 10, "");
    let watch = p
        .cmd(&["watch", "prod", "--for", "60s"])
        .env("DRIFTLESS_FAILPOINT", "before-lock:wait")
        .spawn();
    let mark = crate::util::wait_for_failpoint(watch.id());
    release(&p, 3);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    std::fs::remove_file(&mark).unwrap();
    let done = Done::from("watch".into(), watch.wait_with_output().unwrap());
    assert_eq!(done.code, 1, "{}", done.all());
    done.mentions(&["nothing was rolled back"]);
    assert_eq!(
        site_files(&t.path().join("store"))["index.html"],
        b"<h1>release 3</h1>".to_vec()
    );
    let status = p.cmd(&["status", "prod"]).expect(0);
    assert!(!status.stdout.contains("ON HOLD"), "{}", status.stdout);
}

/// CloudWatch on moto: an alarm set to ALARM, then CloudFront's 5xxErrorRate above the
/// threshold, each roll the release back (the synthetic requests are healthy).
/// A project named `env` on the local store, `serve`d on its `url`, with a moto
/// distribution as its `cdn` and CloudWatch on moto; releases 1 and 2 deployed.
struct MotoWatch {
    p: Project,
    r1: String,
    store: std::path::PathBuf,
    distribution: String,
    _server: crate::serve::Server,
    _t: tempfile::TempDir,
}

fn moto_watch(env: &str, watch_extra: &str) -> MotoWatch {
    let s = crate::servers::servers();
    let bucket = s.bucket(&s.moto);
    let distribution = s.distribution(&bucket);
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let serve_port = free_port();
    let config = format!(
        "site = \"site\"\n[env.{env}]\nstore = \"file://{}\"\nurl = \"http://127.0.0.1:{serve_port}\"\ncdn = {{ cloudfront = \"{distribution}\", wait_seconds = 5 }}\n[env.{env}.watch]\ninterval = \"100ms\"\nsample = 6\n{watch_extra}",
        store.display()
    );
    let mut vars = s.env();
    vars.push(("AWS_ENDPOINT_URL_CLOUDFRONT", s.moto.clone()));
    vars.push(("AWS_ENDPOINT_URL_CLOUDWATCH", s.moto.clone()));
    let p = Project::with_config(&t.path().join("w"), &config).envs(vars);
    release(&p, 1);
    let r1 = p
        .cmd(&["--json", "deploy", env, "--yes"])
        .expect(0)
        .release_id();
    let server = serve(&p, env, serve_port);
    release(&p, 2);
    p.cmd(&["deploy", env, "--yes"]).expect(0);
    MotoWatch {
        p,
        r1,
        store,
        distribution,
        _server: server,
        _t: t,
    }
}

/// One datapoint of an `AWS/CloudFront` metric (`dimension` and `Region=Global`) on moto.
fn put_metric(metric: &str, dimension: &str, value: &str, unit: &str) {
    let s = crate::servers::servers();
    s.aws(
        &s.moto,
        &[
            "cloudwatch",
            "put-metric-data",
            "--namespace",
            "AWS/CloudFront",
            "--metric-name",
            metric,
            "--dimensions",
            &format!("{dimension},Region=Global"),
            "--value",
            value,
            "--unit",
            unit,
        ],
    );
}

#[test]
fn cloudwatch_alarms_and_error_rates_roll_back() {
    let s = crate::servers::servers();
    let alarm = format!("site-5xx-{}", &crate::servers::uniq()[..8]);
    let w = moto_watch("prod", &format!("alarms = [\"{alarm}\"]\n"));
    let (p, r1, store, distribution) = (&w.p, &w.r1, &w.store, &w.distribution);

    s.aws(
        &s.moto,
        &[
            "cloudwatch",
            "put-metric-alarm",
            "--alarm-name",
            &alarm,
            "--namespace",
            "AWS/CloudFront",
            "--metric-name",
            "5xxErrorRate",
            "--statistic",
            "Average",
            "--period",
            "60",
            "--evaluation-periods",
            "1",
            "--threshold",
            "5",
            "--comparison-operator",
            "GreaterThanThreshold",
        ],
    );
    // OK: a healthy window passes.
    p.cmd(&["watch", "prod", "--for", "1s"])
        .expect(0)
        .mentions(&["Healthy"]);
    s.aws(
        &s.moto,
        &[
            "cloudwatch",
            "set-alarm-state",
            "--alarm-name",
            &alarm,
            "--state-value",
            "ALARM",
            "--state-reason",
            "test: errors at the edge",
        ],
    );
    p.cmd(&["watch", "prod", "--for", "30s"])
        .expect(3)
        .mentions(&[
            &format!("CloudWatch alarm {alarm} is in ALARM"),
            "rolled back to",
            r1,
        ]);
    assert_eq!(
        site_files(store)["index.html"],
        b"<h1>release 1</h1>".to_vec()
    );

    // Again with the metric itself: release 3, then 12 % 5xx at CloudFront.
    s.aws(
        &s.moto,
        &[
            "cloudwatch",
            "set-alarm-state",
            "--alarm-name",
            &alarm,
            "--state-value",
            "OK",
            "--state-reason",
            "fixed",
        ],
    );
    p.cmd(&["unhold", "prod", "--yes"]).expect(0);
    release(p, 3);
    p.cmd(&[
        "deploy",
        "prod",
        "--yes",
        "--force",
        "stale-base",
        "--force",
        "revert",
    ])
    .expect(0);
    put_metric(
        "5xxErrorRate",
        &format!("DistributionId={distribution}"),
        "12",
        "Percent",
    );
    p.cmd(&["watch", "prod", "--for", "30s"])
        .expect(3)
        .mentions(&["CloudFront 5xxErrorRate 12.0% > 5.0%", "rolled back to"]);
    assert_eq!(
        site_files(store)["index.html"],
        b"<h1>release 1</h1>".to_vec()
    );
}

/// The edge function's errors (CloudWatch `FunctionExecutionErrors` over
/// `FunctionInvocations`, moto) above 1 % roll the release back; below, the window passes.
#[test]
fn edge_function_errors_roll_back() {
    // The function is named after the environment: unique, as moto keeps metrics across tests.
    let env_name = format!("e{}", &crate::servers::uniq()[..8]);
    let w = moto_watch(&env_name, "");
    let (p, r1, store) = (&w.p, &w.r1, &w.store);
    let function = format!("driftless-{env_name}");
    let put = |metric: &str, value: &str| {
        put_metric(metric, &format!("FunctionName={function}"), value, "Count");
    };
    // 5 errors in 1000 invocations: 0.5 %, under the 1 % default.
    put("FunctionInvocations", "1000");
    put("FunctionExecutionErrors", "5");
    p.cmd(&["watch", &env_name, "--for", "1s"])
        .expect(0)
        .mentions(&["Healthy", &format!("edge function {function}")]);
    // 25 more: 30 in 1000.
    put("FunctionValidationErrors", "25");
    p.cmd(&["watch", &env_name, "--for", "30s"])
        .expect(3)
        .mentions(&[
            &format!("edge function {function} errors 3.0% > 1.0%"),
            "rolled back to",
            r1,
        ]);
    assert_eq!(
        site_files(store)["index.html"],
        b"<h1>release 1</h1>".to_vec()
    );
}

/// `verify` also reports the latency of its requests (p95) against
/// `[env.NAME.verify] p95_ms`, and the CDN's cache status on a second request.
#[test]
fn verify_reports_p95_latency_against_its_budget() {
    let t = tempfile::tempdir().unwrap();
    let (p, proxy, _server, _) = setup(
        t.path(),
        10,
        "[[rules]]\nmatch = \"**.css\"\ncache_control = \"public, max-age=600\"\n[env.prod.verify]\np95_ms = 100\n",
    );
    proxy.faulty.store(false, Ordering::Relaxed);
    p.cmd(&["verify", "prod", "--timeout", "5"])
        .expect(0)
        .mentions(&["within 100 ms", "cache status", "no X-Cache or Age header"]);
    proxy.delay_ms.store(300, Ordering::Relaxed);
    p.cmd(&["verify", "prod", "--timeout", "5"])
        .expect(1)
        .mentions(&["over the budget of 100 ms"]);
}

/// `verify` through HTTPS (a TLS terminator with a test CA in front of `serve`): the
/// content checks pass over TLS, and the certificate's expiry is reported — 10 days left
/// is still a pass, with a reminder to renew.
#[test]
fn verify_over_https_reports_the_certificate() {
    let t = tempfile::tempdir().unwrap();
    let serve_port = free_port();
    let tls = crate::doctor::tls_server(10, Some(serve_port));
    let p = crate::doctor::https_project(t.path(), &tls, true);
    release(&p, 1);
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let _server = serve(&p, "prod", serve_port);
    p.cmd(&["verify", "prod", "--timeout", "5"])
        .expect(0)
        .mentions(&["TLS certificate", "days left", "renew it", "not checked"]);
}

/// A canary is what `watch` judges while it runs: requests pinned to its side (the
/// cookie of bucket 0), live's side (bucket 99) shown beside. Healthy, it says how to
/// finish; failing on its side only (a proxy answering 500 to every 5th request that
/// carries bucket 0), it is aborted by one pointer write — everyone back on the live
/// release, which never stopped being live — and the environment is held.
#[test]
fn a_failing_canary_is_aborted_and_held() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let serve_port = free_port();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let failing = Arc::new(AtomicBool::new(false));
    let pinned_seen = Arc::new(AtomicU64::new(0));
    let (f, n) = (failing.clone(), pinned_seen.clone());
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let Some(head) = read_head(&mut conn) else {
                continue;
            };
            let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
            if text.contains("cookie: driftless-bucket=0\r\n") {
                let seen = n.fetch_add(1, Ordering::Relaxed) + 1;
                if f.load(Ordering::Relaxed) && seen.is_multiple_of(5) {
                    let _ = conn.write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\nConnection: close\r\n\r\nbroken",
                    );
                    continue;
                }
            }
            forward(&mut conn, &head, serve_port);
        }
    });
    let p = Project::with_config(&t.path().join("w"), &config(&store, proxy_port, ""));
    release(&p, 1);
    let r1 = p
        .cmd(&["--json", "deploy", "prod", "--yes"])
        .expect(0)
        .release_id();
    let _server = serve(&p, "prod", serve_port);
    release(&p, 2);
    // One command: the canary, then the watch of it.
    p.cmd(&["deploy", "prod", "--canary", "10", "--watch", "2s", "--yes"])
        .expect(0)
        .mentions(&[
            "A canary is running on prod",
            "canary: ",
            "live:   ",
            "Healthy: canary release",
            "driftless canary prod --finish",
        ]);
    assert!(pinned_seen.load(Ordering::Relaxed) >= 10);

    failing.store(true, Ordering::Relaxed);
    p.cmd(&["watch", "prod", "--for", "60s"])
        .expect(3)
        .mentions(&[
            "Unhealthy: canary release",
            "5xx rate",
            "aborted (one pointer write: every visitor gets",
            &r1,
            "on hold",
        ]);
    let status = p.cmd(&["status", "prod", "--json"]).expect(0).json();
    assert!(status["canary"].is_null(), "{status}");
    assert_eq!(status["live"]["id"], r1.as_str(), "{status}");
    p.cmd(&["status", "prod"])
        .expect(0)
        .mentions(&["ON HOLD", "auto-abort: canary release"]);
    // A visitor of the canary's bucket is back on release 1.
    let (status, _, body) = crate::serve::get_from(
        serve_port,
        "127.0.0.1",
        "/",
        "Cookie: driftless-bucket=0\r\n",
    );
    assert_eq!(
        (status, body.as_slice()),
        (200, b"<h1>release 1</h1>".as_slice())
    );
}
