//! Error kinds and their exit codes, and the hint a user can act on.
//!
//! Errors travel as `anyhow::Error`; a [`Failure`] somewhere in the chain
//! says what kind of failure it is. Anything without one is internal (exit 1).

use std::fmt;

/// What went wrong, as a script calling tagbump needs to tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A bug or an unexpected condition.
    Internal,
    /// The command line is wrong.
    Usage,
    /// A file is not valid YAML, or its target cannot be edited.
    Input,
    /// A path or image matched nothing.
    NotFound,
    /// A file could not be read or written.
    Io,
    /// Credentials or a host key were refused.
    Auth,
    /// The remote failed: unreachable, a protocol error, a refused push.
    Remote,
    /// Someone else's work is in the way: a branch with human commits, or
    /// a base branch that kept moving through every retry.
    Conflict,
    /// The server declined the push by policy: a hook, a protected branch.
    Declined,
    /// The registry does not have the image reference (or no tag matches
    /// the policy).
    MissingImage,
    /// Some images of a fleet run failed; the others landed.
    Partial,
}

impl Kind {
    /// The kind's name in `--output json`'s `error.kind`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Internal => "internal",
            Kind::Usage => "usage",
            Kind::Input => "input",
            Kind::NotFound => "not-found",
            Kind::Io => "io",
            Kind::Auth => "auth",
            Kind::Remote => "remote",
            Kind::Conflict => "conflict",
            Kind::Declined => "declined",
            Kind::MissingImage => "missing-image",
            Kind::Partial => "partial",
        }
    }

    /// The process exit code, documented in the README.
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Internal => 1,
            Kind::Usage => 2,
            Kind::Input => 3,
            Kind::NotFound => 4,
            Kind::Io => 5,
            Kind::Auth => 6,
            Kind::Remote => 7,
            Kind::Conflict => 8,
            Kind::Declined => 9,
            Kind::MissingImage => 10,
            Kind::Partial => 11,
        }
    }
}

/// A library error of any type, kept as a [`Failure`]'s cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of a known kind: what went wrong (naming the object), its
/// cause when a library gave one, and what to do (any number of hints).
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    pub hints: Vec<String>,
    /// The library error behind it; printed after the message (`: cause`).
    pub source: Option<BoxError>,
    /// A fault that may pass: a retry can succeed (a shed connection, a 503).
    pub transient: bool,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            hints: Vec::new(),
            source: None,
            transient: false,
        }
    }

    /// Mark the failure as one a retry may get past.
    pub fn transient(mut self) -> Failure {
        self.transient = true;
        self
    }

    /// Add a hint; a failure may have several.
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        self.hints.push(hint.into());
        self
    }

    /// Keep the library error that caused this one.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Failure {
        self.source = Some(source.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

// Library errors become failures here, each naming the object it was about.
// (The remote's git errors are classified by the git session, which knows
// the remote; HTTP transport errors by `forge::send_with_retries`.)

/// An I/O error on a file the user named or tagbump writes: `cannot {doing}
/// {path}`, with the system's words as the cause.
pub fn io(doing: &str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Failure {
    let message = format!("cannot {doing} {}", path.display());
    move |err| Failure::new(Kind::Io, message).with_source(err)
}

/// An error and its causes, as one line (`a: b: c`) — for log lines; an
/// error that ends the run is printed by anyhow the same way.
pub fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        // Some libraries repeat their cause in their own message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
    text
}

/// A libgit2 error on the temporary clone (not the remote: those go through
/// the session's own classification): an internal failure naming what was
/// being done and to which object, with libgit2's words as the cause.
pub fn local_git(doing: impl fmt::Display) -> impl FnOnce(git2::Error) -> Failure {
    move |err| {
        Failure::new(
            Kind::Internal,
            format!("cannot {doing} in the temporary clone"),
        )
        .with_source(err)
    }
}

fn failure(err: &anyhow::Error) -> Option<&Failure> {
    err.chain().find_map(|e| e.downcast_ref::<Failure>())
}

/// The kind of an error chain.
pub fn kind(err: &anyhow::Error) -> Kind {
    failure(err).map_or(Kind::Internal, |f| f.kind)
}

/// Whether a retry may get past the error.
pub fn is_transient(err: &anyhow::Error) -> bool {
    failure(err).is_some_and(|f| f.transient)
}

/// The hints of an error chain.
pub fn hints(err: &anyhow::Error) -> &[String] {
    failure(err).map(|f| f.hints.as_slice()).unwrap_or_default()
}

/// Whether the error is only stdout having been closed (`tagbump … | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
