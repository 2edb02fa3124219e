//! Image Updater manifests as its docs write them, mapped onto fleet images.

use super::*;

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.into(),
        text: text.into(),
    }
}

/// Applications as Argo CD's docs write them: a Helm chart and a
/// kustomize overlay, each from a path of the repository.
const APPS: &str = "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: frontend-prod
  labels:
    environment: production
spec:
  source:
    repoURL: https://github.com/myorg/frontend-config.git
    path: charts/frontend
    helm:
      valueFiles: [values.yaml]
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: backend
spec:
  source:
    repoURL: https://github.com/myorg/frontend-config.git
    path: config/overlays/prod
    kustomize: {}
";

fn read_with(updater: &str) -> Result<Vec<Listed>> {
    read(&[file("apps.yaml", APPS), file("updater.yaml", updater)])
}

fn entry(yaml: &str) -> FleetImage {
    serde_norway::from_str::<Vec<FleetImage>>(yaml)
        .unwrap()
        .remove(0)
}

fn updater(spec: &str) -> String {
    format!(
        "apiVersion: argocd-image-updater.argoproj.io/v1alpha1\nkind: ImageUpdater\nmetadata:\n  \
             name: production-updater\n  namespace: argocd\nspec:\n{spec}"
    )
}

// semver from the constraint in imageName; helmvalues relative to the
// application's path; default helm keys image.name / image.tag.
#[test]
fn semver_constraints_and_helm_values() {
    let spec = "  writeBackConfig:\n    method: \"git\"\n    gitConfig:\n      writeBackTarget: \"helmvalues:./values.yaml\"\n  \
                    applicationRefs:\n    - namePattern: \"frontend-*\"\n      images:\n        - alias: \"nginx\"\n          \
                    imageName: \"nginx:~1.26\"\n";
    let found = read_with(&updater(spec)).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].origin,
        "updater.yaml: ImageUpdater production-updater, Application frontend-prod, image nginx"
    );
    assert_eq!(
            found[0].image,
            entry(
                "- name: nginx\n  policy: semver:~1.26\n  tag_sort: alphabetical\n  pin_digest: false\n  set:\n    \
                 - {file: charts/frontend/values.yaml, path: image.name, value: name}\n    \
                 - {file: charts/frontend/values.yaml, path: image.tag, value: tag}\n"
            )
        );
}

// alphabetical with allowTags, and the docs' manifestTargets.helm keys.
#[test]
fn alphabetical_with_allow_tags_and_helm_targets() {
    let spec = "  commonUpdateSettings:\n    updateStrategy: alphabetical\n    allowTags: \"regexp:^[0-9]{4}-[0-9]{2}-[0-9]{2}$\"\n  \
                    writeBackConfig:\n    method: git\n    gitConfig:\n      writeBackTarget: \"helmvalues:/charts/frontend/values.yaml\"\n  \
                    applicationRefs:\n    - namePattern: frontend-prod\n      images:\n        - alias: dex\n          \
                    imageName: \"quay.io/dexidp/dex\"\n          manifestTargets:\n            helm:\n              \
                    name: \"dex.image.name\"\n              tag: \"dex.image.tag\"\n";
    let found = read_with(&updater(spec)).unwrap();
    assert_eq!(
            found[0].image,
            entry(
                "- name: quay.io/dexidp/dex\n  policy: regex:^(.*(?:^[0-9]{4}-[0-9]{2}-[0-9]{2}$).*)$\n  \
                 tag_sort: alphabetical\n  pin_digest: false\n  set:\n    \
                 - {file: charts/frontend/values.yaml, path: dex.image.name, value: name}\n    \
                 - {file: charts/frontend/values.yaml, path: dex.image.tag, value: tag}\n"
            )
        );
}

// digest follows the tag in imageName; kustomization:PATH relative to
// the application's path, the docs' kustomize.name.
#[test]
fn digest_and_kustomization() {
    let spec = "  writeBackConfig:\n    method: git\n    gitConfig:\n      writeBackTarget: \"kustomization:../../base\"\n  \
                    applicationRefs:\n    - namePattern: backend\n      images:\n        - alias: argocd\n          \
                    imageName: \"ghcr.io/argoproj/argocd:latest\"\n          commonUpdateSettings:\n            \
                    updateStrategy: digest\n          manifestTargets:\n            kustomize:\n              \
                    name: \"quay.io/argoproj/argocd\"\n";
    let found = read_with(&updater(spec)).unwrap();
    assert_eq!(
            found[0].image,
            entry(
                "- name: ghcr.io/argoproj/argocd:latest\n  policy: latest-digest\n  tag_sort: alphabetical\n  \
                 pin_digest: true\n  set:\n    \
                 - {file: config/base/kustomization.yaml, path: \"images[name=quay.io/argoproj/argocd].digest\", value: digest}\n"
            )
        );
}

// The annotation form (v0.x, or useAnnotations: true).
#[test]
fn annotations_on_the_application() {
    let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\n  annotations:\n    \
                   argocd-image-updater.argoproj.io/image-list: \"web=registry.example.com:5000/team/web:^1.2\"\n    \
                   argocd-image-updater.argoproj.io/web.helm.image-name: web.image.repository\n    \
                   argocd-image-updater.argoproj.io/web.helm.image-tag: web.image.tag\n    \
                   argocd-image-updater.argoproj.io/write-back-method: git\n    \
                   argocd-image-updater.argoproj.io/write-back-target: helmvalues\nspec:\n  source:\n    path: apps/web\n    helm: {}\n";
    let found = read(&[file("web.yaml", app)]).unwrap();
    assert_eq!(
            found[0].image,
            entry(
                "- name: registry.example.com:5000/team/web\n  policy: semver:^1.2\n  tag_sort: alphabetical\n  \
                 pin_digest: false\n  set:\n    \
                 - {file: apps/web/values.yaml, path: web.image.repository, value: name}\n    \
                 - {file: apps/web/values.yaml, path: web.image.tag, value: tag}\n"
            )
        );
}

#[test]
fn what_has_no_faithful_equivalent_is_refused_with_why() {
    let refused = |spec: &str| format!("{:#}", read_with(&updater(spec)).unwrap_err());
    let git =
        "  writeBackConfig:\n    method: git\n    gitConfig:\n      writeBackTarget: helmvalues\n";
    let image = |settings: &str| {
        format!(
                "{git}  applicationRefs:\n    - namePattern: backend\n      images:\n        - alias: redis\n          \
                 imageName: \"redis:6.2\"\n{settings}"
            )
    };
    // The docs' migration example: newest-build.
    let newest =
        image("          commonUpdateSettings:\n            updateStrategy: \"newest-build\"\n");
    assert!(
        refused(&newest).ends_with("which tagbump does not read"),
        "{}",
        refused(&newest)
    );
    // The docs' complete example's ignoreTags.
    let ignore = image("          commonUpdateSettings:\n            ignoreTags: [ \"latest\", \"dev\", \"test\" ]\n");
    assert!(refused(&ignore).ends_with("ignoreTags: tagbump's policies have no exclude list"));
    let allow = image(
        "          commonUpdateSettings:\n            allowTags: \"regexp:^[0-9]+\\\\.[0-9]+$\"\n",
    );
    assert!(refused(&allow)
        .ends_with("semver with allowTags: tagbump's semver policy has no tag filter"));
    let or = image("").replace("redis:6.2", "redis:6.x || 7.x");
    assert!(refused(&or).ends_with("`||` (either range) has no equivalent"));
    let no_target = image("").replace("writeBackTarget: helmvalues\n", "branch: main\n");
    assert!(refused(&no_target).contains("no writeBackTarget: Image Updater writes `config/overlays/prod/.argocd-source-backend.yaml`"));
    // The default method writes to the cluster: nothing to do in git.
    let argocd = image("").replace("method: git", "method: argocd");
    assert!(read_with(&updater(&argocd)).unwrap().is_empty());
}

#[test]
fn names_match_as_go_globs() {
    assert!(glob("frontend-*", "frontend-prod"));
    assert!(!glob("frontend-*", "backend"));
    assert!(glob("app-?", "app-1"));
    assert_eq!(
        split_constraint("reg:5000/team/app:1.x"),
        ("reg:5000/team/app", Some("1.x"))
    );
    assert_eq!(
        split_constraint("reg:5000/team/app"),
        ("reg:5000/team/app", None)
    );
}
