//! Failpoints for crash tests: `DRIFTLESS_FAILPOINT=NAME` kills the process at that
//! point of an apply (like SIGKILL, no cleanup); inert unless set. A leaf.

/// Fault injection for the crash tests. With `DRIFTLESS_FAILPOINT=NAME` the process
/// kills itself with SIGKILL at that point of an apply — no cleanup, no unlock. With
/// `NAME:pause` it waits there (touching `$TMPDIR/driftless-failpoint-PID` so a test
/// knows) until Ctrl-C, for the interruption tests; with `NAME:wait` it waits there
/// until the test deletes that file, then goes on (to interleave two runs exactly).
pub(crate) async fn failpoint(name: &str) {
    let Ok(wanted) = std::env::var("DRIFTLESS_FAILPOINT") else {
        return;
    };
    if wanted == name {
        eprintln!("driftless: failpoint {name}: SIGKILL");
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &std::process::id().to_string()])
            .status();
        std::process::abort(); // where `kill` is unavailable
    }
    if wanted.strip_suffix(":wait") == Some(name) {
        let mark = std::env::temp_dir().join(format!("driftless-failpoint-{}", std::process::id()));
        let _ = std::fs::write(&mark, name);
        for _ in 0..2400 {
            if !mark.exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    if wanted.strip_suffix(":pause") == Some(name) {
        let mark = std::env::temp_dir().join(format!("driftless-failpoint-{}", std::process::id()));
        let _ = std::fs::write(&mark, name);
        for _ in 0..2400 {
            if crate::interrupt::requested() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = std::fs::remove_file(&mark);
    }
}
