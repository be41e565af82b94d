//! A release's `[edge]` rules and routing facts as CloudFront's KeyValueStore holds them:
//! the data the (release-independent) viewer-request function reads, so that a release's
//! rules go live with the one pointer write that makes its content live.
//!
//! - The **root** (a small JSON object) travels inside the pointer's value (and a
//!   preview's, and a canary's split): the directory index, the SPA fallback, which
//!   paths need a token, the redirects that can match any first segment, and where the
//!   rest is. One read gives the function a release's slot, cache id and rules together.
//! - The **table**: every fact looked up by path — directories with an index page,
//!   extension-less files, exact redirects, and the redirect patterns under a first
//!   segment — in buckets of at most 1 KB (a KeyValueStore value's limit), one bucket
//!   per path: a request that needs one reads one. Paths are grouped by their first
//!   segment, so a pattern redirect sits in the bucket of every path it can match; a
//!   group too large for one bucket is spread over buckets of its own.
//! - **Headers** (`[edge] headers`): one value the viewer-response function reads.
//!
//! Every key is named by its content (SHA-256), so releases that share a table share its
//! keys, and a release whose buckets mostly match the live table's names only the ones
//! that differ (overrides, in the root): a one-file change writes nothing, a new
//! directory one bucket. What does not fit is refused here, at plan time, with the
//! numbers — never at the edge.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::{EdgeConfig, Part, Pattern};

/// The most bytes a KeyValueStore value holds.
pub const VALUE_MAX: usize = 1024;
/// The most bytes of a root: two fit in the pointer with a canary's split.
pub const ROOT_MAX: usize = 440;
/// A group whose facts take more than this gets buckets of its own.
const GROUP_MAX: usize = 640;
/// The most bytes of redirect patterns under one first segment (they are in each of
/// its buckets).
const PATTERNS_MAX: usize = 600;
/// Buckets a table may have (20,000 directories take about 200).
const BUCKETS_MAX: u32 = 4096;
/// Overrides of the live table kept in a root before a table of its own is written.
const OVERRIDES_MAX: usize = 12;

/// The KeyValueStore prefixes of the edge data (never a preview's or a secret's).
pub const TABLE_PREFIX: &str = "t:";
pub const BUCKET_PREFIX: &str = "u:";
pub const HEADERS_PREFIX: &str = "h:";

/// How a table is cut into buckets, and what its buckets hold (by content hash): kept
/// with the slot (or preview) whose release it routes, so the next release can name
/// only the buckets that differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The table's id: its buckets are the keys `t:ID:NAME`.
    pub tid: String,
    /// Buckets of the groups that share them.
    pub n: u32,
    /// Groups spread over buckets of their own: group → how many.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, u32>,
    /// Bucket name → SHA-256 (hex, 10) of its value, for the buckets that hold anything.
    pub buckets: BTreeMap<String, String>,
}

/// A release's edge data, compiled.
#[derive(Debug, Clone)]
pub struct EdgeData {
    /// Into the pointer's value.
    pub root: serde_json::Value,
    /// Every key the root needs, with its value.
    pub values: BTreeMap<String, String>,
    /// The table's layout (`None`: nothing to look up).
    pub layout: Option<Layout>,
}

impl EdgeData {
    /// The root as it goes into a value.
    pub fn root_text(&self) -> String {
        self.root.to_string()
    }

    /// The bytes of every value it needs.
    pub fn bytes(&self) -> usize {
        self.values.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

fn sha(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// The first 4 bytes of SHA-256 as a number, as the function reads them (`parseInt` of
/// the first 8 hex digits).
fn hash_n(s: &str) -> u32 {
    let h = sha(s);
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

/// A path's id in a bucket: 8 characters of its SHA-256 in base64 (48 bits).
fn hash_id(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha(s))[..8].to_owned()
}

fn hex10(s: &str) -> String {
    hex::encode(sha(s))[..10].to_owned()
}

/// What one path of the table is.
#[derive(Debug, Default, Clone)]
struct Facts {
    dir: bool,
    file: bool,
    /// An exact redirect from it: (order, status, location).
    redirect: Option<(usize, u16, String)>,
}

/// A redirect pattern as the function takes it: `[order, [segments], splat, status, to]`.
fn pattern_json(order: usize, p: &Pattern, status: u16, to: &str) -> serde_json::Value {
    let parts: Vec<String> = p
        .parts
        .iter()
        .map(|x| match x {
            Part::Literal(l) => l.clone(),
            Part::Param(n) => format!(":{n}"),
        })
        .collect();
    serde_json::json!([
        order,
        parts,
        u8::from(p.splat),
        status,
        crate::config::location_literal(to)
    ])
}

/// One bucket's value from its paths' facts and its patterns.
fn bucket_value(paths: &[(&String, &Facts)], patterns: &[&serde_json::Value]) -> String {
    let (mut d, mut f) = (String::new(), String::new());
    let mut x = serde_json::Map::new();
    for (k, facts) in paths {
        let id = hash_id(k);
        if facts.dir {
            d.push_str(&id);
        }
        if facts.file {
            f.push_str(&id);
        }
        if let Some((o, status, to)) = &facts.redirect {
            x.insert(id, serde_json::json!([o, status, to]));
        }
    }
    let mut v = serde_json::Map::new();
    if !d.is_empty() {
        v.insert("d".into(), d.into());
    }
    if !f.is_empty() {
        v.insert("f".into(), f.into());
    }
    if !x.is_empty() {
        v.insert("x".into(), x.into());
    }
    if !patterns.is_empty() {
        v.insert(
            "p".into(),
            serde_json::Value::Array(patterns.iter().map(|p| (*p).clone()).collect()),
        );
    }
    if v.is_empty() {
        return String::new();
    }
    serde_json::Value::Object(v).to_string()
}

/// The group of a path: its first segment.
fn group_of(k: &str) -> &str {
    k.split('/').next().unwrap_or("")
}

/// The bucket a path of group `g` is in, under a layout.
fn bucket_name(k: &str, g: &str, n: u32, groups: &BTreeMap<String, u32>) -> String {
    match groups.get(g) {
        Some(m) => format!("{}.{}", hex10(g), hash_n(k) % m),
        None => (hash_n(g) % n).to_string(),
    }
}

/// Every bucket's value under a layout (`n`, `groups`), or the first one over the limit.
fn cut(
    paths: &BTreeMap<String, Facts>,
    patterns: &BTreeMap<String, Vec<serde_json::Value>>,
    n: u32,
    groups: &BTreeMap<String, u32>,
) -> Result<BTreeMap<String, String>, (String, usize)> {
    let mut by: BTreeMap<String, Vec<(&String, &Facts)>> = BTreeMap::new();
    for (k, f) in paths {
        by.entry(bucket_name(k, group_of(k), n, groups))
            .or_default()
            .push((k, f));
    }
    // Patterns go with every bucket their group's paths can be in.
    let mut pats: BTreeMap<String, Vec<&serde_json::Value>> = BTreeMap::new();
    for (g, list) in patterns {
        let names: Vec<String> = match groups.get(g) {
            Some(m) => (0..*m).map(|j| format!("{}.{j}", hex10(g))).collect(),
            None => vec![(hash_n(g) % n).to_string()],
        };
        for name in names {
            pats.entry(name).or_default().extend(list.iter());
        }
    }
    let names: BTreeSet<String> = by.keys().chain(pats.keys()).cloned().collect();
    let mut out = BTreeMap::new();
    for name in names {
        let mut p = pats.get(&name).cloned().unwrap_or_default();
        p.sort_by_key(|v| v[0].as_u64());
        let v = bucket_value(by.get(&name).map_or(&[][..], Vec::as_slice), &p);
        if v.len() > VALUE_MAX {
            return Err((name, v.len()));
        }
        if !v.is_empty() {
            out.insert(name, v);
        }
    }
    Ok(out)
}

/// The bytes a path's facts take in a bucket.
fn facts_bytes(f: &Facts) -> usize {
    usize::from(f.dir) * 8
        + usize::from(f.file) * 8
        + f.redirect.as_ref().map_or(0, |(_, _, to)| to.len() + 24)
}

/// Compile `edge` for a release of `keys`, its table cut as `base` is where it still
/// fits (so it can name only the buckets that differ from `base`'s).
pub fn compile<'a>(
    edge: &EdgeConfig,
    keys: impl Iterator<Item = &'a str>,
    base: Option<&Layout>,
) -> Result<EdgeData, String> {
    let keys: Vec<&str> = keys.collect();
    compile_keys(edge, &keys, base)
}

fn compile_keys(
    edge: &EdgeConfig,
    keys: &[&str],
    base: Option<&Layout>,
) -> Result<EdgeData, String> {
    let index = edge.directory_index.as_str();
    let mut paths: BTreeMap<String, Facts> = BTreeMap::new();
    let mut has_spa = false;
    for &k in keys {
        if let Some(dir) = k.strip_suffix(index)
            && (dir.is_empty() || dir.ends_with('/'))
        {
            paths
                .entry(dir.trim_end_matches('/').to_owned())
                .or_default()
                .dir = true;
        }
        if !crate::keys::has_extension(k) {
            paths.entry(k.to_owned()).or_default().file = true;
        }
        has_spa |= edge.spa_fallback.as_deref() == Some(k);
    }
    if let Some(bad) = paths.keys().find(|k| k.contains('\n')) {
        return Err(format!(
            "{bad:?}: a key with a newline cannot be routed at the edge"
        ));
    }
    let dotted_dirs = paths
        .iter()
        .any(|(k, f)| f.dir && crate::keys::has_extension(k));
    // Redirects: exact ones into the table by path, patterns by their first segment
    // (in every bucket of it), or into the root when any first segment can match.
    let mut exact = 0;
    let mut patterns: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let mut anywhere = Vec::new();
    for (i, r) in edge.redirects.iter().enumerate() {
        let p = Pattern::parse(&r.from).map_err(|e| format!("edge.redirects[{i}].from: {e}"))?;
        let literal: Option<Vec<&str>> = p
            .parts
            .iter()
            .map(|x| match x {
                Part::Literal(l) => Some(l.as_str()),
                Part::Param(_) => None,
            })
            .collect();
        match (literal, p.splat, p.parts.first()) {
            (Some(segs), false, _) => {
                let f = paths.entry(segs.join("/")).or_default();
                // The first rule for a path wins.
                if f.redirect.is_none() {
                    f.redirect = Some((i, r.status, crate::config::location_literal(&r.to)));
                    exact += 1;
                }
            }
            (_, _, Some(Part::Literal(first))) => patterns
                .entry(first.clone())
                .or_default()
                .push(pattern_json(i, &p, r.status, &r.to)),
            _ => anywhere.push(pattern_json(i, &p, r.status, &r.to)),
        }
    }
    for (g, list) in &patterns {
        let bytes: usize = list.iter().map(|p| p.to_string().len() + 1).sum();
        if bytes > PATTERNS_MAX {
            return Err(format!(
                "the {} redirect patterns under /{g}/ take {bytes} bytes; at most {PATTERNS_MAX} fit in each KeyValueStore value the edge reads for a path there: fewer patterns under /{g}/ (exact redirects have no such limit)",
                list.len()
            ));
        }
    }
    let table = if paths.is_empty() && patterns.is_empty() {
        None
    } else {
        Some(layout(&paths, &patterns, base)?)
    };
    let mut values = BTreeMap::new();
    let mut root = serde_json::Map::new();
    if index != "index.html" {
        root.insert("i".into(), index.into());
    }
    if let (Some(spa), true) = (&edge.spa_fallback, has_spa) {
        root.insert(
            "s".into(),
            format!("/{}", crate::store::encode_key(spa)).into(),
        );
    }
    if let Some((l, buckets, overrides)) = &table {
        root.insert("t".into(), l.tid.clone().into());
        root.insert("n".into(), l.n.into());
        if !l.groups.is_empty() {
            root.insert("g".into(), serde_json::to_value(&l.groups).expect("json"));
        }
        if !overrides.is_empty() {
            root.insert("o".into(), serde_json::to_value(overrides).expect("json"));
        }
        for (name, v) in buckets {
            match overrides.get(name) {
                Some(h) if !h.is_empty() => {
                    values.insert(format!("{BUCKET_PREFIX}{h}"), v.clone());
                }
                Some(_) => {}
                None => {
                    values.insert(format!("{TABLE_PREFIX}{}:{name}", l.tid), v.clone());
                }
            }
        }
        if exact > 0 || !patterns.is_empty() {
            root.insert("x".into(), 1.into());
        }
        if dotted_dirs {
            root.insert("d".into(), 1.into());
        }
    }
    if !anywhere.is_empty() {
        root.insert("r".into(), serde_json::Value::Array(anywhere));
    }
    if let Some(a) = &edge.auth
        && !a.protect.is_empty()
    {
        let regexes = |list: &[String]| -> Result<Vec<String>, String> {
            list.iter()
                .map(|p| crate::config::PathGlob::parse(p).map(|g| g.js_regex()))
                .collect()
        };
        root.insert("p".into(), regexes(&a.protect)?.into());
        if !a.public.is_empty() {
            root.insert("q".into(), regexes(&a.public)?.into());
        }
    }
    if !edge.headers.is_empty() {
        let v = serde_json::to_string(&edge.headers).expect("json");
        if v.len() > VALUE_MAX {
            return Err(format!(
                "the [edge] headers take {} bytes; the KeyValueStore value they are served from holds {VALUE_MAX}: shorter values (a Content-Security-Policy can move to a <meta> tag)",
                v.len()
            ));
        }
        let id = hex10(&v);
        values.insert(format!("{HEADERS_PREFIX}{id}"), v);
        root.insert("h".into(), id.into());
    }
    let root = serde_json::Value::Object(root);
    let size = root.to_string().len();
    // Overrides of the live table take room in the root: past it, a table of its own.
    if size > ROOT_MAX && base.is_some() && root.get("o").is_some() {
        return compile_keys(edge, keys, None);
    }
    if size > ROOT_MAX {
        return Err(format!(
            "the edge rules of this release take {size} bytes of the live pointer, which holds at most {ROOT_MAX} per release (two releases share it during a canary): {} protected and {} public path pattern(s), {} redirect pattern(s) that start with a placeholder, {} large top-level folder(s) — fewer of them fit",
            edge.auth.as_ref().map_or(0, |a| a.protect.len()),
            edge.auth.as_ref().map_or(0, |a| a.public.len()),
            root.get("r").and_then(|r| r.as_array()).map_or(0, Vec::len),
            table.as_ref().map_or(0, |(l, _, _)| l.groups.len())
        ));
    }
    Ok(EdgeData {
        root,
        values,
        layout: table.map(|(l, _, _)| l),
    })
}

type Cut = (Layout, BTreeMap<String, String>, BTreeMap<String, String>);

/// The table's layout and buckets: `base`'s cut, naming only the buckets that differ
/// (overrides), when it still fits and few differ; else a cut of its own.
fn layout(
    paths: &BTreeMap<String, Facts>,
    patterns: &BTreeMap<String, Vec<serde_json::Value>>,
    base: Option<&Layout>,
) -> Result<Cut, String> {
    if let Some(b) = base
        && let Ok(buckets) = cut(paths, patterns, b.n, &b.groups)
    {
        let mut overrides = BTreeMap::new();
        for (name, v) in &buckets {
            let h = hex10(v);
            if b.buckets.get(name) != Some(&h) {
                overrides.insert(name.clone(), h);
            }
        }
        for name in b.buckets.keys() {
            if !buckets.contains_key(name) {
                // Empty now: no read at all.
                overrides.insert(name.clone(), String::new());
            }
        }
        if overrides.len() <= OVERRIDES_MAX {
            return Ok((b.clone(), buckets, overrides));
        }
    }
    // Groups over the limit get buckets of their own, as many as they need.
    let mut size: BTreeMap<&str, usize> = BTreeMap::new();
    for (k, f) in paths {
        *size.entry(group_of(k)).or_default() += facts_bytes(f);
    }
    let pattern_bytes = |g: &str| -> usize {
        patterns
            .get(g)
            .map_or(0, |l| l.iter().map(|p| p.to_string().len() + 1).sum())
    };
    let mut groups = BTreeMap::new();
    let mut shared = 0;
    for (g, bytes) in &size {
        if bytes + pattern_bytes(g) > GROUP_MAX {
            let room = (VALUE_MAX - 64).saturating_sub(pattern_bytes(g)).max(64);
            let m = u32::try_from(bytes.div_ceil(room) * 3 / 2 + 1).unwrap_or(u32::MAX);
            groups.insert((*g).to_owned(), m);
        } else {
            shared += bytes + pattern_bytes(g);
        }
    }
    let mut n = u32::try_from(shared.div_ceil(GROUP_MAX))
        .unwrap_or(1)
        .max(1);
    loop {
        match cut(paths, patterns, n, &groups) {
            Ok(buckets) => {
                let total: u32 = n + groups.values().sum::<u32>();
                if total > BUCKETS_MAX {
                    return Err(format!(
                        "the site's routing table needs {total} KeyValueStore values (directories with an index page, extension-less files and redirects: {} paths); at most {BUCKETS_MAX}",
                        paths.len()
                    ));
                }
                let mut id = Sha256::new();
                for (name, v) in &buckets {
                    id.update(name.as_bytes());
                    id.update(b"\n");
                    id.update(v.as_bytes());
                    id.update(b"\n");
                }
                id.update(format!("{n} {groups:?}").as_bytes());
                let tid = hex::encode(id.finalize())[..10].to_owned();
                let hashes = buckets.iter().map(|(k, v)| (k.clone(), hex10(v))).collect();
                let layout = Layout {
                    tid,
                    n,
                    groups,
                    buckets: hashes,
                };
                return Ok((layout, buckets, BTreeMap::new()));
            }
            Err((name, _)) => {
                // A shared bucket over the limit: more of them; a group's: more for it.
                let grew = groups
                    .iter_mut()
                    .find(|(g, _)| name.starts_with(&format!("{}.", hex10(g))));
                match grew {
                    Some((_, m)) => *m *= 2,
                    None => n *= 2,
                }
                if n > BUCKETS_MAX || groups.values().any(|m| *m > BUCKETS_MAX) {
                    return Err(format!(
                        "the site's routing table does not fit {BUCKETS_MAX} KeyValueStore values of {VALUE_MAX} bytes ({} paths with an index page, without an extension, or redirected)",
                        paths.len()
                    ));
                }
            }
        }
    }
}

/// The layout kept with a slot's or preview's edge data (`{"root", "layout", "rules"}`).
pub fn layout_in(held: &serde_json::Value) -> Option<Layout> {
    held.get("layout")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
}

/// Every edge key `root` names (its table's buckets, overrides and headers): what must
/// be in the KeyValueStore while a pointer, a canary or a preview carries it.
pub fn needed(root: &serde_json::Value, layout: Option<&Layout>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(h) = root.get("h").and_then(|h| h.as_str()) {
        out.insert(format!("{HEADERS_PREFIX}{h}"));
    }
    let overrides = root.get("o").and_then(|o| o.as_object());
    if let Some(o) = overrides {
        for h in o
            .values()
            .filter_map(|h| h.as_str())
            .filter(|h| !h.is_empty())
        {
            out.insert(format!("{BUCKET_PREFIX}{h}"));
        }
    }
    if let (Some(l), Some(t)) = (layout, root.get("t").and_then(|t| t.as_str())) {
        for name in l.buckets.keys() {
            if overrides.is_none_or(|o| !o.contains_key(name)) {
                out.insert(format!("{TABLE_PREFIX}{t}:{name}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(toml: &str) -> EdgeConfig {
        toml::from_str(toml).unwrap()
    }

    /// A one-file change writes nothing new; a new directory one bucket, named in the
    /// root; most releases share the live table's keys.
    #[test]
    fn releases_share_the_table_and_name_what_differs() {
        let e = edge("spa_fallback = \"index.html\"\n");
        let mut keys: Vec<String> = (0..3000).map(|i| format!("docs/p{i}/index.html")).collect();
        keys.push("index.html".into());
        let first = compile(&e, keys.iter().map(String::as_str), None).unwrap();
        let l = first.layout.clone().unwrap();
        assert!(first.values.values().all(|v| v.len() <= VALUE_MAX));
        assert!(first.root_text().len() <= ROOT_MAX, "{}", first.root_text());
        // The same shape: the same keys.
        let same = compile(&e, keys.iter().map(String::as_str), Some(&l)).unwrap();
        assert_eq!(same.values, first.values);
        assert!(same.root.get("o").is_none());
        // One directory more: one bucket overridden.
        keys.push("docs/new/index.html".into());
        let more = compile(&e, keys.iter().map(String::as_str), Some(&l)).unwrap();
        let new: Vec<&String> = more
            .values
            .keys()
            .filter(|k| !first.values.contains_key(*k))
            .collect();
        assert_eq!(new.len(), 1, "{new:?}");
        assert!(new[0].starts_with(BUCKET_PREFIX));
        assert_eq!(more.root["o"].as_object().unwrap().len(), 1);
    }

    /// Patterns go with the buckets of their first segment; those starting with a
    /// placeholder into the root; exact redirects by path.
    #[test]
    fn redirects_are_placed_where_one_read_finds_them() {
        let e = edge(
            "redirects = [\n{ from = \"/old\", to = \"/new\" },\n{ from = \"/blog/:slug\", to = \"/posts/:slug\" },\n{ from = \"/:lang/docs/*\", to = \"/docs/:splat\" },\n]\n",
        );
        let d = compile(&e, ["index.html", "blog/index.html"].into_iter(), None).unwrap();
        assert_eq!(d.root["r"].as_array().unwrap().len(), 1, "{}", d.root);
        let all: String = d.values.values().cloned().collect();
        assert!(all.contains("\"/posts/:slug\""), "{all}");
        assert!(all.contains("\"/new\""), "{all}");
        assert_eq!(d.root["x"], 1);
    }

    #[test]
    fn what_does_not_fit_is_refused_with_the_numbers() {
        let mut e = EdgeConfig::default();
        e.headers
            .insert("Content-Security-Policy".into(), "x".repeat(2000));
        let err = compile(&e, ["index.html"].into_iter(), None).unwrap_err();
        assert!(err.contains("headers take"), "{err}");
        let e = edge(&format!(
            "redirects = [{}]\n",
            (0..40)
                .map(|i| format!(
                    "{{ from = \"/blog/:y{i}/x\", to = \"/posts/:y{i}/some/long/target/path\" }}"
                ))
                .collect::<Vec<_>>()
                .join(",")
        ));
        let err = compile(&e, ["index.html"].into_iter(), None).unwrap_err();
        assert!(err.contains("under /blog/"), "{err}");
    }
}
