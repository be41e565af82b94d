//! Deploys that live in CI: the example workflows lint, GitHub Actions gets a job summary
//! and `::error` annotations, webhooks hear of every change (signed), shells complete,
//! and the config schema validates real configs.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hmac::Mac as _;

use crate::util::{BIN, Project, Run, tools};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn example_and_release_workflows_pass_actionlint() {
    let mut workflows: Vec<String> = ["examples/github-actions", ".github/workflows"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(repo().join(dir)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .map(|p| p.display().to_string())
        .collect();
    workflows.sort();
    assert!(workflows.len() >= 5, "{workflows:?}");
    let out = std::process::Command::new(&tools()["ACTIONLINT"])
        .args(["-no-color"])
        .args(&workflows)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "actionlint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The linter is live: a broken workflow fails it.
    let bad = tempfile::tempdir().unwrap();
    let path = bad.path().join("bad.yml");
    std::fs::write(
        &path,
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n",
    )
    .unwrap();
    let out = std::process::Command::new(&tools()["ACTIONLINT"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "actionlint accepted a broken workflow"
    );
}

/// A GitHub Actions run: `GITHUB_ACTIONS=true` and a summary file.
fn in_github(p: &Project, summary: &Path, args: &[&str]) -> Run {
    p.cmd(args)
        .env("GITHUB_ACTIONS", "true")
        .env("CI", "true")
        .env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())
        .env("GITHUB_WORKSPACE", p.dir.to_str().unwrap())
}

#[test]
fn github_actions_gets_a_job_summary_and_error_annotations() {
    let t = tempfile::tempdir().unwrap();
    let p = Project::new(
        &t.path().join("w"),
        &t.path().join("store"),
        "\n[[features]]\nname = \"checkout\"\nfile = \"index.html\"\ncontains = 'id=\"checkout\"'\n",
    );
    p.write("index.html", "<div id=\"checkout\">buy</div>")
        .write("about|us.html", "about");
    let summary = t.path().join("summary.md");

    let done = in_github(&p, &summary, &["deploy", "prod", "--yes", "-m", "first"]).expect(0);
    let md = std::fs::read_to_string(&summary).unwrap();
    let id = done
        .stdout
        .lines()
        .find_map(|l| l.split("release ").nth(1)?.split(' ').next())
        .unwrap()
        .to_owned();
    for needle in [
        "### driftless: deploy → prod",
        "| new release | `",
        "**2 to create, 0 to update, 0 header-only, 0 to delete, 0 unchanged",
        "**Guards:** ✅ every guard passed",
        "<summary>Changed files (2)</summary>",
        "| create | `index.html` |",
        // A name cannot break the table.
        "| create | `about\\|us.html` |",
        "| message | first |",
        &format!("**Result:** ✅ release `{id}` is live on prod"),
    ] {
        assert!(md.contains(needle), "summary lacks {needle:?}:\n{md}");
    }
    assert!(!done.stdout.contains("::error"), "{}", done.stdout);

    // A refused deploy: one annotation on the file, and the verdict in the summary.
    p.write("index.html", "<div>checkout removed</div>");
    std::fs::remove_file(&summary).unwrap();
    let done = in_github(&p, &summary, &["deploy", "prod", "--yes"]).expect(3);
    let error = only_annotation(&done.stdout, &done);
    assert!(
        error.starts_with("::error file=site/index.html,title=driftless refused%3A feature::"),
        "{error}"
    );
    assert!(error.contains("checkout"), "{error}");
    // The message is one line for the runner: newlines escaped.
    assert!(error.contains("%0A→ "), "{error}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("**Guards:** ❌ refused — nothing was changed") && md.contains("- `feature`"),
        "{md}"
    );
    assert!(!md.contains("**Result:**"), "{md}");

    // With --json, stdout stays one JSON document and the annotation goes to stderr.
    let done = in_github(&p, &summary, &["--json", "deploy", "prod", "--yes"]).expect(3);
    done.json();
    assert!(
        done.stderr
            .lines()
            .any(|l| l.starts_with("::error file=site/index.html")),
        "{}",
        done.stderr
    );

    // A refusal found before any scan (the lock is held) is one annotation too.
    let mut holder = p
        .cmd(&["deploy", "prod", "--yes", "--force", "feature"])
        .env("DRIFTLESS_FAILPOINT", "after-objects:pause")
        .spawn();
    crate::util::wait_for_failpoint(holder.id());
    let done = in_github(
        &p,
        &summary,
        &["deploy", "prod", "--yes", "--force", "feature"],
    )
    .expect(3);
    holder.kill().unwrap();
    holder.wait().unwrap();
    let error = only_annotation(&done.all(), &done);
    assert!(
        error.starts_with("::error title=driftless refused%3A lock::")
            && error.contains("is running `deploy`"),
        "{error}"
    );
    // Any other error that ends the run is one annotation too.
    let done = in_github(&p, &summary, &["deploy", "nowhere", "--yes"]).expect(2);
    let error = only_annotation(&done.stdout, &done);
    assert!(
        error.starts_with("::error title=driftless%3A error::") && error.contains("nowhere"),
        "{error}"
    );
}

/// The one `::error` line of `text` (a run's output), asserting there is exactly one.
fn only_annotation(text: &str, done: &crate::util::Done) -> String {
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("::error")).collect();
    assert_eq!(errors.len(), 1, "{}", done.all());
    errors[0].to_owned()
}

/// One request the receiver saw.
#[derive(Debug, Clone)]
struct Hit {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Hit {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on a real socket: records every request, answers 200.
fn receiver() -> (String, Arc<Mutex<Vec<Hit>>>) {
    http_server(|_| (200, String::new()))
}

/// An HTTP server on a real socket: records every request, answers what `respond` says
/// (status, JSON body).
fn http_server(
    respond: impl Fn(&Hit) -> (u16, String) + Send + 'static,
) -> (String, Arc<Mutex<Vec<Hit>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(Mutex::new(Vec::new()));
    let seen = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let method = line.split(' ').next().unwrap_or("").to_owned();
            let path = line.split(' ').nth(1).unwrap_or("").to_owned();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.push((k.trim().to_owned(), v.trim().to_owned()));
                }
            }
            let len = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let hit = Hit {
                method,
                path,
                headers,
                body,
            };
            let (status, answer) = respond(&hit);
            seen.lock().unwrap().push(hit);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, hits)
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[test]
fn webhooks_hear_every_change_signed_and_never_fail_a_deploy() {
    let t = tempfile::tempdir().unwrap();
    let (url, hits) = receiver();
    let config = format!(
        "\n[[notify]]\nurl = \"{url}/hook\"\nsecret_env = \"HOOK_SECRET\"\n\n[[notify]]\nurl = \"{url}/slack\"\nformat = \"slack\"\nevents = [\"rollback\"]\n"
    );
    let p = Project::new(&t.path().join("w"), &t.path().join("store"), &config)
        .envs(vec![("HOOK_SECRET", "s3cret".into())]);
    p.write("index.html", "v1");
    let first = p
        .cmd(&["--json", "deploy", "prod", "--yes", "-m", "v1"])
        .expect(0);
    let first = first.release_id();
    p.write("index.html", "v2");
    p.cmd(&["deploy", "prod", "--yes", "-m", "v2"]).expect(0);
    p.cmd(&["rollback", "prod", "--yes"]).expect(0);
    p.cmd(&["hold", "prod", "--reason", "launch freeze"])
        .expect(0);
    p.write("index.html", "v3");
    p.cmd(&["deploy", "prod", "--yes"]).expect(3);
    p.cmd(&["unhold", "prod", "--yes"]).expect(0);

    let hits = hits.lock().unwrap().clone();
    let signed: Vec<&Hit> = hits.iter().filter(|h| h.path == "/hook").collect();
    let events: Vec<String> = signed
        .iter()
        .map(|h| h.json()["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        events,
        ["deploy", "deploy", "rollback", "hold", "refused", "unhold"],
        "{hits:#?}"
    );
    for h in &signed {
        let sig = h.header("X-Driftless-Signature").unwrap();
        assert_eq!(
            sig,
            format!("sha256={}", hmac_hex("s3cret", &h.body)),
            "signature of {}",
            String::from_utf8_lossy(&h.body)
        );
        let doc = h.json();
        assert_eq!(doc["env"], "prod");
        assert_eq!(doc["by"]["author"], "Alice <alice@example.com>");
        assert_eq!(
            h.header("X-Driftless-Event"),
            doc["event"].as_str(),
            "{doc}"
        );
    }
    assert_eq!(signed[0].json()["release"]["id"], first.as_str());
    assert!(
        signed[0].json()["summary"]
            .as_str()
            .unwrap()
            .contains(": v1"),
        "{}",
        signed[0].json()
    );
    let refused = signed[4].json();
    assert!(
        refused["summary"].as_str().unwrap().contains("hold"),
        "{refused}"
    );
    assert!(
        signed[3].json()["summary"]
            .as_str()
            .unwrap()
            .contains("launch freeze")
    );
    // Slack: only the event it asked for, as a message, unsigned.
    let slack: Vec<&Hit> = hits.iter().filter(|h| h.path == "/slack").collect();
    assert_eq!(slack.len(), 1, "{hits:#?}");
    let text = slack[0].json()["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("`prod`") && text.contains("rollback"),
        "{text}"
    );
    assert!(slack[0].header("X-Driftless-Signature").is_none());

    // The receiver is down: the deploy still succeeds, says so, and journals it.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let down = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let q = Project::new(
        &t.path().join("w2"),
        &t.path().join("store2"),
        &format!("\n[[notify]]\nurl = \"{down}/hook\"\n"),
    );
    q.write("index.html", "hello");
    let done = q.cmd(&["deploy", "prod", "--yes"]).expect(0);
    assert!(
        done.stderr
            .contains(&format!("notification to {down}/… failed"))
            && done.stderr.contains("the deploy itself is done"),
        "{}",
        done.all()
    );
    let journal = crate::util::tree(&t.path().join("store2"), &[])
        .into_iter()
        .filter(|(k, _)| k.starts_with(".driftless/journal/"))
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(journal.contains("notify-failed"), "{journal}");
}

#[test]
fn bash_completes_commands_and_environment_names() {
    let t = tempfile::tempdir().unwrap();
    let p = Project::with_config(
        t.path(),
        "site = \"site\"\n[env.staging]\nstore = \"file://s\"\n[env.prod]\nstore = \"file://p\"\n",
    );
    let script = format!(
        r#"source <("{BIN}" completions bash) && complete -p driftless &&
COMP_WORDS=(driftless dep); COMP_CWORD=1; _clap_complete_driftless driftless dep driftless; echo "commands: ${{COMPREPLY[*]}}";
COMP_WORDS=(driftless deploy st); COMP_CWORD=2; _clap_complete_driftless driftless st deploy; echo "envs: ${{COMPREPLY[*]}}";
COMP_WORDS=(driftless promote staging ""); COMP_CWORD=3; _clap_complete_driftless driftless "" staging; echo "to: ${{COMPREPLY[*]}}";
COMP_WORDS=(driftless serve st); COMP_CWORD=2; _clap_complete_driftless driftless st serve; echo "serve: ${{COMPREPLY[*]}}";
COMP_WORDS=(driftless deploy prod --force re); COMP_CWORD=4; _clap_complete_driftless driftless re --force; echo "force: ${{COMPREPLY[*]}}";
COMP_WORDS=(driftless deploy prod --force ""); COMP_CWORD=4; _clap_complete_driftless driftless "" --force; echo "guards: ${{COMPREPLY[*]}}""#
    );
    // driftless on PATH, as an install puts it: the script calls it by name.
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .current_dir(&p.dir)
        .env_remove("DRIFTLESS_CONFIG")
        .env("PATH", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("complete -") && stdout.contains(" driftless"),
        "{stdout}"
    );
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line:\n{stdout}"))
            .to_owned()
    };
    assert_eq!(line("commands: ").trim(), "deploy", "{stdout}");
    assert_eq!(line("envs: ").trim(), "staging", "{stdout}");
    let to = line("to: ");
    assert!(to.contains("prod") && to.contains("staging"), "{stdout}");
    // Regression (issue 20.16): serve completes environments, --force the guards, and
    // the script names no resolved path of the binary (a versioned install moves).
    assert!(line("serve: ").contains("staging"), "{stdout}");
    assert_eq!(line("force: ").trim(), "revert", "{stdout}");
    let guards = line("guards: ");
    for g in ["drift", "stale-base", "immutable", "unverified"] {
        assert!(guards.contains(g), "{g}: {stdout}");
    }
    let registration = std::process::Command::new(BIN)
        .args(["completions", "bash"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let registration = String::from_utf8_lossy(&registration.stdout);
    assert!(!registration.contains(BIN), "{registration}");

    for shell in ["zsh", "fish", "powershell"] {
        let d = Run::new(t.path(), &["completions", shell]).expect(0);
        assert!(
            d.stdout.contains("_DRIFTLESS_COMPLETE"),
            "{shell}: {}",
            d.stdout
        );
    }
    Run::new(t.path(), &["completions", "tcsh"]).expect(2);
}

#[test]
fn the_manual_comes_from_the_same_grammar() {
    let t = tempfile::tempdir().unwrap();
    let d = Run::new(t.path(), &["man"]).expect(0);
    assert!(
        d.stdout.contains(".TH driftless") && d.stdout.contains("promote"),
        "{}",
        &d.stdout[..d.stdout.len().min(500)]
    );
    let dir = t.path().join("man1");
    Run::new(t.path(), &["man", "--dir", dir.to_str().unwrap()]).expect(0);
    let deploy = std::fs::read_to_string(dir.join("driftless-deploy.1")).unwrap();
    assert!(deploy.contains("\\-\\-yes"), "{deploy}");
}

#[test]
fn version_names_the_commit_and_the_target() {
    let d = Run::new(repo(), &["--version"]).expect(0);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(head.status.success());
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert!(
        d.stdout
            .starts_with(&format!("driftless 0.1.0 (commit {head}")),
        "{}",
        d.stdout
    );
    let target = format!("{}-", std::env::consts::ARCH);
    let named = d
        .stdout
        .trim_end()
        .trim_end_matches(')')
        .rsplit(", ")
        .next();
    assert!(
        named.is_some_and(|t| t.starts_with(&target) && t.contains(std::env::consts::OS)),
        "{}",
        d.stdout
    );
}

/// The ```toml blocks of a markdown file that are whole configs (they name a site or an
/// environment), each as one file.
fn toml_samples(markdown: &str) -> Vec<String> {
    let mut samples = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => samples.push(current.take().unwrap()),
            (Some(s), _) => {
                s.push_str(line);
                s.push('\n');
            }
            _ => {}
        }
    }
    samples
}

#[test]
fn the_schema_validates_the_examples_and_the_readme() {
    let t = tempfile::tempdir().unwrap();
    let d = Run::new(t.path(), &["schema"]).expect(0);
    let schema = d.json();
    assert_eq!(schema["title"], "driftless.toml", "{schema}");
    let schema_path = t.path().join("schema.json");
    std::fs::write(&schema_path, &d.stdout).unwrap();

    let mut files = vec![
        repo().join("examples/driftless.toml"),
        repo().join("examples/github-actions/driftless.toml"),
    ];
    // The README and the guides it links to.
    let mut readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut guides: Vec<_> = std::fs::read_dir(repo().join("docs/guide"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    guides.sort();
    for g in guides {
        readme.push_str(&std::fs::read_to_string(g).unwrap());
    }
    let samples = toml_samples(&readme);
    assert!(
        samples.len() >= 3,
        "README has {} toml samples",
        samples.len()
    );
    for (i, sample) in samples.iter().enumerate() {
        let f = t.path().join(format!("readme-{i}.toml"));
        std::fs::write(&f, sample).unwrap();
        files.push(f);
    }
    let check = |files: &[std::path::PathBuf]| {
        std::process::Command::new(&tools()["CHECK_JSONSCHEMA"])
            .arg("--schemafile")
            .arg(&schema_path)
            .args(files)
            .output()
            .unwrap()
    };
    let out = check(&files);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The schema is strict: a misspelt key and a wrong type are caught.
    let bad = t.path().join("bad.toml");
    std::fs::write(
        &bad,
        "site = \"site\"\n[env.prod]\nstore = \"file://p\"\nregoin = \"us-east-1\"\n",
    )
    .unwrap();
    assert!(!check(std::slice::from_ref(&bad)).status.success());
    std::fs::write(&bad, "site = \"site\"\n[limits]\nmax_deletes = \"many\"\n").unwrap();
    assert!(!check(&[bad]).status.success());
}

#[test]
fn init_points_the_config_at_its_schema() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("dist")).unwrap();
    Run::new(t.path(), &["init"]).expect(0);
    let config = std::fs::read_to_string(t.path().join("driftless.toml")).unwrap();
    assert_eq!(
        config.lines().next(),
        Some("#:schema ./driftless.schema.json"),
        "{config}"
    );
    let written = std::fs::read_to_string(t.path().join("driftless.schema.json")).unwrap();
    let printed = Run::new(t.path(), &["schema"]).expect(0).stdout;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&written).unwrap(),
        serde_json::from_str::<serde_json::Value>(&printed).unwrap()
    );
    // What init writes is valid against what it points at, including the commented-out
    // samples once uncommented.
    let uncommented: String = config
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.starts_with('[') || rest.contains(" = ") => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let full = t.path().join("uncommented.toml");
    std::fs::write(&full, &uncommented).unwrap();
    let out = std::process::Command::new(&tools()["CHECK_JSONSCHEMA"])
        .arg("--schemafile")
        .arg(t.path().join("driftless.schema.json"))
        .arg(t.path().join("driftless.toml"))
        .arg(&full)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}\n{uncommented}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Action's metadata is what actionlint checks a workflow's `uses: ./` against: a
/// workflow using it with its inputs passes, one naming an input it lacks fails.
#[test]
fn the_action_and_its_example_pass_actionlint() {
    let dir = tempfile::tempdir().unwrap();
    let workflows = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    std::fs::copy(repo().join("action.yml"), dir.path().join("action.yml")).unwrap();
    // actionlint finds local actions from the repository's root.
    crate::util::git(dir.path(), &["init", "-q"]);
    let lint = |body: &str| {
        std::fs::write(workflows.join("t.yml"), body).unwrap();
        std::process::Command::new(&tools()["ACTIONLINT"])
            .args(["-no-color", ".github/workflows/t.yml"])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let good = "on: pull_request\njobs:\n  p:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - id: d\n        uses: ./\n        with:\n          command: preview\n          environment: prod\n      - run: echo \"${{ steps.d.outputs.url }}\"\n";
    let out = lint(good);
    assert!(
        out.status.success(),
        "actionlint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = lint(&good.replace("command: preview", "comand: preview"));
    assert!(
        !out.status.success(),
        "actionlint did not read action.yml (a misspelt input passed)"
    );
}

/// The Action's script, as a pull-request workflow runs it: a fake `GITHUB_*`
/// environment, a local store, and a local HTTP server standing in for the GitHub API. It
/// deploys `pr-7` as a preview, writes the outputs, comments once — and updates that one
/// comment on the next push, never a second — then deletes the preview on close.
#[test]
fn the_action_deploys_a_preview_and_keeps_one_comment_up_to_date() {
    // (id, author, body). Regression (issue 34.9): someone who posts the marker first
    // must not take the comment over (the edit was refused, 403, and the job failed).
    type Comments = Arc<Mutex<Vec<(u64, String, String)>>>;
    let comments: Comments = Arc::new(Mutex::new(vec![
        (1, "octocat".into(), "an unrelated comment".into()),
        (
            2,
            "mallory".into(),
            "<!-- driftless-preview:prod:pr-7 --> look here: https://phish.example".into(),
        ),
    ]));
    let held = comments.clone();
    let (api, hits) = http_server(move |hit| {
        let mut c = held.lock().unwrap();
        let list = || {
            serde_json::json!(
                c.iter()
                    .map(|(id, who, body)| serde_json::json!({"id": id, "user": {"login": who}, "body": body}))
                    .collect::<Vec<_>>()
            )
        };
        match (hit.method.as_str(), hit.path.split('?').next().unwrap()) {
            // A workflow's GITHUB_TOKEN may not read /user.
            ("GET", "/user") => (403, "{}".into()),
            ("GET", "/repos/octo/site/issues/7/comments") => (200, list().to_string()),
            ("POST", "/repos/octo/site/issues/7/comments") => {
                let id = 100 + c.len() as u64;
                c.push((
                    id,
                    "github-actions[bot]".into(),
                    hit.json()["body"].as_str().unwrap().to_owned(),
                ));
                (201, serde_json::json!({ "id": id }).to_string())
            }
            ("PATCH", path) if path.starts_with("/repos/octo/site/issues/comments/") => {
                let id: u64 = path.rsplit('/').next().unwrap().parse().unwrap();
                match c.iter_mut().find(|(i, _, _)| *i == id) {
                    Some(entry) if entry.1 != "github-actions[bot]" => (403, "{}".into()),
                    Some(entry) => {
                        entry.2 = hit.json()["body"].as_str().unwrap().to_owned();
                        (200, serde_json::json!({ "id": id }).to_string())
                    }
                    None => (404, "{}".into()),
                }
            }
            _ => (404, "{}".into()),
        }
    });
    let t = tempfile::tempdir().unwrap();
    let p = Project::atomic(
        &t.path().join("w"),
        &t.path().join("store"),
        "preview_url = \"https://{name}.preview.example.com\"\n",
    );
    p.write("index.html", "live");
    p.cmd(&["deploy", "prod", "--yes"]).expect(0);
    let event = t.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"action":"opened","number":7,"pull_request":{"number":7}}"#,
    )
    .unwrap();
    let outputs = t.path().join("outputs");
    let bin_dir = Path::new(BIN).parent().unwrap();
    let action = |command: &str| {
        std::fs::write(&outputs, "").unwrap();
        std::process::Command::new("bash")
            .arg(repo().join("scripts/action.sh"))
            .arg("run")
            .current_dir(&p.dir)
            .env(
                "PATH",
                format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
            )
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_REPOSITORY", "octo/site")
            .env("GITHUB_API_URL", &api)
            .env("GITHUB_OUTPUT", &outputs)
            .env("GITHUB_SHA", "0123abcd")
            .env("GITHUB_STEP_SUMMARY", t.path().join("summary.md"))
            .env("INPUT_COMMAND", command)
            .env("INPUT_ENVIRONMENT", "prod")
            .env("INPUT_COMMENT", "true")
            .env("INPUT_GITHUB_TOKEN", "t0ken")
            .env("DRIFTLESS_AUTHOR", "Alice <alice@example.com>")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let ran = |command: &str| {
        let out = action(command);
        assert!(
            out.status.success(),
            "action.sh run ({command}) failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(&outputs).unwrap()
    };

    p.write("index.html", "the change under review");
    let first = ran("preview");
    assert!(
        first.contains("url=https://pr-7.preview.example.com\n"),
        "{first}"
    );
    let release = first
        .lines()
        .find_map(|l| l.strip_prefix("release="))
        .unwrap()
        .to_owned();
    assert!(
        t.path()
            .join(format!("store/.driftless/releases/{release}.json"))
            .exists()
    );
    {
        let c = comments.lock().unwrap();
        assert_eq!(c.len(), 3, "{c:?}");
        let body = &c[2].2;
        for needle in [
            "<!-- driftless-preview:prod:pr-7 -->",
            "https://pr-7.preview.example.com",
            release.as_str(),
            "0123abcd",
            "0 created, 1 updated, 0 deleted, 0 unchanged against live",
            "driftless deploy prod --from-preview pr-7",
        ] {
            assert!(body.contains(needle), "{needle:?} not in {body}");
        }
    }
    // The next push: the same comment, updated.
    p.write("index.html", "the change, amended");
    let second = ran("preview");
    assert_ne!(second, first);
    {
        let c = comments.lock().unwrap();
        assert_eq!(c.len(), 3, "a second comment: {c:?}");
        assert!(
            c[2].2.contains(
                second
                    .lines()
                    .find_map(|l| l.strip_prefix("release="))
                    .unwrap()
            )
        );
        assert_eq!(c[0].2, "an unrelated comment");
        assert!(
            c[1].2.contains("phish"),
            "someone else's comment was edited"
        );
    }
    assert!(
        hits.lock()
            .unwrap()
            .iter()
            .all(|h| h.header("authorization") == Some("Bearer t0ken"))
    );
    // Closed: the preview goes, the comment says so.
    ran("delete-preview");
    assert!(!t.path().join("store/previews/pr-7").exists());
    let c = comments.lock().unwrap();
    assert_eq!(c.len(), 3, "{c:?}");
    assert!(c[2].2.contains("was deleted"), "{}", c[2].2);
    drop(c);
    // Regression (issue 34.9): `args` are split on spaces, never expanded as file names.
    std::fs::write(p.dir.join("a-file-the-glob-would-find"), "").unwrap();
    let out = {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg(repo().join("scripts/action.sh"))
            .arg("run")
            .current_dir(&p.dir)
            .env(
                "PATH",
                format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
            )
            .env("INPUT_COMMAND", "deploy")
            .env("INPUT_ENVIRONMENT", "prod")
            .env("INPUT_ARGS", "-m *")
            .env("DRIFTLESS_AUTHOR", "Alice <alice@example.com>")
            .env_remove("GITHUB_EVENT_PATH")
            .stdin(std::process::Stdio::null());
        cmd.output().unwrap()
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = p.cmd(&["log", "prod", "--json"]).expect(0).json();
    assert_eq!(log["releases"][0]["message"], "*", "{log}");
}
