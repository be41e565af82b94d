use super::*;

#[tokio::test]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    super::super::conformance::run(&LocalStore::new(dir.path().join("store"))).await;
}

#[tokio::test]
async fn out_of_band_edit_changes_etag_and_drops_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let attrs = Attributes {
        content_type: Some("text/html".into()),
        sha256: Some("abc".into()),
        ..Attributes::default()
    };
    let etag = store
        .put(
            "index.html",
            Bytes::from_static(b"one"),
            &attrs,
            PutMode::Create,
        )
        .await
        .unwrap();
    std::fs::write(dir.path().join("index.html"), b"two").unwrap();
    let now = store.head("index.html").await.unwrap().unwrap();
    assert_ne!(now.meta.etag, etag);
    assert_eq!(now.attrs, Attributes::default());
    let err = store
        .put(
            "index.html",
            Bytes::from_static(b"three"),
            &attrs,
            PutMode::IfMatch(etag),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Precondition { .. }), "{err}");
}

#[test]
fn compare_and_swap_holds_between_independent_handles() {
    // Each thread has its own store handle (its own lock file descriptor), as two
    // processes would; every increment must be serialised by If-Match.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(LocalStore::new(&root).put(
        "n",
        Bytes::from_static(b"0"),
        &Attributes::default(),
        PutMode::Create,
    ))
    .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let root = root.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let store = LocalStore::new(root);
                let mut done = 0;
                while done < 25 {
                    let (obj, body) = rt.block_on(store.get("n")).unwrap().unwrap();
                    let n: u32 = std::str::from_utf8(&body).unwrap().parse().unwrap();
                    let next = Bytes::from((n + 1).to_string());
                    let attrs = Attributes::default();
                    let put = store.put("n", next, &attrs, PutMode::IfMatch(obj.meta.etag));
                    match rt.block_on(put) {
                        Ok(_) => done += 1,
                        Err(StoreError::Precondition { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (_, body) = rt
        .block_on(LocalStore::new(&root).get("n"))
        .unwrap()
        .unwrap();
    assert_eq!(&body[..], b"100");
}

/// A store written by an earlier version (one JSON sidecar per object) reads as
/// before, and the first write moves the sidecars into the database.
#[tokio::test]
async fn sidecars_of_earlier_versions_are_read_then_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("index.html"), "old").unwrap();
    let meta = std::fs::metadata(root.join("index.html")).unwrap();
    let sidecar = Sidecar {
        etag: "nonce1".into(),
        fingerprint: fingerprint(&meta),
        attrs: Attributes {
            content_type: Some("text/html".into()),
            ..Attributes::default()
        },
    };
    let sc = root.join(INTERNAL).join("meta").join("index.html.json");
    std::fs::create_dir_all(sc.parent().unwrap()).unwrap();
    std::fs::write(&sc, serde_json::to_vec(&sidecar).unwrap()).unwrap();

    let store = LocalStore::new(root);
    let head = store.head("index.html").await.unwrap().unwrap();
    assert_eq!(head.meta.etag, "nonce1", "the old sidecar is read");
    store
        .put(
            "other.txt",
            Bytes::from_static(b"x"),
            &Attributes::default(),
            PutMode::Create,
        )
        .await
        .unwrap();
    assert!(
        !root.join(INTERNAL).join("meta").exists(),
        "sidecars were not migrated"
    );
    let again = LocalStore::new(root)
        .head("index.html")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.meta.etag, "nonce1");
    assert_eq!(again.attrs.content_type.as_deref(), Some("text/html"));
}
