//! `tagbump update`: clone the manifest repo, edit, commit, push — and when
//! someone else pushed first, or the server failed for a moment, start
//! again from the newest tip.
//!
//! The rooms: [`command`] runs the subcommand (settings in, results out);
//! [`attempt`] is the attempt loop, its retry rules and backoff; [`branch`]
//! names review branches and decides when one may be overwritten (the lease);
//! [`plan`] computes the edits on a fetched tip; [`message`] writes the commit
//! message and the merge request's text; [`change_request`] opens or updates
//! the merge/pull request. This file holds the types they share: what to
//! change ([`UpdateSpec`]) and what happened ([`Report`]).
//!
//! Every attempt re-reads the files from the newest tip and recomputes the
//! edits from scratch: a retry never rebases stale text.

pub mod attempt;
pub mod join;
pub mod message;
pub mod plan;
pub mod put;
pub mod review_branch;
pub mod transport;

use std::time::Duration;

use crate::git::{Auth, RemoteUrl};
use crate::image::ImageRef;
use crate::targets::{self, Assignment, Plan};
use crate::yaml::Documents;

pub use attempt::run;
pub use message::{
    default_description, message, render_message, summary, template_problem, template_vars,
    MESSAGE_VARIABLES,
};
pub use plan::plan_on;
pub use review_branch::{branch_name, legacy_branch_name, targets_id, TARGETS_TRAILER};

/// One `--set FILE:PATH=VALUE`.
#[derive(Debug, Clone)]
pub struct FileSet {
    pub file: String,
    pub assignment: Assignment,
    /// A config-file `set` without its own `value`: it takes the first
    /// image's version once the registry has settled it (the tag a
    /// `--tag-policy` chose); until then it holds the version as given.
    pub from_image: bool,
    /// Who asked for it, for messages: `--set …`, or the config file's entry.
    pub ask: String,
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
        assignment: targets::parse_assignment(rest)?,
        from_image: false,
        ask: format!("--set {text}"),
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

/// `FILE:PATH` (a file in the repository and a YAML path in it). `Err(None)`
/// when the text does not have that shape, for the caller to say what it wanted.
pub fn file_path(text: &str) -> Result<(String, crate::yaml::Path), Option<String>> {
    let (file, path) = text.split_once(':').ok_or(None)?;
    if file.is_empty() {
        return Err(None);
    }
    Ok((
        repo_path(file).map_err(Some)?,
        crate::yaml::Path::parse(path).map_err(|e| Some(e.to_string()))?,
    ))
}

/// One `--promote FROM_FILE:PATH=TO_FILE:PATH`: copy a (tested) value.
#[derive(Debug, Clone)]
pub struct Promotion {
    pub from_file: String,
    pub from: crate::yaml::Path,
    pub to_file: String,
    pub to: crate::yaml::Path,
    /// Who asked for it, for messages: `--promote …`, or the config file's entry.
    pub ask: String,
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
    let side = |s: &str| file_path(s).map_err(|e| e.unwrap_or_else(usage));
    let ((from_file, from), (to_file, to)) = (side(from)?, side(to)?);
    Ok(Promotion {
        from_file,
        from,
        to_file,
        to,
        ask: format!("--promote {text}"),
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
    /// Add to the other tagbump changes on `branch` (`--join`).
    pub join: bool,
    pub dry_run: bool,
    pub sets: Vec<FileSet>,
    pub promotions: Vec<Promotion>,
    /// Whole files to add or replace (`--put`), already read.
    pub puts: Vec<put::Put>,
    pub documents: Documents,
    pub images: Vec<ImageRef>,
    /// Where image scans look (relative to the repo root); empty = everywhere.
    pub dirs: Vec<String>,
    pub app_version: bool,
    /// Commit message template (see [`render_message`]); `None` = default.
    pub message: Option<String>,
    pub author_name: String,
    pub author_email: String,
    /// Signs every commit, when a signing key is configured.
    pub signer: Option<std::sync::Arc<crate::signing::Signer>>,
    /// How the repository is read and written.
    pub via: Via,
    /// What to ask the image registry before the clone.
    pub registry: crate::registry::RegistrySpec,
    /// Where each of `images` came from (given, verified, resolved, chosen),
    /// once the registry was asked; empty before.
    pub image_sources: Vec<crate::registry::Source>,
    /// What the registry answered for each image's digest (`None`: not asked).
    pub image_digests: Vec<Option<String>>,
    /// Per image, where a fleet run scans for it (`images:` entries each
    /// have their own `in` and `pin_digest`); empty: `dirs` and `registry.pin`
    /// for every image.
    pub image_scopes: Vec<ImageScope>,
    /// Whether --image is scanned for (false: an environment without `in`,
    /// where the image only gives its version to `set` targets).
    pub scan: bool,
    /// Why `via` is what it is, for the report.
    pub via_reason: String,
    pub attempts: u32,
    /// The wall-clock cap on the whole run (`--timeout`).
    pub timeout: Duration,
    /// Links for the commit message, from CI.
    pub source_commit: Option<String>,
    pub pipeline_url: Option<String>,
}

/// Where one image of a fleet run is scanned for, and how its digest goes
/// into a Helm `tag` that has no digest key beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageScope {
    /// Relative to the repository root; empty: everywhere.
    pub dirs: Vec<String>,
    /// `pin_digest: tag`.
    pub digest_in_tag: bool,
    /// Written only where its `set` places say, never scanned for (Flux's
    /// markers name each place).
    pub sets_only: bool,
}

/// How the repository is read and written.
#[derive(Debug, Clone)]
pub enum Via {
    /// A depth-1 fetch into a temporary bare repository, and a push.
    Git,
    /// The forge's API; `fallback`: `--via auto` chose it, so a refused
    /// first read falls back to git.
    Api {
        conn: crate::forge::Connection,
        fallback: bool,
    },
}

/// `--via auto` reads through a forge API only up to this many YAML files
/// for a scan of `--in`: past it, a depth-1 clone transfers less (README,
/// performance: 8,000 files through GitLab's API cost 4.9x a clone's bytes).
pub const AUTO_API_FILES: usize = 100;

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq, Copy)]
pub enum Operation {
    /// A commit was pushed.
    Pushed,
    /// Nothing to change: the files on the base already hold the values.
    Unchanged,
    /// The review branch already holds exactly this change: nothing pushed.
    AlreadyOnBranch,
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
    /// How the repository was read and written: git (`None`), or this
    /// forge's API.
    pub via: Option<crate::forge::Kind>,
    /// Why that transport was used (`--via`, or what `auto` weighed).
    pub via_reason: String,
    /// The kind and fingerprint of the key that signed `commit`.
    pub signed: Option<(crate::signing::Format, String)>,
    pub plan: Plan,
    pub attempts: u32,
    pub message: String,
    /// `--join`: every image the branch's jobs asked for, this one's included.
    pub joined: Vec<String>,
}

/// A spec with nothing to change, for tests to fill in.
#[cfg(test)]
pub(crate) fn example_spec() -> UpdateSpec {
    UpdateSpec {
        remote: RemoteUrl::parse("https://example.com/x.git").expect("a valid URL"),
        auth: Auth::default(),
        base: None,
        branch: None,
        direct: false,
        join: false,
        dry_run: false,
        sets: vec![],
        promotions: vec![],
        puts: vec![],
        documents: Documents::One,
        images: vec![],
        dirs: vec![],
        app_version: false,
        message: None,
        author_name: "t".into(),
        author_email: "t@x".into(),
        signer: None,
        registry: Default::default(),
        image_sources: Vec::new(),
        image_digests: Vec::new(),
        image_scopes: Vec::new(),
        scan: true,
        via_reason: String::new(),
        via: Via::Git,
        attempts: 3,
        timeout: Duration::from_secs(60),
        source_commit: None,
        pipeline_url: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
