//! Flux image automation's configuration, read from the manifest
//! repository as it is: each `ImagePolicy` a setter marker names
//! (`# {"$imagepolicy": "NS:NAME"}`, `…:tag`, `…:name`, `…:digest`), with
//! its `ImageRepository`'s image, becomes one fleet image written exactly at
//! the marked places. A policy with no faithful tagbump equivalent is
//! refused, naming it and why; it is never approximated.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use anyhow::Result;
use regex_lite::Regex;
use serde::Deserialize;

use super::Listed;
use crate::config::{FleetImage, FleetSet, PinDigest, SetValue};
use crate::error::{Failure, Kind};
use crate::registry::policy::Sort;
use crate::targets::SourceFile;
use crate::yaml::{Node, NodeKind, Path, Segment, Stream};

/// `# {"$imagepolicy": "flux-system:podinfo:tag"}`, as Flux's setters write it.
static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"#\s*\{\s*"\$imagepolicy"\s*:\s*"([^"]*)"\s*\}"#).expect("a valid pattern")
});

/// `ImagePolicy.spec` (image.toolkit.fluxcd.io v1beta2 and v1 alike).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicySpec {
    image_repository_ref: Reference,
    policy: Choice,
    #[serde(default)]
    filter_tags: Option<Filter>,
    #[serde(default)]
    digest_reflection_policy: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Reference {
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    semver: Option<Semver>,
    #[serde(default)]
    alphabetical: Option<Order>,
    #[serde(default)]
    numerical: Option<Order>,
}

#[derive(Debug, Deserialize)]
struct Semver {
    range: String,
}

#[derive(Debug, Deserialize)]
struct Order {
    #[serde(default)]
    order: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Filter {
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default)]
    extract: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RepositorySpec {
    image: String,
}

/// A policy as found: where, and its spec.
struct Policy {
    file: String,
    namespace: Option<String>,
    spec: PolicySpec,
}

/// The images Flux's markers in `files` update, each with the policy its
/// `ImagePolicy` says and the marked places as its `set`.
pub fn read(files: &[SourceFile]) -> Result<Vec<Listed>> {
    let (policies, repositories) = resources(files)?;
    let mut images: BTreeMap<String, FleetImage> = BTreeMap::new();
    let mut origins: BTreeMap<String, String> = BTreeMap::new();
    for (file, line, setter) in markers(files) {
        let at = format!("{}:{line}", file.path);
        let Some((namespace, name, value)) = parse_setter(&setter) else {
            // Flux has no default namespace: such a marker matches nothing.
            crate::note!(
                "note: {at}: the marker `{setter}` is not NAMESPACE:NAME[:tag|:name|:digest], \
                 which Flux matches nothing to; left alone"
            );
            continue;
        };
        let Some(policy) = policies
            .get(name)
            .filter(|p| p.namespace.as_deref().is_none_or(|ns| ns == namespace))
        else {
            crate::note!(
                "note: {at}: the marker names ImagePolicy {namespace}/{name}, which the \
                 repository does not define; left alone"
            );
            continue;
        };
        let path = path_at(&file.text, line)
            .ok_or_else(|| refuse(&at, "the marker is not on the line of a value".to_string()))?;
        let image = match images.get_mut(name) {
            Some(image) => image,
            None => {
                let what = format!("{}: ImagePolicy {namespace}/{name}", policy.file);
                let fleet = translate(policy, &repositories, &what)?;
                origins.insert(name.to_string(), what);
                images.entry(name.to_string()).or_insert(fleet)
            }
        };
        let pinned = matches!(image.pin_digest, Some(PinDigest::Bool(true)));
        if value == SetValue::Digest && !pinned {
            return Err(refuse(
                &at,
                format!(
                    "a `:digest` marker, but ImagePolicy {name} reflects no digest \
                     (digestReflectionPolicy Never): Flux writes nothing there"
                ),
            ));
        }
        image.set.push(FleetSet {
            file: file.path.clone(),
            path: path.to_string(),
            value,
        });
    }
    Ok(images
        .into_iter()
        .map(|(name, image)| Listed {
            origin: origins.remove(&name).unwrap_or_default(),
            image,
            sets_only: true,
        })
        .collect())
}

/// Image policies and repositories by name.
type Resources = (
    BTreeMap<String, Policy>,
    BTreeMap<String, (Option<String>, String)>,
);

/// The `ImagePolicy` and `ImageRepository` objects among `files`.
fn resources(files: &[SourceFile]) -> Result<Resources> {
    let mut policies: BTreeMap<String, Policy> = BTreeMap::new();
    let mut repositories: BTreeMap<String, (Option<String>, String)> = BTreeMap::new();
    for file in files {
        for object in super::objects(&file.text, "image.toolkit.fluxcd.io/") {
            if !object.api_version.starts_with("image.toolkit.fluxcd.io/") {
                continue;
            }
            let name = object.metadata.name.clone();
            let namespace = object.metadata.namespace.clone();
            match object.kind.as_str() {
                "ImagePolicy" => {
                    let spec: PolicySpec = serde_norway::from_value(object.spec).map_err(|e| {
                        Failure::new(
                            Kind::Input,
                            format!("{}: ImagePolicy {name}: {e}", file.path),
                        )
                    })?;
                    policies.insert(
                        name,
                        Policy {
                            file: file.path.clone(),
                            namespace,
                            spec,
                        },
                    );
                }
                "ImageRepository" => {
                    if let Ok(spec) = serde_norway::from_value::<RepositorySpec>(object.spec) {
                        repositories.insert(name, (namespace, spec.image));
                    }
                }
                _ => {}
            }
        }
    }
    Ok((policies, repositories))
}

/// Each `$imagepolicy` marker: its file, 1-based line and setter text.
fn markers(files: &[SourceFile]) -> Vec<(&SourceFile, usize, String)> {
    let mut out = Vec::new();
    for file in files.iter().filter(|f| f.text.contains("\"$imagepolicy\"")) {
        for (i, line) in file.text.lines().enumerate() {
            if let Some(found) = MARKER.captures(line) {
                out.push((file, i + 1, found[1].to_string()));
            }
        }
    }
    out
}

/// `NS:NAME`, `NS:NAME:tag|name|digest`. Flux has no default namespace: a
/// marker without one matches no policy.
fn parse_setter(text: &str) -> Option<(&str, &str, SetValue)> {
    let mut parts = text.split(':');
    let (namespace, name) = (parts.next()?, parts.next()?);
    let value = match parts.next() {
        None => SetValue::Image,
        Some("tag") => SetValue::Tag,
        Some("name") => SetValue::Name,
        Some("digest") => SetValue::Digest,
        Some(_) => return None,
    };
    (parts.next().is_none() && !namespace.is_empty() && !name.is_empty())
        .then_some((namespace, name, value))
}

/// The path of the value on `line` (1-based), in the file's only document
/// that has one.
fn path_at(text: &str, line: usize) -> Option<Path> {
    let stream = Stream::parse(text).ok()?;
    stream.documents.iter().find_map(|doc| {
        let mut trail = Vec::new();
        walk(&doc.root, line, &mut trail).then(|| Path::from_segments(trail))
    })
}

fn walk(node: &Node, line: usize, trail: &mut Vec<Segment>) -> bool {
    match &node.kind {
        NodeKind::Mapping(entries) => entries.iter().any(|(key, value)| {
            let Some(key) = key.as_str() else {
                return false;
            };
            trail.push(Segment::Key(key.to_string()));
            let found = matches!(value.kind, NodeKind::Scalar(_)) && value.line == line
                || walk(value, line, trail);
            if !found {
                trail.pop();
            }
            found
        }),
        NodeKind::Sequence(items) => items.iter().enumerate().any(|(i, item)| {
            trail.push(Segment::Index(i as i64));
            let found = matches!(item.kind, NodeKind::Scalar(_)) && item.line == line
                || walk(item, line, trail);
            if !found {
                trail.pop();
            }
            found
        }),
        _ => false,
    }
}

/// The fleet image a policy and its repository make, or why Flux's choice
/// has no faithful tagbump equivalent.
fn translate(
    policy: &Policy,
    repositories: &BTreeMap<String, (Option<String>, String)>,
    what: &str,
) -> Result<FleetImage> {
    let spec = &policy.spec;
    let reference = &spec.image_repository_ref;
    let wanted_ns = reference.namespace.as_ref().or(policy.namespace.as_ref());
    let (_, image) = repositories
        .get(&reference.name)
        .filter(|(ns, _)| ns.is_none() || wanted_ns.is_none() || ns.as_ref() == wanted_ns)
        .ok_or_else(|| {
            refuse(
                what,
                format!(
                    "its ImageRepository `{}` is not in the repository",
                    reference.name
                ),
            )
        })?;
    let (policy_text, sort) = choice(spec).map_err(|why| refuse(what, why))?;
    let pin = matches!(
        spec.digest_reflection_policy.as_deref(),
        Some("IfNotPresent" | "Always")
    );
    Ok(FleetImage {
        name: image.clone(),
        policy: policy_text,
        tag_sort: Some(sort),
        pin_digest: Some(PinDigest::Bool(pin)),
        dirs: Vec::new(),
        set: Vec::new(),
        group: None,
    })
}

/// `semver.range`, `alphabetical` or `numerical` (with `filterTags`) as a
/// tagbump policy, or why not.
fn choice(spec: &PolicySpec) -> Result<(String, Sort), String> {
    let filter = spec.filter_tags.as_ref();
    let pattern = filter
        .and_then(|f| f.pattern.as_deref())
        .filter(|p| !p.is_empty());
    let extract = filter
        .and_then(|f| f.extract.as_deref())
        .filter(|e| !e.is_empty());
    let choice = &spec.policy;
    if let Some(semver) = &choice.semver {
        if pattern.is_some() {
            return Err("semver with filterTags: tagbump's semver policy has no tag filter".into());
        }
        return super::masterminds_range(&semver.range)
            .map(|r| (format!("semver:{r}"), Sort::Alphabetical));
    }
    let (order, sort) = match (&choice.alphabetical, &choice.numerical) {
        (Some(order), None) => (order, Sort::Alphabetical),
        (None, Some(order)) => (order, Sort::Numeric),
        _ => return Err("no semver, alphabetical or numerical policy".into()),
    };
    if order.order.as_deref().is_some_and(|o| o != "asc") {
        return Err("order desc (the lowest tag): tagbump chooses the highest".into());
    }
    let regex = match (pattern, extract) {
        (None, None) => "^(.*)$".to_string(),
        (None, Some(_)) => return Err("filterTags.extract without a pattern".into()),
        // Flux sorts the whole tag among those the pattern matches anywhere.
        (Some(pattern), None) => format!("^(.*(?:{pattern}).*)$"),
        (Some(pattern), Some(extract)) => {
            first_group(pattern, extract)?;
            pattern.to_string()
        }
    };
    Ok((format!("regex:{regex}"), sort))
}

/// Whether `extract` names the pattern's first group (`$1`, `${1}`, or the
/// first group's name): tagbump sorts on the first group only.
fn first_group(pattern: &str, extract: &str) -> Result<(), String> {
    let re = Regex::new(pattern).map_err(|e| format!("filterTags.pattern: {e}"))?;
    let inner = extract
        .strip_prefix("${")
        .and_then(|e| e.strip_suffix('}'))
        .or_else(|| extract.strip_prefix('$'))
        .filter(|name| name.chars().all(|c| c.is_alphanumeric() || c == '_'));
    let first_name = re.capture_names().nth(1).flatten();
    match inner {
        Some("1") if re.captures_len() > 1 => Ok(()),
        Some(name) if Some(name) == first_name => Ok(()),
        _ => Err(format!(
            "filterTags.extract `{extract}`: tagbump sorts on the pattern's first group only"
        )),
    }
}

fn refuse(at: &str, why: String) -> anyhow::Error {
    Failure::new(Kind::Usage, format!("{at}: {why}"))
        .hint("tagbump reads Flux's configuration only where it can choose exactly as Flux does")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The docs' ImageRepository (docs/spec/v1/imagerepositories.md).
    const REPOSITORY: &str = "---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: podinfo
  namespace: default
spec:
  image: stefanprodan/podinfo
  interval: 1h
  provider: generic
";

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    fn listed(policy: &str, deploy: &str) -> Result<Vec<Listed>> {
        read(&[
            file("flux/repository.yaml", REPOSITORY),
            file("flux/policy.yaml", policy),
            file("apps/podinfo/deploy.yaml", deploy),
        ])
    }

    /// What the same image written as an `images:` entry is.
    fn entry(yaml: &str) -> FleetImage {
        serde_norway::from_str::<Vec<FleetImage>>(yaml)
            .unwrap()
            .remove(0)
    }

    fn policy(spec: &str) -> String {
        format!(
            "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: podinfo\n  \
             namespace: default\nspec:\n  imageRepositoryRef:\n    name: podinfo\n{spec}"
        )
    }

    const DEPLOY: &str =
        "spec:\n  template:\n    spec:\n      containers:\n        - name: podinfo\n          \
        image: stefanprodan/podinfo:5.0.0 # {\"$imagepolicy\": \"default:podinfo\"}\n";

    // The docs' first example: semver 5.1.x, digest reflected.
    #[test]
    fn semver_with_digest_reflection_and_the_full_marker() {
        let spec =
            "  digestReflectionPolicy: IfNotPresent\n  policy:\n    semver:\n      range: 5.1.x\n";
        let found = listed(&policy(spec), DEPLOY).unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].sets_only);
        assert_eq!(
            found[0].origin,
            "flux/policy.yaml: ImagePolicy default/podinfo"
        );
        assert_eq!(
            found[0].image,
            entry(
                "- name: stefanprodan/podinfo\n  policy: semver:5.1.x\n  tag_sort: alphabetical\n  \
                 pin_digest: true\n  set:\n    - file: apps/podinfo/deploy.yaml\n      \
                 path: spec.template.spec.containers[0].image\n      value: image\n"
            )
        );
    }

    // The docs' minio example: alphabetical on a named group, and the
    // `:name` / `:tag` markers of a HelmRelease's values.
    #[test]
    fn alphabetical_with_an_extracted_group_and_name_and_tag_markers() {
        let spec = "  filterTags:\n    pattern: '^RELEASE\\.(?P<timestamp>.*)Z$'\n    extract: '$timestamp'\n  \
                    policy:\n    alphabetical:\n      order: asc\n";
        let values = "values:\n  image:\n    repository: stefanprodan/podinfo # {\"$imagepolicy\": \"default:podinfo:name\"}\n    \
                      tag: RELEASE.2024-01-01T00-00-00Z # {\"$imagepolicy\": \"default:podinfo:tag\"}\n";
        let found = listed(&policy(spec), values).unwrap();
        assert_eq!(
            found[0].image,
            entry(
                "- name: stefanprodan/podinfo\n  policy: regex:^RELEASE\\.(?P<timestamp>.*)Z$\n  \
                 tag_sort: alphabetical\n  pin_digest: false\n  set:\n    \
                 - {file: apps/podinfo/deploy.yaml, path: values.image.repository, value: name}\n    \
                 - {file: apps/podinfo/deploy.yaml, path: values.image.tag, value: tag}\n"
            )
        );
    }

    // `flux create image policy --select-numeric=asc --filter-regex=… --filter-extract='$ts'`.
    #[test]
    fn numerical_with_extract_and_a_filter_without_extract() {
        let spec =
            "  filterTags:\n    pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)'\n    extract: '$ts'\n  \
                    policy:\n    numerical:\n      order: asc\n";
        let found = listed(&policy(spec), DEPLOY).unwrap();
        assert_eq!(
            found[0].image.policy,
            "regex:^main-[a-f0-9]+-(?P<ts>[0-9]+)"
        );
        assert_eq!(found[0].image.tag_sort, Some(Sort::Numeric));
        let spec = "  filterTags:\n    pattern: '-rc'\n  policy:\n    alphabetical: {}\n";
        let found = listed(&policy(spec), DEPLOY).unwrap();
        assert_eq!(found[0].image.policy, "regex:^(.*(?:-rc).*)$");
    }

    // A `:digest` marker beside a `:tag` one, digest reflected.
    #[test]
    fn digest_markers_take_the_digest() {
        let spec = "  digestReflectionPolicy: Always\n  interval: 10m\n  policy:\n    semver:\n      range: 5.1.x\n";
        let values = "image:\n  tag: 5.0.0 # {\"$imagepolicy\": \"default:podinfo:tag\"}\n  \
                      digest: sha256:00 # {\"$imagepolicy\": \"default:podinfo:digest\"}\n";
        let found = listed(&policy(spec), values).unwrap();
        assert_eq!(
            found[0].image,
            entry(
                "- name: stefanprodan/podinfo\n  policy: semver:5.1.x\n  tag_sort: alphabetical\n  \
                 pin_digest: true\n  set:\n    \
                 - {file: apps/podinfo/deploy.yaml, path: image.tag, value: tag}\n    \
                 - {file: apps/podinfo/deploy.yaml, path: image.digest, value: digest}\n"
            )
        );
    }

    #[test]
    fn what_has_no_faithful_equivalent_is_refused_with_why() {
        let refused = |spec: &str| format!("{:#}", listed(&policy(spec), DEPLOY).unwrap_err());
        // The docs' second example.
        let rc = "  filterTags:\n    pattern: '.*-rc.*'\n  policy:\n    semver:\n      range: '^1.x-0'\n";
        assert_eq!(
            refused(rc),
            "flux/policy.yaml: ImagePolicy default/podinfo: semver with filterTags: tagbump's \
             semver policy has no tag filter"
        );
        let or = "  policy:\n    semver:\n      range: '>=1.0.0 <2.0.0 || >=3'\n";
        assert!(refused(or).ends_with("`||` (either range) has no equivalent"));
        let desc = "  policy:\n    alphabetical:\n      order: desc\n";
        assert!(refused(desc).ends_with("order desc (the lowest tag): tagbump chooses the highest"));
        let second = "  filterTags:\n    pattern: '^(a)-(?P<n>[0-9]+)$'\n    extract: '$n'\n  policy:\n    numerical: {}\n";
        assert!(refused(second).ends_with("tagbump sorts on the pattern's first group only"));
        let digest = DEPLOY.replace("default:podinfo\"", "default:podinfo:digest\"");
        let semver = "  policy:\n    semver:\n      range: 5.1.x\n";
        let err = format!("{:#}", listed(&policy(semver), &digest).unwrap_err());
        assert!(
            err.starts_with("apps/podinfo/deploy.yaml:6: a `:digest` marker"),
            "{err}"
        );
    }

    #[test]
    fn markers_naming_no_policy_or_no_namespace_are_left_alone() {
        let semver = "  policy:\n    semver:\n      range: 5.1.x\n";
        let other = DEPLOY.replace("default:podinfo", "default:other");
        assert!(listed(&policy(semver), &other).unwrap().is_empty());
        let bare = DEPLOY.replace("default:podinfo", "podinfo");
        assert!(listed(&policy(semver), &bare).unwrap().is_empty());
    }
}
