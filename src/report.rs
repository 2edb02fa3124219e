//! The JSON report: what `tagbump update --output json` prints, and the
//! values handed to later CI steps (`GITHUB_OUTPUT`, dotenv, the job summary)
//! derived from it. Its schema is generated from these types
//! (`tagbump report-schema`) and committed as `tagbump.report.schema.json`.
//! Stable: fields are only ever added (a breaking change bumps `version`).

use std::fmt;

use schemars::JsonSchema;
use serde::Serialize;

use crate::output::diff;

/// The result of `tagbump update`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JsonReport {
    /// Schema version.
    pub version: u32,
    /// Whether this run pushed a commit.
    pub changed: bool,
    pub operation: RunOperation,
    pub repository: String,
    pub base: String,
    pub branch: String,
    /// The commit pushed (or that would be, or that the branch already has).
    pub commit: Option<String>,
    /// The base commit the change was made on.
    pub parent: String,
    /// How the repository was read and written.
    pub via: RunTransport,
    /// Why: `--via git`, `--via api`, or what `--via auto` weighed (named
    /// files or a small `--in` through the API; a whole-repository scan, or
    /// an `--in` listing over 100 YAML files, through git).
    pub via_reason: String,
    /// How tagbump signed `commit`: `ssh` or `openpgp` with the key in
    /// `signing_key`; null when it did not (no key, or `--via api`, where the
    /// forge makes the commit and may sign it with its own key).
    pub signed: Option<crate::signing::Format>,
    /// The fingerprint of the signing key: `SHA256:…` (SSH), or the
    /// OpenPGP (sub)key's hex fingerprint.
    pub signing_key: Option<String>,
    pub attempts: u32,
    /// Each `--image`: the reference written and where its tag and digest
    /// came from.
    pub images: Vec<JsonImage>,
    pub files: Vec<JsonFile>,
    pub skipped: Vec<JsonSkipped>,
    pub notes: Vec<String>,
    pub change_request: Option<JsonChangeRequest>,
}

/// `--output json` of a run that failed: the error, for a pipeline that
/// parses the output (it got nothing before).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JsonFailure {
    /// The report's format version, as in a success.
    pub version: u32,
    pub error: JsonError,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JsonError {
    /// `usage`, `input`, `not-found`, `io`, `auth`, `remote`, `conflict`,
    /// `declined`, `missing-image` or `internal`.
    pub kind: &'static str,
    /// The error and its causes, one line, secrets scrubbed.
    pub message: String,
    /// What to do about it.
    pub hints: Vec<String>,
    pub exit_code: u8,
}

impl JsonFailure {
    pub fn new(err: &anyhow::Error) -> JsonFailure {
        let kind = crate::error::kind(err);
        JsonFailure {
            version: 1,
            error: JsonError {
                kind: kind.name(),
                message: crate::secret::scrub(&format!("{err:#}")),
                hints: crate::error::hints(err)
                    .iter()
                    .map(|h| crate::secret::scrub(h))
                    .collect(),
                exit_code: kind.exit_code(),
            },
        }
    }

    /// The job summary of a failed run.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "### tagbump: failed ({}, exit {})\n\n{}\n",
            self.error.kind,
            self.error.exit_code,
            self.error.message.replace('\n', " ")
        );
        for hint in &self.error.hints {
            md.push_str(&format!("\n*hint:* {hint}\n"));
        }
        md
    }
}

/// What the run did to the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunOperation {
    /// A commit was pushed.
    Pushed,
    /// Nothing to push: the values were there already (on the base, or on the
    /// review branch).
    Unchanged,
    /// `--dry-run`: computed, nothing sent.
    DryRun,
}

/// How the repository was read and written (`--via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunTransport {
    /// A depth-1 fetch and a push.
    Git,
    /// The forge's API.
    Api,
}

/// Which forge the change request is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForgeName {
    Gitlab,
    Github,
    Gitea,
}

/// What was done to the merge/pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RequestOperation {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JsonFile {
    pub path: String,
    pub changes: Vec<JsonChange>,
    /// Unified diff of the file (empty when unchanged).
    pub diff: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JsonChange {
    /// The YAML path or rule that found the value.
    pub path: String,
    pub document: usize,
    pub line: usize,
    pub old: String,
    pub new: String,
    pub changed: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JsonImage {
    /// The reference as written: `registry.example.com/team/app:1.4.2@sha256:…`.
    pub reference: String,
    pub name: String,
    pub tag: Option<String>,
    /// The digest written, else the one the registry answered for the tag
    /// (`--verify-image` without `--pin-digest`); null when none is known.
    pub digest: Option<String>,
    /// `given` (not checked), `verified` (the registry has it), `resolved`
    /// (the digest the tag points to), `policy` (the tag chosen by --tag-policy).
    pub source: crate::registry::Source,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JsonSkipped {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct JsonChangeRequest {
    pub forge: ForgeName,
    pub number: u64,
    pub url: String,
    pub operation: RequestOperation,
    pub notes: Vec<String>,
}

impl fmt::Display for RunOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunOperation::Pushed => "pushed",
            RunOperation::Unchanged => "unchanged",
            RunOperation::DryRun => "dry-run",
        })
    }
}

impl fmt::Display for ForgeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForgeName::Gitlab => "gitlab",
            ForgeName::Github => "github",
            ForgeName::Gitea => "gitea",
        })
    }
}

impl fmt::Display for RequestOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestOperation::Created => "created",
            RequestOperation::Updated => "updated",
            RequestOperation::Unchanged => "unchanged",
        })
    }
}

impl From<crate::update::Operation> for RunOperation {
    fn from(operation: crate::update::Operation) -> RunOperation {
        use crate::update::Operation;
        match operation {
            Operation::Pushed => RunOperation::Pushed,
            Operation::Unchanged | Operation::AlreadyOnBranch => RunOperation::Unchanged,
            Operation::DryRun => RunOperation::DryRun,
        }
    }
}

impl From<crate::forge::Kind> for ForgeName {
    fn from(kind: crate::forge::Kind) -> ForgeName {
        match kind {
            crate::forge::Kind::GitLab => ForgeName::Gitlab,
            crate::forge::Kind::GitHub => ForgeName::Github,
            crate::forge::Kind::Gitea => ForgeName::Gitea,
        }
    }
}

impl From<crate::forge::Operation> for RequestOperation {
    fn from(operation: crate::forge::Operation) -> RequestOperation {
        match operation {
            crate::forge::Operation::Created => RequestOperation::Created,
            crate::forge::Operation::Updated => RequestOperation::Updated,
            crate::forge::Operation::Unchanged => RequestOperation::Unchanged,
        }
    }
}

/// The JSON Schema of the report, for consumers of `--output json`.
pub fn schema() -> String {
    let schema = schemars::schema_for!(JsonReport);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

impl JsonReport {
    pub fn new(
        report: &crate::update::Report,
        spec: &crate::update::UpdateSpec,
        outcome: Option<&crate::forge::Outcome>,
    ) -> JsonReport {
        let url = &spec.remote.url;
        JsonReport {
            version: 1,
            changed: report.operation == crate::update::Operation::Pushed,
            operation: report.operation.into(),
            repository: url.to_string(),
            base: report.base.clone(),
            branch: report.branch.clone(),
            commit: report.commit.clone(),
            parent: report.parent.clone(),
            via: match report.via {
                Some(_) => RunTransport::Api,
                None => RunTransport::Git,
            },
            via_reason: report.via_reason.clone(),
            signed: report.signed.as_ref().map(|(format, _)| *format),
            signing_key: report.signed.as_ref().map(|(_, fp)| fp.clone()),
            attempts: report.attempts,
            images: spec
                .images
                .iter()
                .enumerate()
                .map(|(i, image)| JsonImage {
                    reference: image.to_string(),
                    name: image.name(),
                    tag: image.tag.clone(),
                    digest: image
                        .digest
                        .clone()
                        .or_else(|| spec.image_digests.get(i).cloned().flatten()),
                    source: spec
                        .image_sources
                        .get(i)
                        .copied()
                        .unwrap_or(crate::registry::Source::Given),
                })
                .collect(),
            files: report
                .plan
                .files
                .iter()
                .map(|f| JsonFile {
                    path: f.path.clone(),
                    changes: f
                        .outcomes
                        .iter()
                        .map(|o| JsonChange {
                            path: o.what.clone(),
                            document: o.document,
                            line: o.line,
                            old: o.old.clone(),
                            new: o.new.clone(),
                            changed: o.changed,
                        })
                        .collect(),
                    diff: if f.changed() { diff(f) } else { String::new() },
                })
                .collect(),
            skipped: report
                .plan
                .skipped
                .iter()
                .map(|(path, reason)| JsonSkipped {
                    path: path.clone(),
                    reason: reason.clone(),
                })
                .collect(),
            notes: report.plan.notes.clone(),
            change_request: outcome.map(|o| JsonChangeRequest {
                forge: o.kind.into(),
                number: o.number,
                url: o.url.clone(),
                operation: o.operation.into(),
                notes: o.notes.clone(),
            }),
        }
    }

    /// The values handed to later CI steps (GitHub outputs, dotenv).
    pub fn outputs(&self) -> Vec<(&'static str, String)> {
        let cr = self.change_request.as_ref();
        vec![
            ("changed", self.changed.to_string()),
            ("push-operation", self.operation.to_string()),
            // The name before push-operation; the same value.
            ("operation", self.operation.to_string()),
            ("commit", self.commit.clone().unwrap_or_default()),
            ("branch", self.branch.clone()),
            ("base", self.base.clone()),
            ("pr-url", cr.map(|c| c.url.clone()).unwrap_or_default()),
            (
                "pr-number",
                cr.map(|c| c.number.to_string()).unwrap_or_default(),
            ),
            (
                "pr-operation",
                cr.map(|c| c.operation.to_string()).unwrap_or_default(),
            ),
        ]
    }

    /// The same values as `TAGBUMP_*` variables for a dotenv report.
    pub fn dotenv(&self) -> Vec<(String, String)> {
        self.outputs()
            .into_iter()
            .map(|(k, v)| (format!("TAGBUMP_{}", k.to_uppercase().replace('-', "_")), v))
            .collect()
    }

    /// A markdown table for the GitHub Actions job summary.
    pub fn markdown(&self) -> String {
        let mut md = format!("### tagbump: {} on `{}`\n\n", self.operation, self.branch);
        md.push_str("| file | path | old | new |\n|---|---|---|---|\n");
        for f in &self.files {
            for c in f.changes.iter().filter(|c| c.changed) {
                md.push_str(&format!(
                    "| `{}` | `{}` | `{}` | `{}` |\n",
                    f.path, c.path, c.old, c.new
                ));
            }
        }
        if let Some(commit) = &self.commit {
            md.push_str(&format!(
                "\nCommit `{}` on `{}`",
                &commit[..commit.len().min(12)],
                self.branch
            ));
        }
        if let Some(cr) = &self.change_request {
            md.push_str(&format!(
                " · [{} {}]({}) {}",
                cr.forge, cr.number, cr.url, cr.operation
            ));
        }
        md.push('\n');
        md
    }
}
