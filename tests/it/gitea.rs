//! Issue #24: Gitea and Forgejo, the third forge — pull requests and the
//! API transport against a fake of Gitea's endpoints backed by a real bare
//! repository (`fake_repo_api_gitea.rs`), results read with the git CLI;
//! the git transport against git http-backend; request shapes checked
//! against Gitea's Swagger in `contracts.rs`.

use crate::fake_repo_api::FakeRepoApi;
use crate::pipeline::{assert_failed, files, update, Update};
use crate::servers::{seed, HttpServer, Repo};

pub const TOKEN: &str = "gta_GITEATOKEN0123456789abcdef";
const REPO: &str = "https://gitea.example.com/acme/deploy.git";
const VALUES: &str = "apps/app/values.yaml";

pub struct Setup {
    pub repo: Repo,
    pub fake: FakeRepoApi,
    _dir: tempfile::TempDir,
}

pub fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let repo = seed(&dir.path().join("deploy.git"), &files());
    let fake = FakeRepoApi::gitea(&repo.path, TOKEN);
    Setup {
        repo,
        fake,
        _dir: dir,
    }
}

impl Setup {
    pub fn run(&self, extra: &[&str]) -> Update {
        let api = format!("{}/api/v1", self.fake.url);
        let mut args = vec![
            "--repo",
            REPO,
            "--forge",
            "gitea",
            "--api-url",
            &api,
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        update(&args, &[("GITEA_TOKEN", TOKEN)])
    }

    fn pulls(&self) -> Vec<serde_json::Value> {
        self.fake.state.lock().unwrap().pulls.clone()
    }

    fn commits_sent(&self) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| *r == "POST contents")
            .count()
    }
}

pub fn json(u: &Update) -> serde_json::Value {
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    serde_json::from_str(&u.run.stdout).unwrap_or_else(|e| panic!("{e}: {}", u.run.stdout))
}

/// Everything a pull request can carry, as on the other forges.
pub const REQUEST_FLAGS: [&str; 13] = [
    "--label",
    "gitops",
    "--label",
    "no-such-label",
    "--assignee",
    "alice",
    "--reviewer",
    "bob",
    "--draft",
    "--auto-merge",
    "--merge-method",
    "merge",
    "--remove-source-branch",
];

// Created once through the API (a new branch at the base, one commit, the
// pull request with labels by id, assignee, reviewer, draft prefix and
// auto-merge); the same run again changes nothing; a newer value cannot
// move the branch through Gitea's API, which `--via api` says.
#[test]
fn a_pull_request_through_the_api_is_opened_once() {
    let s = setup();
    let mut args = vec!["--set", "apps/app/values.yaml:replicas=5"];
    args.extend_from_slice(&REQUEST_FLAGS);
    let report = json(&s.run(&args));
    assert_eq!(report["via"], "api");
    assert_eq!(report["operation"], "pushed");
    assert_eq!(report["change_request"]["forge"], "gitea");
    assert_eq!(report["change_request"]["operation"], "created");
    assert_eq!(
        report["change_request"]["notes"],
        serde_json::json!([
            "label `no-such-label` does not exist on acme/deploy; create it there to have it set"
        ])
    );
    let branch = report["branch"].as_str().unwrap().to_string();
    assert_eq!(
        s.repo.git(&["rev-parse", &format!("{branch}~1")]),
        s.repo.git(&["rev-parse", "main"]),
        "one commit on the base"
    );
    assert!(s
        .repo
        .show(&format!("{branch}:{VALUES}"))
        .contains("replicas: 5"));
    assert!(s
        .repo
        .show(&format!("main:{VALUES}"))
        .contains("replicas: 2"));
    let pulls = s.pulls();
    assert_eq!(pulls.len(), 1);
    let pr = &pulls[0];
    assert!(pr["title"].as_str().unwrap().starts_with("WIP: "), "{pr}");
    assert_eq!(pr["head"]["ref"], branch.as_str());
    assert_eq!(pr["base"]["ref"], "main");
    assert_eq!(pr["labels"][0]["name"], "gitops");
    assert_eq!(pr["labels"].as_array().unwrap().len(), 1);
    assert_eq!(pr["assignees"][0]["login"], "alice");
    assert_eq!(pr["requested_reviewers"][0]["login"], "bob");
    assert_eq!(pr["auto_merge"]["Do"], "merge");
    assert_eq!(pr["auto_merge"]["merge_when_checks_succeed"], true);
    assert_eq!(pr["auto_merge"]["delete_branch_after_merge"], true);

    // The token travels only in a header: never in output.
    let u = s.run(&args);
    assert_eq!(json(&u)["operation"], "unchanged");
    let all = format!("{}{}", u.run.stdout, u.run.stderr);
    assert!(!all.contains(TOKEN), "the token leaked: {all}");

    // Again: the branch holds it, nothing is written, the PR is as it was.
    let commits = s.commits_sent();
    let again = json(&s.run(&args));
    assert_eq!(again["operation"], "unchanged");
    assert_eq!(again["commit"], report["commit"]);
    assert_eq!(again["change_request"]["operation"], "unchanged");
    assert_eq!(s.commits_sent(), commits);
    assert_eq!(s.pulls(), pulls);

    // A newer value: Gitea's API can move a branch only by deleting it,
    // which closes its pull request; `--via api` refuses, naming why.
    let refs = s.repo.git(&["for-each-ref"]);
    let u = s.run(&["--set", "apps/app/values.yaml:replicas=6", "--via", "api"]);
    assert_failed(
        &u,
        2,
        &format!(
            "error: Gitea's API cannot move `{branch}` to a new commit without closing its pull request"
        ),
        &s.repo,
        &refs,
    );
}

// A fork's pull request from a branch of the same name is someone else's:
// left alone, and tagbump opens its own.
#[test]
fn a_forks_pull_request_is_not_taken_for_ours() {
    let s = setup();
    let branch = "release/app";
    let fork = serde_json::json!({
        "id": 900, "number": 1, "state": "open",
        "html_url": "https://gitea.example.com/acme/deploy/pulls/1",
        "title": "Innocent", "body": "from a fork",
        "head": {"ref": branch, "repo_id": 2}, "base": {"ref": "main", "repo_id": 1},
        "labels": [], "assignees": [], "requested_reviewers": [],
    });
    s.fake.state.lock().unwrap().pulls.push(fork.clone());
    let report = json(&s.run(&[
        "--set",
        "apps/app/values.yaml:replicas=5",
        "--branch",
        branch,
        "--auto-merge",
    ]));
    assert_eq!(report["change_request"]["operation"], "created");
    assert_eq!(report["change_request"]["number"], 2);
    let pulls = s.pulls();
    assert_eq!(pulls[0], fork, "the fork's pull request was touched");
    assert_eq!(pulls[1]["head"]["ref"], branch);
}

// Writers racing on one file through the API all land: each update names
// the blob it replaces, a stale one is refused (422) and retried.
#[test]
fn concurrent_api_writers_on_one_file_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..6).map(|i| format!("k{i}: 0\n")).collect();
    let repo = seed(&dir.path().join("deploy.git"), &[(VALUES, text.as_str())]);
    let fake = FakeRepoApi::gitea(&repo.path, TOKEN);
    let api = format!("{}/api/v1", fake.url);
    let runs: Vec<Update> = (0..6)
        .map(|i| {
            let api = api.clone();
            std::thread::spawn(move || {
                let set = format!("{VALUES}:k{i}={}", i + 10);
                update(
                    &[
                        "--repo",
                        REPO,
                        "--forge",
                        "gitea",
                        "--api-url",
                        &api,
                        "--set",
                        &set,
                        "--direct",
                        "--attempts",
                        "30",
                    ],
                    &[("GITEA_TOKEN", TOKEN)],
                )
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for u in &runs {
        assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    }
    let expected: String = (0..6).map(|i| format!("k{i}: {}\n", i + 10)).collect();
    assert_eq!(repo.show(&format!("main:{VALUES}")), expected);
    assert_eq!(repo.count("main"), 7);
    crate::servers::run(
        std::process::Command::new("git")
            .arg("-C")
            .arg(&repo.path)
            .args(["fsck", "--strict"]),
    );
}

// A file changed between the read and the commit: Gitea's "sha does not
// match", then a new attempt that keeps the other change. A protected
// branch declines (exit 9) in the server's words.
#[test]
fn a_changed_file_is_retried_and_protection_declines() {
    let s = setup();
    s.fake.state.lock().unwrap().interfere =
        Some((VALUES.into(), "replicas: 2\nextra: kept\n".into()));
    let u = s.run(&["--set", "apps/app/values.yaml:replicas=7", "--direct"]);
    assert_eq!(json(&u)["attempts"], 2);
    assert!(
        u.run.stderr.contains("sha does not match"),
        "{}",
        u.run.stderr
    );
    assert_eq!(
        s.repo.show(&format!("main:{VALUES}")),
        "replicas: 7\nextra: kept\n"
    );

    s.fake.state.lock().unwrap().protected = Some("main".into());
    let refs = s.repo.git(&["for-each-ref"]);
    let u = s.run(&["--set", "apps/app/values.yaml:replicas=8", "--direct"]);
    assert_failed(
        &u,
        9,
        "declined the commit to `main`: user cannot commit to repo [user: tagbump-bot]",
        &s.repo,
        &refs,
    );
}

// A token Gitea does not know (401), one without `write:repository`
// (403, the scope named), a repository that is not there (404, named).
#[test]
fn errors_name_the_token_scope_and_the_repository() {
    let s = setup();
    let refs = s.repo.git(&["for-each-ref"]);
    let api = format!("{}/api/v1", s.fake.url);
    let set = "apps/app/values.yaml:replicas=9";
    let bad = update(
        &[
            "--repo",
            REPO,
            "--forge",
            "gitea",
            "--api-url",
            &api,
            "--via",
            "api",
            "--set",
            set,
        ],
        &[("GITEA_TOKEN", "gta_not_the_token")],
    );
    assert_failed(&bad, 6, "HTTP 401", &s.repo, &refs);
    let all = format!("{}{}", bad.run.stdout, bad.run.stderr);
    assert!(
        !all.contains("gta_not_the_token"),
        "the token leaked: {all}"
    );
    assert!(
        bad.run.stderr.contains("Authorization: token"),
        "{}",
        bad.run.stderr
    );

    s.fake.state.lock().unwrap().read_only_token = true;
    let u = s.run(&["--set", set, "--via", "api"]);
    assert_failed(
        &u,
        6,
        "token does not have at least one of required scope(s): [write:repository]",
        &s.repo,
        &refs,
    );
    assert!(
        u.run.stderr.contains("`write:repository` scope"),
        "{}",
        u.run.stderr
    );
    s.fake.state.lock().unwrap().read_only_token = false;

    // With --base the branch is read first: a 404 there names the
    // repository too, not a missing branch.
    for base in [&[][..], &["--base", "main"][..]] {
        let mut args = vec![
            "--repo",
            "https://gitea.example.com/acme/nope.git",
            "--forge",
            "gitea",
            "--api-url",
            &api,
            "--via",
            "api",
            "--set",
            set,
        ];
        args.extend_from_slice(base);
        let u = update(&args, &[("GITEA_TOKEN", TOKEN)]);
        assert_failed(&u, 4, "Gitea acme/nope does not exist", &s.repo, &refs);
    }

    // A file past the instance's API blob size: no content in the answer,
    // which is never taken for an empty file; git reads any size.
    s.fake.state.lock().unwrap().max_blob_size = Some(10);
    let u = s.run(&["--set", set, "--via", "api"]);
    assert_failed(
        &u,
        2,
        "error: Gitea's API leaves out the content of `apps/app/values.yaml` (larger than its API's blob size limit)",
        &s.repo,
        &refs,
    );
}

// `--via auto`: the first run goes through the API; a newer value, which
// Gitea's API cannot put on the existing branch, goes to git (here git
// http-backend over HTTPS, the token as the password) and the one pull
// request is updated, never duplicated.
#[test]
fn a_newer_value_replaces_the_branch_over_git() {
    let Some(server) = HttpServer::start(TOKEN) else {
        return;
    };
    let (repo, _http, https) = server.repo("acme/deploy", &files());
    let fake = FakeRepoApi::gitea(&repo.path, TOKEN);
    let api = format!("{}/api/v1", fake.url);
    let ca = server.ca.to_string_lossy().into_owned();
    let env = [("GITEA_TOKEN", TOKEN), ("GIT_SSL_CAINFO", ca.as_str())];
    let run = |value: &str| {
        let set = format!("{VALUES}:replicas={value}");
        update(
            &[
                "--repo",
                &https,
                "--forge",
                "gitea",
                "--api-url",
                &api,
                "--project",
                "acme/deploy",
                "--set",
                &set,
                "--output",
                "json",
            ],
            &env,
        )
    };
    let first = json(&run("5"));
    assert_eq!(first["via"], "api");
    let branch = first["branch"].as_str().unwrap().to_string();
    let u = run("6");
    let newer = json(&u);
    assert_eq!(newer["via"], "git", "{}", u.run.stderr);
    assert!(
        u.run
            .stderr
            .contains("note: --via auto: Gitea's API cannot move `"),
        "{}",
        u.run.stderr
    );
    assert_eq!(newer["operation"], "pushed");
    assert_eq!(newer["change_request"]["operation"], "updated");
    assert!(repo
        .show(&format!("{branch}:{VALUES}"))
        .contains("replicas: 6"));
    assert_eq!(
        repo.git(&["rev-parse", &format!("{branch}~1")]),
        repo.git(&["rev-parse", "main"])
    );
    let pulls = fake.state.lock().unwrap().pulls.clone();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    assert!(
        pulls[0]["body"].as_str().unwrap().contains("`6`"),
        "{}",
        pulls[0]
    );
}

// The forge is told from the CI (Gitea's and Forgejo's runners) or, for a
// name that tells nothing, from the server's `GET /api/v1/version`.
#[test]
fn gitea_is_detected_from_the_runner_and_from_the_api() {
    let s = setup();
    let api = format!("{}/api/v1", s.fake.url);
    for runner in ["GITEA_ACTIONS", "FORGEJO_ACTIONS"] {
        let host = s.fake.url.trim_start_matches("http://").to_string();
        let u = update(
            &[
                "--repo",
                &format!("http://{host}/acme/deploy.git"),
                "--set",
                "apps/app/values.yaml:replicas=3",
                "--output",
                "json",
                "--dry-run",
            ],
            &[
                ("GITHUB_ACTIONS", "true"),
                (runner, "true"),
                ("GITHUB_SERVER_URL", &s.fake.url),
                ("GITHUB_API_URL", &api),
                ("GITHUB_TOKEN", TOKEN),
            ],
        );
        let report = json(&u);
        assert_eq!(report["via"], "api", "{runner}: {}", u.run.stderr);
    }
    // No runner, a host name that says nothing: the version endpoint does.
    let host = s.fake.url.trim_start_matches("http://").to_string();
    let u = update(
        &[
            "--repo",
            &format!("http://{host}/acme/deploy.git"),
            "--set",
            "apps/app/values.yaml:replicas=3",
            "--output",
            "json",
        ],
        &[("GITEA_TOKEN", TOKEN)],
    );
    let report = json(&u);
    assert_eq!(report["via"], "api", "{}", u.run.stderr);
    assert_eq!(report["change_request"]["forge"], "gitea");
    assert!(s.fake.requests().iter().any(|r| r == "GET version"));
}

// `--join` through Gitea's API: concurrent jobs create the branch once
// (409 for the others, who retry and add on top), each commit names the
// blobs it replaces, and one pull request lists every image (a duplicate
// create, 409, becomes an update).
#[test]
fn jobs_join_one_branch_through_the_api() {
    const JOBS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let texts: Vec<(String, String)> = (0..JOBS)
        .map(|i| {
            (
                format!("apps/svc-{i}/values.yaml"),
                format!(
                    "image:\n  repository: registry.example.com/team/svc-{i}\n  tag: \"1.0.0\"\n"
                ),
            )
        })
        .collect();
    let repo = seed(&dir.path().join("deploy.git"), &texts);
    let base = repo.git(&["rev-parse", "main"]);
    let fake = FakeRepoApi::gitea(&repo.path, TOKEN);
    let api = format!("{}/api/v1", fake.url);
    let runs: Vec<Update> = (0..JOBS)
        .map(|i| {
            let api = api.clone();
            std::thread::spawn(move || {
                let image = format!("registry.example.com/team/svc-{i}:2.0.{i}");
                update(
                    &[
                        "--repo",
                        REPO,
                        "--forge",
                        "gitea",
                        "--api-url",
                        &api,
                        "--via",
                        "api",
                        "--image",
                        &image,
                        "--branch",
                        "release/1",
                        "--join",
                        "--attempts",
                        "40",
                    ],
                    &[("GITEA_TOKEN", TOKEN)],
                )
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for u in &runs {
        assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    }
    assert_eq!(repo.git(&["rev-parse", "main"]), base, "the base moved");
    let log = repo.git(&["log", "--format=%B", &format!("{base}..release/1")]);
    for i in 0..JOBS {
        assert!(
            repo.show(&format!("release/1:apps/svc-{i}/values.yaml"))
                .contains(&format!("tag: \"2.0.{i}\"")),
            "svc-{i}"
        );
        assert!(
            log.contains(&format!("team/svc-{i}:2.0.{i}")),
            "svc-{i}: {log}"
        );
    }
    let pulls = fake.state.lock().unwrap().pulls.clone();
    assert_eq!(pulls.len(), 1, "{pulls:?}");
    let body = pulls[0]["body"].as_str().unwrap();
    for i in 0..JOBS {
        assert!(
            body.contains(&format!("team/svc-{i}:2.0.{i}")),
            "svc-{i}: {body}"
        );
    }
}

// A `--set` on the base through Gitea's API: four requests (the default
// branch, its tip, the file with its blob sha, the commit), and three
// the second time; an image scan of `--in` lists the directory, then each
// subdirectory's tree, and reads each YAML file under it.
#[test]
fn a_direct_set_is_four_requests() {
    let s = setup();
    let u = s.run(&["--set", "apps/app/values.yaml:replicas=3", "--direct"]);
    let report = json(&u);
    assert_eq!(report["via"], "api");
    assert_eq!(report["operation"], "pushed");
    assert_eq!(
        s.fake.requests(),
        [
            "GET repository",
            "GET branches/main",
            "GET contents/apps",
            "POST contents"
        ]
    );
    assert!(
        u.run.stderr.contains("through Gitea's API"),
        "{}",
        u.run.stderr
    );
    assert_eq!(
        report["commit"],
        s.repo.git(&["rev-parse", "main"]).as_str()
    );
    assert!(s.repo.git(&["fsck", "--strict"]).is_empty());

    let before = s.fake.requests().len();
    let again = s.run(&["--set", "apps/app/values.yaml:replicas=3", "--direct"]);
    assert_eq!(json(&again)["operation"], "unchanged");
    assert_eq!(s.fake.requests().len() - before, 3);
    assert_eq!(s.repo.count("main"), 2);

    let before = s.fake.requests().len();
    let scan = s.run(&[
        "--image",
        "registry.example.com/team/app:1.4.2",
        "--in",
        "apps",
        "--direct",
    ]);
    assert_eq!(json(&scan)["via"], "api");
    let sent = s.fake.requests()[before..].to_vec();
    // `apps` lists two subdirectories: one recursive listing each.
    assert_eq!(
        sent.iter()
            .filter(|r| r.starts_with("GET git/trees"))
            .count(),
        2,
        "{sent:?}"
    );
    assert!(s
        .repo
        .show("main:apps/app/values.yaml")
        .contains("tag: \"1.4.2\""));
}
