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
    self, edit_for, Documents, Editor, Node, NodeKind, Outcome, Path, Segment, YamlError,
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
    let new = editor.finish().map_err(fail)?;
    Ok(FileEdit {
        path: file.path.clone(),
        old: file.text.clone(),
        new,
        outcomes,
    })
}

/// What an image scan looks for and writes.
#[derive(Debug, Clone)]
pub struct ImageUpdate {
    pub image: ImageRef,
    /// Also set `appVersion` in the `Chart.yaml` of each chart whose files
    /// reference the image.
    pub app_version: bool,
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
        for (index, doc) in editor.stream().documents.iter().enumerate() {
            let mut scan = Scan {
                src: editor.src(),
                file: &file.path,
                document: index,
                image: &update.image,
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
        let new = editor.finish().map_err(fail)?;
        plan.files.push(FileEdit {
            path: file.path.clone(),
            old: file.text.clone(),
            new,
            outcomes,
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
            Ok(edit) => plan.files.push(edit),
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

type Found = (Option<yaml::Splice>, Outcome);

/// One document's walk; `trail` is the path to the current node, for messages.
struct Scan<'a> {
    src: &'a str,
    file: &'a str,
    document: usize,
    image: &'a ImageRef,
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
        let splice = edit_for(self.src, node, value)?;
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
        if let Some(new_tag) = self.image.tag.clone() {
            let what = self.here(Some("tag"));
            self.record(tag, what, &new_tag)?;
        }
        let digest_key = ["digest", "sha"].into_iter().find(|k| map.get(k).is_some());
        self.digest(map, digest_key, "tag")
    }

    /// Write the new digest next to a tag, or clear a stale one so the new tag
    /// takes effect (a set digest overrides the tag in charts and kustomize).
    fn digest(&mut self, map: &Node, key: Option<&str>, tag_key: &str) -> Result<(), YamlError> {
        let node = key.and_then(|k| map.get(k));
        match (&self.image.digest, key, node) {
            (Some(digest), Some(key), Some(node)) => {
                // Charts that take a bare hex `sha` get it without the algorithm.
                let old = node.as_str().unwrap_or_default();
                let value = match digest.split_once(':') {
                    Some((_, hex)) if !old.is_empty() && !old.contains(':') => hex.to_string(),
                    _ => digest.clone(),
                };
                let what = self.here(Some(key));
                self.record(node, what, &value)
            }
            (Some(_), _, _) => {
                self.notes.push(format!(
                    "{}:{}: `{}` has no `digest` key beside `{tag_key}`; the digest was not written",
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

    /// kustomization `images:` entries, matched by `newName` or `name`.
    fn kustomize(&mut self, root: &Node) -> Result<(), YamlError> {
        let Some(entries) = root.get("images").and_then(Node::as_sequence) else {
            return Ok(());
        };
        for (i, entry) in entries.iter().enumerate() {
            let names = ["newName", "name"]
                .into_iter()
                .filter_map(|k| entry.get(k).and_then(Node::as_str));
            let matched = names
                .filter_map(|n| ImageRef::parse_name(n).ok())
                .any(|n| n.same_image(self.image));
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
    fn helm_digest_is_written_when_given() {
        let sha = format!("sha256:{}", "a".repeat(64));
        let text = "image:\n  repository: ghcr.io/o/app\n  tag: v1\n  sha: \"\"\n";
        let plan = scan(
            &[file("values.yaml", text)],
            &format!("ghcr.io/o/app:v2@{sha}"),
        );
        assert_eq!(
            plan.files[0].new,
            format!("image:\n  repository: ghcr.io/o/app\n  tag: v2\n  sha: \"{sha}\"\n")
        );
        let text = "image:\n  repository: ghcr.io/o/app\n  tag: v1\n";
        let plan = scan(
            &[file("values.yaml", text)],
            &format!("ghcr.io/o/app:v2@{sha}"),
        );
        assert!(
            plan.notes[0].contains("has no `digest` key"),
            "{:?}",
            plan.notes
        );
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
