//! Leaving cleanly when the run is stopped from outside: SIGINT or SIGTERM
//! (a cancelled CI job) and the wall-clock cap (`--timeout`) remove every
//! temporary clone, say what the run was doing and whether a push had been
//! sent, and exit with a code that tells them apart.
//!
//! Why a thread that exits the process rather than a flag the run checks: a
//! libgit2 call blocked on a server that never answers cannot be asked to
//! stop, and an SSH connection has no read timeout in libgit2. The run keeps
//! the state below current so that whoever stops it can report it.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::error::Kind;

/// Temporary clones alive now.
static LIVE_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// What the run is doing, for the message.
static STAGE: Mutex<String> = Mutex::new(String::new());
/// The push in flight or done: (commit, branch, finished).
static PUSH: Mutex<Option<(String, String, bool)>> = Mutex::new(None);

pub fn register_dir(path: PathBuf) {
    if let Ok(mut dirs) = LIVE_DIRS.lock() {
        dirs.push(path);
    }
}

pub fn unregister_dir(path: &std::path::Path) {
    if let Ok(mut dirs) = LIVE_DIRS.lock() {
        dirs.retain(|d| d != path);
    }
}

/// Say what the run is doing now.
pub fn stage(what: String) {
    if let Ok(mut stage) = STAGE.lock() {
        *stage = what;
    }
}

/// A push of `commit` to `branch` is being sent.
pub fn pushing(commit: &str, branch: &str) {
    if let Ok(mut push) = PUSH.lock() {
        *push = Some((commit.to_string(), branch.to_string(), false));
    }
}

/// The push finished: accepted (`true`) or not.
pub fn pushed(accepted: bool) {
    if let Ok(mut push) = PUSH.lock() {
        match (accepted, push.as_mut()) {
            (true, Some(p)) => p.2 = true,
            _ => *push = None,
        }
    }
}

/// Start watching: signals at once, and the clock from now.
pub fn install(timeout: Duration) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                leave(
                    128 + signal,
                    format!("stopped by {name} while {}", stage_now()),
                    None,
                );
            }
        });
    }
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        leave(
            i32::from(Kind::Remote.exit_code()),
            format!(
                "gave up after {} s (--timeout) while {}: no answer in time",
                timeout.as_secs(),
                stage_now()
            ),
            Some(
                "a server that accepts connections but does not answer is overloaded or \
                 stuck; check it, or raise --timeout",
            ),
        );
    });
}

fn stage_now() -> String {
    STAGE
        .lock()
        .map(|s| s.clone())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "starting".into())
}

/// Report, remove the temporary clones, and exit with `code`.
fn leave(code: i32, why: String, hint: Option<&str>) -> ! {
    eprintln!("error: {}", crate::secret::scrub(&why));
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
    if let Ok(Some((commit, branch, done))) = PUSH.lock().map(|p| p.clone()) {
        if done {
            eprintln!("note: the push of {commit} to `{branch}` had been accepted");
        } else {
            eprintln!(
                "note: a push of {commit} to `{branch}` was under way; the server may or may \
                 not have taken it: check the branch before running again"
            );
        }
    }
    if let Ok(dirs) = LIVE_DIRS.lock() {
        for dir in dirs.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    std::process::exit(code)
}
