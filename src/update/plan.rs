//! Planning: the edits a run makes, computed on a fetched tip — image scans
//! first, then explicit sets and promotions on the result, every file read
//! fresh from the tree, so a retry on a newer tip recomputes everything.

use std::collections::BTreeMap;

use anyhow::Result;

use super::transport::Transport;
use super::{Promotion, UpdateSpec};
use crate::error::{Failure, Kind};
use crate::targets::{self, Assignment, FileEdit, ImageUpdate, Plan, SourceFile};

/// Edits stacked file by file: each step starts from the text the previous
/// steps left, and the result keeps the original text and every outcome.
#[derive(Default)]
struct Layers {
    original: BTreeMap<String, String>,
    current: BTreeMap<String, String>,
    outcomes: BTreeMap<String, Vec<crate::yaml::Outcome>>,
    /// Per file, the value each ask wants in a scalar: (document, line,
    /// value, ask).
    claims: BTreeMap<String, Vec<(usize, usize, String, String)>>,
}

impl Layers {
    fn text<'a>(&'a self, path: &str) -> Option<&'a String> {
        self.current.get(path)
    }

    /// Stack `edit`, made by `ask`, on the layers below. Edits replace
    /// single-line scalars, so a scalar keeps its line through the layers:
    /// one a lower layer claimed, found here holding that layer's value and
    /// asked for another, is one scalar with two different values asked —
    /// refused, whichever kinds of target asked (the same value twice is fine).
    fn absorb(&mut self, edit: FileEdit, ask: &str) -> Result<()> {
        let claims = self.claims.entry(edit.path.clone()).or_default();
        for o in &edit.outcomes {
            let earlier = claims.iter().find(|(doc, line, value, _)| {
                *doc == o.document && *line == o.line && *value == o.old && *value != o.new
            });
            if let Some((_, _, value, other)) = earlier {
                return Err(Failure::new(
                    Kind::Input,
                    format!(
                        "{}:{}: two values asked for `{}`: `{value}` by {other}, and `{}` by {ask}",
                        edit.path, o.line, o.what, o.new
                    ),
                )
                .hint("ask for one value: drop or change one of the two; nothing was changed")
                .into());
            }
            claims.push((o.document, o.line, o.new.clone(), ask.to_string()));
        }
        self.original.entry(edit.path.clone()).or_insert(edit.old);
        self.outcomes
            .entry(edit.path.clone())
            .or_default()
            .extend(edit.outcomes);
        self.current.insert(edit.path, edit.new);
        Ok(())
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
pub fn plan_on(repo: &dyn Transport, commit: &str, spec: &UpdateSpec) -> Result<Plan> {
    let mut layers = Layers::default();
    let mut plan = Plan::default();

    if spec.scan && !spec.images.is_empty() {
        plan_images(repo, commit, spec, &mut layers, &mut plan)?;
    }

    // Every file the explicit targets name, in one read where the transport
    // batches (the forge APIs), before they are read one by one below.
    let named: Vec<&str> = spec
        .sets
        .iter()
        .map(|s| s.file.as_str())
        .chain(
            spec.promotions
                .iter()
                .flat_map(|p| [p.from_file.as_str(), p.to_file.as_str()]),
        )
        .chain(spec.puts.iter().map(|p| p.path.as_str()))
        .collect();
    if !named.is_empty() {
        repo.prefetch(commit, &named)?;
    }
    // Each set and promotion is its own layer, so a scalar asked for twice
    // is caught with both asks named, whatever kind of target they are.
    let mut asks: Vec<(&str, Assignment, &str)> = spec
        .sets
        .iter()
        .map(|set| (set.file.as_str(), set.assignment.clone(), set.ask.as_str()))
        .collect();
    // Promotions read the value as it is on the base: the tested one, not
    // one this run may be writing at the same time.
    for promotion in &spec.promotions {
        let value = promoted_value(repo, commit, promotion)?;
        let assignment = Assignment {
            path: promotion.to.clone(),
            value,
        };
        asks.push((
            promotion.to_file.as_str(),
            assignment,
            promotion.ask.as_str(),
        ));
    }
    for (path, assignment, ask) in asks {
        let text = match layers.text(path) {
            Some(text) => text.clone(),
            None => repo.read_file(commit, path)?.ok_or_else(|| {
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
        let edit = targets::plan_set(&file, std::slice::from_ref(&assignment), spec.documents)
            .map_err(Failure::from)?;
        plan.notes.extend(edit.notes.iter().cloned());
        layers.absorb(edit, ask)?;
    }

    for put in &spec.puts {
        plan_put(repo, commit, put, &mut layers)?;
    }

    plan.files = layers.into_files();
    Ok(plan)
}

/// A `--put`: the whole file replaced (or added). A file another target
/// also edits is refused: one of the two would be lost.
fn plan_put(
    repo: &dyn Transport,
    commit: &str,
    put: &super::put::Put,
    layers: &mut Layers,
) -> Result<()> {
    if layers.text(&put.path).is_some() {
        return Err(Failure::new(
            Kind::Usage,
            format!(
                "--put {} replaces `{}`, which --image/--set/--promote also edit",
                put.local, put.path
            ),
        )
        .hint("put the edited file, or edit the one you put before rendering it")
        .into());
    }
    if repo.is_directory(commit, &put.path)? {
        return Err(Failure::new(
            Kind::Input,
            format!(
                "--put {}: `{}` is a directory in the repository",
                put.local, put.path
            ),
        )
        .hint("name a file path under it")
        .into());
    }
    let old = repo.read_file(commit, &put.path)?;
    let describe = |text: &str| format!("{} lines", text.lines().count());
    let outcome = crate::yaml::Outcome {
        document: 0,
        line: 1,
        what: format!("--put {}", put.local),
        old: old
            .as_deref()
            .map_or_else(|| "(no file)".to_string(), describe),
        new: describe(&put.text),
        changed: old.as_deref() != Some(put.text.as_str()),
    };
    layers.absorb(
        FileEdit {
            path: put.path.clone(),
            old: old.unwrap_or_default(),
            new: put.text.clone(),
            outcomes: vec![outcome],
            notes: Vec::new(),
        },
        &format!("--put {}", put.local),
    )
}

/// The image scans, one image after another on the text the previous left.
fn plan_images(
    repo: &dyn Transport,
    commit: &str,
    spec: &UpdateSpec,
    layers: &mut Layers,
    plan: &mut Plan,
) -> Result<()> {
    // Each directory is listed and read once, however many images scan it.
    let mut read: BTreeMap<String, Vec<SourceFile>> = BTreeMap::new();
    for (i, image) in spec.images.iter().enumerate() {
        let scope = spec.image_scopes.get(i);
        if scope.is_some_and(|s| s.sets_only) {
            continue;
        }
        let scoped = scope
            .map(|s| &s.dirs)
            .filter(|d| !d.is_empty())
            .unwrap_or(&spec.dirs);
        let whole = [String::new()];
        let dirs = if scoped.is_empty() {
            &whole[..]
        } else {
            scoped
        };
        let mut current: Vec<SourceFile> = Vec::new();
        for dir in dirs {
            if !read.contains_key(dir) {
                let (found, unreadable) = repo.yaml_files(commit, dir)?;
                for skipped in unreadable {
                    if !plan.skipped.contains(&skipped) {
                        plan.skipped.push(skipped);
                    }
                }
                read.insert(dir.clone(), found);
            }
            for f in &read[dir] {
                if !current.iter().any(|g| g.path == f.path) {
                    current.push(SourceFile {
                        path: f.path.clone(),
                        text: layers.text(&f.path).unwrap_or(&f.text).clone(),
                    });
                }
            }
        }
        let update = ImageUpdate {
            image: image.clone(),
            app_version: spec.app_version,
            digest_in_tag: scope.map_or(spec.registry.pin == crate::registry::Pin::Tag, |s| {
                s.digest_in_tag
            }),
        };
        let step = targets::plan_image(&current, &update).map_err(Failure::from)?;
        if step.files.is_empty() {
            let why = format!(
                "no reference to `{}` in {} ({} YAML file(s) read)",
                image.name(),
                describe_dirs(scoped),
                current.len()
            );
            // A fleet reports the image and goes on with the others.
            if !spec.image_scopes.is_empty() {
                plan.unmatched.push((image.name(), why));
                continue;
            }
            return Err(Failure::new(Kind::NotFound, why)
                .hint("check the image name, and --in (paths are relative to the repository root)")
                .into());
        }
        let mut held: Vec<String> = step
            .files
            .iter()
            .flat_map(|f| f.outcomes.iter().map(|o| o.old.clone()))
            .collect();
        held.sort();
        held.dedup();
        plan.held.push((image.name(), held));
        let ask = format!("--image {image}");
        for edit in step.files {
            layers.absorb(edit, &ask)?;
        }
        for skipped in step.skipped {
            if !plan.skipped.contains(&skipped) {
                plan.skipped.push(skipped);
            }
        }
        plan.notes.extend(step.notes);
    }
    Ok(())
}

/// The scalar at a promotion's source, which must be exactly one value.
fn promoted_value(repo: &dyn Transport, commit: &str, p: &Promotion) -> Result<String> {
    let text = repo.read_file(commit, &p.from_file)?.ok_or_else(|| {
        Failure::new(
            Kind::NotFound,
            format!("`{}` does not exist in the repository", p.from_file),
        )
        .hint("--promote takes FROM_FILE:PATH=TO_FILE:PATH, files relative to the repository root")
    })?;
    let fail = |error| {
        Failure::from(targets::FileError {
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
