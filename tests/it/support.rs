//! A small harness for running the real `tagbump` binary in a temp directory.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tagbump")
}

/// The places a hermetic run may write to besides its working directory:
/// its own HOME (no `~/.ssh`, `~/.docker` or git config of the machine
/// running the suite) and its own TMPDIR. Removed when dropped.
pub struct Sandbox {
    pub home: tempfile::TempDir,
    pub tmp: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            home: tempfile::tempdir().expect("home"),
            tmp: tempfile::tempdir().expect("tmp"),
        }
    }

    /// `tagbump` with nothing of the test process's environment but PATH:
    /// the sandbox's HOME and TMPDIR, and `NO_COLOR`. A CI's variables
    /// (`GITHUB_ACTIONS`, `GITLAB_CI`, `CI_*`, tokens) never leak into a run;
    /// a test that wants one sets it.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(bin());
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("TMPDIR", self.tmp.path())
            .env("NO_COLOR", "1");
        cmd
    }
}

/// What one run printed and returned.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A temp directory with files in it, where tagbump runs hermetically
/// ([`Sandbox::command`]) with what `env` adds.
pub struct Test {
    pub dir: tempfile::TempDir,
    sandbox: Sandbox,
    env: Vec<(String, String)>,
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("temp dir"),
            sandbox: Sandbox::new(),
            env: Vec::new(),
        }
    }

    /// Set a variable for the runs.
    pub fn env(mut self, name: &str, value: &str) -> Test {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Assert the whole text of a file.
    #[track_caller]
    pub fn expect_file(&self, name: &str, text: &str) -> &Test {
        assert_eq!(self.read(name), text, "{name}");
        self
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
        let out = self
            .sandbox
            .command()
            .args(args)
            .current_dir(self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run tagbump");
        Run::from(out)
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

/// A hermetic run in `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    let out = Sandbox::new()
        .command()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tagbump");
    Run::from(out)
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Assert the exit code, showing stderr when it differs.
    #[track_caller]
    pub fn status(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "stderr:\n{}", self.stderr);
        self
    }

    /// Assert the whole of stderr.
    #[track_caller]
    pub fn stderr(&self, text: &str) -> &Run {
        assert_eq!(self.stderr, text);
        self
    }

    /// Assert the whole of stdout.
    #[track_caller]
    pub fn stdout(&self, text: &str) -> &Run {
        assert_eq!(self.stdout, text);
        self
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
