//! What to change: explicit path edits and image-aware scans, turned into
//! new file texts.
//!
//! Pure over `(path, text)` pairs, so the same plan is made for files on disk
//! (`tagbump set` / `tagbump image`) and for blobs read from a git tree.
//! Every file is parsed and every edit computed before anything is written,
//! so bad input never leaves a half-edited repo.

use crate::error::{Failure, Kind};
use crate::image::ImageRef;
use crate::yaml::{Documents, Editor, Outcome, Path, YamlError, YamlErrorKind};

/// Which files an image scan reads in a directory: `*.yaml` and `*.yml`.
/// The same rule holds on disk (`tagbump image`) and in a git tree (`update`).
pub fn is_yaml_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// Whether a scan descends into a directory: hidden ones (`.git`, `.github`) are skipped.
pub fn is_scanned_dir(name: &str) -> bool {
    !name.starts_with('.')
}

/// Whether a scan reads the file at `path` (relative, `/`-separated), as
/// the two rules above decide it one name at a time: a YAML file under no
/// hidden directory. For listings that give whole paths (the forge APIs).
pub fn is_scanned_path(path: &str) -> bool {
    let (dirs, name) = path.rsplit_once('/').unwrap_or(("", path));
    is_yaml_name(name)
        && dirs
            .split('/')
            .filter(|d| !d.is_empty())
            .all(is_scanned_dir)
}

/// A file's path (relative, `/`-separated) and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

/// One `PATH=VALUE` assignment for a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub path: Path,
    pub value: String,
}

/// A file the plan changes (or found already up to date).
#[derive(Debug, Clone)]
pub struct FileEdit {
    pub path: String,
    pub old: String,
    pub new: String,
    pub outcomes: Vec<Outcome>,
    /// Aliases that follow an edited anchor, as notes for the user.
    pub notes: Vec<String>,
}

impl FileEdit {
    pub fn changed(&self) -> bool {
        self.old != self.new
    }
}

/// Everything a run would do.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub files: Vec<FileEdit>,
    /// Files that could not be read as YAML, with the reason; never fatal in a scan.
    pub skipped: Vec<(String, String)>,
    /// Things the user should know: digests cleared, keys missing.
    pub notes: Vec<String>,
    /// Per scanned image (its name), the values its references held before.
    pub held: Vec<(String, Vec<String>)>,
    /// Images of a fleet run with no reference where they were looked for
    /// (name, why); a single run fails instead.
    pub unmatched: Vec<(String, String)>,
}

impl Plan {
    pub fn changed(&self) -> bool {
        self.files.iter().any(FileEdit::changed)
    }
}

/// A failure tied to a file: the YAML engine's error and the file's path.
#[derive(Debug, Clone)]
pub struct FileError {
    pub path: String,
    pub error: YamlError,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.error.line > 0 {
            write!(
                f,
                "{}:{}: {}",
                self.path, self.error.line, self.error.message
            )
        } else {
            write!(f, "{}: {}", self.path, self.error.message)
        }
    }
}

impl std::error::Error for FileError {}

impl From<FileError> for Failure {
    fn from(err: FileError) -> Failure {
        let (kind, hint) = match err.error.kind {
            YamlErrorKind::Syntax => (
                Kind::Input,
                "fix the YAML syntax first; nothing was written",
            ),
            YamlErrorKind::NotFound => (
                Kind::NotFound,
                "check the path against the file; the path grammar is in `tagbump set --help`",
            ),
            YamlErrorKind::Ambiguous | YamlErrorKind::NotEditable | YamlErrorKind::BadValue => {
                (Kind::Input, "nothing was written")
            }
            YamlErrorKind::Internal => (
                Kind::Internal,
                "please report it with this file (or a copy cut down to the failing part) \
                 and the command line; the file was left as it was",
            ),
        };
        Failure::new(kind, err.to_string()).hint(hint)
    }
}

/// Split `PATH=VALUE` at the first `=` outside brackets and quotes, so
/// `containers[name=app].image=app:2` splits after `.image`.
pub fn parse_assignment(text: &str) -> Result<Assignment, String> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if depth > 0 => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth = depth.saturating_sub(1),
            (None, '=') if depth == 0 => {
                let path = Path::parse(&text[..i]).map_err(|e| e.to_string())?;
                return Ok(Assignment {
                    path,
                    value: text[i + 1..].to_string(),
                });
            }
            _ => {}
        }
        escaped = false;
    }
    Err(format!(
        "`{text}` is not PATH=VALUE; write e.g. `image.tag=1.4.2`"
    ))
}

/// The refusal of an empty `--set` value without `--allow-empty`.
pub fn empty_value_refused(what: &str) -> crate::error::Failure {
    crate::error::Failure::new(
        crate::error::Kind::Usage,
        format!("`{what}=` sets an empty value; nothing was changed"),
    )
    .hint(
        "an empty value is usually a CI variable that is not set; \
         pass --allow-empty if an empty value is what you want",
    )
}

/// Apply `assignments` to one file.
pub fn plan_set(
    file: &SourceFile,
    assignments: &[Assignment],
    documents: Documents,
) -> Result<FileEdit, FileError> {
    let fail = |error| FileError {
        path: file.path.clone(),
        error,
    };
    let mut editor = Editor::new(&file.text).map_err(fail)?;
    for a in assignments {
        editor.set(&a.path, &a.value, documents).map_err(fail)?;
    }
    let outcomes = editor.outcomes().to_vec();
    let notes = follower_notes(&file.path, &editor);
    let new = editor.finish().map_err(fail)?;
    Ok(FileEdit {
        path: file.path.clone(),
        old: file.text.clone(),
        new,
        outcomes,
        notes,
    })
}

/// One note per alias whose value changes with an edited anchor.
fn follower_notes(path: &str, editor: &Editor) -> Vec<String> {
    editor
        .followers()
        .into_iter()
        .map(|(line, name, anchor_line)| {
            format!(
                "{path}:{line}: `*{name}` follows the anchor `&{name}` at line {anchor_line}, \
                 which was updated, so it changes too"
            )
        })
        .collect()
}

/// A file to edit that is a symbolic link in the repository: refused on
/// every transport (writing it would replace the link with a file, forking
/// the file it points to).
pub fn symlink_refused(path: &str, to: &str) -> anyhow::Error {
    crate::error::Failure::new(
        crate::error::Kind::Input,
        format!("`{path}` is a symlink in the repository (to `{to}`)"),
    )
    .hint("tagbump edits files, not links: name the file it points to")
    .into()
}

/// What an image scan looks for and writes.
#[derive(Debug, Clone)]
pub struct ImageUpdate {
    pub image: ImageRef,
    /// Also set `appVersion` in the `Chart.yaml` of each chart whose files
    /// reference the image.
    pub app_version: bool,
    /// A Helm `tag` without a digest key beside it gets `tag@sha256:…`
    /// (`--pin-digest=tag`) instead of a note.
    pub digest_in_tag: bool,
}

mod chart;
mod scan;
#[cfg(test)]
mod tests;

pub use scan::plan_image;
