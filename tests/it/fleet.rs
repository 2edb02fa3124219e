//! Issue #22: a fleet of images in one run, against a real registry (CNCF
//! distribution): mixed policies land each image's newest allowed tag in one
//! commit, each repository's tag list is read once, one image the registry
//! cannot answer for is reported while the others land, and groups get one
//! review branch each, untouched by a re-run.

use crate::pipeline::{update_in, Update};
use crate::registry::retag;
use crate::registry_server::{Auth, Registry};
use crate::servers::{seed, Repo};

/// Images with several tags each; returns the pinned worker's digest.
fn push_fleet(registry: &Registry) -> String {
    let tags = |list: &[&str]| list.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    registry.push("team/api:1.0.0");
    retag(
        registry,
        "team/api",
        "1.0.0",
        &tags(&["1.2.0", "1.3.1", "2.0.0"]),
    );
    registry.push("team/web:1.4.0");
    retag(registry, "team/web", "1.4.0", &tags(&["1.4.7", "1.5.0"]));
    registry.push("team/beta:1.9.0");
    retag(
        registry,
        "team/beta",
        "1.9.0",
        &tags(&["2.0.0-rc.1", "2.0.0-rc.2", "3.0.0-rc.1"]),
    );
    registry.push("team/worker:main-7");
    retag(
        registry,
        "team/worker",
        "main-7",
        &tags(&["main-9", "main-12"]),
    );
    registry.inspect_digest("team/worker:main-12")
}

fn manifests(host: &str) -> Vec<(String, String)> {
    vec![
        (
            "apps/api/values.yaml".into(),
            format!("image:\n  repository: {host}/team/api\n  tag: \"1.0.0\"   # CI\n"),
        ),
        (
            "apps/web/deploy.yaml".into(),
            format!("spec:\n  containers:\n    - name: web\n      image: {host}/team/web:1.4.0\n"),
        ),
        (
            "apps/beta/deploy.yaml".into(),
            format!("spec:\n  containers:\n    - name: beta\n      image: {host}/team/beta:1.9.0\n"),
        ),
        (
            "apps/worker/deploy.yaml".into(),
            format!("spec:\n  containers:\n    - name: worker\n      image: {host}/team/worker:main-7\n"),
        ),
        ("apps/web/Chart.yaml".into(), "name: web\nversion: 1.0.0\nappVersion: 1.4.0\n".into()),
    ]
}

fn config(host: &str, url: &str, extra: &str) -> String {
    format!(
        "repo: {url}\n\
         images:\n\
         \x20 - name: {host}/team/api\n\
         \x20   policy: semver:^1\n\
         \x20   in: [apps/api]\n\
         \x20 - name: {host}/team/web\n\
         \x20   policy: semver:~1.4\n\
         \x20   in: [apps/web]\n\
         \x20   set:\n\
         \x20     - file: apps/web/Chart.yaml\n\
         \x20       path: appVersion\n\
         \x20   group: front\n\
         \x20 - name: {host}/team/beta\n\
         \x20   policy: semver:>=2.0.0-rc.0, <3\n\
         \x20   in: [apps/beta]\n\
         \x20   group: front\n\
         \x20 - name: {host}/team/worker\n\
         \x20   policy: regex:^main-(\\d+)$\n\
         \x20   tag_sort: numeric\n\
         \x20   pin_digest: true\n\
         \x20   in: [apps/worker]\n\
         {extra}"
    )
}

struct Fleet {
    registry: Registry,
    dir: tempfile::TempDir,
    repo: Repo,
    url: String,
}

fn fleet(extra: &str) -> Option<Fleet> {
    let registry = Registry::start(Auth::Anonymous)?;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifests.git");
    let repo = seed(&path, &manifests(&registry.host()));
    let url = path.to_string_lossy().into_owned();
    std::fs::write(
        dir.path().join(".tagbump.yaml"),
        config(&registry.host(), &url, extra),
    )
    .unwrap();
    Some(Fleet {
        registry,
        dir,
        repo,
        url,
    })
}

fn run(f: &Fleet, args: &[&str]) -> (Update, serde_json::Value) {
    run_with(f, args, &[])
}

fn run_with(f: &Fleet, args: &[&str], env: &[(&str, &str)]) -> (Update, serde_json::Value) {
    let mut all = vec!["--output", "json"];
    all.extend_from_slice(args);
    let u = update_in(f.dir.path(), &all, env);
    let json = serde_json::from_str(&u.run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", u.run.stdout, u.run.stderr));
    (u, json)
}

fn row<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"].as_str().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("no row {name}: {json}"))
}

/// The flags that open merge requests on the fake GitLab `forge`.
fn gitlab_flags(forge: &crate::fake_forge::FakeForge) -> Vec<String> {
    let api = format!("{}/api/v4", forge.url);
    [
        "--forge",
        "gitlab",
        "--api-url",
        &api,
        "--project",
        "team/manifests",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn a_fleet_with_mixed_policies_lands_in_one_commit() {
    let Some(f) = fleet("") else { return };
    let host = f.registry.host();
    let digest = push_fleet(&f.registry);
    let before = f.repo.git(&["rev-list", "--count", "main"]);
    let setup = f.registry.requests().len();

    let (u, json) = run(&f, &["--direct"]);
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert!(u.leftovers.is_empty(), "{:?}", u.leftovers);
    let count: u32 = f
        .repo
        .git(&["rev-list", "--count", "main"])
        .parse()
        .unwrap();
    assert_eq!(count, before.parse::<u32>().unwrap() + 1, "one commit");
    assert_eq!(
        f.repo.show("main:apps/api/values.yaml"),
        format!("image:\n  repository: {host}/team/api\n  tag: \"1.3.1\"   # CI\n")
    );
    assert!(f
        .repo
        .show("main:apps/web/deploy.yaml")
        .contains(&format!("image: {host}/team/web:1.4.7\n")));
    assert_eq!(
        f.repo.show("main:apps/web/Chart.yaml"),
        "name: web\nversion: 1.0.0\nappVersion: 1.4.7\n"
    );
    assert!(f
        .repo
        .show("main:apps/beta/deploy.yaml")
        .contains(&format!("image: {host}/team/beta:2.0.0-rc.2\n")));
    assert!(f
        .repo
        .show("main:apps/worker/deploy.yaml")
        .contains(&format!("image: {host}/team/worker:main-12@{digest}\n")));
    for (name, new) in [
        ("api", "1.3.1"),
        ("web", "1.4.7"),
        ("beta", "2.0.0-rc.2"),
        ("worker", "main-12"),
    ] {
        let r = row(&json, name);
        assert_eq!(r["new"], new, "{r}");
        assert_eq!(r["outcome"], "pushed", "{r}");
    }
    assert_eq!(row(&json, "api")["old"], serde_json::json!(["1.0.0"]));
    assert_eq!(row(&json, "worker")["digest"], digest);
    assert_eq!(json["failed"], 0);

    // Each repository's tag list was read once; a HEAD only for the pinned one.
    let requests = f.registry.requests()[setup..].to_vec();
    for name in ["api", "web", "beta", "worker"] {
        let tags = format!("GET /v2/team/{name}/tags/list");
        assert_eq!(
            requests.iter().filter(|r| r.starts_with(&tags)).count(),
            1,
            "{name}: {requests:?}"
        );
    }
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with("HEAD "))
            .collect::<Vec<_>>(),
        ["HEAD /v2/team/worker/manifests/main-12"]
    );
    assert_eq!(requests.len(), 5, "{requests:?}");
    assert_eq!(json["registry_requests"], 5);

    // Run again: every file already holds its tag; nothing is pushed.
    let head = f.repo.git(&["rev-parse", "main"]);
    let (u, json) = run(&f, &["--direct"]);
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(f.repo.git(&["rev-parse", "main"]), head);
    assert_eq!(row(&json, "api")["outcome"], "unchanged");
}

#[test]
fn one_image_the_registry_cannot_answer_for_leaves_the_others_landed() {
    let Some(f) = fleet("") else { return };
    push_fleet(&f.registry);
    // A fifth image the registry has never heard of, and a sixth it has
    // that no file of the repository references.
    let host = f.registry.host();
    f.registry.push("team/orphan:1.0.0");
    let path = f.dir.path().join(".tagbump.yaml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "  - name: {host}/team/gone\n    policy: semver:^1\n    in: [apps/gone]\n\
         \x20 - name: {host}/team/orphan\n    policy: semver:^1\n    in: [apps/api]\n\
         \x20 - name: 127.0.0.1:1/team/down\n    policy: semver:^1\n    in: [apps/down]\n"
    ));
    std::fs::write(&path, text).unwrap();

    let (u, json) = run(&f, &["--direct"]);
    assert_eq!(u.run.code, 11, "{}", u.run.stderr);
    let orphan = row(&json, "orphan");
    assert_eq!(orphan["outcome"], "failed");
    assert!(
        orphan["reason"].as_str().unwrap().starts_with(&format!(
            "no reference to `{host}/team/orphan` in `apps/api`"
        )),
        "{orphan}"
    );
    assert!(u.leftovers.is_empty(), "{:?}", u.leftovers);
    let gone = row(&json, "gone");
    assert_eq!(gone["outcome"], "failed");
    assert!(
        gone["reason"].as_str().unwrap().contains("team/gone"),
        "{gone}"
    );
    let down = row(&json, "down");
    assert_eq!(down["outcome"], "failed");
    assert!(
        down["reason"]
            .as_str()
            .unwrap()
            .starts_with("registry GET http://127.0.0.1:1/v2/team/down/tags/list"),
        "{down}"
    );
    assert_eq!(json["failed"], 3);
    assert_eq!(row(&json, "api")["outcome"], "pushed");
    assert!(f
        .repo
        .show("main:apps/api/values.yaml")
        .contains("tag: \"1.3.1\""));
    assert!(
        u.run.stderr.contains("3 of 7 images failed: ") && u.run.stderr.contains("team/gone"),
        "{}",
        u.run.stderr
    );
}

#[test]
fn each_group_gets_one_review_branch_and_a_rerun_touches_none() {
    let Some(f) = fleet("") else { return };
    push_fleet(&f.registry);
    let forge = crate::fake_forge::FakeForge::start("glpat-fleet-token");
    let flags = gitlab_flags(&forge);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let env = [("GITLAB_TOKEN", "glpat-fleet-token")];
    let (u, json) = run_with(&f, &args, &env);
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    let branch = |name: &str| row(&json, name)["branch"].as_str().unwrap().to_string();
    // web and beta share the `front` group; api and worker have one each.
    assert_eq!(branch("web"), branch("beta"));
    assert_ne!(branch("api"), branch("worker"));
    assert_ne!(branch("api"), branch("web"));
    let heads = f
        .repo
        .git(&["for-each-ref", "--format=%(refname) %(objectname)"]);
    assert_eq!(
        heads.lines().count(),
        4,
        "main and three review branches: {heads}"
    );
    assert!(f
        .repo
        .show("main:apps/api/values.yaml")
        .contains("tag: \"1.0.0\""));
    let front = f
        .repo
        .show(&format!("{}:apps/beta/deploy.yaml", branch("beta")));
    assert!(front.contains(":2.0.0-rc.2\n"), "{front}");
    // One merge request per group, each row naming its group's.
    assert_eq!(forge.items().len(), 3, "{:?}", forge.items());
    let mr = |name: &str| {
        row(&json, name)["change_request"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(mr("web"), mr("beta"));
    assert_ne!(mr("api"), mr("worker"));
    let sent = forge.requests().len();

    let (u, json) = run_with(&f, &args, &env);
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(
        f.repo
            .git(&["for-each-ref", "--format=%(refname) %(objectname)"]),
        heads,
        "a re-run moved a branch"
    );
    for name in ["api", "web", "beta", "worker"] {
        assert_eq!(row(&json, name)["outcome"], "already-on-branch", "{json}");
    }
    // The merge requests were looked at, not changed.
    assert_eq!(forge.items().len(), 3);
    let writes: Vec<String> = forge.requests()[sent..]
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
    let _ = &f.url;
}

#[test]
fn only_runs_the_named_image_and_unknown_names_are_refused() {
    let Some(f) = fleet("") else { return };
    let host = f.registry.host();
    push_fleet(&f.registry);
    let only = format!("{host}/team/api");
    let (u, json) = run(&f, &["--direct", "--only", &only]);
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(json["images"].as_array().unwrap().len(), 1);
    assert!(f
        .repo
        .show("main:apps/web/deploy.yaml")
        .contains(":1.4.0\n"));

    let u = update_in(f.dir.path(), &["--direct", "--only", "nope"], &[]);
    assert_eq!(u.run.code, 2, "{}", u.run.stderr);
    assert!(u.run.stderr.contains("--only nope: "), "{}", u.run.stderr);
}

// Flux's own configuration, read from the manifest repository as it is:
// the marked places are written (and only those), with the policy's choice.
#[test]
fn flux_policies_and_markers_in_the_repository_are_followed() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let host = registry.host();
    push_fleet(&registry);
    let digest = registry.inspect_digest("team/worker:main-12");
    let flux = format!(
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata:\n  name: api\n  \
         namespace: flux-system\nspec:\n  image: {host}/team/api\n  interval: 1h\n---\n\
         apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata:\n  name: api\n  \
         namespace: flux-system\nspec:\n  imageRepositoryRef:\n    name: api\n  policy:\n    \
         semver:\n      range: '>=1.0.0 <2.0.0'\n---\n\
         apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\nmetadata:\n  name: worker\n  \
         namespace: flux-system\nspec:\n  image: {host}/team/worker\n---\n\
         apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\nmetadata:\n  name: worker\n  \
         namespace: flux-system\nspec:\n  imageRepositoryRef:\n    name: worker\n  \
         digestReflectionPolicy: Always\n  filterTags:\n    pattern: '^main-(?P<n>[0-9]+)$'\n    \
         extract: '$n'\n  policy:\n    numerical:\n      order: asc\n"
    );
    let release = format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: api\nspec:\n  values:\n    \
         image:\n      repository: {host}/team/api # {{\"$imagepolicy\": \"flux-system:api:name\"}}\n      \
         tag: 1.0.0 # {{\"$imagepolicy\": \"flux-system:api:tag\"}}\n"
    );
    let worker = format!(
        "spec:\n  containers:\n    - name: worker\n      image: {host}/team/worker:main-7 # {{\"$imagepolicy\": \"flux-system:worker\"}}\n    \
         - name: other\n      image: {host}/team/api:1.0.0\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifests.git");
    let files = vec![
        ("clusters/prod/flux-image.yaml".to_string(), flux),
        ("apps/api/release.yaml".to_string(), release.clone()),
        ("apps/worker/deploy.yaml".to_string(), worker.clone()),
    ];
    let repo = seed(&path, &files);
    let url = path.to_string_lossy().into_owned();
    std::fs::write(
        dir.path().join(".tagbump.yaml"),
        format!("repo: {url}\nimages_from: [flux]\n"),
    )
    .unwrap();
    let u = update_in(dir.path(), &["--direct", "--output", "json"], &[]);
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    let json: serde_json::Value = serde_json::from_str(&u.run.stdout).unwrap();
    assert_eq!(json["images"].as_array().unwrap().len(), 2, "{json}");
    assert_eq!(
        repo.show("main:apps/api/release.yaml"),
        release.replace("tag: 1.0.0 #", "tag: 1.3.1 #")
    );
    // The marked worker line takes name:tag@digest; the unmarked api image
    // beside it is left alone (Flux writes only what a marker names).
    assert_eq!(
        repo.show("main:apps/worker/deploy.yaml"),
        worker.replace(
            "team/worker:main-7 #",
            &format!("team/worker:main-12@{digest} #")
        )
    );
}

// Argo CD Image Updater's own configuration: an ImageUpdater naming an
// Application by pattern, written back into the chart's values the
// Application renders, as Image Updater's git write-back would.
#[test]
fn image_updater_resources_in_the_repository_are_followed() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let host = registry.host();
    push_fleet(&registry);
    let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web-prod\n  \
               namespace: argocd\nspec:\n  source:\n    repoURL: https://example.com/manifests.git\n    \
               path: charts/web\n    helm:\n      valueFiles: [values.yaml]\n";
    let updater = format!(
        "apiVersion: argocd-image-updater.argoproj.io/v1alpha1\nkind: ImageUpdater\nmetadata:\n  \
         name: web\n  namespace: argocd\nspec:\n  writeBackConfig:\n    method: git\n    gitConfig:\n      \
         writeBackTarget: helmvalues\n  applicationRefs:\n    - namePattern: \"web-*\"\n      images:\n        \
         - alias: web\n          imageName: \"{host}/team/web:~1.4\"\n"
    );
    let values = format!("image:\n  name: {host}/team/web\n  tag: 1.4.0 # deployed\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifests.git");
    let files = vec![
        ("argocd/apps.yaml".to_string(), app.to_string()),
        ("argocd/updater.yaml".to_string(), updater),
        ("charts/web/values.yaml".to_string(), values.clone()),
    ];
    let repo = seed(&path, &files);
    let url = path.to_string_lossy().into_owned();
    std::fs::write(
        dir.path().join(".tagbump.yaml"),
        format!("repo: {url}\nimages_from: [argocd-image-updater]\n"),
    )
    .unwrap();
    let u = update_in(dir.path(), &["--direct", "--output", "json"], &[]);
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(
        repo.show("main:charts/web/values.yaml"),
        values.replace("tag: 1.4.0", "tag: 1.4.7")
    );
}

// Through GitHub's API instead of a clone: one API session for the whole
// fleet, one commit with --direct; and a dry run pushes nothing.
#[test]
fn a_fleet_through_the_api_and_a_dry_run() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let host = registry.host();
    push_fleet(&registry);
    let dir = tempfile::tempdir().unwrap();
    let repo = seed(&dir.path().join("deploy.git"), &manifests(&host));
    let token = "ghp_FLEETAPITOKEN0123456789";
    let fake = crate::fake_repo_api::FakeRepoApi::github(&repo.path, token);
    let url = "https://github.example.com/acme/deploy.git";
    std::fs::write(dir.path().join(".tagbump.yaml"), config(&host, url, "")).unwrap();
    let args = |extra: &'static [&'static str]| {
        let mut all = vec![
            "--forge",
            "github",
            "--api-url",
            fake.url.as_str(),
            "--via",
            "api",
            "--direct",
            "--output",
            "json",
        ];
        all.extend_from_slice(extra);
        all
    };
    let env = [("GITHUB_TOKEN", token)];
    let head = repo.git(&["rev-parse", "main"]);

    let u = update_in(dir.path(), &args(&["--dry-run"]), &env);
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    let json: serde_json::Value = serde_json::from_str(&u.run.stdout).unwrap();
    assert_eq!(row(&json, "api")["outcome"], "dry-run");
    assert_eq!(repo.git(&["rev-parse", "main"]), head, "a dry run pushed");

    let u = update_in(dir.path(), &args(&[]), &env);
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert!(!u.run.stderr.contains(token) && !u.run.stdout.contains(token));
    assert_eq!(
        repo.git(&["rev-list", "--count", &format!("{head}..main")]),
        "1"
    );
    assert!(repo
        .show("main:apps/api/values.yaml")
        .contains("tag: \"1.3.1\""));
    assert!(repo
        .show("main:apps/beta/deploy.yaml")
        .contains(":2.0.0-rc.2\n"));
}

// Flags that mean something else in a fleet run are refused before the
// registry, never ignored; --dotenv carries the fleet's outcome.
#[test]
fn flags_a_fleet_cannot_honour_are_refused_and_dotenv_is_written() {
    let Some(f) = fleet("") else { return };
    push_fleet(&f.registry);
    for (args, says) in [
        (
            vec!["--tag-policy", "semver:^2"],
            "error: --tag-policy and --tag-sort are per image in a fleet run",
        ),
        (
            vec!["--branch", "release"],
            "error: --branch names one review branch, and this fleet has 3 groups",
        ),
        (vec!["--in", "apps"], "error: --in only applies to --image"),
    ] {
        let u = update_in(f.dir.path(), &args, &[]);
        assert_eq!(u.run.code, 2, "{args:?}: {}", u.run.stderr);
        assert!(u.run.stderr.starts_with(says), "{args:?}: {}", u.run.stderr);
    }
    assert!(f
        .registry
        .requests()
        .iter()
        .all(|r| !r.contains("tags/list")));
    let dotenv = f.dir.path().join("out.env");
    let u = update_in(
        f.dir.path(),
        &["--direct", "--dotenv", dotenv.to_str().unwrap()],
        &[],
    );
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(
        std::fs::read_to_string(&dotenv).unwrap(),
        "TAGBUMP_CHANGED=true\nTAGBUMP_FAILED=0\n"
    );
}

// A merge request the forge refuses is that group's failure: its branch
// stands, the row says both, the other groups go on, and the run exits 11.
#[test]
fn a_refused_merge_request_is_a_rows_failure_not_the_runs() {
    let Some(f) = fleet("") else { return };
    push_fleet(&f.registry);
    let forge = crate::fake_forge::FakeForge::start("glpat-right-token");
    let flags = gitlab_flags(&forge);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (u, json) = run_with(&f, &args, &[("GITLAB_TOKEN", "glpat-wrong-token")]);
    assert_eq!(u.run.code, 11, "{}", u.run.stderr);
    for name in ["api", "web", "beta", "worker"] {
        let r = row(&json, name);
        assert_eq!(r["outcome"], "failed", "{r}");
        let reason = r["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("pushed to `tagbump/")
                && reason.contains("but the merge request failed"),
            "{reason}"
        );
    }
    assert!(
        !u.run.stdout.contains("glpat-wrong-token") && !u.run.stderr.contains("glpat-wrong-token")
    );
    let heads = f.repo.git(&["for-each-ref", "--format=%(refname)"]);
    assert_eq!(heads.lines().count(), 4, "the branches stand: {heads}");
}
