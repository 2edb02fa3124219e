//! What to change: explicit path edits and image-aware scans, turned into
//! new file texts.
//!
//! Pure over `(path, text)` pairs, so the same plan is made for files on disk
//! (`tagbump set` / `tagbump image`) and for blobs read from a git tree.
//! Every file is parsed and every edit computed before anything is written,
//! so bad input never leaves a half-edited repo.

use std::collections::BTreeSet;

use crate::image::ImageRef;
use crate::yaml::{
    self, edit_for, Documents, Editor, Keep, Node, NodeKind, Outcome, Path, Segment, YamlError,
};

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

/// Set `appVersion` in every `Chart.yaml` whose chart directory holds a file
/// the scan found the image in.
fn set_app_versions(
    files: &[SourceFile],
    update: &ImageUpdate,
    plan: &mut Plan,
) -> Result<(), FileError> {
    let Some(tag) = update.image.tag.clone() else {
        plan.notes
            .push("--app-version needs a tag in the new reference; appVersion left alone".into());
        return Ok(());
    };
    let touched: Vec<String> = plan.files.iter().map(|f| f.path.clone()).collect();
    let charts: BTreeSet<&str> = files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| p.rsplit('/').next() == Some("Chart.yaml"))
        .filter(|chart| {
            let dir = chart.strip_suffix("Chart.yaml").unwrap_or("");
            touched.iter().any(|t| t.starts_with(dir))
        })
        .collect();
    let app_version = Path::parse("appVersion").expect("a valid path");
    for chart in charts {
        let Some(file) = files.iter().find(|f| f.path == chart) else {
            continue;
        };
        let assignment = Assignment {
            path: app_version.clone(),
            value: tag.clone(),
        };
        match plan_set(file, &[assignment], Documents::One) {
            Ok(edit) => {
                plan.notes.extend(edit.notes.iter().cloned());
                plan.files.push(edit)
            }
            Err(e) if e.error.kind == yaml::YamlErrorKind::NotFound => plan
                .notes
                .push(format!("{chart}: has no `appVersion`; left alone")),
            Err(e) => return Err(e),
        }
    }
    Ok(())
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

/// The texts of the templates of the Helm chart `path` belongs to (the
/// nearest directory above it with a `Chart.yaml`), among the files read.
fn chart_templates<'a>(files: &'a [SourceFile], path: &str) -> Vec<&'a str> {
    let mut dir = path;
    while let Some(cut) = dir.rfind('/') {
        dir = &dir[..cut];
        let chart = format!("{dir}/Chart.yaml");
        if files.iter().any(|f| f.path == chart) {
            let templates = format!("{dir}/templates/");
            return files
                .iter()
                .filter(|f| f.path.starts_with(&templates))
                .map(|f| f.text.as_str())
                .collect();
        }
    }
    if files.iter().any(|f| f.path == "Chart.yaml") {
        return files
            .iter()
            .filter(|f| f.path.starts_with("templates/"))
            .map(|f| f.text.as_str())
            .collect();
    }
    Vec::new()
}

/// How a chart's value for a digest is written: `sha256:<hex>` or bare hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DigestShape {
    /// `sha256:<hex>`, for templates that write `…@{{ .digest }}`.
    Full,
    /// `<hex>`, for templates that write `…@sha256:{{ .sha }}`.
    Bare,
}

impl DigestShape {
    /// The shape of a value already in the file, if it holds one.
    fn of_value(value: &str) -> Option<DigestShape> {
        match value {
            "" | "~" | "null" => None,
            v if v.contains(':') => Some(DigestShape::Full),
            _ => Some(DigestShape::Bare),
        }
    }

    /// What the templates expect for `.key`: every `{{ … .key … }}` that
    /// follows `@sha256:` wants bare hex, one that follows `@` the full digest.
    /// `Err` when they disagree.
    fn of_templates(templates: &[&str], key: &str) -> Result<Option<DigestShape>, ()> {
        let mut seen = None;
        for text in templates {
            let mut rest = *text;
            let mut before_len = 0;
            while let Some(open) = rest.find("{{") {
                let before = &text[..before_len + open];
                let Some(close) = rest[open..].find("}}") else {
                    break;
                };
                let inside = &rest[open + 2..open + close];
                let names_key = inside.match_indices(&format!(".{key}")).any(|(i, m)| {
                    !inside[i + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                let shape = if !names_key {
                    None
                } else if before.ends_with("@sha256:") {
                    Some(DigestShape::Bare)
                } else if before.ends_with('@') {
                    Some(DigestShape::Full)
                } else {
                    None
                };
                if let Some(shape) = shape {
                    if seen.is_some_and(|s| s != shape) {
                        return Err(());
                    }
                    seen = Some(shape);
                }
                before_len += open + close + 2;
                rest = &rest[open + close + 2..];
            }
        }
        Ok(seen)
    }

    /// The key's convention: `sha` holds bare hex (kube-prometheus-stack),
    /// `digest` the full `sha256:<hex>` (Bitnami and most others).
    fn of_key(key: &str) -> DigestShape {
        if key == "sha" {
            DigestShape::Bare
        } else {
            DigestShape::Full
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanned_paths_follow_the_name_rules() {
        assert!(is_scanned_path("apps/app/values.yaml"));
        assert!(is_scanned_path("deploy.yml"));
        assert!(
            is_scanned_path(".hidden-name.yaml"),
            "only directories are skipped"
        );
        assert!(!is_scanned_path(".github/workflows/ci.yml"));
        assert!(!is_scanned_path("apps/.cache/x.yaml"));
        assert!(!is_scanned_path("apps/README.md"));
    }

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    fn scan(files: &[SourceFile], image: &str) -> Plan {
        plan_image(
            files,
            &ImageUpdate {
                digest_in_tag: false,
                image: ImageRef::parse(image).unwrap(),
                app_version: true,
            },
        )
        .unwrap()
    }

    #[test]
    fn assignments_split_outside_brackets() {
        let a = parse_assignment("spec.containers[name=app].image=app:2").unwrap();
        assert_eq!(a.path.to_string(), "spec.containers[name=app].image");
        assert_eq!(a.value, "app:2");
        let a = parse_assignment("a[\"x=y\"]=b=c").unwrap();
        assert_eq!(a.path.to_string(), "a[\"x=y\"]");
        assert_eq!(a.value, "b=c");
        assert_eq!(parse_assignment("a=").unwrap().value, "");
        assert!(parse_assignment("image.tag")
            .unwrap_err()
            .contains("PATH=VALUE"));
    }

    #[test]
    fn image_keys_anywhere() {
        let deploy = "\
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com/team/app:1.0 # same image
      containers:
        - name: app
          image: \"registry.example.com/team/app:1.0\"
        - name: proxy
          image: envoyproxy/envoy:v1.29
";
        let plan = scan(
            &[file("deploy.yaml", deploy)],
            "registry.example.com/team/app:1.1",
        );
        assert_eq!(plan.files[0].new, deploy.replace("app:1.0", "app:1.1"),);
        let whats: Vec<&str> = plan.files[0]
            .outcomes
            .iter()
            .map(|o| o.what.as_str())
            .collect();
        assert_eq!(
            whats,
            [
                "spec.template.spec.initContainers[name=migrate].image",
                "spec.template.spec.containers[name=app].image"
            ]
        );
    }

    #[test]
    fn docker_hub_names_match_however_spelled() {
        let text = "a:\n  image: nginx:1.25\nb:\n  image: docker.io/library/nginx:1.25\n";
        let plan = scan(
            &[file("x.yaml", text)],
            "index.docker.io/library/nginx:1.27",
        );
        assert_eq!(
            plan.files[0].new,
            "a:\n  image: nginx:1.27\nb:\n  image: docker.io/library/nginx:1.27\n"
        );
    }

    #[test]
    fn helm_values_with_registry_and_digest() {
        let text = "\
image:
  registry: registry.example.com
  repository: team/app
  tag: \"1.0\"
  digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
other:
  repository: team/app
  tag: 9.9 # another registry's team/app
";
        let plan = scan(
            &[file("values.yaml", text)],
            "registry.example.com/team/app:1.1",
        );
        assert_eq!(
            plan.files[0].new,
            text.replace("\"1.0\"", "\"1.1\"").replace(
                "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                "\"\""
            )
        );
        assert!(
            plan.notes[0].contains("cleared `image.digest`"),
            "{:?}",
            plan.notes
        );
    }

    #[test]
    fn helm_digest_follows_the_key_the_value_and_the_templates() {
        let hex = "a".repeat(64);
        let new = format!("ghcr.io/o/app:v2@sha256:{hex}");
        let values = |key: &str, old: &str| {
            format!("image:\n  repository: ghcr.io/o/app\n  tag: v1\n  {key}: {old}\n")
        };
        let written = |key: &str, value: &str| {
            format!("image:\n  repository: ghcr.io/o/app\n  tag: v2\n  {key}: {value}\n")
        };
        // kube-prometheus-stack renders `…@sha256:{{ .sha }}`: bare hex for `sha`.
        let plan = scan(&[file("values.yaml", &values("sha", "\"\""))], &new);
        assert_eq!(plan.files[0].new, written("sha", &format!("\"{hex}\"")));
        // `digest` holds the algorithm too.
        let plan = scan(&[file("values.yaml", &values("digest", "\"\""))], &new);
        assert_eq!(
            plan.files[0].new,
            written("digest", &format!("\"sha256:{hex}\""))
        );
        // A value already there decides the shape.
        let old = format!("sha256:{}", "1".repeat(64));
        let plan = scan(&[file("values.yaml", &values("sha", &old))], &new);
        assert_eq!(plan.files[0].new, written("sha", &format!("sha256:{hex}")));
        // The chart's templates decide when the value is empty.
        let chart = |template: &str, key: &str| {
            vec![
                file("c/Chart.yaml", "apiVersion: v2\nname: c\nversion: 1.0.0\n"),
                file("c/values.yaml", &values(key, "\"\"")),
                file("c/templates/deploy.yaml", template),
            ]
        };
        let plan = scan(
            &chart(
                "image: {{ .Values.image.repository }}@{{ .Values.image.sha }}\n",
                "sha",
            ),
            &new,
        );
        assert_eq!(
            plan.files[0].new,
            written("sha", &format!("\"sha256:{hex}\""))
        );
        let plan = scan(
            &chart("image: x@sha256:{{ .Values.image.digest }}\n", "digest"),
            &new,
        );
        assert_eq!(plan.files[0].new, written("digest", &format!("\"{hex}\"")));
        // When the value and the templates disagree, nothing is written there.
        let mut files = chart("image: x@sha256:{{ .Values.image.digest }}\n", "digest");
        files[1].text = values("digest", &old);
        let plan = scan(&files, &new);
        assert_eq!(
            plan.files[0].new,
            files[1].text.replace("tag: v1", "tag: v2")
        );
        assert!(
            plan.notes.iter().any(|n| n.contains("cannot tell whether")),
            "{:?}",
            plan.notes
        );
        // No key for the digest: a note, never a new key.
        let text = "image:\n  repository: ghcr.io/o/app\n  tag: v1\n";
        let plan = scan(&[file("values.yaml", text)], &new);
        assert!(
            plan.notes[0].contains("has no `digest` key"),
            "{:?}",
            plan.notes
        );
    }

    #[test]
    fn an_image_alias_updates_its_anchor_and_says_so() {
        let text = "\
x-app: &app ghcr.io/o/app:1.0 # the one place
spec:
  containers:
    - name: a
      image: *app
    - name: b
      image: *app
";
        let plan = scan(&[file("deploy.yaml", text)], "ghcr.io/o/app:1.1");
        assert_eq!(plan.files[0].new, text.replace("app:1.0", "app:1.1"));
        let notes: Vec<&String> = plan.notes.iter().filter(|n| n.contains("*app")).collect();
        assert_eq!(notes.len(), 2, "{:?}", plan.notes);
        assert!(notes[0].starts_with("deploy.yaml:5: `*app` follows the anchor `&app` at line 1"));
    }

    #[test]
    fn kustomize_entries_are_matched_by_what_they_deploy() {
        let text = "\
images:
  - name: ghcr.io/o/app
    newName: ghcr.io/o/fork
    newTag: \"1.0\"
";
        let plan = scan(&[file("kustomization.yaml", text)], "ghcr.io/o/app:2.0");
        assert!(plan.files.is_empty());
        assert!(
            plan.notes[0].contains("deploys `ghcr.io/o/fork` (its `newName`)"),
            "{:?}",
            plan.notes
        );
        let plan = scan(&[file("kustomization.yaml", text)], "ghcr.io/o/fork:2.0");
        assert_eq!(plan.files[0].new, text.replace("\"1.0\"", "\"2.0\""));
    }

    #[test]
    fn kustomize_images() {
        let text = "\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deploy.yaml]
images:
  - name: app
    newName: registry.example.com/team/app
    newTag: 1.0.0 # CI
  - name: nginx
    newTag: \"1.25\"
";
        let plan = scan(
            &[file("overlays/prod/kustomization.yaml", text)],
            "registry.example.com/team/app:1.0.1",
        );
        assert_eq!(plan.files[0].new, text.replace("1.0.0 #", "1.0.1 #"));
        assert_eq!(plan.files[0].outcomes[0].what, "images[name=app].newTag");
        let plan = scan(&[file("kustomization.yaml", text)], "nginx:1.27");
        assert_eq!(plan.files[0].new, text.replace("\"1.25\"", "\"1.27\""));
    }

    #[test]
    fn app_version_follows_the_chart_that_uses_the_image() {
        let files = [
            file(
                "charts/app/Chart.yaml",
                "apiVersion: v2\nname: app\nversion: 0.1.0\nappVersion: \"1.0\"\n",
            ),
            file(
                "charts/app/values.yaml",
                "image:\n  repository: ghcr.io/o/app\n  tag: \"1.0\"\n",
            ),
            file(
                "charts/other/Chart.yaml",
                "apiVersion: v2\nname: other\nappVersion: \"3.0\"\n",
            ),
            file(
                "charts/other/values.yaml",
                "image:\n  repository: ghcr.io/o/other\n  tag: \"3.0\"\n",
            ),
        ];
        let plan = scan(&files, "ghcr.io/o/app:1.1");
        let changed: Vec<&str> = plan.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(changed, ["charts/app/values.yaml", "charts/app/Chart.yaml"]);
        assert!(plan.files[1].new.ends_with("appVersion: \"1.1\"\n"));
    }

    #[test]
    fn files_that_are_not_yaml_are_skipped() {
        let files = [
            file(
                "templates/deploy.yaml",
                "{{- if .Values.on }}\nimage: {{ .Values.image }}\n{{- end }}\n",
            ),
            file("values.yaml", "image: ghcr.io/o/app:1\n"),
        ];
        let plan = scan(&files, "ghcr.io/o/app:2");
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].0, "templates/deploy.yaml");
        assert_eq!(plan.files[0].new, "image: ghcr.io/o/app:2\n");
    }

    #[test]
    fn already_up_to_date_is_found_but_unchanged() {
        let plan = scan(
            &[file("v.yaml", "image: ghcr.io/o/app:2\n")],
            "ghcr.io/o/app:2",
        );
        assert_eq!(plan.files.len(), 1);
        assert!(!plan.changed());
    }
}
