//! Path edits and image scans over in-memory files, whole outputs compared.

use super::*;
use crate::image::ImageRef;

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
