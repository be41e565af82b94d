//! A deploy through a fault-injecting TCP proxy in front of SeaweedFS: a share of
//! requests get their connection reset or a 503 SlowDown. The deploy either completes
//! with exactly the planned state or fails leaving a complete release live; a re-run
//! (without faults) completes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::servers::servers;
use crate::util::{Project, files};

/// A minimal HTTP/1.1 proxy: one request per upstream connection, so faults hit
/// requests, not pooled connections. Of every `every` requests: one has its connection
/// reset before it reaches the server, one gets a 503 SlowDown, and one is applied by
/// the server but its answer is lost (connection reset) — the case where a retried
/// conditional write meets its own earlier success.
struct FaultProxy {
    addr: String,
    faults: Arc<AtomicU64>,
    enabled: Arc<std::sync::atomic::AtomicBool>,
    /// The request log: `METHOD PATH body=<bytes> copy-source=<source or ->` per request.
    log: RequestLog,
}

type RequestLog = Arc<std::sync::Mutex<Vec<String>>>;

#[derive(Clone, Copy)]
enum Fault {
    ResetBefore,
    SlowDown,
    LoseAnswer,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn relay(
    mut client: TcpStream,
    upstream: String,
    fault: Option<Fault>,
    log: RequestLog,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let copy_source = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-amz-copy-source")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| "-".into());
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    log.lock().unwrap().push(format!(
        "{} {} body={len} copy-source={copy_source}",
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default()
    ));
    while buf.len() < head_end + len {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    match fault {
        Some(Fault::ResetBefore) => {
            client.set_zero_linger()?;
            return Ok(());
        }
        Some(Fault::SlowDown) => {
            let body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
            let resp = format!(
                "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            return client.write_all(resp.as_bytes()).await;
        }
        _ => {}
    }
    let mut lines: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    let mut request = lines.join("\r\n").into_bytes();
    request.extend_from_slice(b"\r\n\r\n");
    request.extend_from_slice(&buf[head_end..]);
    let mut server = TcpStream::connect(&upstream).await?;
    server.write_all(&request).await?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await?;
    if let Some(Fault::LoseAnswer) = fault {
        client.set_zero_linger()?;
        return Ok(());
    }
    client.write_all(&response).await?;
    client.shutdown().await
}

async fn start_proxy(upstream: String, every: u64) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let faults = Arc::new(AtomicU64::new(0));
    let enabled = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let counter = Arc::new(AtomicU64::new(0));
    let log = RequestLog::default();
    let (f, e, l) = (faults.clone(), enabled.clone(), log.clone());
    let upstream = upstream.trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let fault = if e.load(Ordering::Relaxed) {
                match n % every {
                    1 => Some(Fault::ResetBefore),
                    3 => Some(Fault::SlowDown),
                    5 => Some(Fault::LoseAnswer),
                    _ => None,
                }
            } else {
                None
            };
            if fault.is_some() {
                f.fetch_add(1, Ordering::Relaxed);
            }
            tokio::spawn(relay(client, upstream.clone(), fault, l.clone()));
        }
    });
    FaultProxy {
        addr,
        faults,
        enabled,
        log,
    }
}

/// Changing only a Cache-Control rule re-deploys by server-side copy: the request log in
/// front of SeaweedFS shows a copy of the served key and no upload of its bytes.
#[tokio::test(flavor = "multi_thread")]
async fn a_header_change_is_a_copy_in_the_request_log() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let proxy = start_proxy(s.seaweedfs.clone(), 7).await;
    proxy.enabled.store(false, Ordering::Relaxed);
    let tmp = tempfile::tempdir().unwrap();
    let config = |cc: &str| {
        format!(
            "site = \"site\"\n[env.prod]\nstore = \"s3://{bucket}/www\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n[[rules]]\nmatch = \"**.css\"\ncache_control = \"{cc}\"\n",
            proxy.addr
        )
    };
    let p = Project::with_config(tmp.path(), &config("max-age=60")).envs(s.env());
    p.write("index.html", "<p>home</p>")
        .write("site.css", &"body{}".repeat(500));
    let cmd = p.cmd(&["deploy", "prod", "--yes"]);
    tokio::task::spawn_blocking(move || cmd.expect(0))
        .await
        .unwrap();

    std::fs::write(
        tmp.path().join("driftless.toml"),
        config("public, max-age=31536000, immutable"),
    )
    .unwrap();
    proxy.log.lock().unwrap().clear();
    let cmd = p.cmd(&["deploy", "prod", "--yes", "--json"]);
    let done = tokio::task::spawn_blocking(move || cmd.expect(0))
        .await
        .unwrap();
    let plan = &done.json()["plan"];
    assert_eq!(plan["totals"]["header_update"], 1, "{plan}");
    assert_eq!(plan["totals"]["upload_bytes"], 0, "{plan}");

    let log = proxy.log.lock().unwrap().clone();
    let served = format!("/{bucket}/www/site.css");
    let writes: Vec<&String> = log
        .iter()
        .filter(|l| {
            l.starts_with(&format!("PUT {served} ")) || l.starts_with(&format!("PUT {served}?"))
        })
        .collect();
    assert_eq!(writes.len(), 1, "one write of the served key: {log:#?}");
    assert!(
        writes[0].contains("body=0 ") && !writes[0].ends_with("copy-source=-"),
        "not a server-side copy: {}",
        writes[0]
    );
    assert!(
        !log.iter()
            .any(|l| l.contains("/objects/") && l.starts_with("PUT") && !l.contains("body=0 ")),
        "bytes were uploaded again: {log:#?}"
    );
    let head = s.head_object(&s.seaweedfs, &bucket, "www/site.css");
    assert_eq!(head["CacheControl"], "public, max-age=31536000, immutable");
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_through_resets_and_503s() {
    let s = servers();
    let bucket = s.bucket(&s.seaweedfs);
    let proxy = start_proxy(s.seaweedfs.clone(), 7).await;
    let tmp = tempfile::tempdir().unwrap();
    let config = crate::servers::Servers::prod_config(&proxy.addr, &format!("{bucket}/www"));
    let p = Project::with_config(tmp.path(), &config).envs(s.env());
    let mut want = Vec::new();
    for i in 0..60 {
        want.push((format!("page{i}.html"), format!("<p>{i}</p>")));
    }
    for (k, v) in &want {
        p.write(k, v);
    }
    let want_ref: Vec<(&str, &str)> = want.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    let cmd = p.cmd(&["deploy", "prod", "--yes"]);
    let first = tokio::task::spawn_blocking(move || cmd.run())
        .await
        .unwrap();
    let injected = proxy.faults.load(Ordering::Relaxed);
    eprintln!(
        "first deploy through the proxy: exit {}, {injected} faults injected",
        first.code
    );
    assert!(injected > 5, "the proxy injected too few faults");
    let site = || {
        s.download(
            &s.seaweedfs,
            &format!("s3://{bucket}/www"),
            &[".driftless/"],
        )
    };
    if first.code == 0 {
        assert_eq!(
            site(),
            files(&want_ref),
            "completed, but not with exactly the planned state"
        );
    } else {
        // Failed: nothing half-live — HEAD is absent (first deploy) and a re-run completes.
        assert_ne!(first.code, 3, "a fault is not a refusal: {}", first.all());
    }
    proxy.enabled.store(false, Ordering::Relaxed);
    let cmd = p.cmd(&["deploy", "prod", "--yes"]);
    let again = tokio::task::spawn_blocking(move || cmd.run())
        .await
        .unwrap();
    assert_eq!(
        again.code,
        0,
        "the re-run did not complete: {}\n--- the faulty run:\n{}",
        again.all(),
        first.all()
    );
    assert_eq!(site(), files(&want_ref));

    // A second release through the faults: an update of every file.
    proxy.enabled.store(true, Ordering::Relaxed);
    for (k, _) in &want {
        p.write(k, "updated");
    }
    let cmd = p.cmd(&["deploy", "prod", "--yes"]);
    let third = tokio::task::spawn_blocking(move || cmd.run())
        .await
        .unwrap();
    let updated: Vec<(&str, &str)> = want.iter().map(|(k, _)| (k.as_str(), "updated")).collect();
    let now = site();
    eprintln!(
        "update through the proxy: exit {}, {} faults injected in all",
        third.code,
        proxy.faults.load(Ordering::Relaxed)
    );
    if third.code == 0 {
        assert_eq!(now, files(&updated));
    } else {
        assert_ne!(third.code, 3, "a fault is not a refusal: {}", third.all());
        proxy.enabled.store(false, Ordering::Relaxed);
        let status = p.cmd(&["status", "prod", "--json"]).run();
        let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        if status["pending"].is_null() {
            // The failed run put everything back: the old release is complete.
            assert_eq!(
                now,
                files(&want_ref),
                "failed without a pending record, but the site is mixed"
            );
        }
        let cmd = p.cmd(&["deploy", "prod", "--yes"]);
        let r = tokio::task::spawn_blocking(move || cmd.run())
            .await
            .unwrap();
        assert_eq!(r.code, 0, "{}", r.all());
        assert_eq!(site(), files(&updated));
    }
}
