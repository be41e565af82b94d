//! What the ledger notes besides releases: the journal (append-only events), holds (stop
//! signs), the pending apply, verifications and watches of releases.

use crate::ledger::RecordOut;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Actor, Head, Ledger, Record, Release, Result, corrupt, json, json_attrs};
use crate::store::PutMode;

/// What `verify` found for one release, kept in `verifications/<release>.json`; the
/// promotion gate and the pipeline view read it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    pub release: String,
    pub url: String,
    pub at: Timestamp,
    pub by: String,
    pub passed: usize,
    pub failed: Vec<Check>,
    /// Every check run, passed or not (records written before this field have none).
    #[serde(default)]
    pub checks: Vec<Check>,
    /// SHA-256 of the `[edge]` rules the release was checked with (its own; `None`:
    /// a release without recorded rules, or a verification made before they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,
}

/// One HTTP check of `verify`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub path: String,
    pub ok: bool,
    pub detail: String,
    /// How long the request took (records written before this field have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hold {
    pub id: String,
    pub reason: String,
    pub by: Actor,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub at: Timestamp,
    pub env: String,
    pub actor: Actor,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

/// The release an apply is in the middle of writing.
#[derive(Debug, Clone)]
pub struct Pending {
    pub release: Release,
    /// HEAD as the apply saw it (compare-and-swap target).
    pub head: Head,
    /// Keys to delete once HEAD has moved, with the ETag each delete is conditional on.
    pub deletes: Vec<(String, String)>,
    /// On an atomic layout, the slot the apply was filling: until the pointer names it,
    /// nothing of the release is served and the apply can be dropped.
    pub slot: Option<String>,
}

/// `pending.json` as stored: the release as a record (a delta over its parent's
/// checkpoint, so it stays small); older versions stored the whole release.
#[derive(Deserialize)]
struct PendingRecord {
    #[serde(default)]
    record: Option<Record>,
    #[serde(default)]
    release: Option<Release>,
    head: Head,
    deletes: Vec<(String, String)>,
    #[serde(default)]
    slot: Option<String>,
}

impl Ledger {
    // --- journal ----------------------------------------------------------------

    /// Append an event. Journalling is best effort: it must never turn a successful
    /// deploy into a failure, so errors are reported on stderr and swallowed.
    pub async fn journal(
        &self,
        actor: &Actor,
        event: &str,
        release: Option<&str>,
        detail: serde_json::Value,
    ) {
        let at = Timestamp::now();
        let ev = Event {
            at,
            env: self.env.clone(),
            actor: actor.clone(),
            event: event.to_owned(),
            release: release.map(str::to_owned),
            detail,
        };
        let key = self.key(&format!(
            "journal/{}-{}.json",
            at.strftime("%Y%m%dT%H%M%S%.6fZ"),
            &crate::digest::unique_token()[..8]
        ));
        if let Err(e) = self
            .store
            .put(&key, json(&ev), &json_attrs(), PutMode::Create)
            .await
        {
            eprintln!("warning: could not write journal event {event}: {e}");
        }
    }

    pub async fn journal_events(&self) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        for m in self.store.list(&self.key("journal/")).await? {
            if let Some((ev, _)) = self.read_json::<Event>(&m.key).await? {
                out.push(ev);
            }
        }
        Ok(out)
    }

    // --- watches ----------------------------------------------------------------

    /// Keep what a watch of a release found (a later watch of it replaces it).
    pub async fn record_watch(&self, w: &Watched) -> Result<()> {
        self.put_state_json(&format!("watches/{}.json", w.release), w)
            .await
    }

    /// The names of the `DIR/<name>.json` records under the state prefix (one listing).
    pub(crate) async fn record_names(
        &self,
        dir: &str,
    ) -> Result<std::collections::HashSet<String>> {
        let prefix = self.key(&format!("{dir}/"));
        Ok(self
            .store
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|m| {
                m.key
                    .strip_prefix(&prefix)?
                    .strip_suffix(".json")
                    .map(str::to_owned)
            })
            .collect())
    }

    /// The releases with a recorded watch.
    pub async fn watched_ids(&self) -> Result<std::collections::HashSet<String>> {
        self.record_names("watches").await
    }

    pub async fn watched(&self, release: &str) -> Result<Option<Watched>> {
        Ok(self
            .state_json(&format!("watches/{release}.json"))
            .await?
            .map(|(w, _)| w))
    }

    // --- holds ------------------------------------------------------------------

    pub async fn holds(&self) -> Result<Vec<(Hold, String)>> {
        let mut out = Vec::new();
        for m in self.store.list(&self.key("holds/")).await? {
            if let Some((h, _)) = self.read_json::<Hold>(&m.key).await? {
                out.push((h, m.etag));
            }
        }
        Ok(out)
    }

    /// The holds alone, without the ETags a removal is conditional on.
    pub async fn hold_list(&self) -> Result<Vec<Hold>> {
        Ok(self.holds().await?.into_iter().map(|(h, _)| h).collect())
    }

    pub async fn set_hold(&self, hold: &Hold) -> Result<()> {
        let key = self.key(&format!("holds/{}.json", hold.id));
        self.store
            .put(&key, json(hold), &json_attrs(), PutMode::Create)
            .await?;
        Ok(())
    }

    pub async fn lift_hold(&self, hold: &Hold, etag: &str) -> Result<()> {
        let key = self.key(&format!("holds/{}.json", hold.id));
        Ok(self.store.delete(&key, Some(etag)).await?)
    }

    // --- verification ---------------------------------------------------------------

    /// Record what `verify` found for a release (the promotion gate reads it).
    pub async fn record_verification(&self, result: &Verification) -> Result<()> {
        let key = self.key(&format!("verifications/{}.json", result.release));
        self.store
            .put(&key, json(result), &json_attrs(), PutMode::Overwrite)
            .await?;
        Ok(())
    }

    pub async fn verification(&self, release: &str) -> Result<Option<Verification>> {
        Ok(self
            .read_json(&self.key(&format!("verifications/{release}.json")))
            .await?
            .map(|(v, _)| v))
    }

    // --- pending apply ------------------------------------------------------------

    pub async fn pending(&self) -> Result<Option<(Pending, String)>> {
        let key = self.key("pending.json");
        let Some((p, etag)) = self.read_json::<PendingRecord>(&key).await? else {
            return Ok(None);
        };
        let release = match (p.record, p.release) {
            (Some(record), _) => self.materialize(record).await?,
            (None, Some(release)) => release,
            (None, None) => return Err(corrupt(&key, "no release in the pending record")),
        };
        Ok(Some((
            Pending {
                release,
                head: p.head,
                deletes: p.deletes,
                slot: p.slot,
            },
            etag,
        )))
    }

    /// Record the release an apply is about to write (`parent`: the live release).
    pub async fn set_pending(&self, pending: &Pending, parent: Option<&Release>) -> Result<String> {
        #[derive(Serialize)]
        struct PendingOut<'a> {
            record: RecordOut<'a>,
            head: &'a Head,
            deletes: &'a [(String, String)],
            #[serde(skip_serializing_if = "Option::is_none")]
            slot: Option<&'a str>,
        }
        let record = PendingOut {
            record: pending.release.record(parent),
            head: &pending.head,
            deletes: &pending.deletes,
            slot: pending.slot.as_deref(),
        };
        Ok(self
            .store
            .put(
                &self.key("pending.json"),
                json(&record),
                &json_attrs(),
                PutMode::Create,
            )
            .await?)
    }

    pub async fn clear_pending(&self, etag: &str) -> Result<()> {
        Ok(self
            .store
            .delete(&self.key("pending.json"), Some(etag))
            .await?)
    }
}

/// Requests judged before a share can trigger (one early 500 is not 100 %).
pub const MIN_REQUESTS: usize = 20;

/// The 95th percentile of `latencies_ms` (nearest rank; 0 for none): for `watch`'s
/// synthetic requests and `verify`'s checks alike.
pub fn p95(latencies_ms: &[u64]) -> u64 {
    if latencies_ms.is_empty() {
        return 0;
    }
    let mut v = latencies_ms.to_vec();
    v.sort_unstable();
    let rank = (v.len() * 95).div_ceil(100).max(1);
    v[rank - 1]
}

/// What the synthetic requests saw so far.
///
/// A request that got no answer (connection refused or reset, DNS, timeout) is counted
/// apart and never as an error of the site: it is as likely the runner's network as the
/// release, and rolling production back on a network blip is a disaster of its own. Rates
/// and latency are judged over answered requests only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Tally {
    pub requests: usize,
    pub server_errors: usize,
    pub client_errors: usize,
    /// Requests that got no answer (not counted in the rates).
    pub unanswered: usize,
    #[serde(skip)]
    pub latencies_ms: Vec<u64>,
}

/// A watch of one release, kept in `watches/<release>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Watched {
    pub release: String,
    pub from: Timestamp,
    pub until: Timestamp,
    pub tally: Tally,
    pub p95_ms: u64,
    pub healthy: bool,
    /// What fired, if anything.
    #[serde(default)]
    pub trigger: Option<String>,
    /// The release rolled back to, if the watch did.
    #[serde(default)]
    pub rolled_back_to: Option<String>,
    pub by: crate::ledger::Actor,
}

impl Tally {
    pub fn add(&mut self, status: Option<u16>, ms: u64) {
        self.requests += 1;
        match status {
            None => self.unanswered += 1,
            Some(s) => {
                self.latencies_ms.push(ms);
                if s >= 500 {
                    self.server_errors += 1;
                } else if s >= 400 {
                    self.client_errors += 1;
                }
            }
        }
    }

    /// Requests the site answered (with any status).
    pub fn answered(&self) -> usize {
        self.requests - self.unanswered
    }

    /// Enough answers to judge the release by.
    pub fn conclusive(&self) -> bool {
        self.answered() >= MIN_REQUESTS
    }

    /// The 95th percentile latency of the answered requests (nearest rank).
    pub fn p95(&self) -> u64 {
        p95(&self.latencies_ms)
    }

    #[expect(
        clippy::cast_precision_loss,
        reason = "a share, for display and comparison"
    )]
    pub(crate) fn share(&self, n: usize) -> f64 {
        if self.answered() == 0 {
            0.0
        } else {
            n as f64 / self.answered() as f64
        }
    }

    /// "; 6 unanswered, not counted" when some requests got no answer.
    pub(crate) fn unanswered_note(&self) -> String {
        if self.unanswered == 0 {
            String::new()
        } else {
            format!("; {} unanswered, not counted", self.unanswered)
        }
    }
}

impl Watched {
    /// "watched 15m, healthy (120 requests, p95 80 ms)" / "watched 2m: 5xx rate … — rolled back".
    pub fn describe(&self) -> String {
        let span = self.until.duration_since(self.from);
        let mins = span.as_secs() / 60;
        let span = if mins > 0 {
            format!("{mins}m")
        } else {
            format!("{}s", span.as_secs())
        };
        match (&self.trigger, &self.rolled_back_to) {
            (None, _) if !self.healthy => format!(
                "watched {span}: could not tell ({} of {} requests answered)",
                self.tally.answered(),
                self.tally.requests
            ),
            (None, _) => format!(
                "watched {span}, healthy ({} requests, p95 {} ms{})",
                self.tally.requests,
                self.p95_ms,
                if self.tally.unanswered > 0 {
                    format!(", {} unanswered", self.tally.unanswered)
                } else {
                    String::new()
                }
            ),
            (Some(t), Some(to)) => format!("watched {span}: {t} — rolled back to {to}"),
            (Some(t), None) => format!("watched {span}: {t}"),
        }
    }
}
