//! What driftless writes to CloudFront, when, and in which order with the switch. Two
//! kinds of writes, and one rule between them: nothing a release declares reaches
//! visitors before what enforces it.
//!
//! **With every release** ([`release`], behind CloudFront with the atomic layout): the
//! release's `[edge]` rules and routing facts (`edge::table`: a root value and the
//! buckets it names, content-addressed so releases share them) go to the environment's
//! KeyValueStore *before* the one pointer write that makes the release live, in a chain
//! of writes conditional on the pointer's token; the pointer's value then names the
//! release's root, so its bytes and its rules go live in one write. A rollback to the
//! release the other slot holds writes nothing but the pointer. A preview's value, a
//! canary's split and a promotion go the same way; what no slot, preview or split names
//! any more is pruned after the switch.
//!
//! **With `edge --apply`** ([`environment`]): what is the environment's, not a
//! release's — the functions' code (release-independent: a new driftless version or a
//! feature switched on), the KeyValueStore and, before any function reads them, the
//! first pointer, each held release's rules (an environment moving to per-release
//! rules) and the token secrets; then the functions; then the policies, the
//! signed-cookie signer and the cache behaviors it is checked on, and the distribution
//! config that attaches it all. A deploy whose rules need something only this sets up
//! (a newly protected pattern's signed-cookie behavior) is refused until it ran
//! (`plan::guards::edge_protection`), so protection is never late.
//!
//! The content itself (slots, previews) is written by `apply::atomic` and
//! `apply::preview`, which call [`release`] at the points above; the CloudFront API
//! calls are `aws::cloudfront`'s and `aws::kvs`'s.

pub(crate) mod environment;
pub(crate) mod release;

pub(crate) use release::{backfill, prune, publish, same_rules};

use crate::config::{Config, EnvConfig};
use crate::ledger::Ledger;

/// The environment an edge write is for.
pub(crate) struct Env<'a> {
    pub(crate) cfg: &'a EnvConfig,
    pub(crate) config: &'a Config,
    pub(crate) ledger: &'a Ledger,
}

/// The CloudFront KeyValueStore of `cfg`'s environment behind CloudFront (named like
/// its function, `driftless-ENV`): the live pointer, each release's rules, previews and
/// token secrets.
pub(crate) fn key_value_store(cfg: &EnvConfig) -> crate::aws::kvs::KeyValueStore {
    crate::aws::kvs::KeyValueStore::new(
        &crate::edge::resource_name(&cfg.name),
        &cfg.name,
        cfg.profile.as_deref(),
    )
}
