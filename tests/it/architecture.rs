//! The layout keeps its shape: a tidy-style test that reads `src/` as text.
//!
//! - every room (a top-level module of `src/`) imports only rooms below it in [`LAYERS`];
//! - the AWS SDK is reached only from `src/aws/` and the S3 store;
//! - HEAD and release records are written only from `src/apply/`;
//! - what goes to CloudFront (functions, policies, the distribution, the KeyValueStore's
//!   edge data and secrets) is written only from `src/apply/edge/`;
//! - the files of one room do not import each other in a circle;
//! - no source file is over [`LINES_MAX`] lines.
//!
//! `docs/architecture.md` explains the layers; change both together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The rooms, lowest first. A room may use any room before it, never one after it.
const LAYERS: &[&str] = &[
    // Leaves: helpers with no knowledge of deploys.
    "text",
    "digest",
    "keys",
    "verdict",
    "interrupt",
    "failpoint",
    "git",
    // The stages, in the order a deploy meets them.
    "config",
    "aws",
    "store",
    "site",
    "ledger",
    "edge",
    "plan",
    "apply",
    "check",
    // The user interface, then the commands that drive everything.
    "ui",
    "cli",
    "commands",
];

/// Items of the crate root any room may name (the one error type).
const ROOT_ITEMS: &[&str] = &["Error"];

/// Files allowed to name the AWS SDK crates.
const SDK_HOMES: &[&str] = &["aws/", "store/s3/"];
const SDK_CRATES: &[&str] = &[
    "aws_sdk_",
    "aws_config",
    "aws_smithy_",
    "aws_credential_types",
    "aws_types",
];

/// The writers of HEAD, of release records and of the live pointer (atomic layout), and
/// the rooms allowed to call them (`ledger/` defines them and tests them).
const WRITERS: &[&str] = &[".swap_head(", ".write_release(", ".switch_pointer("];
const WRITER_HOMES: &[&str] = &["apply/", "ledger/"];

/// The calls that write to CloudFront (besides the pointer, a preview's value and a
/// canary's split, which `apply/` writes through the ledger), and their one home.
const EDGE_WRITERS: &[&str] = &[
    ".publish_function(",
    ".update_distribution(",
    ".put_policy(",
    ".ensure_cache_policy(",
    ".ensure_signer(",
    ".create_key_value_store(",
    ".put_edge_values(",
    ".delete_edge_values(",
];
const EDGE_HOMES: &[&str] = &["apply/edge/", "aws/", "ledger/"];

#[test]
fn rooms_import_only_rooms_below_them() {
    let files = sources();
    let problems: Vec<String> = files
        .iter()
        .flat_map(|(path, code)| layer_violations(path, code))
        .collect();
    assert!(problems.is_empty(), "{}", report(&problems));
}

#[test]
fn the_aws_sdk_is_reached_only_from_aws_and_the_s3_store() {
    let problems = outside(SDK_HOMES, |path, code| {
        let ids: Vec<String> = identifiers(code).collect();
        SDK_CRATES
            .iter()
            .filter(|krate| ids.iter().any(|id| id.starts_with(**krate)))
            .map(|krate| format!("src/{path} names `{krate}…`: call it through src/aws/"))
            .collect()
    });
    assert!(problems.is_empty(), "{}", report(&problems));
}

#[test]
fn only_apply_writes_head_and_release_records() {
    let problems = outside(WRITER_HOMES, |path, code| {
        let code = code_only(code);
        WRITERS
            .iter()
            .filter(|writer| code.contains(**writer))
            .map(|writer| {
                format!(
                    "src/{path} calls `{writer}…)`: releases and HEAD are written by apply/ alone"
                )
            })
            .collect()
    });
    assert!(problems.is_empty(), "{}", report(&problems));
}

/// What `check` finds in every source file outside `homes`.
fn outside(homes: &[&str], check: impl Fn(&str, &str) -> Vec<String>) -> Vec<String> {
    sources()
        .iter()
        .filter(|(path, _)| !homes.iter().any(|home| path.starts_with(home)))
        .flat_map(|(path, code)| check(path, code))
        .collect()
}

/// A file a newcomer can read through: past this, split it by concern.
const LINES_MAX: usize = 900;

#[test]
fn no_source_file_is_over_the_line_limit() {
    let long: Vec<String> = sources()
        .iter()
        .map(|(path, code)| (path, code.lines().count()))
        .filter(|(_, n)| *n > LINES_MAX)
        .map(|(path, n)| {
            format!("src/{path}: {n} lines (at most {LINES_MAX}): split it by concern")
        })
        .collect();
    assert!(long.is_empty(), "{}", report(&long));
}

/// "What goes to CloudFront, when, and in which order with the switch" has one home.
#[test]
fn cloudfront_is_written_from_apply_edge_alone() {
    let problems = outside(EDGE_HOMES, |path, code| {
        let code = code_only(code);
        EDGE_WRITERS
            .iter()
            .filter(|writer| code.contains(**writer))
            .map(|writer| {
                format!(
                    "src/{path} calls `{writer}…)`: what goes to CloudFront is written by apply/edge/ alone"
                )
            })
            .collect()
    });
    assert!(problems.is_empty(), "{}", report(&problems));
}

#[test]
fn files_of_a_room_do_not_import_each_other_in_a_circle() {
    let files = sources();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, code) in &files {
        let Some((dir, _)) = path.rsplit_once('/') else {
            continue;
        };
        if path.ends_with("/mod.rs") {
            continue; // mod.rs declares its siblings; their `super::` items point back.
        }
        for sibling in sibling_uses(code) {
            let target = format!("{dir}/{sibling}.rs");
            if files.contains_key(&target) && target != *path {
                edges.entry(path.clone()).or_default().insert(target);
            }
        }
    }
    let circle = find_circle(&edges);
    assert!(
        circle.is_none(),
        "files import each other in a circle: {}\nmove what both need into a shared file",
        circle.unwrap_or_default().join(" → ")
    );
}

/// The checker itself catches what it is meant to catch.
#[test]
fn the_checks_see_an_upward_import_and_ignore_comments_and_strings() {
    let upward = "use crate::store::Store;\nuse crate::ui::Output;\n";
    let found = layer_violations("ledger/mod.rs", upward);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("`ledger` imports `ui`"), "{found:?}");

    let grouped = "use crate::{config::Config, commands::Ctx};";
    assert_eq!(layer_violations("plan/build.rs", grouped).len(), 1);

    let inert = "// crate::ui::Output\n/* crate::commands */ let s = \"crate::ui\"; let c = '\"';\nlet r = r#\"crate::cli\"#;";
    assert!(layer_violations("ledger/mod.rs", inert).is_empty());

    let unknown = "crate::frobnicate::go();";
    assert_eq!(layer_violations("plan/mod.rs", unknown).len(), 1);

    let mut circle = BTreeMap::new();
    circle.insert("c/a.rs".to_owned(), BTreeSet::from(["c/b.rs".to_owned()]));
    circle.insert("c/b.rs".to_owned(), BTreeSet::from(["c/a.rs".to_owned()]));
    assert_eq!(find_circle(&circle).map(|c| c.len()), Some(3));
}

fn layer_violations(path: &str, code: &str) -> Vec<String> {
    let room = room_of(path);
    let Some(level) = level_of(&room) else {
        return vec![format!(
            "src/{path}: room `{room}` is not in LAYERS (tests/it/architecture.rs)"
        )];
    };
    let mut problems = Vec::new();
    for target in crate_paths(code) {
        if target == room || ROOT_ITEMS.contains(&target.as_str()) {
            continue;
        }
        match level_of(&target) {
            Some(to) if to < level => {}
            Some(_) => problems.push(format!(
                "src/{path}: `{room}` imports `{target}`, which sits above it in the layers \
                 ({}); move the shared piece down or pass it in",
                LAYERS.join(" < ")
            )),
            None => problems.push(format!(
                "src/{path}: `crate::{target}` is neither a room in LAYERS nor a root item"
            )),
        }
    }
    problems
}

fn level_of(room: &str) -> Option<usize> {
    if room == "lib" || room == "main" {
        return Some(LAYERS.len());
    }
    LAYERS.iter().position(|r| *r == room)
}

fn room_of(path: &str) -> String {
    let first = path.split('/').next().unwrap_or(path);
    first.trim_end_matches(".rs").to_owned()
}

/// The first segment of every `crate::…` path, including each branch of `crate::{a, b::c}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let code = code_only(code);
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + "crate::".len()..];
        if preceded_by_ident {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = closing_brace(group);
            for branch in split_top_level(&group[..end]) {
                if let Some(name) = leading_ident(branch.trim()) {
                    found.insert(name.to_owned());
                }
            }
        } else if let Some(name) = leading_ident(rest) {
            found.insert(name.to_owned());
        }
    }
    found
}

/// Names used as `super::name` (a sibling file of the same folder).
fn sibling_uses(code: &str) -> BTreeSet<String> {
    let code = code_only(code);
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("super::") {
        rest = &rest[at + "super::".len()..];
        if rest.starts_with("super::") {
            rest = &rest["super::".len()..]; // a grandparent path, outside this room's files
            continue;
        }
        if let Some(name) = leading_ident(rest) {
            found.insert(name.to_owned());
        }
    }
    found
}

fn identifiers(code: &str) -> impl Iterator<Item = String> {
    code_only(code)
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter()
}

fn leading_ident(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

fn closing_brace(s: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The code with comments, string literals and char literals blanked out, so only real
/// paths are seen.
fn code_only(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            i += 2 + hashes;
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < chars.len() && !chars[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\'') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// One circle in a directed graph, as the path that closes it, if any.
fn find_circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut circle = stack[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, stack, done) {
                return Some(circle);
            }
        }
        stack.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|start| visit(start, edges, &mut Vec::new(), &mut done))
}

/// Every `.rs` file under `src/`, keyed by its path relative to `src/` with `/` separators.
fn sources() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src/") {
            let path: PathBuf = entry.expect("read src/ entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&root).expect("under src/");
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let code = std::fs::read_to_string(&path).expect("read a source file");
                files.insert(rel, code);
            }
        }
    }
    assert!(files.len() > 20, "src/ looks empty: {}", root.display());
    files
}

fn report(problems: &[String]) -> String {
    format!(
        "{} layout problem(s) (see docs/architecture.md):\n  {}",
        problems.len(),
        problems.join("\n  ")
    )
}
