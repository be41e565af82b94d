//! What goes to the edge with a release, behind CloudFront: its rules and routing facts
//! (`edge::table`), written to the KeyValueStore *before* the one pointer write that
//! makes the release live — the pointer's value then names the release's root, so its
//! content and its rules go live together — and removed once nothing names them.
//!
//! Every write is conditional on the pointer's token (the store-wide ETag), in a chain
//! that ends with the pointer's own write: another run's write in between refuses the
//! switch, as it did before the rules travelled with it. Where the pointer carries no
//! rules (a `file://` or S3 pointer: `serve` and a web server read the release) this
//! does nothing.

use std::collections::BTreeSet;

use crate::Error;
use crate::config::{EdgeConfig, EdgeRules};
use crate::edge::table::{Layout, compile, needed};
use crate::ledger::{Ledger, Release};

/// A release's edge data as it was published: kept with the slot or preview that holds
/// the release (`Held::edge`, `Preview::edge`).
pub(crate) fn held(
    root: &serde_json::Value,
    layout: Option<&Layout>,
    rules: &EdgeRules,
) -> serde_json::Value {
    serde_json::json!({ "root": root, "layout": layout, "rules": rules.digest() })
}

fn layout_of(held: &serde_json::Value) -> Option<Layout> {
    crate::edge::table::layout_in(held)
}

fn needed_by(held: &serde_json::Value) -> BTreeSet<String> {
    match held.get("root") {
        Some(root) => needed(root, layout_of(held).as_ref()),
        None => BTreeSet::new(),
    }
}

/// Was `held` published for these rules?
pub(crate) fn same_rules(held: &serde_json::Value, rules: &EdgeRules) -> bool {
    held.get("rules").and_then(|r| r.as_str()) == Some(rules.digest().as_str())
}

/// Every key the edge data of the slots and previews (as their records say now) needs.
async fn in_use(ledger: &Ledger) -> Result<BTreeSet<String>, Error> {
    let mut keys = BTreeSet::new();
    let (slots, _) = ledger.slots().await?;
    for s in crate::ledger::SLOTS {
        if let Some(e) = slots.get(s).and_then(|h| h.edge.as_ref()) {
            keys.extend(needed_by(e));
        }
    }
    let (previews, _) = ledger.previews().await?;
    for p in previews.0.values() {
        if let Some(e) = &p.edge {
            keys.extend(needed_by(e));
        }
    }
    Ok(keys)
}

/// What publishing one release's edge data did.
pub(crate) struct Published {
    /// For the slot or preview record.
    pub(crate) held: serde_json::Value,
    /// The pointer's token after the writes.
    pub(crate) token: String,
    /// Keys written (what was already there for another release is not written again).
    pub(crate) written: usize,
    pub(crate) bytes: usize,
}

/// `keys`' edge data by `rules` (its table cut as `base`'s where it fits), and the values
/// of it the KeyValueStore does not hold yet.
async fn to_write<'a>(
    ledger: &Ledger,
    keys: impl Iterator<Item = &'a str>,
    rules: &EdgeRules,
    base: Option<&serde_json::Value>,
) -> Result<(crate::edge::table::EdgeData, Vec<(String, String)>), Error> {
    let edge = EdgeConfig::default().with_rules(rules);
    let base = base.and_then(layout_of);
    let data = compile(&edge, keys, base.as_ref())
        .map_err(|e| Error::Refused(format!("{e}: nothing was changed")))?;
    let there = in_use(ledger).await?;
    let values = data
        .values
        .iter()
        .filter(|(k, _)| !there.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok((data, values))
}

/// Do `values` fit beside what the KeyValueStore holds? The refusal, in words, when not.
/// The refusal is (what, the commands that resolve it).
async fn room_for(
    ledger: &Ledger,
    values: &[(String, String)],
) -> Result<Option<(String, String)>, Error> {
    let bytes: u64 = values.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
    if bytes == 0 {
        return Ok(None);
    }
    let Some((used, limit)) = ledger.edge_room().await? else {
        return Ok(None);
    };
    // Room kept for the pointer's own value to grow (it names the root): at most one
    // value.
    let margin = crate::edge::table::VALUE_MAX as u64;
    if used + bytes + margin <= limit {
        return Ok(None);
    }
    let env = ledger.env();
    Ok(Some((
        format!(
            "the release's [edge] rules and routing table need {bytes} more bytes ({} key(s)) of CloudFront KeyValueStore {}, which holds {used} of its {limit} ({margin} kept for the pointer): it would not fit",
            values.len(),
            crate::edge::resource_name(env),
        ),
        format!(
            "delete previews no one needs (`driftless previews {env}` lists them; `driftless previews {env} --delete NAME`), or run `driftless gc {env}` to remove expired ones"
        ),
    )))
}

/// Before a deploy is planned through: would the edge data of a release of `keys` by
/// `rules` fit the KeyValueStore? The refusal's message when not (nothing is written).
pub(crate) async fn refused_for_room<'a>(
    ledger: &Ledger,
    keys: impl Iterator<Item = &'a str>,
    rules: &EdgeRules,
) -> Result<Option<(String, String)>, Error> {
    if !ledger.edge_carried() {
        return Ok(None);
    }
    let (slots, _) = ledger.slots().await?;
    let live = ledger.pointer().await?.map(|p| p.slot);
    let base = live
        .and_then(|s| slots.get(&s).cloned())
        .and_then(|h| h.edge);
    let (_, values) = to_write(ledger, keys, rules, base.as_ref()).await?;
    room_for(ledger, &values).await
}

/// Compile `release`'s edge data (by `rules`, its table cut as `base`'s where it fits)
/// and write what the KeyValueStore does not hold yet, conditional on `token`. `None`
/// where the pointer carries no rules; refused, with nothing written, where it would
/// not fit the store.
pub(crate) async fn publish(
    ledger: &Ledger,
    release: &Release,
    rules: &EdgeRules,
    base: Option<&serde_json::Value>,
    token: &str,
) -> Result<Option<Published>, Error> {
    if !ledger.edge_carried() {
        return Ok(None);
    }
    let keys = release.served().map(|(k, _)| k.as_str());
    let (data, values) = to_write(ledger, keys, rules, base).await?;
    if let Some((why, resolve)) = room_for(ledger, &values).await? {
        return Err(Error::Refused(format!(
            "{}; nothing was changed\n  → {resolve}",
            why.replacen(": it would not fit", ": it does not fit", 1)
        )));
    }
    let bytes = values.iter().map(|(k, v)| k.len() + v.len()).sum();
    let token = ledger.put_edge_values(&values, token).await?;
    Ok(Some(Published {
        held: held(&data.root, data.layout.as_ref(), rules),
        token,
        written: values.len(),
        bytes,
    }))
}

/// Remove the keys of `gone` (edge data a slot or preview no longer holds) that nothing
/// else needs. Best effort: a key left behind only takes room, and the next prune or
/// `edge --apply` takes it.
pub(crate) async fn prune(ledger: &Ledger, gone: &[serde_json::Value]) {
    if !ledger.edge_carried() || gone.is_empty() {
        return;
    }
    let result = async {
        let keep = in_use(ledger).await?;
        let drop: Vec<String> = gone
            .iter()
            .flat_map(needed_by)
            .filter(|k| !keep.contains(k))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        ledger.delete_edge_values(&drop).await?;
        Ok::<_, Error>(())
    }
    .await;
    if let Err(e) = result {
        eprintln!("warning: could not remove edge data no release needs any more: {e}");
    }
}

/// Give the releases the slots and previews hold their edge data where they have none
/// (an environment moving to per-release rules: the next `edge --apply`), and rewrite
/// the pointer (and a running canary's split, and each preview's value) so that it
/// names it — before the function that reads it is published, so nothing is unserved in
/// between. `fallback`: the rules of a release made before releases carried them.
/// Returns how many releases got their data.
pub(crate) async fn backfill(ledger: &Ledger, fallback: &EdgeRules) -> Result<usize, Error> {
    if !ledger.edge_carried() {
        return Ok(0);
    }
    let Some(mut pointer) = ledger.pointer().await? else {
        return Ok(0);
    };
    let (mut slots, etag) = ledger.slots().await?;
    let mut done = 0;
    // Live first: the others are cut like its table.
    let idle = crate::ledger::other_slot(&pointer.slot).to_owned();
    for slot in [pointer.slot.clone(), idle] {
        let Some(mut h) = slots.get(&slot).cloned() else {
            continue;
        };
        if !h.complete || h.edge.is_some() {
            continue;
        }
        let release = ledger.release(&h.release).await?;
        let rules = release.edge.clone().unwrap_or_else(|| fallback.clone());
        let base = slots.get(&pointer.slot).and_then(|x| x.edge.clone());
        let Some(p) = publish(ledger, &release, &rules, base.as_ref(), &pointer.token).await?
        else {
            continue;
        };
        pointer.token = p.token;
        h.edge = Some(p.held);
        slots.set(&slot, Some(h));
        done += 1;
    }
    if done > 0 {
        ledger.set_slots(&slots, etag.as_deref()).await?;
        let live_cache = slots
            .get(&pointer.slot)
            .map(|h| h.cache_id().to_owned())
            .unwrap_or_default();
        match ledger.canary().await? {
            Some((c, _)) => {
                ledger
                    .publish_split(&pointer, &live_cache, Some(&c.split()))
                    .await?;
            }
            None => {
                ledger
                    .switch_pointer(&pointer.slot.clone(), &live_cache, Some(&pointer))
                    .await?;
            }
        }
    }
    let (previews, _) = ledger.previews().await?;
    for (name, p) in previews.0 {
        if !p.complete || p.edge.is_some() {
            continue;
        }
        let release = ledger.release(&p.release).await?;
        let rules = release.edge.clone().unwrap_or_else(|| fallback.clone());
        let (slots, _) = ledger.slots().await?;
        let base = slots.get(&pointer.slot).and_then(|x| x.edge.clone());
        let token = ledger.pointer().await?.map(|p| p.token).unwrap_or_default();
        let Some(published) = publish(ledger, &release, &rules, base.as_ref(), &token).await?
        else {
            continue;
        };
        let record = ledger
            .update_preview(&name, |old| {
                old.cloned().map(|mut o| {
                    o.edge = Some(published.held.clone());
                    o
                })
            })
            .await?;
        ledger.publish_preview(&name, record.0.get(&name)).await?;
        done += 1;
    }
    Ok(done)
}
