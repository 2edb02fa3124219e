//! The image-aware scan: every reference to an image in a file's documents
//! (image strings, Helm `repository`/`tag`/`digest` values, kustomize
//! `images:` entries), planned as edits.

use crate::image::ImageRef;
use crate::yaml::{
    self, edit_for, Editor, Keep, Node, NodeKind, Outcome, Path, Segment, YamlError,
};

use super::chart::{chart_templates, set_app_versions, DigestShape};
use super::{follower_notes, FileEdit, FileError, ImageUpdate, Plan, SourceFile};

/// Scan `files` for references to `update.image` and plan the edits.
///
/// Files that do not parse are skipped and listed, never fatal. Errors only
/// for a reference that cannot be edited (it names file and line).
pub fn plan_image(files: &[SourceFile], update: &ImageUpdate) -> Result<Plan, FileError> {
    let mut plan = Plan::default();
    for file in files {
        let fail = |error| FileError {
            path: file.path.clone(),
            error,
        };
        let mut editor = match Editor::new(&file.text) {
            Ok(editor) => editor,
            Err(e) => {
                plan.skipped
                    .push((file.path.clone(), format!("not valid YAML ({e})")));
                continue;
            }
        };
        let mut found = Vec::new();
        let templates = chart_templates(files, &file.path);
        for (index, doc) in editor.stream().documents.iter().enumerate() {
            let mut scan = Scan {
                src: editor.src(),
                file: &file.path,
                document: index,
                image: &update.image,
                digest_in_tag: update.digest_in_tag,
                templates: &templates,
                found: &mut found,
                notes: &mut plan.notes,
                trail: Vec::new(),
            };
            scan.node(&doc.root).map_err(fail)?;
            if is_kustomization(&file.path, &doc.root) {
                scan.kustomize(&doc.root).map_err(fail)?;
            }
        }
        if found.is_empty() {
            continue;
        }
        for (splice, outcome) in found {
            editor.push(splice, outcome);
        }
        let outcomes = editor.outcomes().to_vec();
        let notes = follower_notes(&file.path, &editor);
        let new = editor.finish().map_err(fail)?;
        plan.notes.extend(notes.iter().cloned());
        plan.files.push(FileEdit {
            path: file.path.clone(),
            old: file.text.clone(),
            new,
            outcomes,
            notes,
        });
    }
    if update.app_version {
        set_app_versions(files, update, &mut plan)?;
    }
    Ok(plan)
}

/// A kustomization: by file name, or by `kind`/`apiVersion` in the document.
fn is_kustomization(path: &str, root: &Node) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        name,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    ) || root.get("kind").and_then(Node::as_str) == Some("Kustomization")
        || root
            .get("apiVersion")
            .and_then(Node::as_str)
            .is_some_and(|v| v.starts_with("kustomize.config.k8s.io/"))
}

type Found = (Option<yaml::Splice>, Outcome);

/// One document's walk; `trail` is the path to the current node, for messages.
struct Scan<'a> {
    src: &'a str,
    file: &'a str,
    document: usize,
    image: &'a ImageRef,
    digest_in_tag: bool,
    /// The chart's templates, when the file is part of a chart in the tree.
    templates: &'a [&'a str],
    found: &'a mut Vec<Found>,
    notes: &'a mut Vec<String>,
    trail: Vec<Segment>,
}

impl Scan<'_> {
    fn node(&mut self, node: &Node) -> Result<(), YamlError> {
        match &node.kind {
            NodeKind::Mapping(entries) => {
                self.helm_values(node)?;
                for (key, value) in entries {
                    let Some(name) = key.as_str() else { continue };
                    self.trail.push(Segment::Key(name.to_string()));
                    if name == "image" && value.as_scalar().is_some() {
                        self.image_string(value)?;
                    } else if let (
                        "image",
                        NodeKind::Alias {
                            scalar: Some(target),
                            ..
                        },
                    ) = (name, &value.kind)
                    {
                        // `image: *ref`: the anchor is the one place the value
                        // lives; it is edited, and every alias of it follows.
                        self.image_string(target)?;
                    } else {
                        self.node(value)?;
                    }
                    self.trail.pop();
                }
            }
            NodeKind::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    let segment = match item.get("name").and_then(Node::as_str) {
                        Some(name) => Segment::Select {
                            key: "name".into(),
                            value: name.to_string(),
                        },
                        None => Segment::Index(i as i64),
                    };
                    self.trail.push(segment);
                    self.node(item)?;
                    self.trail.pop();
                }
            }
            NodeKind::Scalar(_) | NodeKind::Alias { .. } => {}
        }
        Ok(())
    }

    fn here(&self, tail: Option<&str>) -> String {
        let mut segments = self.trail.clone();
        segments.extend(tail.map(|t| Segment::Key(t.to_string())));
        Path::from_segments(segments).to_string()
    }

    fn record(&mut self, node: &Node, what: String, value: &str) -> Result<(), YamlError> {
        let splice = edit_for(self.src, node, value, Keep::String)?;
        let outcome = Outcome {
            document: self.document,
            line: node.line,
            what,
            old: node.as_str().unwrap_or_default().to_string(),
            new: value.to_string(),
            changed: splice.is_some(),
        };
        self.found.push((splice, outcome));
        Ok(())
    }

    /// `image: registry/app:1.0` anywhere: containers, CronJobs, Rollouts, HelmRelease values.
    fn image_string(&mut self, value: &Node) -> Result<(), YamlError> {
        let Some(text) = value.as_str() else {
            return Ok(());
        };
        let Ok(old) = ImageRef::parse(text) else {
            return Ok(());
        };
        if !old.same_image(self.image) {
            return Ok(());
        }
        let new = old.retagged(self.image).to_string();
        let what = self.here(None);
        self.record(value, what, &new)
    }

    /// Helm values: a mapping with `repository` and `tag` (and maybe `registry`,
    /// `digest`/`sha`) naming the image.
    fn helm_values(&mut self, map: &Node) -> Result<(), YamlError> {
        let (Some(repository), Some(tag)) =
            (map.get("repository").and_then(Node::as_str), map.get("tag"))
        else {
            return Ok(());
        };
        let name = match map.get("registry").and_then(Node::as_str) {
            Some(registry) if !registry.is_empty() => format!("{registry}/{repository}"),
            _ => repository.to_string(),
        };
        let Ok(old) = ImageRef::parse_name(&name) else {
            return Ok(());
        };
        if !old.same_image(self.image) {
            return Ok(());
        }
        let digest_key = ["digest", "sha"].into_iter().find(|k| map.get(k).is_some());
        let in_tag = match (&self.image.digest, digest_key) {
            (Some(digest), None) if self.digest_in_tag => Some(digest.clone()),
            _ => None,
        };
        if let Some(new_tag) = self.image.tag.clone() {
            let what = self.here(Some("tag"));
            let value = match &in_tag {
                Some(digest) => format!("{new_tag}@{digest}"),
                None => new_tag,
            };
            self.record(tag, what, &value)?;
        }
        if in_tag.is_some() {
            return Ok(());
        }
        self.digest(map, digest_key, "tag")
    }

    /// Write the new digest next to a tag, or clear a stale one so the new tag
    /// takes effect (a set digest overrides the tag in charts and kustomize).
    fn digest(&mut self, map: &Node, key: Option<&str>, tag_key: &str) -> Result<(), YamlError> {
        let node = key.and_then(|k| map.get(k));
        match (&self.image.digest, key, node) {
            (Some(digest), Some(key), Some(node)) => {
                let what = self.here(Some(key));
                let Some(shape) = self.digest_shape(node, key) else {
                    self.notes.push(format!(
                        "{}:{}: cannot tell whether `{what}` takes `sha256:<hex>` or bare hex \
                         (the value there and the chart's templates disagree); the digest \
                         was not written, set it by hand",
                        self.file, node.line
                    ));
                    return Ok(());
                };
                let value = match (shape, digest.split_once(':')) {
                    (DigestShape::Bare, Some((_, hex))) => hex.to_string(),
                    _ => digest.clone(),
                };
                self.record(node, what, &value)
            }
            (Some(_), _, _) => {
                let helm = if tag_key == "tag" {
                    " (`--pin-digest=tag` writes `TAG@sha256:…` into a Helm tag)"
                } else {
                    ""
                };
                self.notes.push(format!(
                    "{}:{}: `{}` has no `digest` key beside `{tag_key}`; the digest was not written{helm}",
                    self.file,
                    map.line,
                    self.here(None)
                ));
                Ok(())
            }
            (None, Some(key), Some(node))
                if node
                    .as_str()
                    .is_some_and(|v| !v.is_empty() && v != "~" && v != "null") =>
            {
                let what = self.here(Some(key));
                self.notes.push(format!(
                    "{}:{}: cleared `{what}` so the new tag takes effect",
                    self.file, node.line
                ));
                self.record(node, what, "")
            }
            _ => Ok(()),
        }
    }

    /// Whether the digest at `key` is written with its algorithm or as bare
    /// hex: the value already there, the chart's templates, and the key's
    /// convention, in that order; `None` when the first two disagree.
    fn digest_shape(&self, node: &Node, key: &str) -> Option<DigestShape> {
        let existing = node.as_str().and_then(DigestShape::of_value);
        let templates = DigestShape::of_templates(self.templates, key).ok()?;
        match (existing, templates) {
            (Some(a), Some(b)) if a != b => None,
            (Some(shape), _) | (None, Some(shape)) => Some(shape),
            (None, None) => Some(DigestShape::of_key(key)),
        }
    }

    /// kustomization `images:` entries: matched by `newName` when the entry
    /// has one (that is what it deploys), else by `name`.
    fn kustomize(&mut self, root: &Node) -> Result<(), YamlError> {
        let Some(entries) = root.get("images").and_then(Node::as_sequence) else {
            return Ok(());
        };
        for (i, entry) in entries.iter().enumerate() {
            let names_image = |key: &str| {
                entry
                    .get(key)
                    .and_then(Node::as_str)
                    .and_then(|n| ImageRef::parse_name(n).ok())
                    .is_some_and(|n| n.same_image(self.image))
            };
            let new_name = entry.get("newName").and_then(Node::as_str);
            let matched = match new_name {
                Some(deploys) => {
                    if !names_image("newName") && names_image("name") {
                        self.notes.push(format!(
                            "{}:{}: the `images` entry for `{}` deploys `{deploys}` \
                             (its `newName`), not `{}`; left alone",
                            self.file,
                            entry.line,
                            entry.get("name").and_then(Node::as_str).unwrap_or_default(),
                            self.image.name()
                        ));
                    }
                    names_image("newName")
                }
                None => names_image("name"),
            };
            if !matched {
                continue;
            }
            self.trail = vec![
                Segment::Key("images".into()),
                match entry.get("name").and_then(Node::as_str) {
                    Some(name) => Segment::Select {
                        key: "name".into(),
                        value: name.to_string(),
                    },
                    None => Segment::Index(i as i64),
                },
            ];
            if let Some(new_tag) = self.image.tag.clone() {
                match entry.get("newTag") {
                    Some(node) => {
                        let what = self.here(Some("newTag"));
                        self.record(node, what, &new_tag)?;
                    }
                    None => self.notes.push(format!(
                        "{}:{}: `{}` has no `newTag`; add `newTag:` to let tagbump set it",
                        self.file,
                        entry.line,
                        self.here(None)
                    )),
                }
            }
            let key = entry.get("digest").map(|_| "digest");
            self.digest(entry, key, "newTag")?;
            self.trail.clear();
        }
        Ok(())
    }
}
