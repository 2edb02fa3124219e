//! Issue #13: `--via api` — reading and committing through GitHub's and
//! GitLab's APIs, no clone — against stateful fakes backed by a real bare repository
//! (`fake_repo_api.rs`); results are inspected with the git CLI.

use crate::fake_repo_api::FakeRepoApi;
use crate::pipeline::{assert_failed, files, succeeded, update, Update};
use crate::servers::{seed, HttpServer, Repo};

const TOKEN: &str = "ghp_VIAAPITOKEN0123456789";
const REPO: &str = "https://github.example.com/acme/deploy.git";

struct Setup {
    repo: Repo,
    fake: FakeRepoApi,
    gitlab: bool,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let repo = seed(&dir.path().join("deploy.git"), &files());
    let fake = FakeRepoApi::github(&repo.path, TOKEN);
    Setup {
        repo,
        fake,
        gitlab: false,
        _dir: dir,
    }
}

impl Setup {
    /// A run against whichever forge this fake speaks.
    fn run_any(&self, extra: &[&str]) -> Update {
        if self.gitlab {
            self.gitlab(extra)
        } else {
            self.run(extra)
        }
    }

    fn run(&self, extra: &[&str]) -> Update {
        let mut args = vec![
            "--repo",
            REPO,
            "--forge",
            "github",
            "--api-url",
            &self.fake.url,
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        update(&args, &[("GITHUB_TOKEN", TOKEN)])
    }

    /// The requests since `from`.
    fn since(&self, from: usize) -> Vec<String> {
        self.fake.requests()[from..].to_vec()
    }
}

/// Someone else's commit on `branch` (no tagbump trailer).
fn commit_by_hand(repo: &Repo, branch: &str) {
    let tip = repo.git(&["rev-parse", branch]);
    let tree = repo.git(&["rev-parse", &format!("{branch}^{{tree}}")]);
    let human = repo.git(&[
        "-c",
        "user.name=Dev",
        "-c",
        "user.email=dev@example.com",
        "commit-tree",
        &tree,
        "-p",
        &tip,
        "-m",
        "manual fix",
    ]);
    repo.git(&["update-ref", &format!("refs/heads/{branch}"), &human]);
}

/// Someone else's commit on the review branch `branch`: the next run is
/// refused (exit 8), nothing overwritten.
fn refuses_a_branch_with_foreign_commits(s: &Setup, branch: &str) {
    commit_by_hand(&s.repo, branch);
    let refs = s.repo.git(&["for-each-ref"]);
    let u = s.run_any(&[
        "--image",
        "registry.example.com/team/app:1.4.4",
        "--in",
        "apps",
    ]);
    assert_failed(
        &u,
        8,
        "has commits tagbump did not make; not overwriting it",
        &s.repo,
        &refs,
    );
}

fn json(u: &Update) -> serde_json::Value {
    serde_json::from_str(&succeeded(u).run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", u.run.stdout))
}

// A `--set` on the base: three requests (the tips, the file, the commit),
// a commit GitHub made (its web-flow author), and nothing the second time.
#[test]
fn a_direct_set_is_three_requests() {
    let s = setup();
    let u = s.run(&["--set", "apps/app/values.yaml:replicas=3", "--direct"]);
    let report = json(&u);
    assert_eq!(report["via"], "api");
    assert_eq!(report["operation"], "pushed");
    assert_eq!(
        s.since(0),
        [
            "GraphQL TagbumpTips",
            "GraphQL TagbumpFiles",
            "GraphQL TagbumpCommit"
        ]
    );
    assert!(s
        .repo
        .show("main:apps/app/values.yaml")
        .contains("replicas: 3\n"));
    assert_eq!(
        s.repo.git(&["log", "-1", "--format=%an", "main"]),
        "web-flow"
    );
    assert_eq!(
        report["commit"],
        s.repo.git(&["rev-parse", "main"]).as_str()
    );
    assert!(
        u.run.stderr.contains("through GitHub's API"),
        "{}",
        u.run.stderr
    );
    assert!(s.repo.git(&["fsck", "--strict"]).is_empty());

    let before = s.fake.requests().len();
    let again = s.run(&["--set", "apps/app/values.yaml:replicas=3", "--direct"]);
    assert_eq!(json(&again)["operation"], "unchanged");
    assert_eq!(
        s.since(before),
        ["GraphQL TagbumpTips", "GraphQL TagbumpFiles"]
    );
    assert_eq!(s.repo.count("main"), 2);
}

// An image scan opens a review branch and its pull request; the same run
// again finds the branch holding the change; a newer tag resets it.
#[test]
fn a_review_branch_through_the_api() {
    let s = setup();
    let image = "registry.example.com/team/app:1.4.2";
    let report = json(&s.run(&["--image", image, "--in", "apps"]));
    let branch = report["branch"].as_str().unwrap().to_string();
    assert_eq!(report["via"], "api");
    assert_eq!(report["change_request"]["operation"], "created");
    assert_eq!(
        s.fake.forge.lock().unwrap().items.len(),
        1,
        "one pull request"
    );
    assert!(s
        .repo
        .show(&format!("{branch}:apps/app/values.yaml"))
        .contains("tag: \"1.4.2\""));
    assert_eq!(
        s.repo.git(&["rev-parse", &format!("{branch}~1")]),
        s.repo.git(&["rev-parse", "main"])
    );

    let before = s.fake.requests().len();
    let again = json(&s.run(&["--image", image, "--in", "apps"]));
    assert_eq!(again["operation"], "unchanged");
    assert_eq!(again["commit"], report["commit"]);
    let sent = s.since(before);
    assert!(
        !sent
            .iter()
            .any(|r| r.contains("TagbumpCommit") || r.contains("Reset")),
        "{sent:?}"
    );

    let newer = json(&s.run(&[
        "--image",
        "registry.example.com/team/app:1.4.3",
        "--in",
        "apps",
    ]));
    assert_eq!(newer["operation"], "pushed");
    assert_eq!(
        s.repo.count(&branch),
        s.repo.count("main") + 1,
        "one commit on the base"
    );

    refuses_a_branch_with_foreign_commits(&s, &branch);
}

// Writers racing on the base all land, on both forges: a stale head (or
// file) is a retry on the new tip, edits recomputed.
#[test]
fn concurrent_writers_through_the_apis_all_land() {
    for gitlab in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let texts: Vec<(String, String)> = (0..4)
            .map(|i| {
                (
                    format!("apps/svc-{i}/values.yaml"),
                    format!("replicas: {i}\n"),
                )
            })
            .collect();
        let repo = seed(&dir.path().join("deploy.git"), &texts);
        let (fake, repo_url, api, var) = if gitlab {
            let fake = FakeRepoApi::gitlab(&repo.path, TOKEN);
            let api = format!("{}/api/v4", fake.url);
            (fake, GITLAB_REPO, api, "GITLAB_TOKEN")
        } else {
            let fake = FakeRepoApi::github(&repo.path, TOKEN);
            let api = fake.url.clone();
            (fake, REPO, api, "GITHUB_TOKEN")
        };
        let forge = if gitlab { "gitlab" } else { "github" };
        let runs: Vec<Update> = (0..4)
            .map(|i| {
                let api = api.clone();
                std::thread::spawn(move || {
                    let set = format!("apps/svc-{i}/values.yaml:replicas={}", i + 10);
                    update(
                        &[
                            "--repo",
                            repo_url,
                            "--forge",
                            forge,
                            "--api-url",
                            &api,
                            "--set",
                            &set,
                            "--direct",
                            "--attempts",
                            "30",
                        ],
                        &[(var, TOKEN)],
                    )
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        for u in &runs {
            succeeded(u);
        }
        assert_eq!(repo.count("main"), 5, "{forge}");
        for i in 0..4 {
            assert_eq!(
                repo.show(&format!("main:apps/svc-{i}/values.yaml")),
                format!("replicas: {}\n", i + 10)
            );
        }
        drop(fake);
    }
}

// The head moves between the read and the commit: STALE_DATA, then a new
// attempt on the new tip that keeps the other change.
#[test]
fn a_head_moving_mid_run_is_retried_on_the_new_tip() {
    let s = setup();
    s.fake.state.lock().unwrap().interfere =
        Some(("README.md".into(), "changed meanwhile\n".into()));
    let u = s.run(&["--set", "apps/app/values.yaml:replicas=5", "--direct"]);
    assert_eq!(json(&u)["attempts"], 2);
    assert!(
        u.run.stderr.contains("moved since it was read"),
        "{}",
        u.run.stderr
    );
    assert_eq!(s.repo.show("main:README.md"), "changed meanwhile\n");
    assert!(s
        .repo
        .show("main:apps/app/values.yaml")
        .contains("replicas: 5\n"));
}

// Branch protection (a ruleset) declines: exit 9, nothing written.
#[test]
fn a_protected_base_declines_the_commit() {
    let s = setup();
    s.fake.state.lock().unwrap().protected = Some("main".into());
    let refs = s.repo.git(&["for-each-ref"]);
    let u = s.run(&["--set", "apps/app/values.yaml:replicas=3", "--direct"]);
    assert_failed(
        &u,
        9,
        "declined the commit to `main`: Repository rule violations found",
        &s.repo,
        &refs,
    );
}

// `--via auto` on a token the API refuses (a deploy token, say): a note,
// then git does the job.
#[test]
fn auto_falls_back_to_git_when_the_api_refuses() {
    let Some(server) = HttpServer::start(TOKEN) else {
        return;
    };
    let (repo, _, https) = server.repo("acme/deploy", &files());
    let fake = FakeRepoApi::github(&repo.path, TOKEN);
    fake.state.lock().unwrap().refuse_graphql = Some(403);
    let ca = server.ca.to_string_lossy().into_owned();
    let u = update(
        &[
            "--repo",
            &https,
            "--forge",
            "github",
            "--api-url",
            &fake.url,
            "--set",
            "apps/app/values.yaml:replicas=4",
            "--direct",
            "--output",
            "json",
        ],
        &[("GITHUB_TOKEN", TOKEN), ("GIT_SSL_CAINFO", &ca)],
    );
    let report = json(&u);
    assert_eq!(report["via"], "git");
    assert!(
        u.run
            .stderr
            .contains("note: GitHub's API refused the first read"),
        "{}",
        u.run.stderr
    );
    assert!(repo
        .show("main:apps/app/values.yaml")
        .contains("replicas: 4\n"));
    assert!(!u.run.stderr.contains(TOKEN) && !u.run.stdout.contains(TOKEN));
    // `--via api` asked for explicitly does not fall back.
    let refs = repo.git(&["for-each-ref"]);
    let u = update(
        &[
            "--repo",
            &https,
            "--forge",
            "github",
            "--api-url",
            &fake.url,
            "--set",
            "apps/app/values.yaml:replicas=5",
            "--direct",
            "--via",
            "api",
        ],
        &[("GITHUB_TOKEN", TOKEN), ("GIT_SSL_CAINFO", &ca)],
    );
    assert_failed(
        &u,
        6,
        "error: GitHub GraphQL TagbumpTips: HTTP 403: Resource not accessible by integration",
        &repo,
        &refs,
    );
    // SSH URLs and plain git servers stay on git; `--via api` says why not.
    let u = update(
        &[
            "--repo",
            "ssh://git@127.0.0.1:1/acme/deploy.git",
            "--set",
            "a.yaml:x=1",
            "--via",
            "api",
        ],
        &[("GITHUB_TOKEN", TOKEN)],
    );
    assert_eq!(u.run.code, 2, "{}", u.run.stderr);
    assert!(
        u.run.stderr.contains(
            "--via api needs an https:// (or http://) GitHub, GitLab or Gitea repository"
        ),
        "{}",
        u.run.stderr
    );
}

/// By hand: `cargo test --release --test it -- --ignored api_against_a_clone --nocapture`
/// (FILES=8000 COMMITS=20000 by default, as `bench/pipeline.sh`). For a
/// `--set`, a scan of `--in DIR` and a scan of the whole repository: the
/// requests, bytes and wall time of `--via api` against each forge's fake
/// (on loopback: no internet round trips), what `--via auto` chooses, and
/// the same run through git over HTTPS (lighttpd + git http-backend),
/// beside the bytes a depth-1 clone transfers.
#[test]
#[ignore]
fn api_against_a_clone_on_a_large_repo() {
    use std::process::{Command, Stdio};
    use std::time::Instant;
    let Some(server) = HttpServer::start(TOKEN) else {
        return;
    };
    let files: usize = std::env::var("FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8000);
    let commits: usize = std::env::var("COMMITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20000);
    let bare = server.dir.path().join("repos/acme/large.git");
    std::fs::create_dir_all(&bare).unwrap();
    crate::servers::run(
        Command::new("git")
            .args(["init", "-q", "--bare", "--initial-branch=main"])
            .arg(&bare),
    );
    let generator = format!(
        r##"import sys
files, commits = {files}, {commits}
out = sys.stdout.buffer
def data(text):
    b = text.encode(); out.write(b"data %d\n" % len(b)); out.write(b); out.write(b"\n")
def values(i, tag):
    return (f"# Values for svc-{{i}}\nreplicaCount: 2\nimage:\n  repository: registry.example.com/team/svc-{{i}}\n"
            f"  tag: \"{{tag}}\"   # written by CI\n  pullPolicy: IfNotPresent\n")
def deploy(i):
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{{i}}\nspec:\n  template:\n    spec:\n"
            f"      containers:\n        - name: app\n          image: registry.example.com/team/svc-{{i}}:1.0.0\n")
services = files // 2
t = 1700000000
out.write(b"commit refs/heads/main\nmark :1\ncommitter seed <seed@example.test> %d +0000\n" % t)
data("initial manifests")
for i in range(services):
    out.write(f"M 100644 inline apps/svc-{{i}}/values.yaml\n".encode()); data(values(i, "1.0.0"))
    out.write(f"M 100644 inline apps/svc-{{i}}/deployment.yaml\n".encode()); data(deploy(i))
for n in range(1, commits):
    i = (n * 7919) % services
    out.write(b"commit refs/heads/main\ncommitter ci <ci@example.test> %d +0000\n" % (t + n))
    data(f"Update svc-{{i}} to 1.0.{{n}}")
    if n == 1:
        out.write(b"from :1\n")
    out.write(f"M 100644 inline apps/svc-{{i}}/values.yaml\n".encode()); data(values(i, f"1.0.{{n}}"))
"##
    );
    let mut python = Command::new("python3")
        .args(["-c", &generator])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = Command::new("git")
        .arg("-C")
        .arg(&bare)
        .args(["fast-import", "--quiet"])
        .stdin(python.stdout.take().unwrap())
        .status()
        .unwrap();
    assert!(status.success() && python.wait().unwrap().success());
    crate::servers::run(Command::new("git").arg("-C").arg(&bare).args(["gc", "-q"]));
    // What a depth-1 fetch of `main` transfers: the tip commit and its tree.
    let mut objects = Command::new("git")
        .arg("-C")
        .arg(&bare)
        .args(["rev-list", "--objects", "-n", "1", "main"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pack = Command::new("git")
        .arg("-C")
        .arg(&bare)
        .args(["pack-objects", "--stdout", "-q"])
        .stdin(objects.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(objects.wait().unwrap().success());
    let clone_bytes = pack.stdout.len();
    let https = format!("https://127.0.0.1:{}/acme/large.git", server.https_port);
    let ca = server.ca.to_string_lossy().into_owned();
    println!("repository: {files} files, {commits} commits; a depth-1 clone transfers {clone_bytes} bytes");
    println!("| run | forge | `--via api`: requests | bytes, both ways | share of the clone's bytes | wall time | `--via auto` chooses | `--via git` (HTTPS) wall time |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut n = 0;
    for forge in ["github", "gitlab", "gitea"] {
        let (fake, api_url, var) = match forge {
            "gitlab" => {
                let fake = FakeRepoApi::gitlab(&bare, TOKEN);
                let api = format!("{}/api/v4", fake.url);
                (fake, api, "GITLAB_TOKEN")
            }
            "gitea" => {
                let fake = FakeRepoApi::gitea(&bare, TOKEN);
                let api = format!("{}/api/v1", fake.url);
                (fake, api, "GITEA_TOKEN")
            }
            _ => {
                let fake = FakeRepoApi::github(&bare, TOKEN);
                let api = fake.url.clone();
                (fake, api, "GITHUB_TOKEN")
            }
        };
        let run = |via: &str, target: &[String]| {
            let (requests, bytes, bytes_in) = {
                let s = fake.state.lock().unwrap();
                (s.requests.len(), s.bytes, s.bytes_in)
            };
            let mut all: Vec<&str> = vec![
                "--repo",
                &https,
                "--project",
                "acme/large",
                "--forge",
                forge,
                "--api-url",
                &api_url,
                "--direct",
                "--via",
                via,
                "--output",
                "json",
            ];
            all.extend(target.iter().map(String::as_str));
            let started = Instant::now();
            let u = update(&all, &[(var, TOKEN), ("GIT_SSL_CAINFO", &ca)]);
            let took = started.elapsed();
            let report = json(&u);
            let s = fake.state.lock().unwrap();
            (
                s.requests.len() - requests,
                s.bytes - bytes + s.bytes_in - bytes_in,
                took,
                report["via"].as_str().unwrap_or_default().to_string(),
            )
        };
        for (name, mut target) in [
            ("`--set` on one file", vec!["--set".to_string()]),
            ("`--image --in apps/svc-11`", vec!["--image".into()]),
            ("`--image`, whole repository", vec!["--image".into()]),
        ] {
            let mut next = |target: &mut Vec<String>| {
                n += 1;
                target.truncate(1);
                match name {
                    "`--set` on one file" => {
                        target.push(format!("apps/svc-7/values.yaml:image.tag=2.0.{n}"))
                    }
                    "`--image --in apps/svc-11`" => target.extend([
                        format!("registry.example.com/team/svc-11:2.0.{n}"),
                        "--in".into(),
                        "apps/svc-11".into(),
                    ]),
                    _ => target.push(format!("registry.example.com/team/svc-13:2.0.{n}")),
                }
            };
            next(&mut target);
            let (requests, bytes, took, _) = run("api", &target);
            next(&mut target);
            let (_, _, _, chosen) = run("auto", &target);
            next(&mut target);
            let (_, _, git_took, _) = run("git", &target);
            println!(
                "| {name} | {forge} | {requests} | {bytes} | {:.2} % | {} ms | {chosen} | {} ms |",
                bytes as f64 * 100.0 / clone_bytes as f64,
                took.as_millis(),
                git_took.as_millis()
            );
        }
    }
}

const GITLAB_REPO: &str = "https://gitlab.example.com/acme/deploy.git";

fn gitlab_setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let repo = seed(&dir.path().join("deploy.git"), &files());
    let fake = FakeRepoApi::gitlab(&repo.path, TOKEN);
    Setup {
        repo,
        fake,
        gitlab: true,
        _dir: dir,
    }
}

impl Setup {
    fn gitlab(&self, extra: &[&str]) -> Update {
        let api = format!("{}/api/v4", self.fake.url);
        let mut args = vec![
            "--repo",
            GITLAB_REPO,
            "--forge",
            "gitlab",
            "--api-url",
            &api,
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        update(&args, &[("GITLAB_TOKEN", TOKEN)])
    }
}

// GitLab: a `--set` on the base is five requests (the project's default
// branch, its tip, the file's mode and text through GraphQL — a symlink is
// refused —, its last commit for the compare-and-swap, the commit), then
// nothing to do.
#[test]
fn gitlab_direct_set_through_the_api() {
    let s = gitlab_setup();
    let u = s.gitlab(&["--set", "apps/app/values.yaml:replicas=3", "--direct"]);
    let report = json(&u);
    assert_eq!(report["via"], "api");
    assert_eq!(
        s.since(0),
        [
            "GET project",
            "GET repository/branches",
            "GraphQL TagbumpBlobs",
            "GET repository/files",
            "POST repository/commits"
        ]
    );
    assert!(s
        .repo
        .show("main:apps/app/values.yaml")
        .contains("replicas: 3\n"));
    assert_eq!(
        report["commit"],
        s.repo.git(&["rev-parse", "main"]).as_str()
    );
    assert!(
        u.run.stderr.contains("through GitLab's API"),
        "{}",
        u.run.stderr
    );
    let again = s.gitlab(&["--set", "apps/app/values.yaml:replicas=3", "--direct"]);
    assert_eq!(json(&again)["operation"], "unchanged");
    assert_eq!(s.repo.count("main"), 2);
}

// GitLab review branch: created from the base with `start_sha`, its merge
// request opened; the same change again is found on the branch; a newer
// tag resets it; a branch with someone else's commit is refused.
#[test]
fn gitlab_review_branch_through_the_api() {
    let s = gitlab_setup();
    let report = json(&s.gitlab(&[
        "--image",
        "registry.example.com/team/app:1.4.2",
        "--in",
        "apps",
    ]));
    let branch = report["branch"].as_str().unwrap().to_string();
    // The scan's files in one GraphQL query; REST only for the changed
    // file's last commit.
    let sent = s.since(0);
    assert!(
        sent.contains(&"GraphQL TagbumpBlobs".to_string()),
        "{sent:?}"
    );
    assert_eq!(
        sent.iter().filter(|r| *r == "GET repository/files").count(),
        1,
        "{sent:?}"
    );
    assert_eq!(
        (report["via"].as_str(), report["operation"].as_str()),
        (Some("api"), Some("pushed"))
    );
    assert_eq!(report["change_request"]["operation"], "created");
    assert_eq!(
        s.repo.git(&["rev-parse", &format!("{branch}~1")]),
        s.repo.git(&["rev-parse", "main"])
    );
    let again = json(&s.gitlab(&[
        "--image",
        "registry.example.com/team/app:1.4.2",
        "--in",
        "apps",
    ]));
    assert_eq!(
        (again["operation"].as_str(), &again["commit"]),
        (Some("unchanged"), &report["commit"])
    );
    let newer = json(&s.gitlab(&[
        "--image",
        "registry.example.com/team/app:1.4.3",
        "--in",
        "apps",
    ]));
    assert_eq!(newer["operation"], "pushed");
    assert_eq!(s.repo.count(&branch), s.repo.count("main") + 1);
    assert!(s
        .repo
        .show(&format!("{branch}:apps/app/values.yaml"))
        .contains("tag: \"1.4.3\""));

    refuses_a_branch_with_foreign_commits(&s, &branch);
}

// GitLab: a file changed since it was read is refused by `last_commit_id`
// and the run tries again on the new tip, keeping the other change; a
// protected branch declines (exit 9).
#[test]
fn gitlab_changed_files_are_retried_and_protection_declines() {
    let s = gitlab_setup();
    s.fake.state.lock().unwrap().interfere = Some((
        "apps/app/values.yaml".into(),
        "replicas: 2\nextra: kept\n".into(),
    ));
    let u = s.gitlab(&["--set", "apps/app/values.yaml:replicas=7", "--direct"]);
    assert_eq!(json(&u)["attempts"], 2);
    assert!(
        u.run
            .stderr
            .contains("has changed since you started editing it"),
        "{}",
        u.run.stderr
    );
    assert_eq!(
        s.repo.show("main:apps/app/values.yaml"),
        "replicas: 7\nextra: kept\n"
    );

    s.fake.state.lock().unwrap().protected = Some("main".into());
    let refs = s.repo.git(&["for-each-ref"]);
    let u = s.gitlab(&["--set", "apps/app/values.yaml:replicas=8", "--direct"]);
    assert_failed(
        &u,
        9,
        "declined the commit to `main`: 403 Forbidden - You are not allowed to push into this branch",
        &s.repo,
        &refs,
    );
}

// `--put` through both APIs: new and replaced files in the same commit.
#[test]
fn put_through_the_apis() {
    let local = tempfile::tempdir().unwrap();
    let rendered = local.path().join("manifest.yaml");
    std::fs::write(&rendered, "kind: List\nitems: []\n").unwrap();
    let put = format!("{}=apps/app/production/manifest.yaml", rendered.display());
    for s in [setup(), gitlab_setup()] {
        let args = [
            "--put",
            put.as_str(),
            "--set",
            "apps/app/values.yaml:replicas=3",
            "--direct",
        ];
        let u = s.run_any(&args);
        assert_eq!(json(&u)["via"], "api");
        assert_eq!(
            s.repo.show("main:apps/app/production/manifest.yaml"),
            "kind: List\nitems: []\n"
        );
        assert_eq!(
            s.repo
                .git(&["diff", "--name-only", "main~1", "main"])
                .lines()
                .count(),
            2
        );
        assert_eq!(json(&s.run_any(&args))["operation"], "unchanged");
    }
}

// `--in` naming one file scans that file, as it does through git; a path
// that is not there is "not found" (exit 4), nothing written.
#[test]
fn in_names_a_file_through_the_apis() {
    for s in [setup(), gitlab_setup()] {
        let image = ["--image", "registry.example.com/team/app:1.5.0", "--direct"];
        let u = s.run_any(&[&image[..], &["--in", "apps/app/values.yaml"]].concat());
        assert_eq!(json(&u)["via"], "api");
        assert!(s
            .repo
            .show("main:apps/app/values.yaml")
            .contains("tag: \"1.5.0\"   # written by CI\n"));
        let refs = s.repo.git(&["for-each-ref"]);
        let u = s.run_any(&[&image[..], &["--in", "apps/nope.yaml"]].concat());
        assert_failed(&u, 4, "`apps/nope.yaml` does not exist at ", &s.repo, &refs);
    }
}

// Issue #19, class 5: through the API the forge makes the commit, so the
// signing key is not used and the report says so (`signed` null), matching
// the pushed commit's header, on both forges.
#[test]
fn the_report_says_an_api_commit_is_not_signed_by_the_key() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("sign");
    crate::servers::run(
        std::process::Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "ci@example.com",
                "-f",
            ])
            .arg(&key),
    );
    let key = std::fs::read_to_string(&key).unwrap();
    for s in [setup(), gitlab_setup()] {
        let (repo_url, forge, api, token_var) = if s.gitlab {
            (
                GITLAB_REPO,
                "gitlab",
                format!("{}/api/v4", s.fake.url),
                "GITLAB_TOKEN",
            )
        } else {
            (REPO, "github", s.fake.url.clone(), "GITHUB_TOKEN")
        };
        let args = [
            "--repo",
            repo_url,
            "--forge",
            forge,
            "--api-url",
            &api,
            "--output",
            "json",
            "--via",
            "api",
            "--direct",
            "--set",
            "apps/app/values.yaml:replicas=3",
        ];
        let u = update(&args, &[(token_var, TOKEN), ("TAGBUMP_SIGNING_KEY", &key)]);
        let report = json(&u);
        assert_eq!(report["signed"], serde_json::Value::Null, "{forge}");
        assert_eq!(report["signing_key"], serde_json::Value::Null, "{forge}");
        let commit = s
            .repo
            .git(&["cat-file", "commit", report["commit"].as_str().unwrap()]);
        assert!(!commit.contains("gpgsig"), "{forge}: {commit}");
        assert!(
            u.run.stderr.contains("note: the signing key is not used"),
            "{forge}: {}",
            u.run.stderr
        );
    }
}

/// Commit a symlink `link` -> `to` on `main` of `repo`, as a developer would.
fn add_symlink(repo: &Repo, link: &str, to: &str) {
    use std::process::Command;
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_str().unwrap();
    crate::servers::run(
        Command::new("git")
            .args(["clone", "-q"])
            .arg(&repo.path)
            .arg(w),
    );
    std::os::unix::fs::symlink(to, work.path().join(link)).unwrap();
    crate::servers::run(Command::new("git").args(["-C", w, "add", link]));
    crate::servers::run(Command::new("git").args([
        "-C",
        w,
        "-c",
        "user.name=Dev",
        "-c",
        "user.email=dev@example.com",
        "commit",
        "-qm",
        "link",
    ]));
    crate::servers::run(Command::new("git").args(["-C", w, "push", "-q", "origin", "HEAD:main"]));
}

// Issue #19, class 7: a symlink in the repository is refused through both
// APIs as through git (exit 3, nothing written): `--set` does not parse the
// link's target path as YAML, `--put` does not replace the link with a
// file (forking the file it points to).
#[test]
fn a_symlink_is_refused_through_the_apis_as_through_git() {
    let local = tempfile::tempdir().unwrap();
    let rendered = local.path().join("manifest.yaml");
    std::fs::write(&rendered, "kind: List\nitems: []\n").unwrap();
    let put = format!("{}=apps/app/linked.yaml", rendered.display());
    let expected =
        "error: `apps/app/linked.yaml` is a symlink in the repository (to `values.yaml`)\n\
                    hint: tagbump edits files, not links: name the file it points to\n";
    let git_dir = tempfile::tempdir().unwrap();
    let git_repo = seed(&git_dir.path().join("m.git"), &files());
    add_symlink(&git_repo, "apps/app/linked.yaml", "values.yaml");
    let git_url = git_repo.path.to_string_lossy().into_owned();
    for args in [
        vec!["-q", "--set", "apps/app/linked.yaml:replicas=3", "--direct"],
        vec!["-q", "--put", put.as_str(), "--direct"],
    ] {
        let refs = git_repo.git(&["for-each-ref"]);
        let mut all = vec!["--repo", git_url.as_str()];
        all.extend_from_slice(&args);
        let u = update(&all, &[]);
        assert_failed(&u, 3, "", &git_repo, &refs);
        assert_eq!(u.run.stderr, expected, "git {args:?}");
        for s in [setup(), gitlab_setup()] {
            add_symlink(&s.repo, "apps/app/linked.yaml", "values.yaml");
            let refs = s.repo.git(&["for-each-ref"]);
            let u = s.run_any(&args);
            assert_failed(&u, 3, "", &s.repo, &refs);
            assert_eq!(u.run.stderr, expected, "gitlab: {}, {args:?}", s.gitlab);
        }
    }
}

// Issue #19, class 7: a GitLab whose GraphQL endpoint answers 404 after the
// REST calls worked is read through REST (a note says so), not refused with
// "check the project path"; a symlink is still refused there.
#[test]
fn gitlab_without_graphql_reads_through_rest() {
    let s = gitlab_setup();
    s.fake.state.lock().unwrap().refuse_graphql = Some(404);
    let u = s.gitlab(&["--set", "apps/app/values.yaml:replicas=5", "--direct"]);
    assert_eq!(json(&u)["operation"], "pushed");
    assert!(
        u.run.stderr.contains("answered 404: GraphQL is unavailable on this instance; reading files through the REST API instead"),
        "{}",
        u.run.stderr
    );
    assert!(s
        .repo
        .show("main:apps/app/values.yaml")
        .contains("replicas: 5"));
    add_symlink(&s.repo, "apps/app/linked.yaml", "values.yaml");
    let refs = s.repo.git(&["for-each-ref"]);
    let u = s.gitlab(&["--set", "apps/app/linked.yaml:replicas=3", "--direct"]);
    assert_failed(
        &u,
        3,
        "error: `apps/app/linked.yaml` is a symlink in the repository",
        &s.repo,
        &refs,
    );
}

// Issue #19, class 7: `--via api` on a self-managed instance named by a
// plain http:// URL uses that URL's API (http, same port), as the user gave it.
#[test]
fn via_api_takes_a_plain_http_repository_as_given() {
    let s = gitlab_setup();
    let repo = format!("{}/acme/deploy.git", s.fake.url.trim_end_matches('/'));
    assert!(repo.starts_with("http://127.0.0.1:"), "{repo}");
    let u = update(
        &[
            "--repo",
            &repo,
            "--forge",
            "gitlab",
            "--via",
            "api",
            "--output",
            "json",
            "--direct",
            "--set",
            "apps/app/values.yaml:replicas=4",
        ],
        &[("GITLAB_TOKEN", TOKEN)],
    );
    assert_eq!(json(&u)["via"], "api");
    assert!(s
        .repo
        .show("main:apps/app/values.yaml")
        .contains("replicas: 4"));
}

// Issue #19, class 7: a commit that landed but whose answer was lost (a 502
// after the forge committed) is recognised on the next attempt by its
// message and reported pushed, with its edits — not "unchanged".
#[test]
fn a_commit_whose_answer_was_lost_is_reported_pushed() {
    for s in [setup(), gitlab_setup()] {
        s.fake.state.lock().unwrap().lose_commit_answer = true;
        let u = s.run_any(&["--set", "apps/app/values.yaml:replicas=6", "--direct"]);
        let report = json(&u);
        assert_eq!(
            report["operation"], "pushed",
            "gitlab {}: {}",
            s.gitlab, u.run.stderr
        );
        assert_eq!(
            report["commit"],
            s.repo.git(&["rev-parse", "main"]).as_str()
        );
        assert_eq!(report["files"][0]["path"], "apps/app/values.yaml");
        assert!(
            u.run
                .stderr
                .contains("its answer was lost, the commit was not"),
            "{}",
            u.run.stderr
        );
        assert_eq!(s.repo.count("main"), 2, "one commit, not two");
    }
}

// Issue #19, class 8: `--via auto` takes the cheaper road, on both forges,
// and the report says which and why: named files through the API; a scan
// of the whole repository through git; a small `--in` through the API; an
// `--in` that lists more than 100 YAML files through git after the listing.
#[test]
fn auto_takes_the_cheaper_road_and_says_why() {
    let Some(server) = HttpServer::start(TOKEN) else {
        return;
    };
    let mut many: Vec<(String, String)> = files()
        .into_iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect();
    for i in 0..101 {
        many.push((
            format!("apps/bulk/svc-{i}/values.yaml"),
            format!("image: registry.example.com/team/svc-{i}:1.0.0\n"),
        ));
    }
    let ca = server.ca.to_string_lossy().into_owned();
    for gitlab in [false, true] {
        let name = if gitlab {
            "acme/deploy-gl"
        } else {
            "acme/deploy-gh"
        };
        let (repo, _, https) = server.repo(name, &many);
        let fake = if gitlab {
            FakeRepoApi::gitlab(&repo.path, TOKEN)
        } else {
            FakeRepoApi::github(&repo.path, TOKEN)
        };
        let (forge, api, var) = if gitlab {
            ("gitlab", format!("{}/api/v4", fake.url), "GITLAB_TOKEN")
        } else {
            ("github", fake.url.clone(), "GITHUB_TOKEN")
        };
        let run = |extra: &[&str]| {
            let mut args = vec![
                "--repo",
                &https,
                "--forge",
                forge,
                "--api-url",
                &api,
                "--output",
                "json",
                "--direct",
            ];
            args.extend_from_slice(extra);
            let u = update(&args, &[(var, TOKEN), ("GIT_SSL_CAINFO", &ca)]);
            let report = json(&u);
            (
                report["via"].as_str().unwrap().to_string(),
                report["via_reason"].as_str().unwrap().to_string(),
                u.run.stderr.clone(),
            )
        };
        let (via, why, _) = run(&["--set", "apps/app/values.yaml:replicas=3"]);
        assert_eq!(
            (via.as_str(), why.as_str()),
            (
                "api",
                "--via auto: the files to read are named (--set, --promote, --put)"
            ),
            "{forge}"
        );
        let (via, why, _) = run(&["--image", "registry.example.com/team/app:1.5.0"]);
        assert_eq!(via, "git", "{forge}");
        assert!(
            why.starts_with(
                "--via auto: an --image scan of the whole repository reads less by a depth-1 clone"
            ),
            "{why}"
        );
        let (via, why, _) = run(&[
            "--image",
            "registry.example.com/team/app:1.5.1",
            "--in",
            "apps/app",
        ]);
        assert_eq!(via, "api", "{forge}");
        assert!(
            why.starts_with("--via auto: an --image scan of --in apps/app"),
            "{why}"
        );
        let before = fake.state.lock().unwrap().requests.len();
        let (via, why, stderr) = run(&[
            "--image",
            "registry.example.com/team/svc-7:2.0.0",
            "--in",
            "apps",
        ]);
        assert_eq!(via, "git", "{forge}: {stderr}");
        assert!(why.contains("YAML files or more, over the 100 an API read is chosen for; a depth-1 clone reads less"), "{why}");
        assert!(stderr.contains("using git instead"), "{stderr}");
        // The listing was read (GitHub: `apps`' own entry, then its tree),
        // no file's content.
        let sent = fake.state.lock().unwrap().requests[before..].to_vec();
        let reads = sent
            .iter()
            .filter(|r| r.contains("Files") || r.contains("Blobs"))
            .count();
        assert!(reads <= usize::from(!gitlab), "{forge}: {sent:?}");
        assert!(repo
            .show("main:apps/bulk/svc-7/values.yaml")
            .contains("svc-7:2.0.0"));
    }
}

// A review branch still at the base (an API run that created it and then
// failed to commit leaves one) holds nothing to lose: it is taken over,
// not refused as someone else's.
#[test]
fn a_branch_left_at_the_base_is_taken_over() {
    let s = setup();
    s.repo.git(&["update-ref", "refs/heads/review/x", "main"]);
    let report = json(&s.run(&[
        "--set",
        "apps/app/values.yaml:replicas=4",
        "--branch",
        "review/x",
    ]));
    assert_eq!(report["operation"], "pushed");
    assert!(s
        .repo
        .show("review/x:apps/app/values.yaml")
        .contains("replicas: 4"));
    assert_eq!(
        s.repo.git(&["rev-parse", "review/x~1"]),
        s.repo.git(&["rev-parse", "main"])
    );
}
