//! Commands about driftless itself rather than an environment: shell completions, the
//! manual page and the config schema. None reads driftless.toml.

use std::io::Write as _;
use std::path::Path;

use clap::CommandFactory as _;

use crate::Error;
use crate::cli::{COMPLETE_VAR, Cli, Shell};

/// The shell's registration script: the shell calls back into this binary (with
/// `_DRIFTLESS_COMPLETE=SHELL`) for each completion, so commands, options and the
/// environment names of the nearest driftless.toml are always current.
pub(super) fn completions(shell: Shell) -> Result<(), Error> {
    let shells = clap_complete::env::Shells::builtins();
    let completer = shells
        .completer(shell.name())
        .ok_or_else(|| Error::Other(format!("no completer for {}", shell.name())))?;
    // The script calls `driftless` as found on PATH when completing, so an upgrade to a
    // new versioned install keeps completing; only a driftless that is not on PATH is
    // named by its path (it is the only way the shell can find it).
    let exe = if on_path("driftless") {
        "driftless".to_owned()
    } else {
        std::env::current_exe()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "driftless".into())
    };
    let mut buf = Vec::new();
    completer.write_registration(COMPLETE_VAR, "driftless", "driftless", &exe, &mut buf)?;
    std::io::stdout().lock().write_all(&buf)?;
    Ok(())
}

/// Is there an executable `name` in a directory of PATH?
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file() && executable(&m))
        })
    })
}

#[cfg(unix)]
fn executable(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    m.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn executable(_: &std::fs::Metadata) -> bool {
    true
}

/// The manual, from the same grammar as `--help`.
pub(super) fn man(dir: Option<&Path>) -> Result<(), Error> {
    let cmd = Cli::command();
    match dir {
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            std::io::stdout().lock().write_all(&buf)?;
        }
        Some(dir) => {
            fs_err::create_dir_all(dir)?;
            clap_mangen::generate_to(cmd, dir)?;
            let mut pages: Vec<String> = fs_err::read_dir(dir)?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("driftless") && n.ends_with(".1"))
                .collect();
            pages.sort();
            crate::ui::stdout_line(&format!(
                "Wrote {} manual pages to {}: {}",
                pages.len(),
                dir.display(),
                pages.join(", ")
            ));
        }
    }
    Ok(())
}

/// The JSON Schema of driftless.toml.
pub(super) fn schema() {
    crate::ui::stdout_line(
        &serde_json::to_string_pretty(&crate::config::schema()).expect("schemas serialise"),
    );
}
