//! What a person following a CI log sees on stderr: a line per stage with
//! the time since the run started (`[  1.2s] fetching `main` from …`), each
//! HTTP request with `-v` (what, status, time), nothing but results, notes
//! and errors with `-q`; and whether diffs on stdout are coloured
//! (`--color`: `always` for GitLab's and GitHub's log viewers, which render
//! ANSI but are not terminals).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

static START: LazyLock<Instant> = LazyLock::new(Instant::now);
/// 0: quiet, 1: stages, 2: stages and requests.
static LEVEL: AtomicU8 = AtomicU8::new(1);
/// 0: auto, 1: always, 2: never.
static COLOR: AtomicU8 = AtomicU8::new(0);

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Color {
    /// When stdout is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    Always,
    Never,
}

/// Set from the command line, once, before anything runs.
pub fn configure(verbose: bool, quiet: bool, color: Color) {
    LazyLock::force(&START);
    let level = match (quiet, verbose) {
        (true, _) => 0,
        (false, true) => 2,
        (false, false) => 1,
    };
    LEVEL.store(level, Ordering::Relaxed);
    COLOR.store(color as u8, Ordering::Relaxed);
}

fn elapsed() -> f64 {
    START.elapsed().as_secs_f64()
}

/// A stage begins: one line, unless `--quiet`.
pub fn stage(what: &str) {
    if LEVEL.load(Ordering::Relaxed) >= 1 {
        crate::note!("[{:>6.1}s] {what}", elapsed());
    }
}

/// Whether `--verbose` asked for each request.
pub fn verbose() -> bool {
    LEVEL.load(Ordering::Relaxed) >= 2
}

/// One HTTP request and how it ended (callers check [`verbose`] first).
/// `what` names the method and the URL without secrets (tokens travel in
/// headers).
pub fn request(what: &str, outcome: &str, took: Duration) {
    crate::note!(
        "[{:>6.1}s]   {what} -> {outcome} ({} ms)",
        elapsed(),
        took.as_millis()
    );
}

/// `1.2 KiB`, `3.4 MiB`: a size for a person.
pub fn bytes(n: usize) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// Whether diffs on stdout are coloured.
pub fn colour_stdout() -> bool {
    use std::io::IsTerminal;
    match COLOR.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}
