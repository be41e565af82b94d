//! A small fluent builder around the real `driftless` binary, plus helpers to build
//! sites and to snapshot a store directory byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_driftless");

/// One working copy: a directory with `driftless.toml` and a `site/` build directory.
pub struct Project {
    pub dir: PathBuf,
    author: String,
    env: Vec<(&'static str, String)>,
}

impl Project {
    /// A project deploying `site/` to `store` (an absolute directory) as env `prod`
    /// (plus `extra` TOML appended to the config), in place: these tests read the
    /// store's keys where visitors read them. `Project::atomic` makes an atomic one.
    pub fn new(dir: &Path, store: &Path, extra: &str) -> Self {
        let config = format!(
            "site = \"site\"\n\n[env.prod]\nstore = \"file://{}\"\nlayout = \"in-place\"\n{extra}",
            store.display()
        );
        Self::with_config(dir, &config)
    }

    /// A project deploying `site/` to `store` as env `prod` with the atomic layout (the
    /// default of a new local store).
    pub fn atomic(dir: &Path, store: &Path, extra: &str) -> Self {
        let config = format!(
            "site = \"site\"\n\n[env.prod]\nstore = \"file://{}\"\n{extra}",
            store.display()
        );
        Self::with_config(dir, &config)
    }

    /// A project with this exact `driftless.toml` and an empty `site/`.
    pub fn with_config(dir: &Path, config: &str) -> Self {
        std::fs::create_dir_all(dir.join("site")).unwrap();
        std::fs::write(dir.join("driftless.toml"), config).unwrap();
        Self::at(dir)
    }

    /// An existing directory (e.g. a git clone) that already has its config.
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            author: "Alice <alice@example.com>".into(),
            env: Vec::new(),
        }
    }

    /// Environment variables for every command this project runs (e.g. credentials).
    pub fn envs(mut self, vars: Vec<(&'static str, String)>) -> Self {
        self.env.extend(vars);
        self
    }

    pub fn author(mut self, who: &str) -> Self {
        self.author = who.into();
        self
    }

    pub fn write(&self, key: &str, content: &str) -> &Self {
        let p = self.dir.join("site").join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        self
    }

    pub fn remove(&self, key: &str) -> &Self {
        std::fs::remove_file(self.dir.join("site").join(key)).unwrap();
        self
    }

    pub fn cmd(&self, args: &[&str]) -> Run {
        self.cmd_via(&[], args)
    }

    /// `driftless ARGS` run through another program (`/usr/bin/time -f %M ...`).
    pub fn cmd_via(&self, wrapper: &[&str], args: &[&str]) -> Run {
        let mut run = Run::via(&self.dir, wrapper, args).env("DRIFTLESS_AUTHOR", &self.author);
        for (k, v) in &self.env {
            run = run.env(k, v);
        }
        run
    }
}

pub struct Run {
    cmd: Command,
    shown: String,
}

impl Run {
    pub fn new(dir: &Path, args: &[&str]) -> Self {
        Self::via(dir, &[], args)
    }

    pub fn via(dir: &Path, wrapper: &[&str], args: &[&str]) -> Self {
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.current_dir(dir)
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("DRIFTLESS_CONFIG")
            .env_remove("DRIFTLESS_FAILPOINT")
            // Tests that want GitHub Actions output ask for it (a CI runner's own
            // variables must not change what every other test sees).
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_WORKSPACE")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null());
        Self {
            cmd,
            shown: format!("driftless {}", args.join(" ")),
        }
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: &str) -> Self {
        self.cmd.env_remove(k);
        self
    }

    pub fn spawn(mut self) -> std::process::Child {
        self.cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Spawned with its output thrown away (a child that is never read must not block
    /// on a full pipe), its errors kept.
    pub fn spawn_quiet(mut self) -> std::process::Child {
        self.cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn run(mut self) -> Done {
        let out = self.cmd.output().unwrap();
        Done::from(self.shown, out)
    }

    /// Run and assert the exit status.
    pub fn expect(self, code: i32) -> Done {
        let d = self.run();
        assert_eq!(
            d.code, code,
            "`{}` exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            d.shown, d.code, d.stdout, d.stderr
        );
        d
    }
}

pub struct Done {
    pub shown: String,
    pub code: i32,
    /// The signal that killed the process, if any.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Done {
    pub fn from(shown: String, out: Output) -> Self {
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&out.status);
        #[cfg(not(unix))]
        let signal = None;
        Self {
            shown,
            code: out.status.code().unwrap_or(-1),
            signal,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` did not print JSON ({e}):\n{}",
                self.shown, self.stdout
            )
        })
    }

    /// The id of the release a `--json` run made live.
    pub fn release_id(&self) -> String {
        let doc = self.json();
        doc["release"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("`{}` made no release: {doc}", self.shown))
            .to_owned()
    }

    /// Assert the combined output mentions every needle.
    pub fn mentions(&self, needles: &[&str]) -> &Self {
        let all = self.all();
        for n in needles {
            assert!(
                all.contains(n),
                "`{}` output does not mention {n:?}:\n{all}",
                self.shown
            );
        }
        self
    }
}

/// Every file under `root` (relative path → bytes), skipping `skip` prefixes.
pub fn tree(root: &Path, skip: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if skip
                .iter()
                .any(|s| rel == s.trim_end_matches('/') || rel.starts_with(s))
            {
                continue;
            }
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                // The live pointer of an atomic store: what it names is its content.
                let to = std::fs::read_link(&p).unwrap();
                out.insert(rel, format!("-> {}", to.display()).into_bytes());
            } else if ft.is_dir() {
                stack.push(p);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The store as a visitor sees it: site files only (on an atomic store, those of the
/// slot its live pointer names).
pub fn site_files(store: &Path) -> BTreeMap<String, Vec<u8>> {
    match std::fs::read_link(store.join("current")) {
        Ok(_) => tree(&store.join("current"), &[]),
        Err(_) => tree(store, &[".driftless/", ".driftless-store/"]),
    }
}

/// The bytes a visitor gets for `key` (following an atomic store's live pointer).
pub fn served_path(store: &Path, key: &str) -> PathBuf {
    match std::fs::read_link(store.join("current")) {
        Ok(_) => store.join("current").join(key),
        Err(_) => store.join(key),
    }
}

/// Everything in the store that a refused run must not touch, as path → SHA-256
/// (journal events, their sidecars and the local backend's lock file may change).
pub fn store_bytes(store: &Path) -> BTreeMap<String, String> {
    use sha2::Digest as _;
    tree(
        store,
        &[
            ".driftless/journal/",
            ".driftless-store/meta/.driftless/journal/",
            // The metadata database changes with every journal event; the objects
            // themselves are compared byte for byte.
            ".driftless-store/meta.sqlite",
            ".driftless-store/lock",
            ".driftless-store/tmp/",
            ".driftless-store/reserve",
        ],
    )
    .into_iter()
    .map(|(k, v)| (k, hex::encode(sha2::Sha256::digest(&v))))
    .collect()
}

pub fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
        .collect()
}

pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// HEAD's release id in a local store.
pub fn head(store: &Path) -> String {
    std::fs::read_to_string(store.join(".driftless/HEAD"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Run one of the project's install scripts (`scripts/NAME`) and read the `KEY=VALUE`
/// lines it prints. A script that fails fails the test: nothing is skipped.
pub fn script_vars(name: &str) -> BTreeMap<String, String> {
    let script = format!("{}/scripts/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed (a failure, not a skip):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The small tools some tests need (GNU time, actionlint, check-jsonschema, an HCL
/// parser), installed by the project's own script once per test run.
pub fn tools() -> &'static BTreeMap<String, String> {
    static TOOLS: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();
    TOOLS.get_or_init(|| script_vars("test-tools.sh"))
}

/// Run `driftless ARGS` in `p` and return the result and the process's own peak RSS in
/// KiB, as GNU time reads it (a process forked from this large test binary would report
/// the test's memory, not its own).
pub fn peak_rss(p: &Project, args: &[&str]) -> (Done, u64) {
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_str().unwrap().to_owned();
    let time = tools()["TIME"].clone();
    let done = p.cmd_via(&[&time, "-f", "%M", "-o", &path], args).run();
    let kib = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("GNU time wrote no peak RSS for {}", done.all()));
    (done, kib)
}

/// Wait until the process `pid`, run with `DRIFTLESS_FAILPOINT=NAME:wait`, reached its
/// failpoint; deleting the returned file lets it go on.
pub fn wait_for_failpoint(pid: u32) -> std::path::PathBuf {
    let mark = std::env::temp_dir().join(format!("driftless-failpoint-{pid}"));
    let start = std::time::Instant::now();
    while !mark.exists() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "process {pid} never reached its failpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    mark
}
