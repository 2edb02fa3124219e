//! A fleet run: every image of the config file's `images:` list in one run,
//! each with its own tag policy, digest pinning and targets, grouped into
//! review branches. The registry is asked about all of them at once; the
//! repository is cloned once. An image the registry cannot answer for is
//! reported with its reason and the others still land.

use std::path::Path;

use anyhow::Result;
use serde::Deserialize;

use crate::config::{FleetImage, SetValue};
use crate::error::{Failure, Kind};
use crate::image::ImageRef;
use crate::registry::policy::Policy;
use crate::registry::{Pin, RegistrySpec};
use crate::targets::Assignment;
use crate::update::{FileSet, ImageScope};

pub mod argocd;
pub mod flux;

/// One image of the fleet, checked and ready to ask the registry about.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The name as the config file wrote it, for reports and `--only`.
    pub name: String,
    pub image: ImageRef,
    /// The policy as written (`semver:^1`), for reports.
    pub policy: String,
    pub registry: RegistrySpec,
    pub scope: ImageScope,
    /// Places that take the chosen version, and which part of it (the
    /// value is filled in once the registry answered).
    pub sets: Vec<(FileSet, SetValue)>,
    /// The review branch / merge request it goes to.
    pub group: String,
}

/// A Kubernetes object as a controller's configuration holds it: the
/// fields the readers look at, the rest ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct Object {
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: serde_norway::Value,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Metadata {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Every document of `text` that is a Kubernetes object, when the text
/// names the API group `group` at all (most files do not).
pub(crate) fn objects(text: &str, group: &str) -> Vec<Object> {
    if !text.contains(group) {
        return Vec::new();
    }
    serde_norway::Deserializer::from_str(text)
        .filter_map(|document| Object::deserialize(document).ok())
        .collect()
}

/// An image as a list gave it: the config file's `images:`, or a
/// controller's configuration in the repository.
#[derive(Debug, Clone)]
pub struct Listed {
    pub image: FleetImage,
    /// Where it was listed, for messages: `fleet.yaml: images[2]`.
    pub origin: String,
    /// Written only at its `set` places, never scanned for.
    pub sets_only: bool,
}

/// The config file's `images:`, as listed there.
pub fn from_config(images: &[FleetImage], file: &Path) -> Vec<Listed> {
    images
        .iter()
        .enumerate()
        .map(|(i, image)| Listed {
            image: image.clone(),
            origin: format!("{}: images[{i}]", file.display()),
            sets_only: false,
        })
        .collect()
}

/// The entries of `listed` (all, or those `only` names), each checked:
/// a parsable name, a policy tagbump has, paths inside the repository.
/// `registry` holds the run's registry settings (credentials, insecure
/// hosts, timeout, the default pinning); each entry gets its own policy.
pub fn entries(
    listed: &[Listed],
    only: &[String],
    registry: &RegistrySpec,
    file: &Path,
) -> Result<Vec<Entry>> {
    let images: Vec<&FleetImage> = listed.iter().map(|l| &l.image).collect();
    for name in only {
        if !images.iter().any(|i| &i.name == name) {
            let known: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
            return Err(Failure::new(
                Kind::Usage,
                format!(
                    "--only {name}: {} has no image of that name (images: {})",
                    file.display(),
                    known.join(", ")
                ),
            )
            .into());
        }
    }
    let mut out: Vec<Entry> = Vec::new();
    for item in listed {
        let image = &item.image;
        if !only.is_empty() && !only.contains(&image.name) {
            continue;
        }
        let at = format!("{} ({})", item.origin, image.name);
        let mut entry = entry(image, registry, &at)?;
        entry.scope.sets_only = item.sets_only;
        // A controller's list may name an image twice (two policies for two
        // applications); the config file's list names each once.
        if !item.sets_only
            && out
                .iter()
                .any(|e| e.image.normalized_name() == entry.image.normalized_name())
        {
            return Err(
                Failure::new(Kind::Usage, format!("{at}: the image is listed twice"))
                    .hint("give each image one entry; list several `in` or `set` places in it")
                    .into(),
            );
        }
        out.push(entry);
    }
    Ok(out)
}

fn entry(image: &FleetImage, registry: &RegistrySpec, at: &str) -> Result<Entry> {
    let usage = |what: String| -> anyhow::Error { Failure::new(Kind::Usage, what).into() };
    let name = ImageRef::parse(&image.name).map_err(|e| usage(format!("{at}: name: {e}")))?;
    let sort = image.tag_sort.unwrap_or_default();
    let policy =
        Policy::parse(&image.policy, sort).map_err(|e| usage(format!("{at}: policy: {e}")))?;
    let digest_set = image.set.iter().any(|s| s.value == SetValue::Digest);
    let pin = match image.pin_digest.map_or(registry.pin, |p| p.pin()) {
        // A place that takes the digest needs the registry to be asked for it.
        Pin::Off if digest_set => Pin::On,
        pin => pin,
    };
    let dirs = image
        .dirs
        .iter()
        .map(|d| crate::update::repo_path(d).map_err(|e| usage(format!("{at}: in: {e}"))))
        .collect::<Result<Vec<_>>>()?;
    let sets = image
        .set
        .iter()
        .map(|set| {
            let path = crate::yaml::Path::parse(&set.path)
                .map_err(|e| usage(format!("{at}: set `{}`: {e}", set.path)))?;
            let file = crate::update::repo_path(&set.file)
                .map_err(|e| usage(format!("{at}: set file: {e}")))?;
            let set_file = FileSet {
                file,
                assignment: Assignment {
                    path,
                    value: String::new(),
                },
                from_image: true,
                ask: format!("{} set {}:{}", image.name, set.file, set.path),
            };
            Ok((set_file, set.value))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Entry {
        name: image.name.clone(),
        policy: image.policy.clone(),
        registry: RegistrySpec {
            pin,
            policy: Some(policy),
            ..registry.clone()
        },
        scope: ImageScope {
            dirs,
            digest_in_tag: pin == Pin::Tag,
            sets_only: false,
        },
        sets,
        group: image.group.clone().unwrap_or_else(|| image.name.clone()),
        image: name,
    })
}

/// A Masterminds range (Flux, Argo CD Image Updater) in the form tagbump's
/// `semver:` reads, or why it means something else there.
pub(crate) fn masterminds_range(range: &str) -> Result<String, String> {
    let refuse = |why: &str| Err(format!("semver range `{range}`: {why}"));
    if range.contains("||") {
        return refuse("`||` (either range) has no equivalent");
    }
    if range.contains("!=") {
        return refuse("`!=` has no equivalent");
    }
    if range.split_whitespace().any(|t| t == "-") {
        return refuse("a hyphen range has no equivalent; write `>=A, <=B`");
    }
    if range.contains('-') {
        return refuse("pre-release ranges choose differently (Masterminds' `-0` opt-in)");
    }
    Policy::parse(&format!("semver:{range}"), Default::default())
        .map(|_| range.to_string())
        .map_err(|e| format!("semver range `{range}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(yaml: &str) -> Vec<FleetImage> {
        serde_norway::from_str(yaml).unwrap()
    }

    fn error(yaml: &str, only: &[&str]) -> String {
        let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
        let list = from_config(&images(yaml), Path::new("f.yaml"));
        let err = entries(&list, &only, &RegistrySpec::default(), Path::new("f.yaml")).unwrap_err();
        format!("{err:#}")
    }

    #[test]
    fn entries_take_their_own_policy_scope_and_group() {
        let list = images(
            "- name: r.example/team/api\n  policy: semver:^1\n  in: [apps/api/]\n\
             - name: r.example/team/web\n  policy: regex:^main-(\\d+)$\n  tag_sort: numeric\n  \
             pin_digest: tag\n  group: front\n  set:\n    - file: apps/web/Chart.yaml\n      path: appVersion\n",
        );
        let list = from_config(&list, Path::new("f.yaml"));
        let out = entries(&list, &[], &RegistrySpec::default(), Path::new("f.yaml")).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].scope.dirs, ["apps/api"]);
        assert_eq!(out[0].group, "r.example/team/api");
        assert_eq!(out[0].registry.pin, Pin::Off);
        assert_eq!(out[1].group, "front");
        assert_eq!(out[1].registry.pin, Pin::Tag);
        assert!(out[1].scope.digest_in_tag);
        assert_eq!(out[1].sets[0].0.file, "apps/web/Chart.yaml");
        let only = ["r.example/team/web".to_string()];
        let out = entries(&list, &only, &RegistrySpec::default(), Path::new("f.yaml")).unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn bad_entries_are_named_with_their_index() {
        assert_eq!(
            error("- name: r.example/a\n  policy: newest\n", &[]),
            "f.yaml: images[0] (r.example/a): policy: `newest` is not a tag policy: use \
             `semver:RANGE`, `regex:EXPR` or `latest-digest`"
        );
        assert!(error(
            "- name: r.example/a\n  policy: semver:^1\n- name: r.example/a\n  policy: semver:^2\n",
            &[]
        )
        .starts_with("f.yaml: images[1] (r.example/a): the image is listed twice"));
        assert_eq!(
            error("- name: r.example/a\n  policy: semver:^1\n", &["nope"]),
            "--only nope: f.yaml has no image of that name (images: r.example/a)"
        );
        assert!(error(
            "- name: r.example/a\n  policy: semver:^1\n  in: [../x]\n",
            &[]
        )
        .starts_with("f.yaml: images[0] (r.example/a): in: "));
    }
}
