//! Sites made by real generators nobody here wrote — Hugo (Debian), MkDocs (PyPI), Vite
//! (npm), pinned and installed by `scripts/generators.sh` — taken through what a new user
//! does: init → deploy → serve → verify → change → deploy → rollback → deploy (refused:
//! it would undo the rollback) → revert the commit → deploy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::serve::Server;
use crate::util::{Project, Run, git};

fn generators() -> &'static BTreeMap<String, String> {
    static TOOLS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    TOOLS.get_or_init(|| crate::util::script_vars("generators.sh"))
}

fn sh(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A generated project: how to build it and which page to change.
struct Generated {
    dir: PathBuf,
    build: Box<dyn Fn()>,
    /// Source file → (old text, new text) for the change that is later rolled back.
    change: (PathBuf, &'static str, &'static str),
    framework: &'static str,
    site: &'static str,
    /// A URL path that is a directory index (`/x/` → `x/index.html`), served as `/x` → 301.
    directory: &'static str,
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{}: no {from:?} in\n{text}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn get(port: u16, path: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, buf[split + 4..].to_vec())
}

/// init → deploy → serve → verify → change → deploy → rollback → deploy → revert → deploy.
fn the_new_user_story(g: &Generated) {
    let dir = &g.dir;
    git(dir, &["init", "-q", "-b", "main"]);
    (g.build)();
    let init = Run::new(dir, &["init"]).expect(0);
    init.mentions(&[g.framework, &format!("site = \"{}\"", g.site)]);
    assert!(!init.all().contains("warning"), "{}", init.all());

    // Serve the local environment, then tell the config where visitors reach it.
    let p = Project::at(dir);
    let mut child = p.cmd(&["serve", "local", "--port", "0", "--json"]).spawn();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _server = Server::from(child);
    let port = serde_json::from_str::<serde_json::Value>(&line).unwrap()["port"]
        .as_u64()
        .unwrap() as u16;
    let config = std::fs::read_to_string(dir.join("driftless.toml")).unwrap();
    let config = config.replacen(
        "[env.local]\n",
        &format!("[env.local]\nurl = \"http://127.0.0.1:{port}\"\n"),
        1,
    );
    std::fs::write(dir.join("driftless.toml"), config).unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "site v1"]);
    p.cmd(&["deploy", "local", "--yes", "-m", "v1"]).expect(0);
    p.cmd(&["verify", "local", "--timeout", "10"]).expect(0);

    // Directories behave as on a real web server.
    let (status, head, _) = get(port, g.directory.trim_end_matches('/'));
    assert_eq!(status, 301, "{}: {head}", g.directory);
    assert!(
        head.contains(&format!("location: {}", g.directory)),
        "{head}"
    );
    assert_eq!(get(port, g.directory).0, 200);
    let (_, head, _) = get(port, "/");
    assert!(head.contains("cache-control: no-cache"), "{head}");

    // A change, deployed and verified.
    let (file, from, to) = &g.change;
    edit(file, from, to);
    git(dir, &["commit", "-q", "-am", "the change"]);
    (g.build)();
    p.cmd(&["deploy", "local", "--yes", "-m", "v2"]).expect(0);
    p.cmd(&["verify", "local", "--timeout", "10"]).expect(0);

    // It broke something: roll back; the rollback is what visitors get.
    let rollback = p
        .cmd(&["rollback", "local", "--yes", "-m", "v2 broke it", "--json"])
        .expect(0)
        .release_id();
    p.cmd(&["verify", "local", "--timeout", "10"]).expect(0);

    // The next deploy from this checkout would re-ship the rolled-back change: refused.
    p.cmd(&["deploy", "local", "--yes"]).expect(3).mentions(&[
        "[revert]",
        &rollback,
        "v2 broke it",
    ]);

    // Revert the commit, rebuild: the deploy goes through and the rollback stays.
    git(dir, &["revert", "--no-edit", "HEAD"]);
    (g.build)();
    p.cmd(&["deploy", "local", "--yes"]).expect(0);
    p.cmd(&["verify", "local", "--timeout", "10"]).expect(0);
    p.cmd(&["status", "local"])
        .expect(0)
        .mentions(&["none: the store matches"]);
}

#[test]
fn a_mkdocs_site() {
    let mkdocs = generators()["MKDOCS"].clone();
    let tmp = tempfile::tempdir().unwrap();
    sh(tmp.path(), &mkdocs, &["new", "-q", "docs-site"]);
    let dir = tmp.path().join("docs-site");
    std::fs::write(dir.join("docs/about.md"), "# About\n\nWe make docs.\n").unwrap();
    std::fs::write(dir.join(".gitignore"), "site/\n").unwrap();
    let d = dir.clone();
    the_new_user_story(&Generated {
        dir: dir.clone(),
        build: Box::new(move || sh(&d, &mkdocs, &["build", "-q", "--clean"])),
        change: (
            dir.join("docs/about.md"),
            "We make docs.",
            "We make better docs.",
        ),
        framework: "MkDocs",
        site: "site",
        directory: "/about/",
    });
}

#[test]
fn a_hugo_site() {
    let hugo = generators()["HUGO"].clone();
    let tmp = tempfile::tempdir().unwrap();
    sh(tmp.path(), &hugo, &["new", "site", "blog", "--quiet"]);
    let dir = tmp.path().join("blog");
    let files = [
        (
            "layouts/_default/baseof.html",
            "<!doctype html><html><head><title>{{ .Title }}</title>{{ $css := resources.Get \"main.css\" | minify | fingerprint }}<link rel=\"stylesheet\" href=\"{{ $css.RelPermalink }}\"></head><body>{{ block \"main\" . }}{{ end }}</body></html>\n",
        ),
        (
            "layouts/_default/single.html",
            "{{ define \"main\" }}<h1>{{ .Title }}</h1>{{ .Content }}{{ end }}\n",
        ),
        (
            "layouts/_default/list.html",
            "{{ define \"main\" }}<h1>{{ .Title }}</h1>{{ range .Pages }}<a href=\"{{ .RelPermalink }}\">{{ .Title }}</a>{{ end }}{{ end }}\n",
        ),
        (
            "layouts/index.html",
            "{{ define \"main\" }}<h1>Home</h1>{{ range .Site.RegularPages }}<a href=\"{{ .RelPermalink }}\">{{ .Title }}</a>{{ end }}{{ end }}\n",
        ),
        ("assets/main.css", "body { font-family: serif; }\n"),
        (
            "content/posts/first.md",
            "---\ntitle: First\n---\nHello from Hugo.\n",
        ),
        (
            "content/posts/second.md",
            "---\ntitle: Second\n---\nAnother post.\n",
        ),
        (".gitignore", "public/\nresources/\n.hugo_build.lock\n"),
    ];
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let d = dir.clone();
    the_new_user_story(&Generated {
        dir: dir.clone(),
        build: Box::new(move || {
            let _ = std::fs::remove_dir_all(d.join("public"));
            sh(&d, &hugo, &["--quiet", "--baseURL", "/"]);
        }),
        change: (
            dir.join("content/posts/first.md"),
            "Hello from Hugo.",
            "Hello again from Hugo.",
        ),
        framework: "Hugo",
        site: "public",
        directory: "/posts/first/",
    });
}

#[test]
fn a_vite_app() {
    let template = PathBuf::from(&generators()["VITE_APP"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    for entry in ["index.html", "package.json", ".gitignore"] {
        std::fs::copy(template.join(entry), dir.join(entry)).unwrap();
    }
    for sub in ["src", "public"] {
        crate::serve::copy_dir(&template.join(sub), &dir.join(sub));
    }
    std::os::unix::fs::symlink(template.join("node_modules"), dir.join("node_modules")).unwrap();
    // A second page, so the site has a directory index.
    std::fs::create_dir_all(dir.join("public/about")).unwrap();
    std::fs::write(dir.join("public/about/index.html"), "<h1>About</h1>\n").unwrap();
    let vite = template.join("node_modules/.bin/vite");
    let d = dir.clone();
    let main = std::fs::read_dir(dir.join("src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "js"))
        .unwrap();
    std::fs::write(
        &main,
        format!(
            "{}\nconsole.log('release one');\n",
            std::fs::read_to_string(&main).unwrap()
        ),
    )
    .unwrap();
    the_new_user_story(&Generated {
        dir: dir.clone(),
        build: Box::new(move || {
            sh(
                &d,
                vite.to_str().unwrap(),
                &["build", "--logLevel", "error"],
            )
        }),
        change: (main, "release one", "release two"),
        framework: "Vite",
        site: "dist",
        directory: "/about/",
    });
    // Vite's fingerprinted assets are immutable; its entry point is revalidated.
    let config = std::fs::read_to_string(dir.join("driftless.toml")).unwrap();
    assert!(config.contains("assets/**"), "{config}");
}
