//! `tagbump update`: clone the manifest repo, edit, commit, push — and when
//! someone else pushed first, start again from their tip.
//!
//! Every attempt re-reads the files from the newest tip and recomputes the
//! edits from scratch: a retry never rebases stale text. A review branch is
//! only ever overwritten when its tip is a tagbump commit, and only if it
//! still is at the moment of the push (see [`Session::push`]).

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use anyhow::Result;
use git2::{Oid, Signature};

use crate::error::{Failure, Kind};
use crate::git::{Advert, Auth, Pushed, RemoteUrl, Session, TRAILER};
use crate::image::ImageRef;
use crate::target::{self, Assignment, FileEdit, ImageUpdate, Plan, SourceFile};
use crate::yaml::Documents;

/// One `--set FILE:PATH=VALUE`.
#[derive(Debug, Clone)]
pub struct FileSet {
    pub file: String,
    pub assignment: Assignment,
}

/// Parse `FILE:PATH=VALUE`.
pub fn parse_file_set(text: &str) -> Result<FileSet, String> {
    let Some((file, rest)) = text.split_once(':') else {
        return Err(format!(
            "`{text}` is not FILE:PATH=VALUE; write e.g. `apps/app/values.yaml:image.tag=1.4.2`"
        ));
    };
    if file.is_empty() {
        return Err(format!("`{text}` names no file before `:`"));
    }
    Ok(FileSet {
        file: repo_path(file)?,
        assignment: target::parse_assignment(rest)?,
    })
}

/// A path inside the repository as git names it: `/apps/x`, `./apps/x` and
/// `apps//x` all become `apps/x`. A `..` component is refused: nothing
/// outside the repository can be named, and inside it there is one spelling.
pub fn repo_path(text: &str) -> Result<String, String> {
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!(
                    "`{text}` goes up with `..`; paths are relative to the repository root, \
                     e.g. `apps/app/values.yaml`"
                ))
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// One `--promote FROM_FILE:PATH=TO_FILE:PATH`: copy a (tested) value.
#[derive(Debug, Clone)]
pub struct Promotion {
    pub from_file: String,
    pub from: crate::yaml::Path,
    pub to_file: String,
    pub to: crate::yaml::Path,
}

/// Parse `FROM_FILE:PATH=TO_FILE:PATH`.
pub fn parse_promotion(text: &str) -> Result<Promotion, String> {
    let usage = || {
        format!(
            "`{text}` is not FROM_FILE:PATH=TO_FILE:PATH; write e.g. \
             `envs/staging/values.yaml:image.tag=envs/prod/values.yaml:image.tag`"
        )
    };
    let mut depth = 0usize;
    let split = text.char_indices().find(|&(_, c)| {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        c == '=' && depth == 0
    });
    let (from, to) = match split {
        Some((i, _)) => (&text[..i], &text[i + 1..]),
        None => return Err(usage()),
    };
    let side = |s: &str| -> Result<(String, crate::yaml::Path), String> {
        let (file, path) = s.split_once(':').ok_or_else(usage)?;
        if file.is_empty() {
            return Err(usage());
        }
        Ok((
            repo_path(file)?,
            crate::yaml::Path::parse(path).map_err(|e| e.to_string())?,
        ))
    };
    let ((from_file, from), (to_file, to)) = (side(from)?, side(to)?);
    Ok(Promotion {
        from_file,
        from,
        to_file,
        to,
    })
}

/// Everything one update needs, resolved from flags and environment.
#[derive(Debug, Clone)]
pub struct UpdateSpec {
    pub remote: RemoteUrl,
    pub auth: Auth,
    /// `None`: the remote's default branch.
    pub base: Option<String>,
    /// `None`: derived from the targets (see [`branch_name`]).
    pub branch: Option<String>,
    /// Push to the base branch instead of a review branch.
    pub direct: bool,
    pub dry_run: bool,
    pub sets: Vec<FileSet>,
    pub promotions: Vec<Promotion>,
    pub documents: Documents,
    pub images: Vec<ImageRef>,
    /// Where image scans look (relative to the repo root); empty = everywhere.
    pub dirs: Vec<String>,
    pub app_version: bool,
    /// Commit message template (see [`render_message`]); `None` = default.
    pub message: Option<String>,
    pub author_name: String,
    pub author_email: String,
    pub attempts: u32,
    /// The wall-clock cap on the whole run (`--timeout`).
    pub timeout: Duration,
    /// Links for the commit message, from CI.
    pub source_commit: Option<String>,
    pub pipeline_url: Option<String>,
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// A commit was pushed.
    Pushed,
    /// Nothing to change: files already hold the values, or the review
    /// branch already has exactly this change.
    Unchanged,
    /// `--dry-run`: computed, nothing sent.
    DryRun,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub operation: Operation,
    pub base: String,
    pub branch: String,
    /// Whether the branch existed before (for review branches).
    pub branch_existed: bool,
    /// The base tip the change was made on.
    pub parent: String,
    pub commit: Option<String>,
    pub plan: Plan,
    pub attempts: u32,
    pub message: String,
}

/// The review branch for a set of targets: stable across runs (no values in
/// it), so a re-run updates the same branch and the same MR/PR, and unique
/// per set of targets: a readable part (the last two components of each
/// image's name, or the directory of the first file set) and a hash of the
/// whole targets (every image's full normalized name, every file and path),
/// so `…/platform/services/api` and `…/billing/services/api` never share one.
pub fn branch_name(base: &str, spec: &UpdateSpec) -> String {
    let mut parts: Vec<String> = spec
        .images
        .iter()
        .map(|i| last_two(i.path.strip_prefix("library/").unwrap_or(&i.path)))
        .collect();
    if !spec.sets.is_empty() || !spec.promotions.is_empty() {
        let first_file = spec
            .sets
            .first()
            .map(|s| s.file.as_str())
            .or(spec.promotions.first().map(|p| p.to_file.as_str()))
            .unwrap_or("update");
        parts.push(
            first_file
                .rsplit('/')
                .nth(1)
                .unwrap_or(first_file)
                .to_string(),
        );
    }
    let slug: String = sanitize(&parts.join("-")).chars().take(60).collect();
    let slug = slug.trim_end_matches(['-', '.', '/']);
    let slug = if slug.is_empty() { "update" } else { slug };
    format!(
        "tagbump/{}/{slug}-{}",
        sanitize(base),
        &targets_id(spec)[..8]
    )
}

/// A stable id of what a run changes (not the values): the hash behind the
/// review branch's name, and the `Tagbump-Targets:` trailer of its commits,
/// so a branch holding another set of targets' change is never overwritten.
pub fn targets_id(spec: &UpdateSpec) -> String {
    let mut keys: Vec<String> = spec
        .images
        .iter()
        .map(|i| format!("image {}", i.normalized_name()))
        .chain(
            spec.sets
                .iter()
                .map(|s| format!("set {}:{}", s.file, s.assignment.path)),
        )
        .chain(
            spec.promotions
                .iter()
                .map(|p| format!("promote {}:{}<-{}:{}", p.to_file, p.to, p.from_file, p.from)),
        )
        .chain(spec.dirs.iter().map(|d| format!("in {d}")))
        .collect();
    keys.sort();
    keys.dedup();
    format!("{:016x}", fnv1a(keys.join("\n").as_bytes()))
}

/// The name tagbump 0.1 gave the review branch (last two path components
/// only, which let two images share a branch). Checked for so that a merge
/// request opened under it is not left behind without a word.
pub fn legacy_branch_name(base: &str, spec: &UpdateSpec) -> String {
    let mut parts: Vec<String> = spec.images.iter().map(|i| last_two(&i.path)).collect();
    if !spec.sets.is_empty() || !spec.promotions.is_empty() {
        let mut keys: Vec<String> = spec
            .sets
            .iter()
            .map(|s| format!("{}:{}", s.file, s.assignment.path))
            .chain(
                spec.promotions
                    .iter()
                    .map(|p| format!("{}:{}<-{}:{}", p.to_file, p.to, p.from_file, p.from)),
            )
            .collect();
        keys.sort();
        let first_file = spec
            .sets
            .first()
            .map(|s| s.file.as_str())
            .or(spec.promotions.first().map(|p| p.to_file.as_str()))
            .unwrap_or("update");
        let stem = first_file
            .rsplit('/')
            .nth(1)
            .unwrap_or(first_file)
            .to_string();
        parts.push(format!(
            "{stem}-{:08x}",
            fnv1a(keys.join("\n").as_bytes()) as u32
        ));
    }
    let slug = sanitize(&parts.join("-"));
    format!(
        "tagbump/{}/{}",
        sanitize(base),
        if slug.is_empty() {
            "update".into()
        } else {
            slug
        }
    )
}

fn last_two(path: &str) -> String {
    let mut parts: Vec<&str> = path.rsplit('/').take(2).collect();
    parts.reverse();
    parts.join("-")
}

/// The trailer naming a commit's targets, see [`targets_id`].
pub const TARGETS_TRAILER: &str = "Tagbump-Targets:";

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Keep a ref-name-safe subset: letters, digits, `.`, `_`, `-`, `/`.
fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/') {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let out = out.replace("..", "-").replace("/.", "/-");
    out.trim_matches(|c| c == '-' || c == '.' || c == '/')
        .chars()
        .take(80)
        .collect()
}

/// Edits stacked file by file: each step starts from the text the previous
/// steps left, and the result keeps the original text and every outcome.
#[derive(Default)]
struct Layers {
    original: BTreeMap<String, String>,
    current: BTreeMap<String, String>,
    outcomes: BTreeMap<String, Vec<crate::yaml::Outcome>>,
}

impl Layers {
    fn text<'a>(&'a self, path: &str) -> Option<&'a String> {
        self.current.get(path)
    }

    fn absorb(&mut self, edit: FileEdit) {
        self.original.entry(edit.path.clone()).or_insert(edit.old);
        self.outcomes
            .entry(edit.path.clone())
            .or_default()
            .extend(edit.outcomes);
        self.current.insert(edit.path, edit.new);
    }

    fn into_files(mut self) -> Vec<FileEdit> {
        self.original
            .into_iter()
            .map(|(path, old)| FileEdit {
                notes: Vec::new(),
                new: self.current.remove(&path).unwrap_or_else(|| old.clone()),
                outcomes: self.outcomes.remove(&path).unwrap_or_default(),
                path,
                old,
            })
            .collect()
    }
}

/// Compute the edits on `commit`: image scans first, then explicit sets on
/// the result, every file read fresh from the tree.
pub fn plan_on(session: &Session, commit: Oid, spec: &UpdateSpec) -> Result<Plan> {
    let mut layers = Layers::default();
    let mut plan = Plan::default();

    if !spec.images.is_empty() {
        let dirs = if spec.dirs.is_empty() {
            vec![String::new()]
        } else {
            spec.dirs.clone()
        };
        let mut files: Vec<SourceFile> = Vec::new();
        for dir in &dirs {
            let (found, unreadable) = session.yaml_files(commit, dir)?;
            for f in found {
                if !files.iter().any(|g| g.path == f.path) {
                    files.push(f);
                }
            }
            plan.skipped.extend(unreadable);
        }
        for image in &spec.images {
            let current: Vec<SourceFile> = files
                .iter()
                .map(|f| SourceFile {
                    path: f.path.clone(),
                    text: layers.text(&f.path).unwrap_or(&f.text).clone(),
                })
                .collect();
            let update = ImageUpdate {
                image: image.clone(),
                app_version: spec.app_version,
            };
            let step = target::plan_image(&current, &update).map_err(Failure::from)?;
            if step.files.is_empty() {
                return Err(Failure::new(
                    Kind::NotFound,
                    format!(
                        "no reference to `{}` in {} ({} YAML file(s) read)",
                        image.name(),
                        describe_dirs(&spec.dirs),
                        current.len()
                    ),
                )
                .hint("check the image name, and --in (paths are relative to the repository root)")
                .into());
            }
            step.files.into_iter().for_each(|edit| layers.absorb(edit));
            for skipped in step.skipped {
                if !plan.skipped.contains(&skipped) {
                    plan.skipped.push(skipped);
                }
            }
            plan.notes.extend(step.notes);
        }
    }

    let mut by_file: BTreeMap<&str, Vec<Assignment>> = BTreeMap::new();
    for set in &spec.sets {
        by_file
            .entry(set.file.as_str())
            .or_default()
            .push(set.assignment.clone());
    }
    // Promotions read the value as it is on the base: the tested one, not
    // one this run may be writing at the same time.
    for promotion in &spec.promotions {
        let value = promoted_value(session, commit, promotion)?;
        by_file
            .entry(promotion.to_file.as_str())
            .or_default()
            .push(Assignment {
                path: promotion.to.clone(),
                value,
            });
    }
    for (path, assignments) in by_file {
        let text = match layers.text(path) {
            Some(text) => text.clone(),
            None => session.read_file(commit, path)?.ok_or_else(|| {
                Failure::new(
                    Kind::NotFound,
                    format!("`{path}` does not exist in the repository"),
                )
                .hint("--set takes FILE:PATH=VALUE with FILE relative to the repository root")
            })?,
        };
        let file = SourceFile {
            path: path.to_string(),
            text,
        };
        let edit = target::plan_set(&file, &assignments, spec.documents).map_err(Failure::from)?;
        plan.notes.extend(edit.notes.iter().cloned());
        layers.absorb(edit);
    }

    plan.files = layers.into_files();
    Ok(plan)
}

/// The scalar at a promotion's source, which must be exactly one value.
fn promoted_value(session: &Session, commit: Oid, p: &Promotion) -> Result<String> {
    let text = session.read_file(commit, &p.from_file)?.ok_or_else(|| {
        Failure::new(
            Kind::NotFound,
            format!("`{}` does not exist in the repository", p.from_file),
        )
        .hint("--promote takes FROM_FILE:PATH=TO_FILE:PATH, files relative to the repository root")
    })?;
    let fail = |error| {
        Failure::from(target::FileError {
            path: p.from_file.clone(),
            error,
        })
    };
    let stream = crate::yaml::Stream::parse(&text).map_err(fail)?;
    let found = stream.resolve(&p.from, None).map_err(fail)?;
    match found.as_slice() {
        [one] => match one.node.as_scalar() {
            Some(scalar) if !scalar.empty => Ok(scalar.value.clone()),
            _ => Err(Failure::new(
                Kind::Input,
                format!(
                    "{}:{}: `{}` is a {}, not a value to promote",
                    p.from_file,
                    one.node.line,
                    p.from,
                    one.node.describe()
                ),
            )
            .into()),
        },
        many => Err(Failure::new(
            Kind::Input,
            format!(
                "{}: `{}` matches in {} documents; promote from a path that names one value",
                p.from_file,
                p.from,
                many.len()
            ),
        )
        .into()),
    }
}

fn describe_dirs(dirs: &[String]) -> String {
    if dirs.is_empty() {
        "the repository".to_string()
    } else {
        dirs.iter()
            .map(|d| format!("`{d}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The placeholders a `--message` template may use.
pub const MESSAGE_VARIABLES: &[&str] = &[
    "image",
    "name",
    "old_tag",
    "new_tag",
    "files",
    "changes",
    "branch",
    "base",
    "source_commit",
    "pipeline_url",
];

/// Fill a message template: `{name}` placeholders from [`MESSAGE_VARIABLES`];
/// `{{` and `}}` are literal braces. Unknown placeholders are an error.
pub fn render_message(template: &str, vars: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(
                "unmatched `}` in the message template (write `}}` for a literal brace)".into(),
            );
        }
        let Some(end) = tail.find('}') else {
            return Err(
                "unclosed `{` in the message template (write `{{` for a literal brace)".into(),
            );
        };
        let name = &tail[1..end];
        match vars.get(name) {
            Some(value) => out.push_str(value),
            None if MESSAGE_VARIABLES.contains(&name) => {}
            None => {
                return Err(format!(
                    "unknown placeholder `{{{name}}}` in the message template; use {}",
                    MESSAGE_VARIABLES
                        .iter()
                        .map(|v| format!("{{{v}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The values behind the `{…}` placeholders of messages, titles and descriptions.
pub fn template_vars(
    spec: &UpdateSpec,
    plan: &Plan,
    base: &str,
    branch: &str,
) -> BTreeMap<&'static str, String> {
    let changed: Vec<&FileEdit> = plan.files.iter().filter(|f| f.changed()).collect();
    let first = changed
        .iter()
        .flat_map(|f| f.outcomes.iter())
        .find(|o| o.changed);
    let changes: Vec<String> = changed
        .iter()
        .flat_map(|f| {
            f.outcomes
                .iter()
                .filter(|o| o.changed)
                .map(move |o| format!("- {}: {}: {} -> {}", f.path, o.what, o.old, o.new))
        })
        .collect();
    let files: Vec<&str> = changed.iter().map(|f| f.path.as_str()).collect();
    let mut vars: BTreeMap<&'static str, String> = BTreeMap::new();
    vars.insert("changes", changes.join("\n"));
    vars.insert("files", files.join(", "));
    vars.insert("branch", branch.to_string());
    vars.insert("base", base.to_string());
    if let Some(image) = spec.images.first() {
        vars.insert("image", image.to_string());
        vars.insert("name", image.name());
        vars.insert("new_tag", image.version());
    } else if let Some(o) = first {
        vars.insert("new_tag", o.new.clone());
    }
    if let Some(o) = first {
        let old = ImageRef::parse(&o.old)
            .ok()
            .map(|r| r.version())
            .filter(|v| !v.is_empty());
        vars.insert("old_tag", old.unwrap_or_else(|| o.old.clone()));
    }
    if let Some(sha) = &spec.source_commit {
        vars.insert("source_commit", sha.clone());
    }
    if let Some(url) = &spec.pipeline_url {
        vars.insert("pipeline_url", url.clone());
    }
    vars
}

/// The one-line summary used for commits and titles by default.
pub fn summary(spec: &UpdateSpec, plan: &Plan) -> String {
    match spec.images.first() {
        Some(image) => format!("Update {} to {}", image.path, image.version()),
        None => {
            let files: Vec<&str> = plan
                .files
                .iter()
                .filter(|f| f.changed())
                .map(|f| f.path.as_str())
                .collect();
            format!("Update {}", files.join(", "))
        }
    }
}

/// The commit message: the template (or a default summary), the list of
/// changes, CI links, and the trailer that marks tagbump's commits.
pub fn message(spec: &UpdateSpec, plan: &Plan, base: &str, branch: &str) -> Result<String> {
    let vars = template_vars(spec, plan, base, branch);
    let body = match &spec.message {
        Some(template) => {
            render_message(template, &vars).map_err(|e| Failure::new(Kind::Usage, e))?
        }
        None => {
            let mut text = format!("{}\n\n{}\n", summary(spec, plan), vars["changes"]);
            if let Some(sha) = &spec.source_commit {
                text.push_str(&format!("\nSource-Commit: {sha}"));
            }
            if let Some(url) = &spec.pipeline_url {
                text.push_str(&format!("\nPipeline: {url}"));
            }
            text
        }
    };
    Ok(format!(
        "{}\n\n{TARGETS_TRAILER} {}\n{TRAILER}\n",
        body.trim_end(),
        targets_id(spec)
    ))
}

/// The default merge/pull request description: a table of the changes, and
/// links to where they came from.
pub fn default_description(spec: &UpdateSpec, report: &Report, noun: &str) -> String {
    let mut text = match spec.images.first() {
        Some(image) => format!(
            "tagbump updated `{}` to `{}` on `{}`.\n\n",
            image.name(),
            image.version(),
            report.base
        ),
        None => format!("tagbump updated these values on `{}`.\n\n", report.base),
    };
    text.push_str("| file | path | old | new |\n|---|---|---|---|\n");
    for file in report.plan.files.iter().filter(|f| f.changed()) {
        for o in file.outcomes.iter().filter(|o| o.changed) {
            text.push_str(&format!(
                "| `{}` | `{}` | `{}` | `{}` |\n",
                file.path, o.what, o.old, o.new
            ));
        }
    }
    let mut links = Vec::new();
    if let Some(sha) = &spec.source_commit {
        links.push(format!("source commit `{sha}`"));
    }
    if let Some(url) = &spec.pipeline_url {
        links.push(format!("[pipeline]({url})"));
    }
    if !links.is_empty() {
        text.push_str(&format!("\nFrom {}.\n", links.join(", ")));
    }
    text.push_str(&format!(
        "\n<sub>Opened by tagbump from branch `{}`; running it again with a newer tag updates this {noun}.</sub>\n",
        report.branch
    ));
    text
}

/// Sleep before retry `attempt` (1-based): exponential from 200 ms, capped
/// at 5 s, times a random factor in [0.5, 1.5) so racing pipelines spread out.
fn backoff(attempt: u32) -> Duration {
    let base = 200u64.saturating_mul(1 << attempt.min(5)).min(5_000);
    let random = RandomState::new().hash_one(attempt) % 1000;
    Duration::from_millis(base * (500 + random) / 1000)
}

/// What one attempt came to.
enum Attempt {
    Done(Report),
    /// Try again from a fresh clone. `contention`: another push came first
    /// (the base moved), not a fault of the server or the network.
    Again {
        why: String,
        contention: bool,
    },
}

/// Run the update: attempts from a fresh clone each, retried with backoff
/// on contention and on transient faults, within `--attempts` and
/// `--timeout`; permanent failures (auth, host key, not found, a declined
/// push) end it at once.
pub fn run(spec: &UpdateSpec) -> Result<Report> {
    let author = Signature::now(&spec.author_name, &spec.author_email).map_err(|e| {
        Failure::new(
            Kind::Usage,
            format!(
                "invalid author `{} <{}>`: {}",
                spec.author_name,
                spec.author_email,
                e.message()
            ),
        )
    })?;
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (why, contention) = match attempt_once(spec, attempt, &author) {
            Ok(Attempt::Done(report)) => return Ok(report),
            Ok(Attempt::Again { why, contention }) => (why, contention),
            Err(e) if crate::error::is_transient(&e) => {
                (crate::secret::scrub(&format!("{e:#}")), false)
            }
            Err(e) => return Err(e),
        };
        let mut delay = backoff(attempt);
        let busy = ["http status code: 429", "http status code: 503"];
        if attempt < spec.attempts && busy.iter().any(|b| why.contains(b)) {
            if let Some(asked) = crate::git::http_retry_after(&spec.remote, &spec.auth) {
                eprintln!("the server asks to retry after {} s", asked.as_secs());
                delay = delay.max(asked.min(Duration::from_secs(60)));
            }
        }
        if attempt >= spec.attempts || started.elapsed() + delay >= spec.timeout {
            return Err(gave_up(
                attempt,
                started.elapsed(),
                &spec.remote.url,
                why,
                contention,
            ));
        }
        eprintln!(
            "attempt {attempt} of {} failed: {why}; trying again in {:.1} s",
            spec.attempts,
            delay.as_secs_f64()
        );
        std::thread::sleep(delay);
    }
}

/// One attempt: clone the tips, plan, commit, push.
fn attempt_once(spec: &UpdateSpec, attempt: u32, author: &Signature<'_>) -> Result<Attempt> {
    // A fresh depth-1 clone per attempt: nothing from a failed attempt can
    // leak into the next, and a shallow clone of the new tip costs about
    // what an incremental fetch into the old one would.
    let session = Session::open(spec.remote.clone(), spec.auth.clone())?;
    crate::interrupt::stage(format!("connecting to {}", session.url()));
    let mut chosen = None;
    let advert = session.discover_and_fetch(|advert| {
        let base = resolve_base(spec, advert, session.url())?;
        let branch = match (spec.direct, &spec.branch) {
            (true, _) => base.clone(),
            (false, Some(b)) => b.clone(),
            (false, None) => branch_name(&base, spec),
        };
        let mut wanted = vec![base.clone()];
        if !spec.direct && advert.head(&branch).is_some() {
            wanted.push(branch.clone());
        }
        crate::interrupt::stage(format!("fetching `{base}` from {}", session.url()));
        chosen = Some((base, branch));
        Ok(wanted)
    })?;
    let (base, branch) = chosen.expect("set by the fetch");
    let legacy = legacy_branch_name(&base, spec);
    let legacy_note = (attempt == 1
        && !spec.direct
        && spec.branch.is_none()
        && legacy != branch
        && advert.head(&branch).is_none()
        && advert.head(&legacy).is_some())
    .then(|| {
        format!(
            "`{legacy}` on {} is a review branch from an older tagbump for these targets; \
             this run uses `{branch}` (names now include a hash of the whole targets). \
             Close the merge request from `{legacy}` and delete that branch",
            session.url()
        )
    });
    if let Some(note) = &legacy_note {
        eprintln!("note: {note}");
    }
    // The tips are the advertised ones, fetched on the same connection.
    let base_tip = session.fetched(&base).filter(|&c| session.has_commit(c));
    let branch_tip = if spec.direct {
        base_tip
    } else {
        session.fetched(&branch)
    };
    let Some(base_tip) = base_tip else {
        return Ok(Attempt::Again {
            why: format!("`{base}` was not fetched whole"),
            contention: true,
        });
    };

    let mut plan = plan_on(&session, base_tip, spec)?;
    plan.notes.extend(legacy_note);
    let mut report = Report {
        operation: Operation::Unchanged,
        base: base.clone(),
        branch: branch.clone(),
        branch_existed: branch_tip.is_some(),
        parent: base_tip.to_string(),
        commit: None,
        plan,
        attempts: attempt,
        message: String::new(),
    };
    if !report.plan.changed() {
        return Ok(Attempt::Done(report));
    }
    let tree = session.build_tree(base_tip, &report.plan.files)?;
    if let (false, Some(tip)) = (spec.direct, branch_tip) {
        if !session.is_ours(tip) {
            return Err(Failure::new(
                Kind::Conflict,
                format!("branch `{branch}` on {} has commits tagbump did not make; not overwriting it", session.url()),
            )
            .hint("merge or close its merge request and delete the branch, or pass --branch with another name")
            .into());
        }
        let theirs = session.trailer(tip, TARGETS_TRAILER);
        if theirs.as_deref().is_some_and(|t| t != targets_id(spec)) {
            return Err(Failure::new(
                Kind::Conflict,
                format!(
                    "branch `{branch}` on {} holds tagbump's change for other targets \
                     ({TARGETS_TRAILER} {}); not overwriting it",
                    session.url(),
                    theirs.unwrap_or_default()
                ),
            )
            .hint("pass --branch with another name, or let that change merge (or close it) first")
            .into());
        }
        if session.tree_and_parent(tip) == Some((tree, Some(base_tip))) {
            report.commit = Some(tip.to_string());
            return Ok(Attempt::Done(report));
        }
    }
    report.message = message(spec, &report.plan, &base, &branch)?;
    let commit = session.commit(base_tip, tree, &report.message, author)?;
    report.commit = Some(commit.to_string());
    if spec.dry_run {
        report.operation = Operation::DryRun;
        return Ok(Attempt::Done(report));
    }
    crate::interrupt::stage(format!("pushing `{branch}` to {}", session.url()));
    crate::interrupt::pushing(&commit.to_string(), &branch);
    let pushed = session.push(commit, &branch, branch_tip, !spec.direct);
    crate::interrupt::pushed(matches!(pushed, Ok(Pushed::Done)));
    match pushed? {
        Pushed::Done => {
            report.operation = Operation::Pushed;
            Ok(Attempt::Done(report))
        }
        Pushed::Rejected(why) if crate::git::declined(&why) => {
            let said = session.remote_lines();
            let mut message = format!("{} declined the push to `{branch}`: {why}", session.url());
            for line in &said {
                message.push_str(&format!("\n  remote: {line}"));
            }
            Err(Failure::new(Kind::Declined, message)
                .hint(
                    "a server hook or branch protection refused it; retrying would not help. \
                     Push to a review branch (drop --direct), or ask for push rights on the branch",
                )
                .into())
        }
        Pushed::Rejected(why) => Ok(Attempt::Again {
            why: format!("the push was rejected ({why})"),
            contention: true,
        }),
        Pushed::Stale => Ok(Attempt::Again {
            why: format!("`{branch}` moved while pushing"),
            contention: true,
        }),
    }
}

fn gave_up(
    attempts: u32,
    took: Duration,
    url: &str,
    why: String,
    contention: bool,
) -> anyhow::Error {
    let message = format!(
        "gave up after {attempts} attempt(s) in {:.1} s to push to {url}; the last one: {why}",
        took.as_secs_f64()
    );
    if contention {
        Failure::new(Kind::Conflict, message)
            .hint("others kept pushing first; raise --attempts or --timeout")
            .into()
    } else {
        Failure::new(Kind::Remote, message)
            .hint("the server or the network kept failing; check that the server is up and not overloaded, or raise --attempts or --timeout")
            .into()
    }
}

fn resolve_base(spec: &UpdateSpec, advert: &Advert, url: &str) -> Result<String> {
    if advert.heads.is_empty() {
        return Err(
            Failure::new(Kind::NotFound, format!("{url} has no branches"))
                .hint("push an initial commit first")
                .into(),
        );
    }
    let base = match (&spec.base, &advert.default_branch) {
        (Some(b), _) => b.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => {
            return Err(Failure::new(
                Kind::NotFound,
                format!("{url} does not say which branch is its default"),
            )
            .hint("pass --base BRANCH")
            .into())
        }
    };
    if advert.head(&base).is_none() {
        let names: Vec<&str> = advert.heads.keys().map(String::as_str).take(10).collect();
        return Err(Failure::new(
            Kind::NotFound,
            format!(
                "branch `{base}` does not exist on {url} (branches: {})",
                names.join(", ")
            ),
        )
        .hint("pass --base with an existing branch")
        .into());
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> UpdateSpec {
        UpdateSpec {
            remote: RemoteUrl::parse("/tmp/x.git").unwrap(),
            auth: Auth::default(),
            base: None,
            branch: None,
            direct: false,
            dry_run: false,
            sets: vec![],
            promotions: vec![],
            documents: Documents::One,
            images: vec![],
            dirs: vec![],
            app_version: false,
            message: None,
            author_name: "t".into(),
            author_email: "t@x".into(),
            attempts: 3,
            timeout: Duration::from_secs(60),
            source_commit: None,
            pipeline_url: None,
        }
    }

    #[test]
    fn branch_names_are_stable_and_safe() {
        let mut s = spec();
        s.images = vec![ImageRef::parse("registry.example.com/team/app:1.4.2").unwrap()];
        let name = branch_name("main", &s);
        assert!(name.starts_with("tagbump/main/team-app-"), "{name}");
        assert_eq!(name.len(), "tagbump/main/team-app-".len() + 8);
        assert_eq!(legacy_branch_name("main", &s), "tagbump/main/team-app");
        s.images = vec![ImageRef::parse("registry.example.com/team/app:9.9.9").unwrap()];
        assert_eq!(branch_name("main", &s), name);
        // Issue #8: two images with the same last components, two branches.
        s.images =
            vec![ImageRef::parse("registry.gitlab.com/acme/platform/services/api:1").unwrap()];
        let platform = branch_name("main", &s);
        s.images =
            vec![ImageRef::parse("registry.gitlab.com/acme/billing/services/api:1").unwrap()];
        let billing = branch_name("main", &s);
        assert_ne!(platform, billing);
        assert!(
            platform.starts_with("tagbump/main/services-api-"),
            "{platform}"
        );
        // Docker Hub names are one image however they are spelled.
        s.images = vec![ImageRef::parse("nginx:1").unwrap()];
        let short = branch_name("main", &s);
        s.images = vec![ImageRef::parse("docker.io/library/nginx:2").unwrap()];
        assert_eq!(branch_name("main", &s), short);
        s.images.clear();
        s.sets = vec![parse_file_set("apps/web/values.yaml:image.tag=1").unwrap()];
        let a = branch_name("release/1.x", &s);
        s.sets = vec![parse_file_set("apps/web/values.yaml:image.tag=2").unwrap()];
        assert_eq!(branch_name("release/1.x", &s), a);
        assert!(a.starts_with("tagbump/release/1.x/web-"), "{a}");
        assert_eq!(sanitize("a b..c/.d"), "a-b-c/-d");
    }

    #[test]
    fn repository_paths_have_one_spelling() {
        assert_eq!(
            repo_path("/apps/app/values.yaml").unwrap(),
            "apps/app/values.yaml"
        );
        assert_eq!(
            repo_path("./apps//app/./v.yaml").unwrap(),
            "apps/app/v.yaml"
        );
        assert_eq!(repo_path("/").unwrap(), "");
        assert!(repo_path("../../etc")
            .unwrap_err()
            .contains("goes up with `..`"));
        assert!(repo_path("apps/../x").is_err());
        assert_eq!(
            parse_file_set("/apps/a.yaml:image.tag=1").unwrap().file,
            "apps/a.yaml"
        );
    }

    #[test]
    fn promotions_parse() {
        let p =
            parse_promotion("envs/staging/values.yaml:image.tag=envs/prod/values.yaml:image.tag")
                .unwrap();
        assert_eq!(
            (p.from_file.as_str(), p.to_file.as_str()),
            ("envs/staging/values.yaml", "envs/prod/values.yaml")
        );
        let p = parse_promotion("a.yaml:c[name=x].image=b.yaml:c[name=y].image").unwrap();
        assert_eq!(p.from.to_string(), "c[name=x].image");
        assert_eq!(p.to.to_string(), "c[name=y].image");
        assert!(parse_promotion("a.yaml:x")
            .unwrap_err()
            .contains("FROM_FILE:PATH=TO_FILE:PATH"));
        assert!(parse_promotion("a.yaml:x=y").is_err());
    }

    #[test]
    fn file_sets() {
        let s = parse_file_set("apps/a.yaml:spec.containers[name=app].image=x:1").unwrap();
        assert_eq!(s.file, "apps/a.yaml");
        assert_eq!(
            s.assignment.path.to_string(),
            "spec.containers[name=app].image"
        );
        assert_eq!(s.assignment.value, "x:1");
        assert!(parse_file_set("image.tag=1")
            .unwrap_err()
            .contains("FILE:PATH=VALUE"));
    }

    #[test]
    fn message_templates() {
        let mut vars = BTreeMap::new();
        vars.insert("name", "team/app".to_string());
        vars.insert("new_tag", "1.4.2".to_string());
        assert_eq!(
            render_message("chore: {name} -> {new_tag} {{x}} {pipeline_url}", &vars).unwrap(),
            "chore: team/app -> 1.4.2 {x} "
        );
        assert!(render_message("{nope}", &vars)
            .unwrap_err()
            .contains("unknown placeholder `{nope}`"));
        assert!(render_message("{name", &vars)
            .unwrap_err()
            .contains("unclosed"));
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            assert!(
                d >= Duration::from_millis(100) && d < Duration::from_millis(7_500),
                "{d:?}"
            );
        }
    }
}
