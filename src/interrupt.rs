//! Ctrl-C during a change: the first one asks the running apply to stop at its next safe
//! point (before HEAD moves: put back what it wrote; after: leave the last deletes to the
//! next run), release the lock, say what is live and exit 130. A second Ctrl-C stops at
//! once; the pending record lets the next run finish.
//!
//! Read-only commands never install this: Ctrl-C ends them as usual.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Catch Ctrl-C (SIGINT) for the rest of this process. Idempotent.
pub(crate) fn install() {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    tokio::spawn(async {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "driftless: stopped at once; the next run finishes (or undoes) what was started"
                );
                std::process::exit(130);
            }
            eprintln!(
                "\ndriftless: interrupted — stopping at the next safe point (Ctrl-C again to stop at once)"
            );
        }
    });
}

/// Has the user asked to stop?
pub(crate) fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
