use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

/// A scripted S3: every PUT is refused with 412 (as when a retry meets its own
/// earlier success), HEAD fails with 400 `heads_failing` times, then shows the
/// object carrying the write token of the PUT.
async fn scripted_s3(heads_failing: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let token = Arc::new(std::sync::Mutex::new(String::new()));
    let heads = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (token, heads) = (token.clone(), heads.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let end = loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        (k.trim() == name).then(|| v.trim().to_owned())
                    })
                };
                let len: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < end + len {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let response = if head.starts_with("put ") {
                    *token.lock().unwrap() =
                        header(&format!("x-amz-meta-{META_WRITE}")).unwrap_or_default();
                    let body = "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>";
                    format!(
                        "HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else if heads.fetch_add(1, Ordering::SeqCst) < heads_failing {
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_owned()
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\nETag: \"ours\"\r\nContent-Length: 2\r\nx-amz-meta-{META_WRITE}: {}\r\nConnection: close\r\n\r\n",
                        token.lock().unwrap()
                    )
                };
                let _ = conn.write_all(response.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}

async fn store(endpoint: String) -> S3Store {
    S3Store::connect(&S3Settings {
        bucket: "b".into(),
        prefix: String::new(),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint),
        profile: None,
        static_credentials: Some(("k".into(), "s".into())),
    })
    .await
}

/// A retried write that meets its own earlier success is ours even when the HEAD
/// that tells fails at first; when it never answers, that is said, and never called
/// a change by someone else (the flake of faults::deploy_through_resets_and_503s).
#[tokio::test]
async fn a_write_whose_check_fails_is_not_blamed_on_someone_else() {
    let put = async |heads_failing| {
        store(scripted_s3(heads_failing).await)
            .await
            .put(
                "k",
                Bytes::from_static(b"hi"),
                &Attributes::default(),
                PutMode::Create,
            )
            .await
    };
    assert_eq!(put(1).await.unwrap(), "ours");
    let put = put(usize::MAX).await;
    match put {
        Err(StoreError::Other(m)) => assert!(m.contains("could not be checked"), "{m}"),
        other => panic!("expected 'could not be checked', got {other:?}"),
    }
}

#[test]
fn copy_source_is_percent_encoded() {
    assert_eq!(
        super::super::encode_key("a b/ü+%.html"),
        "a%20b/%C3%BC%2B%25.html"
    );
}
