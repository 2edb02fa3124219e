//! A small harness for running the real `tagbump` binary in a temp directory.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tagbump")
}

/// What one run printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A temp directory with files in it, where tagbump runs.
pub struct Test {
    pub dir: tempfile::TempDir,
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(self, name: &str, text: impl AsRef<[u8]>) -> Test {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
        self
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read")
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run_in(self.dir.path(), args)
    }

    /// Every file name in the directory, sorted (hidden files included).
    pub fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tagbump");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The one skip-or-fail rule for tests that need something installed (a
/// server, Prism, a Python tool): print why and skip on a developer's
/// machine; fail under `TAGBUMP_REQUIRE_SERVERS` or in CI, where
/// `scripts/test.sh` installs everything and a skip would hide a gap.
pub fn skip_or_fail(reason: &str) {
    if std::env::var_os("TAGBUMP_REQUIRE_SERVERS").is_some() || std::env::var_os("CI").is_some() {
        panic!("{reason}");
    }
    eprintln!("SKIPPED {reason}");
}
