//! Locate + edit on large inputs: a ~10 MB multi-document manifest stream and
//! a 6,000-line commented Helm values file, and what the guard (the re-parse
//! and comparison before every write) costs of that. `cargo bench --bench yaml`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tagbump::image::ImageRef;
use tagbump::targets::{plan_image, ImageUpdate, SourceFile};
use tagbump::yaml::{guard, set, Documents, Editor, Path, Stream};

/// The guard alone, for an edit of `path` to `value` in `src`.
fn guard_only(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: String,
    src: &str,
    path: &Path,
    value: &str,
    documents: Documents,
) {
    let mut editor = Editor::new(src).unwrap();
    editor.set(path, value, documents).unwrap();
    let splices = editor.splices().to_vec();
    let new = editor.finish().unwrap();
    let stream = Stream::parse(src).unwrap();
    c.bench_function(name, |b| {
        b.iter(|| guard::check(src, black_box(&stream), black_box(&new), &splices).unwrap())
    });
}

/// ~10 MB of Deployments, each with comments, labels and two containers.
fn multi_document() -> String {
    let mut out = String::new();
    let mut i = 0;
    while out.len() < 10 * 1024 * 1024 {
        out.push_str(&format!(
            "---\n# service {i} — rendered by CI\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{i}\n  labels:\n    app.kubernetes.io/name: svc-{i}\n    app.kubernetes.io/version: \"1.0.{i}\"\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.example.com/team/svc-{i}:1.0.{i}   # bumped by CI\n          args: [\"--port=8080\", \"--id={i}\"]\n        - name: proxy\n          image: envoyproxy/envoy:v1.29.1\n          resources: {{limits: {{cpu: 100m, memory: 64Mi}}}}\n"
        ));
        i += 1;
    }
    out
}

/// A 6,000-line values file: commented sections, nested maps, lists.
fn helm_values() -> String {
    let mut out = String::from("# Default values for a large umbrella chart.\n\n");
    let mut section = 0;
    while out.lines().count() < 6000 {
        out.push_str(&format!(
            "## @section Component {section}\n## @param component{section}.enabled Enable component {section}\ncomponent{section}:\n  enabled: true\n  # Image used by component {section}.\n  image:\n    registry: registry.example.com\n    repository: team/component-{section}\n    tag: \"2.{section}.0\"   # updated by CI\n    pullPolicy: IfNotPresent\n  resources:\n    limits: {{cpu: 500m, memory: 512Mi}}\n  env:\n    - name: LOG_LEVEL\n      value: info\n    - name: FEATURE_{section}\n      value: \"on\"\n\n"
        ));
        section += 1;
    }
    out
}

fn benches(c: &mut Criterion) {
    let big = multi_document();
    let docs = big.matches("\n---\n").count() + 1;
    let path = Path::parse("spec.template.spec.containers[name=app].image").unwrap();
    let mut group = c.benchmark_group("yaml");
    group.sample_size(10);
    group.bench_function(
        format!("set last of {docs} documents ({} MB)", big.len() >> 20),
        |b| {
            b.iter(|| {
                set(
                    black_box(&big),
                    &path,
                    "registry.example.com/team/svc:9.9.9",
                    Documents::Index(docs - 1),
                )
                .unwrap()
            })
        },
    );
    guard_only(
        &mut group,
        "guard of that edit".into(),
        &big,
        &path,
        "registry.example.com/team/svc:9.9.9",
        Documents::Index(docs - 1),
    );
    let label = Path::parse("metadata.name").unwrap();
    guard_only(
        &mut group,
        format!("guard of an edit in all {docs} documents"),
        &big,
        &label,
        "renamed",
        Documents::All,
    );
    let files = [SourceFile {
        path: "all.yaml".into(),
        text: big.clone(),
    }];
    let update = ImageUpdate {
        digest_in_tag: false,
        image: ImageRef::parse("registry.example.com/team/svc-7:1.0.8").unwrap(),
        app_version: false,
    };
    group.bench_function("image scan, 10 MB", |b| {
        b.iter(|| plan_image(black_box(&files), &update).unwrap())
    });

    let values = helm_values();
    let lines = values.lines().count();
    let last = values.matches("\ncomponent").count() - 1;
    let tag = Path::parse(&format!("component{last}.image.tag")).unwrap();
    group.sample_size(50);
    group.bench_function(format!("set in {lines}-line Helm values"), |b| {
        b.iter(|| set(black_box(&values), &tag, "3.0.0", Documents::One).unwrap())
    });
    guard_only(
        &mut group,
        format!("guard of that edit ({lines} lines)"),
        &values,
        &tag,
        "3.0.0",
        Documents::One,
    );
    group.finish();
}

criterion_group!(yaml, benches);
criterion_main!(yaml);
