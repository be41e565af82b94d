//! `install.sh` against release archives served over real HTTP from this machine's binary:
//! it installs a verified binary without root, and refuses a corrupted or unverifiable one.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A static file server (python3 http.server) on 127.0.0.1, stopped on drop.
struct Mirror {
    child: Child,
    url: String,
}

impl Mirror {
    fn serve(root: &Path) -> Self {
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("http.server says where it listens");
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .unwrap_or_else(|| panic!("no port in {line:?}"))
            .to_owned();
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The target triple install.sh detects on this machine.
fn this_target() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "linux" => format!("{arch}-unknown-linux-musl"),
        "macos" => format!("{arch}-apple-darwin"),
        other => panic!("install.sh is tested on Linux and macOS, not {other}"),
    }
}

/// A release laid out as GitHub serves it: `download/<tag>/<file>` and
/// `latest/download/<file>`, the archive holding `driftless-<target>/driftless`.
fn publish(root: &Path, tag: &str, archive_bytes: impl Fn(Vec<u8>) -> Vec<u8>) -> String {
    let target = this_target();
    let name = format!("driftless-{target}.tar.gz");
    let stage = root.join("stage").join(format!("driftless-{target}"));
    std::fs::create_dir_all(&stage).unwrap();
    // The debug binary without its debug info (a release archive is stripped too).
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(stage.join("driftless"))
        .arg(env!("CARGO_BIN_EXE_driftless"))
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(env!("CARGO_BIN_EXE_driftless"), stage.join("driftless")).unwrap();
    }
    let tarball = root.join("stage").join(&name);
    let ok = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(root.join("stage"))
        .arg(format!("driftless-{target}"))
        .status()
        .unwrap();
    assert!(ok.success());
    let bytes = std::fs::read(&tarball).unwrap();
    let sum = format!("{}  {name}\n", sha256_hex(&bytes));
    for dir in [
        root.join("download").join(tag),
        root.join("latest").join("download"),
    ] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&name), archive_bytes(bytes.clone())).unwrap();
        std::fs::write(dir.join(format!("{name}.sha256")), &sum).unwrap();
    }
    name
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn install(mirror: &Mirror, args: &[&str], home: &Path) -> std::process::Output {
    Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh"))
        .args(args)
        .env("DRIFTLESS_DOWNLOAD_URL", &mirror.url)
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .expect("sh runs install.sh")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn installs_the_latest_or_a_given_version_into_home_without_root() {
    let tmp = tempfile::tempdir().unwrap();
    publish(tmp.path(), "v0.1.0", |b| b);
    let mirror = Mirror::serve(tmp.path());
    let home = tmp.path().join("home");

    let out = install(&mirror, &[], &home);
    assert!(out.status.success(), "{}", text(&out));
    let bin: PathBuf = home.join(".local/bin/driftless");
    let version = Command::new(&bin).arg("--version").output().unwrap();
    assert!(version.status.success());
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(version.starts_with("driftless "), "{version}");
    let said = text(&out);
    assert!(said.contains("installed driftless "), "{said}");
    assert!(said.contains("is not on your PATH"), "{said}");

    let elsewhere = tmp.path().join("bin");
    let out = install(
        &mirror,
        &["--version", "0.1.0", "--to", elsewhere.to_str().unwrap()],
        &home,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("/download/v0.1.0"), "{}", text(&out));
    assert!(elsewhere.join("driftless").is_file());
}

#[test]
fn a_corrupted_or_unverifiable_archive_is_refused_and_nothing_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let name = publish(tmp.path(), "v0.1.0", |mut b| {
        let middle = b.len() / 2;
        b[middle] ^= 0x40;
        b
    });
    let mirror = Mirror::serve(tmp.path());
    let home = tmp.path().join("home");

    let out = install(&mirror, &[], &home);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("checksum mismatch"), "{}", text(&out));
    assert!(!home.join(".local/bin/driftless").exists());
    assert!(!home.join(".local/bin/.driftless.new").exists());

    // No checksum published: never installed unverified.
    std::fs::remove_file(
        tmp.path()
            .join("latest/download")
            .join(format!("{name}.sha256")),
    )
    .unwrap();
    let out = install(&mirror, &[], &home);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("refusing to install an unverified binary"));
    assert!(!home.join(".local/bin/driftless").exists());

    let out = install(&mirror, &["--version", "v9.9.9"], &home);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("could not download"), "{}", text(&out));

    let out = install(
        &mirror,
        &["--target", "sparc-sun-solaris", "--bogus"],
        &home,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn the_changelog_has_notes_for_this_version_and_binstall_finds_the_archives() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let notes = |version: &str| {
        Command::new("sh")
            .arg(root.join("scripts/release-notes.sh"))
            .arg(version)
            .output()
            .unwrap()
    };
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    let out = notes(&version);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("### Added"), "{said}");
    assert!(
        !said.contains("## ["),
        "only this version's section: {said}"
    );
    let out = notes("v99.0.0");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no section \"## [99.0.0]\""),
        "{}",
        text(&out)
    );

    // binstall's template names exactly what the release workflow uploads.
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap()).unwrap();
    let binstall = &manifest["package"]["metadata"]["binstall"];
    let url = binstall["pkg-url"]
        .as_str()
        .unwrap()
        .replace(
            "{ repo }",
            manifest["package"]["repository"].as_str().unwrap(),
        )
        .replace("{ version }", env!("CARGO_PKG_VERSION"))
        .replace("{ target }", "x86_64-unknown-linux-musl")
        .replace("{ archive-suffix }", ".tar.gz");
    assert_eq!(
        url,
        format!(
            "https://github.com/driftless-dev/driftless/releases/download/{version}/driftless-x86_64-unknown-linux-musl.tar.gz"
        )
    );
    let workflow = std::fs::read_to_string(root.join(".github/workflows/release.yml")).unwrap();
    assert!(workflow.contains(r#"name="driftless-$TARGET""#));
    assert!(workflow.contains(r#"tar -czf "$name.tar.gz" "$name""#));
    let installer = std::fs::read_to_string(root.join("install.sh")).unwrap();
    assert!(installer.contains(r#"ARCHIVE="driftless-$TARGET.tar.gz""#));
}
