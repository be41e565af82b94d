//! The one test suite every [`Store`] backend must pass (memory, local, and S3 in the
//! integration tests), so that "works on the local store" means "works on S3".
//!
//! It is public so that integration tests can run it against a real S3 server; it
//! panics with a message naming the broken property.

use bytes::Bytes;

use super::{Attributes, LivePointer, PutMode, Store, StoreError};

fn attrs(ct: &str, sha: &str) -> Attributes {
    Attributes {
        content_type: Some(ct.into()),
        cache_control: Some("no-cache".into()),
        content_encoding: None,
        sha256: Some(sha.into()),
    }
}

/// Run every check against `store`, which must be empty (or a fresh prefix). The store
/// is probed first, as driftless does before trusting one.
pub async fn run(store: &dyn Store) {
    let report = super::probe(store, "probe/").await.expect("probe");
    assert!(
        report.trusted(),
        "the store ignores conditional writes: {:?}",
        report.ignored
    );
    assert!(
        store.list("probe/").await.unwrap().is_empty(),
        "the probe left objects behind"
    );
    round_trip(store).await;
    create_only(store).await;
    if_match(store).await;
    copy(store).await;
    delete(store).await;
    listing(store).await;
    odd_names(store).await;
    racing_compare_and_swap(store).await;
    large_object(store).await;
    pointer(store).await;
}

/// The live pointer of an atomic layout: created once, then moved only by a
/// compare-and-swap on the token it was read with; never listed as a site object.
async fn pointer(store: &dyn Store) {
    pointer_cases(&super::StorePointer(store)).await;
    assert!(
        store
            .list("")
            .await
            .unwrap()
            .iter()
            .all(|m| !m.key.starts_with("slots/")),
        "the pointer made slot keys appear"
    );
}

/// The pointer cases every [`LivePointer`] passes (the store's own, and a CloudFront
/// KeyValueStore's): none at first, created once, switched only from the current token,
/// exactly one of two racing switches wins.
pub async fn pointer_cases(p: &dyn LivePointer) {
    assert_eq!(p.read().await.unwrap(), None, "no pointer yet");
    let first = p.write("a", "r1", None, None).await.unwrap();
    let (slot, token) = p.read().await.unwrap().expect("pointer written");
    assert_eq!((slot.as_str(), token.as_str()), ("a", first.as_str()));
    assert!(
        matches!(
            p.write("b", "r2", None, None).await,
            Err(StoreError::AlreadyExists { .. })
        ),
        "a second first pointer must be refused"
    );
    let second = p.write("b", "r2", None, Some(&first)).await.unwrap();
    assert!(
        matches!(
            p.write("a", "r1", None, Some(&first)).await,
            Err(StoreError::Precondition { .. })
        ),
        "a switch from a stale pointer must be refused"
    );
    let (slot, token) = p.read().await.unwrap().expect("pointer kept");
    assert_eq!((slot.as_str(), token.as_str()), ("b", second.as_str()));
    // Two deployers switching from the same pointer: exactly one wins.
    let (x, y) = tokio::join!(
        p.write("a", "r1", None, Some(&second)),
        p.write("a", "r3", None, Some(&second))
    );
    assert_eq!(
        usize::from(x.is_ok()) + usize::from(y.is_ok()),
        1,
        "racing pointer switches: {x:?} {y:?}"
    );
    let (_, now) = p.read().await.unwrap().unwrap();
    assert_eq!(p.read().await.unwrap().unwrap().0, "a");
    // Removed (a move back to in place) only from the current token.
    assert!(
        p.remove(&second).await.is_err(),
        "removed from a stale token"
    );
    p.remove(&now).await.unwrap();
    assert_eq!(p.read().await.unwrap(), None, "the pointer is gone");
}

async fn round_trip(store: &dyn Store) {
    let a = attrs("text/html; charset=utf-8", "aa");
    assert!(
        store.head("rt/x.html").await.unwrap().is_none(),
        "head of a missing key is None"
    );
    assert!(
        store.get("rt/x.html").await.unwrap().is_none(),
        "get of a missing key is None"
    );
    let etag = store
        .put(
            "rt/x.html",
            Bytes::from_static(b"<p>hi</p>"),
            &a,
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let head = store
        .head("rt/x.html")
        .await
        .unwrap()
        .expect("head after put");
    assert_eq!(head.meta.etag, etag, "head returns the ETag put returned");
    assert_eq!(head.meta.size, 9);
    assert_eq!(head.attrs, a, "attributes survive a round trip");
    let (obj, body) = store
        .get("rt/x.html")
        .await
        .unwrap()
        .expect("get after put");
    assert_eq!(&body[..], b"<p>hi</p>");
    assert_eq!(obj.meta.etag, etag);
    assert!(!etag.starts_with('"'), "ETags are returned unquoted");
}

async fn create_only(store: &dyn Store) {
    let a = Attributes::default();
    store
        .put("co/lock", Bytes::from_static(b"one"), &a, PutMode::Create)
        .await
        .expect("create on a missing key succeeds");
    let err = store
        .put("co/lock", Bytes::from_static(b"two"), &a, PutMode::Create)
        .await
        .expect_err("create on an existing key must fail");
    assert!(
        matches!(err, StoreError::AlreadyExists { .. }),
        "create-only: {err}"
    );
    let (_, body) = store.get("co/lock").await.unwrap().unwrap();
    assert_eq!(
        &body[..],
        b"one",
        "a refused create leaves the object unchanged"
    );
}

async fn if_match(store: &dyn Store) {
    let a = Attributes::default();
    let e1 = store
        .put("im/HEAD", Bytes::from_static(b"r1"), &a, PutMode::Create)
        .await
        .unwrap();
    let e2 = store
        .put(
            "im/HEAD",
            Bytes::from_static(b"r2"),
            &a,
            PutMode::IfMatch(e1.clone()),
        )
        .await
        .expect("If-Match with the current ETag succeeds");
    assert_ne!(e1, e2, "new content gets a new ETag");
    let err = store
        .put(
            "im/HEAD",
            Bytes::from_static(b"r3"),
            &a,
            PutMode::IfMatch(e1),
        )
        .await
        .expect_err("If-Match with a stale ETag must fail");
    assert!(
        matches!(err, StoreError::Precondition { .. }),
        "stale If-Match: {err}"
    );
    let (_, body) = store.get("im/HEAD").await.unwrap().unwrap();
    assert_eq!(
        &body[..],
        b"r2",
        "a refused write leaves the object unchanged"
    );
    let err = store
        .put(
            "im/missing",
            Bytes::from_static(b"x"),
            &a,
            PutMode::IfMatch(e2),
        )
        .await
        .expect_err("If-Match on a missing key must fail");
    assert!(
        matches!(err, StoreError::Precondition { .. }),
        "missing If-Match: {err}"
    );
    assert!(store.head("im/missing").await.unwrap().is_none());
}

async fn copy(store: &dyn Store) {
    let src = attrs("text/css", "cc");
    store
        .put(
            "cp/a.css",
            Bytes::from_static(b"body{}"),
            &src,
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let dst = Attributes {
        cache_control: Some("public, max-age=60".into()),
        ..src.clone()
    };
    store
        .copy("cp/a.css", "cp/b.css", &dst, PutMode::Create)
        .await
        .expect("copy to a new key");
    let (obj, body) = store.get("cp/b.css").await.unwrap().unwrap();
    assert_eq!(&body[..], b"body{}", "copy keeps the bytes");
    assert_eq!(obj.attrs, dst, "copy replaces the attributes");
    let err = store
        .copy("cp/a.css", "cp/b.css", &dst, PutMode::Create)
        .await
        .expect_err("copy with Create onto an existing key must fail");
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    // Header-only update in place, conditional on the ETag.
    let etag = store.head("cp/a.css").await.unwrap().unwrap().meta.etag;
    store
        .copy("cp/a.css", "cp/a.css", &dst, PutMode::IfMatch(etag.clone()))
        .await
        .expect("copy onto itself with new attributes");
    let now = store.head("cp/a.css").await.unwrap().unwrap();
    assert_eq!(
        now.attrs.cache_control.as_deref(),
        Some("public, max-age=60")
    );
    let err = store
        .copy("cp/missing", "cp/c.css", &dst, PutMode::Overwrite)
        .await
        .expect_err("copy from a missing key must fail");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

async fn delete(store: &dyn Store) {
    let a = Attributes::default();
    let etag = store
        .put("del/x", Bytes::from_static(b"x"), &a, PutMode::Overwrite)
        .await
        .unwrap();
    let err = store
        .delete("del/x", Some("not-the-etag"))
        .await
        .expect_err("delete with a stale If-Match must fail");
    assert!(matches!(err, StoreError::Precondition { .. }), "{err}");
    assert!(
        store.head("del/x").await.unwrap().is_some(),
        "refused delete keeps the object"
    );
    store
        .delete("del/x", Some(&etag))
        .await
        .expect("conditional delete");
    assert!(store.head("del/x").await.unwrap().is_none());
    store
        .delete("del/x", None)
        .await
        .expect("unconditional delete of a missing key is not an error");
}

async fn listing(store: &dyn Store) {
    let a = Attributes::default();
    for k in [
        "ls/a.html",
        "ls/sub/b.js",
        "ls/sub/deeper/c.css",
        "lsx/other",
    ] {
        store
            .put(k, Bytes::from(k.to_owned()), &a, PutMode::Overwrite)
            .await
            .unwrap();
    }
    let keys: Vec<_> = store
        .list("ls/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        keys,
        ["ls/a.html", "ls/sub/b.js", "ls/sub/deeper/c.css"],
        "list is sorted and prefix-bounded"
    );
    let listed = store.list("ls/sub/b").await.unwrap();
    assert_eq!(listed.len(), 1);
    let head = store.head("ls/sub/b.js").await.unwrap().unwrap();
    assert_eq!(listed[0], head.meta, "list and head agree on size and ETag");
    // Everything but one prefix: keys sorting before it and after it are both kept.
    let rest: Vec<_> = store
        .list_except("ls/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert!(
        rest.iter().all(|k| !k.starts_with("ls/")),
        "list_except leaked the excluded prefix: {rest:?}"
    );
    for k in ["lsx/other", "im/HEAD", "cp/a.css"] {
        assert!(
            rest.iter().any(|r| r == k),
            "list_except lost {k}: {rest:?}"
        );
    }
    assert!(
        rest.windows(2).all(|w| w[0] < w[1]),
        "list_except is sorted"
    );
}

async fn odd_names(store: &dyn Store) {
    let a = Attributes::default();
    for k in [
        "odd/with space.html",
        "odd/ümlaut/é.txt",
        "odd/100%.html",
        "odd/a+b=c&d.txt",
    ] {
        store
            .put(k, Bytes::from_static(b"odd"), &a, PutMode::Create)
            .await
            .unwrap_or_else(|e| panic!("{k}: {e}"));
        let (_, body) = store
            .get(k)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{k} missing"));
        assert_eq!(&body[..], b"odd");
    }
    assert_eq!(store.list("odd/").await.unwrap().len(), 4);
}

/// Eight writers race to move one key from the same ETag: exactly one may win.
async fn racing_compare_and_swap(store: &dyn Store) {
    let a = Attributes::default();
    let etag = store
        .put(
            "race/HEAD",
            Bytes::from_static(b"base"),
            &a,
            PutMode::Create,
        )
        .await
        .unwrap();
    let attempts = (0..8).map(|i| {
        let etag = etag.clone();
        let a = a.clone();
        async move {
            store
                .put(
                    "race/HEAD",
                    Bytes::from(format!("w{i}")),
                    &a,
                    PutMode::IfMatch(etag),
                )
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "exactly one compare-and-swap wins: {results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(
            matches!(r, StoreError::Precondition { .. }),
            "losers see a precondition failure: {r}"
        );
    }
}

/// Big enough for S3 multipart uploads, which must be completed with the same condition.
async fn large_object(store: &dyn Store) {
    let body: Vec<u8> = (0..17 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let body = Bytes::from(body);
    let a = attrs("application/octet-stream", "big");
    let etag = store
        .put("big/blob.bin", body.clone(), &a, PutMode::Create)
        .await
        .expect("large create");
    let err = store
        .put("big/blob.bin", body.clone(), &a, PutMode::Create)
        .await
        .expect_err("a large create over an existing key must fail");
    assert!(
        matches!(err, StoreError::AlreadyExists { .. }),
        "large create-only: {err}"
    );
    let err = store
        .put(
            "big/blob.bin",
            body.clone(),
            &a,
            PutMode::IfMatch(format!("{etag}-stale")),
        )
        .await
        .expect_err("a large write with a stale If-Match must fail");
    assert!(
        matches!(err, StoreError::Precondition { .. }),
        "large If-Match: {err}"
    );
    let (obj, got) = store.get("big/blob.bin").await.unwrap().unwrap();
    assert_eq!(got.len(), body.len());
    assert!(got == body, "large object bytes differ");
    assert_eq!(
        obj.attrs.sha256.as_deref(),
        Some("big"),
        "large object attributes"
    );
}
