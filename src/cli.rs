//! The command line, as clap derive structs. Help text lives in doc comments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::image::ImageRef;
use crate::target::{parse_assignment, Assignment};

#[derive(Debug, Parser)]
#[command(
    name = "tagbump",
    version,
    about = "Write a new image tag into a GitOps manifest repo, changing only those bytes",
    long_about = "Write a new image tag into a GitOps manifest repo, changing only those bytes.\n\n\
        Comments, quoting, key order, indentation and blank lines survive every edit."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Set(SetArgs),
    Image(ImageArgs),
}

/// Set values at YAML paths in one file, in place.
///
/// Paths: `a.b.c`, `list[0]` (`[-1]` is the last item), `containers[name=app]`
/// (the item whose `name` is `app`), `annotations["prometheus.io/port"]` for
/// keys holding `.`, `[` or `=`. A leading `.` or `$.` is accepted.
///
/// Examples:
///   tagbump set values.yaml image.tag=1.4.2
///   tagbump set deploy.yaml 'spec.template.spec.containers[name=app].image=registry.example.com/team/app:1.4.2'
///   tagbump set --dry-run Chart.yaml appVersion=1.4.2
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SetArgs {
    /// The YAML file to edit.
    pub file: PathBuf,

    /// What to set, as PATH=VALUE (split at the first `=` outside brackets).
    #[arg(required = true, value_name = "PATH=VALUE", value_parser = parse_assignment)]
    pub assignments: Vec<Assignment>,

    /// In a multi-document file, edit every document where the path matches.
    #[arg(long, conflicts_with = "document")]
    pub all: bool,

    /// In a multi-document file, edit only document N (0-based).
    #[arg(long, value_name = "N")]
    pub document: Option<usize>,

    #[command(flatten)]
    pub common: Common,
}

/// Update every reference to an image in files and directories, in place.
///
/// Found without markers: any `image:` key holding that image (containers,
/// initContainers, CronJobs, Argo Rollouts, HelmRelease values, ...); Helm
/// values mappings with `repository` + `tag` (+ `registry`, `digest`/`sha`);
/// kustomization `images:` entries by `name`/`newName`. Directories are
/// searched for *.yaml and *.yml; files that do not parse are skipped.
///
/// Examples:
///   tagbump image registry.example.com/team/app:1.4.2 apps/
///   tagbump image --dry-run ghcr.io/org/app@sha256:<64 hex> overlays/prod
///   tagbump image --app-version ghcr.io/org/app:2.0.0 charts/app
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ImageArgs {
    /// The new reference: name with a tag, a digest, or both.
    #[arg(value_name = "NEWREF", value_parser = parse_new_image)]
    pub image: ImageRef,

    /// Files and directories to search.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    /// Also set `appVersion` in the Chart.yaml of each chart that uses the image.
    #[arg(long)]
    pub app_version: bool,

    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Common {
    /// Print a unified diff of what would change and write nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

/// A new image reference must say what to move to: a tag or a digest.
fn parse_new_image(text: &str) -> Result<ImageRef, String> {
    let image = ImageRef::parse(text).map_err(|e| e.to_string())?;
    if image.tag.is_none() && image.digest.is_none() {
        return Err(format!(
            "`{text}` has no tag or digest; write e.g. `{text}:1.4.2` or `{text}@sha256:<64 hex>`"
        ));
    }
    Ok(image)
}
