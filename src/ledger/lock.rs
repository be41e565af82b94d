//! The lease lock: created with If-None-Match, naming holder, host, pid, start, expiry
//! and the release being made live; renewed in the background; taken over when expired
//! or when its holder died on this host; released only if still ours.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Actor, Ledger, Result, corrupt, json, json_attrs};
use crate::store::{PutMode, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub holder: Actor,
    pub operation: String,
    pub started_at: Timestamp,
    pub expires_at: Timestamp,
    /// The release the holder is making live, once it knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// When the holder last renewed the lease (it does every tenth of the lease).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at: Option<Timestamp>,
}

impl LockInfo {
    pub fn expired(&self, now: Timestamp) -> bool {
        now > self.expires_at
    }

    /// How long since the holder last showed it was alive (took or renewed the lease).
    pub fn silent_for(&self, now: Timestamp) -> jiff::SignedDuration {
        now.duration_since(self.renewed_at.unwrap_or(self.started_at))
    }

    /// Held by a process on this host that no longer exists (Linux: no /proc entry).
    pub fn holder_is_dead_here(&self) -> bool {
        cfg!(target_os = "linux")
            && self.holder.host == crate::git::hostname()
            && !std::path::Path::new(&format!("/proc/{}", self.holder.pid)).exists()
    }
}

/// A lease held while work runs: renewed in the background (every tenth of the lease),
/// so a long apply never outlives it. If a renewal is refused — someone broke the lock —
/// `lost()` says so, and the work must not move HEAD.
#[derive(Debug)]
pub struct HeldLease {
    lock: std::sync::Arc<tokio::sync::Mutex<Lock>>,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl HeldLease {
    pub fn lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stop renewing and release the lease (if it is still ours).
    pub async fn release(self, ledger: &Ledger) -> Result<()> {
        self.task.abort();
        let _ = self.task.await;
        let lock = std::sync::Arc::try_unwrap(self.lock)
            .map(tokio::sync::Mutex::into_inner)
            .map_err(|_| corrupt("lock", "lease still in use"))?;
        ledger.unlock(lock).await
    }
}

/// A lease we hold; its ETag is what renew and release are conditional on.
#[derive(Debug)]
pub struct Lock {
    pub info: LockInfo,
    etag: String,
    /// The dead or expired lease this one replaced, if any (to say so).
    pub taken_over: Option<LockInfo>,
}

impl Ledger {
    // --- lock -------------------------------------------------------------------

    pub async fn read_lock(&self) -> Result<Option<(LockInfo, String)>> {
        self.read_json(&self.key("lock")).await
    }

    /// Take the lease, or return who holds it. An expired lease, or one whose holder
    /// process is gone from this host, is taken over by compare-and-swap.
    pub async fn lock(
        &self,
        actor: &Actor,
        operation: &str,
        release: Option<&str>,
        lease: std::time::Duration,
    ) -> Result<Result<Lock, LockInfo>> {
        let key = self.key("lock");
        for _ in 0..5 {
            let now = Timestamp::now();
            let info = LockInfo {
                holder: actor.clone(),
                operation: operation.to_owned(),
                started_at: now,
                expires_at: now + jiff::SignedDuration::try_from(lease).unwrap_or_default(),
                release: release.map(str::to_owned),
                renewed_at: None,
            };
            match self
                .store
                .put(&key, json(&info), &json_attrs(), PutMode::Create)
                .await
            {
                Ok(etag) => {
                    return Ok(Ok(Lock {
                        info,
                        etag,
                        taken_over: None,
                    }));
                }
                Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let Some((held, etag)) = self.read_lock().await? else {
                continue; // released meanwhile
            };
            if !(held.expired(now) || held.holder_is_dead_here()) {
                return Ok(Err(held));
            }
            match self
                .store
                .put(&key, json(&info), &json_attrs(), PutMode::IfMatch(etag))
                .await
            {
                Ok(etag) => {
                    self.journal(
                        actor,
                        "lock-taken-over",
                        None,
                        serde_json::json!({ "previous": held }),
                    )
                    .await;
                    return Ok(Ok(Lock {
                        info,
                        etag,
                        taken_over: Some(held),
                    }));
                }
                Err(StoreError::Precondition { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Err(self.read_lock().await?.map(|(i, _)| i).ok_or_else(
            || corrupt(&key, "lock kept changing while being taken"),
        )?))
    }

    /// Keep `lock` alive in the background until released.
    pub fn hold_lease(&self, lock: Lock, lease: std::time::Duration) -> HeldLease {
        let lock = std::sync::Arc::new(tokio::sync::Mutex::new(lock));
        let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ledger, l, flag) = (self.clone(), lock.clone(), lost.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 10).await;
                let mut guard = l.lock().await;
                if ledger.renew(&mut guard, lease).await.is_err() {
                    flag.store(true, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
            }
        });
        HeldLease { lock, lost, task }
    }

    /// Extend our lease; fails if someone broke it.
    pub async fn renew(&self, lock: &mut Lock, lease: std::time::Duration) -> Result<()> {
        let mut info = lock.info.clone();
        let now = Timestamp::now();
        info.expires_at = now + jiff::SignedDuration::try_from(lease).unwrap_or_default();
        info.renewed_at = Some(now);
        let etag = self
            .store
            .put(
                &self.key("lock"),
                json(&info),
                &json_attrs(),
                PutMode::IfMatch(lock.etag.clone()),
            )
            .await?;
        lock.info = info;
        lock.etag = etag;
        Ok(())
    }

    /// Release our lease (only if it is still ours).
    pub async fn unlock(&self, lock: Lock) -> Result<()> {
        match self.store.delete(&self.key("lock"), Some(&lock.etag)).await {
            Ok(()) | Err(StoreError::NotFound { .. } | StoreError::Precondition { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Break whatever lease is there, if it is still the one that was shown.
    pub async fn break_lock(&self, etag: &str) -> Result<()> {
        Ok(self.store.delete(&self.key("lock"), Some(etag)).await?)
    }
}
