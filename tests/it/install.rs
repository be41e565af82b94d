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
        // As the release workflow writes it: every archive's line, then install.sh's.
        let sums = format!("{sum}{}  driftless-other.tar.gz\n", "0".repeat(64));
        std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
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

    // SHA256SUMS without the archive's line: never installed unverified.
    let sums = tmp.path().join("latest/download/SHA256SUMS");
    std::fs::write(
        &sums,
        format!("{}  driftless-other.tar.gz\n", "0".repeat(64)),
    )
    .unwrap();
    let out = install(&mirror, &[], &home);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("SHA256SUMS has no line for {name}")),
        "{}",
        text(&out)
    );
    // No checksums published at all.
    std::fs::remove_file(&sums).unwrap();
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

/// A server on 127.0.0.1 that answers every GET with a redirect to `to` + the path.
struct Redirector(Child, String);

impl Redirector {
    fn to(to: &str) -> Self {
        let script = r#"
import http.server, sys
to = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", to + self.path)
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
        let mut child = Command::new("python3")
            .args(["-c", script, to])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        let url = format!("http://127.0.0.1:{}", port.trim());
        Self(child, url)
    }
}

impl Drop for Redirector {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Regression (issue 34.10): install.sh allowed plain HTTP (curl `--proto '=https,http'`,
/// wget unrestricted), on redirects too, and fetched `ARCHIVE.sha256` where the README
/// names `SHA256SUMS`. Now downloads are HTTPS only — a mirror named `http://`
/// explicitly is the one exception, with a warning, and even it may not redirect to
/// plain HTTP — the archive is checked against its line of SHA256SUMS, and
/// `--attestation` checks the build provenance with `gh` (a hint when gh is there).
#[test]
fn install_downloads_over_https_only_and_checks_sha256sums() {
    let tmp = tempfile::tempdir().unwrap();
    publish(tmp.path(), "v0.1.0", |b| b);
    let mirror = Mirror::serve(tmp.path());
    let home = tmp.path().join("home");
    let run = |url: &str, args: &[&str], path: &str| {
        Command::new("sh")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh"))
            .args(args)
            .env("DRIFTLESS_DOWNLOAD_URL", url)
            .env("HOME", &home)
            .env("PATH", path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // The explicit http:// mirror: allowed, and said.
    let out = run(&mirror.url, &[], "/usr/bin:/bin");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("warning: downloading over plain HTTP"),
        "{}",
        text(&out)
    );
    // A mirror that redirects to plain HTTP: refused, nothing installed.
    std::fs::remove_file(home.join(".local/bin/driftless")).unwrap();
    let redirect = Redirector::to(&mirror.url);
    let out = run(&redirect.1, &[], "/usr/bin:/bin");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!home.join(".local/bin/driftless").exists());
    // Anything but https:// and an explicit http:// is bad usage.
    let out = run("ftp://mirror.example", &[], "/usr/bin:/bin");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // `gh`: a stand-in that records its arguments and answers as told.
    let bin = tmp.path().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = tmp.path().join("gh.log");
    std::fs::write(
        bin.join("gh"),
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexit \"${{GH_EXIT:-0}}\"\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(bin.join("gh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = run(&mirror.url, &[], &path);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("add --attestation"), "{}", text(&out));
    let out = run(&mirror.url, &["--attestation"], &path);
    assert!(out.status.success(), "{}", text(&out));
    let called = std::fs::read_to_string(&log).unwrap();
    assert!(
        called.contains("attestation verify") && called.contains("--repo driftless-dev/driftless"),
        "{called}"
    );
    std::fs::remove_file(home.join(".local/bin/driftless")).unwrap();
    let out = Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh"))
        .arg("--attestation")
        .env("DRIFTLESS_DOWNLOAD_URL", &mirror.url)
        .env("HOME", &home)
        .env("PATH", &path)
        .env("GH_EXIT", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("did not verify"), "{}", text(&out));
    assert!(!home.join(".local/bin/driftless").exists());
}
