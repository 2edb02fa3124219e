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
/// Why the run is waiting to try again, while it waits.
static WAITING: Mutex<Option<String>> = Mutex::new(None);
/// The push in flight or done: (commit, branch, finished).
static PUSH: Mutex<Option<(String, String, bool)>> = Mutex::new(None);

/// A new temporary directory, registered for removal in the same step: it
/// is created while the list is locked, so a signal handled meanwhile either
/// removes it or finds it not yet made — never a directory made after the
/// handler removed the others (a retry's new clone, made while the process
/// was leaving, stayed behind).
pub fn temp_dir(prefix: &str) -> std::io::Result<tempfile::TempDir> {
    let mut dirs = LIVE_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
    dirs.push(dir.path().to_path_buf());
    Ok(dir)
}

/// Remove a directory made by [`temp_dir`], then forget it, in one step: a
/// signal between the two (the directory forgotten, not yet removed) left
/// it behind.
pub fn remove_dir(path: &std::path::Path) {
    let mut dirs = LIVE_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    let _ = std::fs::remove_dir_all(path);
    dirs.retain(|d| d != path);
}

/// Say what the run is doing now.
pub fn stage(what: String) {
    crate::log::stage(&what);
    if let Ok(mut stage) = STAGE.lock() {
        *stage = what;
    }
    if let Ok(mut waiting) = WAITING.lock() {
        *waiting = None;
    }
}

/// The run is backing off before trying again, because of `cause` (a
/// refused connection, a 429): what `--timeout` reports if it expires now.
pub fn waiting(cause: String) {
    if let Ok(mut waiting) = WAITING.lock() {
        *waiting = Some(cause);
    }
}

/// The wait is over: the run is trying again.
pub fn resumed() {
    if let Ok(mut waiting) = WAITING.lock() {
        *waiting = None;
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

/// Set by the signal handler itself, at once: the run's own thread, whose
/// system call the signal may have interrupted (`EINTR`), must not end the
/// process with that error before the handler's thread has cleaned up.
static STOPPING: std::sync::LazyLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
    std::sync::LazyLock::new(Default::default);

/// Whether SIGINT or SIGTERM arrived: the process is being stopped.
pub fn stopping() -> bool {
    STOPPING.load(std::sync::atomic::Ordering::SeqCst)
}

/// Start watching: signals at once, and the clock from now.
pub fn install(timeout: Duration) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        let _ = signal_hook::flag::register(signal, std::sync::Arc::clone(&STOPPING));
    }
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
        let waiting = WAITING.lock().ok().and_then(|w| w.clone());
        match waiting {
            // Expired between attempts: the last failure is the cause.
            Some(cause) => leave(
                i32::from(Kind::Remote.exit_code()),
                format!(
                    "gave up after {} s (--timeout) waiting to try again while {}; the last \
                     try: {cause}",
                    timeout.as_secs(),
                    stage_now()
                ),
                Some(
                    "the server kept failing or asked to wait; check that it is up and not \
                     overloaded, or raise --timeout",
                ),
            ),
            None => leave(
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
            ),
        }
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
    crate::note!("error: {}", crate::secret::scrub(&why));
    if let Some(hint) = hint {
        crate::note!("hint: {hint}");
    }
    if let Ok(Some((commit, branch, done))) = PUSH.lock().map(|p| p.clone()) {
        if done {
            crate::note!("note: the push of {commit} to `{branch}` had been accepted");
        } else {
            crate::note!(
                "note: a push of {commit} to `{branch}` was under way; the server may or may \
                 not have taken it: check the branch before running again"
            );
        }
    }
    // The list stays locked until the process is gone: no new temporary
    // directory can be made after these are removed.
    // The run's thread keeps going meanwhile and may be writing into one
    // (a new clone being initialised): removal is tried until it is gone.
    let dirs = LIVE_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    for dir in dirs.iter() {
        for _ in 0..200 {
            if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::process::exit(code)
}
