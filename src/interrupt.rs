//! Ctrl-C during a change: the first one asks the running apply to stop at its next safe
//! point (before HEAD moves: put back what it wrote; after: leave the last deletes to the
//! next run), release the lock, say what is live and exit 130. A second Ctrl-C stops at
//! once; the pending record lets the next run finish.
//!
//! Long phases run their requests through [`run_bounded`], which starts no new request
//! once Ctrl-C was pressed and says what it is waiting for, so a 50,000-file deploy stops
//! within a second instead of finishing the phase first.
//!
//! Read-only commands never install this: Ctrl-C ends them as usual.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static INSTALLED: AtomicBool = AtomicBool::new(false);
static NOTIFY: tokio::sync::Notify = tokio::sync::Notify::const_new();

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
            NOTIFY.notify_waiters();
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

/// Completes once the user asked to stop.
pub(crate) async fn wait() {
    loop {
        let notified = NOTIFY.notified();
        if requested() {
            return;
        }
        notified.await;
    }
}

/// What becomes of requests in flight when Ctrl-C is pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InFlight {
    /// Wait for them: what they wrote must be known (site writes, to be put back).
    Finish,
    /// Drop them: their results are of no use yet (content-addressed uploads that no
    /// record references until the phase completes).
    Abandon,
}

/// Run `work` on each item, at most `limit` at once; stop starting new ones at the first
/// error or once Ctrl-C was pressed (saying what it waits for or abandons: `what` names
/// one request, e.g. "pack upload"). Returns every finished output and whether Ctrl-C
/// cut the run short.
pub(crate) async fn run_bounded<I, W, Fut, T, E>(
    items: I,
    limit: usize,
    in_flight: InFlight,
    what: &str,
    work: W,
) -> (Vec<Result<T, E>>, bool)
where
    I: IntoIterator,
    W: Fn(I::Item) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut items = items.into_iter();
    let mut running = FuturesUnordered::new();
    let mut done = Vec::new();
    let mut failed = false;
    let mut announced = false;
    loop {
        if requested() && !announced && !running.is_empty() {
            announced = true;
            let n = running.len();
            match in_flight {
                InFlight::Abandon => {
                    eprintln!(
                        "driftless: stopping: {n} {what}(s) in flight abandoned (nothing refers to them yet)"
                    );
                    return (done, true);
                }
                InFlight::Finish => {
                    eprintln!(
                        "driftless: stopping: waiting for the {n} {what}(s) in flight to finish"
                    );
                }
            }
        }
        while !failed && !requested() && running.len() < limit.max(1) {
            match items.next() {
                Some(item) => running.push(work(item)),
                None => break,
            }
        }
        if running.is_empty() {
            return (done, requested());
        }
        tokio::select! {
            next = running.next() => {
                if let Some(r) = next {
                    failed |= r.is_err();
                    done.push(r);
                }
            }
            // Woken by Ctrl-C: the top of the loop says what happens to the rest.
            () = wait(), if !requested() => {}
        }
    }
}
