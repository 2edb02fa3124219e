//! `tagbump demo`: the whole pipeline on the bundled example, offline.
//!
//! Builds a bare "manifest repo" from the example manifests compiled into
//! the binary (git2 only: no git CLI needed), runs `update` against it as a
//! real remote, shows the diff and the pushed review branch, then runs again
//! to show that a re-run changes nothing.

use std::path::Path;

use anyhow::{Context, Result};
use git2::build::TreeUpdateBuilder;
use git2::{FileMode, Repository, Signature};

use crate::cli::DemoArgs;
use crate::git::{Auth, RemoteUrl};
use crate::image::ImageRef;
use crate::output;
use crate::update::{self, UpdateSpec};
use crate::yaml::Documents;

const FILES: &[(&str, &str)] = &[
    (
        "charts/app/Chart.yaml",
        include_str!("../../examples/manifests/charts/app/Chart.yaml"),
    ),
    (
        "charts/app/values.yaml",
        include_str!("../../examples/manifests/charts/app/values.yaml"),
    ),
    (
        "overlays/prod/kustomization.yaml",
        include_str!("../../examples/manifests/overlays/prod/kustomization.yaml"),
    ),
    (
        "rendered/app.yaml",
        include_str!("../../examples/manifests/rendered/app.yaml"),
    ),
];

pub const IMAGE: &str = "registry.example.com/team/app:1.4.2";

pub fn run(args: &DemoArgs) -> Result<()> {
    let temp;
    let dir = match &args.keep {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("tagbump-demo-").tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let bare = dir.join("manifests.git");
    seed(&bare)
        .with_context(|| format!("cannot create the demo repository in {}", bare.display()))?;
    crate::note!(
        "demo: created {} with the example manifests on `main`",
        bare.display()
    );

    let spec = UpdateSpec {
        remote: RemoteUrl::parse(&bare.to_string_lossy())?,
        auth: Auth::default(),
        base: None,
        branch: None,
        join: false,
        direct: false,
        dry_run: false,
        sets: Vec::new(),
        promotions: Vec::new(),
        puts: Vec::new(),
        documents: Documents::One,
        images: vec![ImageRef::parse(IMAGE)?],
        dirs: Vec::new(),
        app_version: true,
        message: None,
        author_name: "tagbump demo".into(),
        author_email: "demo@tagbump.invalid".into(),
        signer: None,
        registry: Default::default(),
        image_sources: Vec::new(),
        image_digests: Vec::new(),
        image_scopes: Vec::new(),
        scan: true,
        via_reason: String::new(),
        via: update::Via::Git,
        attempts: 3,
        timeout: std::time::Duration::from_secs(60),
        source_commit: None,
        pipeline_url: None,
    };
    crate::note!(
        "demo: tagbump update --repo {} --image {IMAGE} --app-version\n",
        bare.display()
    );
    let report = update::run(&spec)?;
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    output::write_diffs(&mut out, &report.plan)?;
    output::write_update(&mut out, &mut err, &report, &spec.remote.url)?;

    let repo = Repository::open_bare(&bare)?;
    let commit = repo
        .find_reference(&format!("refs/heads/{}", report.branch))?
        .peel_to_commit()?;
    crate::note!(
        "\ndemo: branch `{}` in the demo repository now holds:\ncommit {}\nAuthor: {}\n\n{}",
        report.branch,
        commit.id(),
        commit.author(),
        textwrap(commit.message().unwrap_or_default())
    );

    crate::note!("demo: running the same update again (a re-run must not open a second change):");
    let again = update::run(&spec)?;
    output::write_update(&mut std::io::sink(), &mut err, &again, &spec.remote.url)?;
    if args.keep.is_some() {
        crate::note!(
            "demo: kept {}; inspect it with `git -C {} log --all --stat`",
            bare.display(),
            bare.display()
        );
    }
    Ok(())
}

fn textwrap(message: &str) -> String {
    message.lines().map(|l| format!("    {l}\n")).collect()
}

/// A bare repo whose `main` holds the example files in one commit.
fn seed(bare: &Path) -> Result<()> {
    let repo = Repository::init_bare(bare)?;
    let empty = repo.find_tree(repo.treebuilder(None)?.write()?)?;
    let mut builder = TreeUpdateBuilder::new();
    for (path, text) in FILES {
        builder.upsert(*path, repo.blob(text.as_bytes())?, FileMode::Blob);
    }
    let tree = repo.find_tree(builder.create_updated(&repo, &empty)?)?;
    let who = Signature::now("example", "example@tagbump.invalid")?;
    repo.commit(
        Some("refs/heads/main"),
        &who,
        &who,
        "Example manifests",
        &tree,
        &[],
    )?;
    repo.set_head("refs/heads/main")?;
    Ok(())
}
