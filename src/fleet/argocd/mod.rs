//! Argo CD Image Updater's configuration, read from the manifest repository
//! as it is: `ImageUpdater` resources (`argocd-image-updater.argoproj.io/
//! v1alpha1`) and the annotation form on `Application`s, each image mapped
//! onto a fleet image written where Image Updater's git write-back writes
//! (`helmvalues[:PATH]`: the values keys; `kustomization[:PATH]`: the
//! kustomization's `images` entry), relative to the Application's source
//! path. A strategy or setting with no faithful equivalent is refused,
//! naming it and why; it is never approximated.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Deserialize;

use super::Listed;
use crate::config::{FleetImage, FleetSet, PinDigest, SetValue};
use crate::error::{Failure, Kind};
use crate::registry::policy::Sort;
use crate::targets::SourceFile;

const PREFIX: &str = "argocd-image-updater.argoproj.io/";

/// `ImageUpdater.spec`, the fields tagbump reads (others are ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdaterSpec {
    #[serde(default)]
    common_update_settings: Settings,
    #[serde(default)]
    write_back_config: WriteBack,
    #[serde(default)]
    application_refs: Vec<ApplicationRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationRef {
    name_pattern: String,
    #[serde(default)]
    label_selectors: Option<LabelSelector>,
    #[serde(default)]
    use_annotations: bool,
    #[serde(default)]
    common_update_settings: Settings,
    #[serde(default)]
    write_back_config: WriteBack,
    #[serde(default)]
    images: Vec<Image>,
}

/// A Kubernetes label selector; `matchExpressions` are not read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LabelSelector {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    #[serde(default)]
    match_expressions: Vec<serde_norway::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Image {
    alias: String,
    image_name: String,
    #[serde(default)]
    common_update_settings: Settings,
    #[serde(default)]
    manifest_targets: Targets,
}

/// `commonUpdateSettings`: merged field by field, image over ref over spec.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    update_strategy: Option<String>,
    allow_tags: Option<String>,
    ignore_tags: Option<Vec<String>>,
}

impl Settings {
    fn over(&self, lower: &Settings) -> Settings {
        Settings {
            update_strategy: self
                .update_strategy
                .clone()
                .or(lower.update_strategy.clone()),
            allow_tags: self.allow_tags.clone().or(lower.allow_tags.clone()),
            ignore_tags: self.ignore_tags.clone().or(lower.ignore_tags.clone()),
        }
    }
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WriteBack {
    method: Option<String>,
    #[serde(default)]
    git_config: GitConfig,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GitConfig {
    write_back_target: Option<String>,
}

impl WriteBack {
    fn over(&self, lower: &WriteBack) -> WriteBack {
        WriteBack {
            method: self.method.clone().or(lower.method.clone()),
            git_config: GitConfig {
                write_back_target: self
                    .git_config
                    .write_back_target
                    .clone()
                    .or(lower.git_config.write_back_target.clone()),
            },
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct Targets {
    #[serde(default)]
    helm: Option<HelmTarget>,
    #[serde(default)]
    kustomize: Option<KustomizeTarget>,
}

#[derive(Debug, Default, Clone, Deserialize)]
struct HelmTarget {
    name: Option<String>,
    tag: Option<String>,
    spec: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
struct KustomizeTarget {
    name: Option<String>,
}

/// An Argo CD `Application`: its name, annotations and source path.
struct Application {
    name: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    path: String,
}

#[derive(Debug, Deserialize)]
struct ApplicationSpec {
    #[serde(default)]
    source: Option<Source>,
    #[serde(default)]
    sources: Vec<Source>,
}

#[derive(Debug, Clone, Deserialize)]
struct Source {
    #[serde(default)]
    path: String,
    #[serde(default)]
    helm: Option<serde_norway::Value>,
    #[serde(default)]
    kustomize: Option<serde_norway::Value>,
}

/// One image of one application, before it is mapped.
struct Ask<'a> {
    app: &'a Application,
    image_name: String,
    settings: Settings,
    write_back: WriteBack,
    helm: HelmTarget,
    kustomize: KustomizeTarget,
    at: String,
}

/// The images Image Updater's configuration in `files` updates.
pub fn read(files: &[SourceFile]) -> Result<Vec<Listed>> {
    let (apps, updaters) = resources(files)?;
    let mut asks = Vec::new();
    let mut covered: Vec<&str> = Vec::new();
    for (file, name, spec) in &updaters {
        for r in &spec.application_refs {
            let at = format!("{file}: ImageUpdater {name}");
            for app in selected(r, &apps, &at)? {
                if covered.contains(&app.name.as_str()) {
                    continue; // An application uses the first ref it matches.
                }
                covered.push(&app.name);
                let at = format!("{at}, Application {}", app.name);
                if r.use_annotations {
                    asks.extend(annotated(app, &at)?);
                    continue;
                }
                let write_back = r.write_back_config.over(&spec.write_back_config);
                for image in &r.images {
                    asks.push(Ask {
                        app,
                        image_name: image.image_name.clone(),
                        settings: image
                            .common_update_settings
                            .over(&r.common_update_settings.over(&spec.common_update_settings)),
                        write_back: write_back.clone(),
                        helm: image.manifest_targets.helm.clone().unwrap_or_default(),
                        kustomize: image.manifest_targets.kustomize.clone().unwrap_or_default(),
                        at: format!("{at}, image {}", image.alias),
                    });
                }
            }
        }
    }
    if updaters.is_empty() {
        for app in &apps {
            let at = format!("Application {}", app.name);
            asks.extend(annotated(app, &at)?);
        }
    }
    let mut images: Vec<Listed> = Vec::new();
    for ask in asks {
        let Some((image, origin)) = map(&ask)? else {
            continue;
        };
        // One entry per image and policy: several applications running the
        // same image with the same policy share it.
        match images
            .iter_mut()
            .find(|l| l.image.name == image.name && l.image.policy == image.policy)
        {
            Some(same) => same.image.set.extend(image.set),
            None => images.push(Listed {
                image,
                origin,
                sets_only: true,
            }),
        }
    }
    Ok(images)
}

/// The Applications and ImageUpdaters among `files`.
type Resources = (Vec<Application>, Vec<(String, String, UpdaterSpec)>);

fn resources(files: &[SourceFile]) -> Result<Resources> {
    let mut apps = Vec::new();
    let mut updaters = Vec::new();
    for file in files {
        for object in crate::fleet::objects(&file.text, "argoproj.io/") {
            match (object.api_version.as_str(), object.kind.as_str()) {
                ("argoproj.io/v1alpha1", "Application") => {
                    if let Some(app) = application(object) {
                        apps.push(app);
                    }
                }
                (v, "ImageUpdater") if v.starts_with("argocd-image-updater.argoproj.io/") => {
                    let spec: UpdaterSpec = serde_norway::from_value(object.spec).map_err(|e| {
                        Failure::new(
                            Kind::Input,
                            format!("{}: ImageUpdater {}: {e}", file.path, object.metadata.name),
                        )
                    })?;
                    updaters.push((file.path.clone(), object.metadata.name, spec));
                }
                _ => {}
            }
        }
    }
    Ok((apps, updaters))
}

/// The applications a ref names: by `namePattern` and `matchLabels`.
fn selected<'a>(
    r: &ApplicationRef,
    apps: &'a [Application],
    at: &str,
) -> Result<Vec<&'a Application>> {
    let selector = r.label_selectors.as_ref();
    if selector.is_some_and(|l| !l.match_expressions.is_empty()) {
        return Err(Failure::new(
            Kind::Usage,
            format!(
                "{at}, namePattern {}: labelSelectors.matchExpressions are not read; use \
                 matchLabels",
                r.name_pattern
            ),
        )
        .into());
    }
    Ok(apps
        .iter()
        .filter(|app| {
            glob(&r.name_pattern, &app.name)
                && selector.is_none_or(|l| {
                    l.match_labels
                        .iter()
                        .all(|(k, v)| app.labels.get(k) == Some(v))
                })
        })
        .collect())
}

/// The source Image Updater writes next to: the first with a `helm` or
/// `kustomize` block, else the first.
fn application(object: crate::fleet::Object) -> Option<Application> {
    let spec: ApplicationSpec = serde_norway::from_value(object.spec).ok()?;
    let sources: Vec<Source> = spec.source.into_iter().chain(spec.sources).collect();
    let source = sources
        .iter()
        .find(|s| s.helm.is_some() || s.kustomize.is_some())
        .or(sources.first())?
        .clone();
    Some(Application {
        name: object.metadata.name,
        labels: object.metadata.labels,
        annotations: object.metadata.annotations,
        path: source.path.trim_matches('/').to_string(),
    })
}

/// The annotation form: `image-list` and its `<alias>.…` keys.
fn annotated<'a>(app: &'a Application, at: &str) -> Result<Vec<Ask<'a>>> {
    let get = |key: &str| app.annotations.get(&format!("{PREFIX}{key}")).cloned();
    let Some(list) = get("image-list") else {
        return Ok(Vec::new());
    };
    let mut asks = Vec::new();
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (alias, image_name) = match item.split_once('=') {
            Some((alias, image)) => (alias.trim().to_string(), image.trim().to_string()),
            None => (item.to_string(), item.to_string()),
        };
        let key = alias.replace('/', "_");
        let per = |name: &str| get(&format!("{key}.{name}")).or_else(|| get(name));
        let ignore =
            per("ignore-tags").map(|t| t.split(',').map(|g| g.trim().to_string()).collect());
        asks.push(Ask {
            app,
            settings: Settings {
                update_strategy: per("update-strategy"),
                allow_tags: per("allow-tags"),
                ignore_tags: ignore,
            },
            write_back: WriteBack {
                method: get("write-back-method"),
                git_config: GitConfig {
                    write_back_target: get("write-back-target"),
                },
            },
            helm: HelmTarget {
                name: get(&format!("{key}.helm.image-name")),
                tag: get(&format!("{key}.helm.image-tag")),
                spec: get(&format!("{key}.helm.image-spec")),
            },
            kustomize: KustomizeTarget {
                name: get(&format!("{key}.kustomize.image-name")),
            },
            at: format!("{at}, image {alias}"),
            image_name,
        });
    }
    Ok(asks)
}

/// One image as a fleet image, `None` when Image Updater would write
/// nothing to git for it (`method: argocd`).
fn map(ask: &Ask<'_>) -> Result<Option<(FleetImage, String)>> {
    let refuse = |why: String| -> anyhow::Error {
        Failure::new(Kind::Usage, format!("{}: {why}", ask.at))
            .hint("tagbump reads Image Updater's configuration only where it can choose and write exactly as Image Updater does")
            .into()
    };
    let method = ask.write_back.method.as_deref().unwrap_or("argocd");
    if method == "argocd" {
        crate::note!(
            "note: {}: write-back method `argocd` changes the Application in the cluster, not \
             git; left alone",
            ask.at
        );
        return Ok(None);
    }
    let (name, constraint) = split_constraint(&ask.image_name);
    let (policy, sort, pin, followed) = strategy(&ask.settings, constraint).map_err(refuse)?;
    let image_name = match followed {
        Some(tag) => format!("{name}:{tag}"),
        None => name.to_string(),
    };
    let set = places(ask, name, pin).map_err(refuse)?;
    let image = FleetImage {
        name: image_name,
        policy,
        tag_sort: Some(sort),
        pin_digest: Some(PinDigest::Bool(pin)),
        dirs: Vec::new(),
        set,
        group: None,
    };
    Ok(Some((image, ask.at.clone())))
}

/// `registry/repo:constraint` → the name and the constraint (a registry's
/// port is not a constraint: the part after the last `/`).
fn split_constraint(image: &str) -> (&str, Option<&str>) {
    let last = image.rfind('/').map_or(0, |i| i + 1);
    match image[last..].find(':') {
        Some(i) => (&image[..last + i], Some(&image[last + i + 1..])),
        None => (image, None),
    }
}

/// The strategy as a tagbump policy: (policy, sort, pin the digest, the tag
/// a `digest` strategy follows).
type Strategy = (String, Sort, bool, Option<String>);

fn strategy(settings: &Settings, constraint: Option<&str>) -> Result<Strategy, String> {
    let allow = settings.allow_tags.as_deref().filter(|a| *a != "any");
    if settings.ignore_tags.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err("ignoreTags: tagbump's policies have no exclude list".into());
    }
    let pattern = match allow {
        None => None,
        Some(a) => Some(a.strip_prefix("regexp:").ok_or_else(|| {
            format!(
                "allowTags `{a}`: Image Updater matches no tag with it (not `regexp:` or `any`)"
            )
        })?),
    };
    let strategy = settings.update_strategy.as_deref().unwrap_or("semver");
    match strategy.to_lowercase().as_str() {
        "semver" => {
            if pattern.is_some() {
                return Err(
                    "semver with allowTags: tagbump's semver policy has no tag filter".into(),
                );
            }
            let range = match constraint {
                Some(c) => super::masterminds_range(c)?,
                None => "*".to_string(),
            };
            Ok((format!("semver:{range}"), Sort::Alphabetical, false, None))
        }
        "alphabetical" | "name" => {
            let regex = match pattern {
                Some(p) => format!("^(.*(?:{p}).*)$"),
                None => "^(.*)$".into(),
            };
            Ok((format!("regex:{regex}"), Sort::Alphabetical, false, None))
        }
        "digest" => {
            let tag = constraint.ok_or("digest with no tag to follow in imageName")?;
            Ok((
                "latest-digest".into(),
                Sort::Alphabetical,
                true,
                Some(tag.into()),
            ))
        }
        "newest-build" | "latest" => Err(format!(
            "update strategy `{strategy}` orders tags by their images' build dates, which \
             tagbump does not read"
        )),
        other => Err(format!(
            "update strategy `{other}` is not one Image Updater has"
        )),
    }
}

/// Where Image Updater's git write-back writes, as `set` places.
fn places(ask: &Ask<'_>, name: &str, pin: bool) -> Result<Vec<FleetSet>, String> {
    let target = ask.write_back.git_config.write_back_target.as_deref();
    let file_of = |rest: Option<&str>, default: &str| -> String {
        let relative = match rest {
            Some(p) if p.starts_with('/') => return p.trim_start_matches('/').to_string(),
            Some(p) => p.trim_start_matches("./"),
            None => default,
        };
        let joined = if ask.app.path.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", ask.app.path)
        };
        normalize(&joined)
    };
    let digest_value = if pin { SetValue::Digest } else { SetValue::Tag };
    match target.map(|t| t.split_once(':').map_or((t, None), |(k, p)| (k, Some(p)))) {
        Some(("helmvalues", rest)) => {
            let file = file_of(rest, "values.yaml");
            let set = |path: &str, value| FleetSet {
                file: file.clone(),
                path: path.to_string(),
                value,
            };
            Ok(match &ask.helm.spec {
                Some(spec) => vec![set(spec, SetValue::Image)],
                None => vec![
                    set(
                        ask.helm.name.as_deref().unwrap_or("image.name"),
                        SetValue::Name,
                    ),
                    set(ask.helm.tag.as_deref().unwrap_or("image.tag"), digest_value),
                ],
            })
        }
        Some(("kustomization", rest)) => {
            let dir = file_of(rest, "");
            let kname = ask
                .kustomize
                .name
                .clone()
                .unwrap_or_else(|| name.to_string());
            let file = if dir.is_empty() {
                "kustomization.yaml".to_string()
            } else {
                format!("{}/kustomization.yaml", dir.trim_end_matches('/'))
            };
            let (key, value) = if pin {
                ("digest", SetValue::Digest)
            } else {
                ("newTag", SetValue::Tag)
            };
            Ok(vec![FleetSet {
                file,
                path: format!("images[name={kname}].{key}"),
                value,
            }])
        }
        Some((other, _)) => Err(format!(
            "writeBackTarget `{other}`: tagbump writes `helmvalues[:PATH]` and \
             `kustomization[:PATH]`"
        )),
        None => Err(format!(
            "no writeBackTarget: Image Updater writes `{}/.argocd-source-{}.yaml`, a file of its \
             own; set `helmvalues:PATH` or `kustomization` to have tagbump write the manifests",
            ask.app.path, ask.app.name
        )),
    }
}

/// `a/b/../c` → `a/c`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Go's `filepath.Match` for application names: `*` any run, `?` one char.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests;
