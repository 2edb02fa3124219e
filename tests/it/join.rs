//! Issue #23: `--join` — parallel jobs add their changes to one review
//! branch, against real servers (OpenSSH, git http-backend over HTTPS) and
//! through each forge's API (fakes backed by a real bare repository).
//! Every job exits 0, the branch holds every change on an untouched base, a
//! re-run changes nothing, a conflicting job is refused naming the commit,
//! and a moved base is replayed onto.

use crate::fake_repo_api::FakeRepoApi;
use crate::pipeline::{ssh_env, update, with, Update};
use crate::servers::{HttpServer, Repo, SshServer};

const JOBS: usize = 12;

fn services() -> Vec<(String, String)> {
    (0..JOBS)
        .map(|i| {
            (
                format!("apps/svc-{i}/values.yaml"),
                format!("image:\n  repository: registry.example.com/team/svc-{i}\n  tag: \"1.0.0\" # CI\n"),
            )
        })
        .collect()
}

fn job(url: &str, env: &[(&str, &str)], image: &str, extra: &[&str]) -> Update {
    let mut args = vec![
        "--repo",
        url,
        "--image",
        image,
        "--branch",
        "release/2026-12",
        "--join",
        "--attempts",
        "40",
    ];
    args.extend_from_slice(extra);
    update(&args, env)
}

/// Every job at once, with `extra` flags; each must exit 0.
fn all_jobs(url: &str, env: Vec<(&'static str, String)>, extra: &[String]) {
    let handles: Vec<_> = (0..JOBS)
        .map(|i| {
            let (url, env, extra) = (url.to_string(), env.clone(), extra.to_vec());
            std::thread::spawn(move || {
                let image = format!("registry.example.com/team/svc-{i}:2.0.{i}");
                let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
                job(&url, &with(&env), &image, &extra)
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let u = h.join().unwrap();
        assert_eq!(u.run.code, 0, "job {i}: {}", u.run.stderr);
        assert!(u.leftovers.is_empty(), "job {i} left {:?}", u.leftovers);
    }
}

fn assert_joined(repo: &Repo, base: &str) {
    assert_eq!(repo.git(&["rev-parse", "main"]), base, "the base moved");
    for i in 0..JOBS {
        let text = repo.show(&format!("release/2026-12:apps/svc-{i}/values.yaml"));
        assert!(
            text.contains(&format!("tag: \"2.0.{i}\" # CI")),
            "svc-{i}: {text}"
        );
    }
    // Every image in the branch's ledger: the tip's, read on through the
    // commits GitLab put between a commit and the parent it was planned on.
    let message = repo.git(&["log", "--format=%B", &format!("{base}..release/2026-12")]);
    for i in 0..JOBS {
        assert!(
            message.contains("Tagbump-Joined-Image: ")
                && message.contains(&format!("team/svc-{i}:2.0.{i}")),
            "svc-{i} missing from the ledger: {message}"
        );
    }
}

#[test]
fn twelve_jobs_join_one_branch_over_ssh() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/release", &services());
    let forge = crate::fake_forge::FakeForge::start("glpat-join-token");
    let api = format!("{}/api/v4", forge.url);
    let mut env = ssh_env(&server);
    env.push(("GITLAB_TOKEN", "glpat-join-token".to_string()));
    let flags = [
        "--forge",
        "gitlab",
        "--api-url",
        &api,
        "--project",
        "team/release",
    ];
    release(&repo, &url, env, &flags, &|| forge.items(), "description");
}

/// The whole story on one server: twelve jobs at once, one merge request
/// listing every image, a re-run, a conflicting job, a base that moves.
fn release(
    repo: &Repo,
    url: &str,
    env: Vec<(&'static str, String)>,
    flags: &[&str],
    items: &dyn Fn() -> Vec<serde_json::Value>,
    description: &str,
) {
    let base = repo.git(&["rev-parse", "main"]);
    let mr: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    all_jobs(url, env.clone(), &mr);
    assert_joined(repo, &base);
    // One merge request, listing every image.
    let listed = items();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let text = listed[0][description].as_str().unwrap();
    for i in 0..JOBS {
        assert!(
            text.contains(&format!("team/svc-{i}:2.0.{i}")),
            "svc-{i}: {text}"
        );
    }
    let title = listed[0]["title"].as_str().unwrap();
    assert!(title.contains("and 9 more"), "{title}");
    assert_eq!(
        repo.git(&["rev-list", "--count", "main..release/2026-12"]),
        JOBS.to_string(),
        "one commit per job"
    );

    // A re-run of a job whose change is on the branch changes nothing.
    let tip = repo.git(&["rev-parse", "release/2026-12"]);
    let u = job(
        url,
        &with(&env),
        "registry.example.com/team/svc-3:2.0.3",
        flags,
    );
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert!(
        u.run.stderr.contains("already up to date"),
        "{}",
        u.run.stderr
    );
    assert_eq!(items().len(), 1);
    assert_eq!(repo.git(&["rev-parse", "release/2026-12"]), tip);

    // Another value for a scalar a job set is refused, naming its commit.
    let u = job(
        url,
        &with(&env),
        "registry.example.com/team/svc-3:9.9.9",
        flags,
    );
    assert_eq!(u.run.code, 3, "{}", u.run.stderr);
    assert!(
        u.run.stderr.contains(
            "apps/svc-3/values.yaml: `image.tag` is `2.0.3` on `release/2026-12`, set by commit "
        ),
        "{}",
        u.run.stderr
    );
    assert_eq!(repo.git(&["rev-parse", "release/2026-12"]), tip);

    // The base moves: the next job rebuilds the branch on it, replaying
    // every joined change.
    move_the_base(repo);
    let moved = repo.git(&["rev-parse", "main"]);
    let u = job(
        url,
        &with(&env),
        "registry.example.com/team/svc-0:2.0.0",
        flags,
    );
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_joined(repo, &moved);
    assert_eq!(
        repo.git(&["rev-parse", "release/2026-12^"]),
        moved,
        "rebuilt as one commit on the new base"
    );
    assert_eq!(repo.show("release/2026-12:README.md"), "moved\n");
}

/// Someone pushes to the base.
fn move_the_base(repo: &Repo) {
    let work = tempfile::tempdir().unwrap();
    let clone = work.path().join("c");
    crate::servers::run(
        std::process::Command::new("git")
            .args(["clone", "-q"])
            .arg(&repo.path)
            .arg(&clone),
    );
    std::fs::write(clone.join("README.md"), "moved\n").unwrap();
    for args in [
        vec!["add", "README.md"],
        vec![
            "-c",
            "user.name=Dev",
            "-c",
            "user.email=d@e",
            "commit",
            "-qm",
            "move the base",
        ],
        vec!["push", "-q", "origin", "HEAD:main"],
    ] {
        crate::servers::run(
            std::process::Command::new("git")
                .arg("-C")
                .arg(&clone)
                .args(&args),
        );
    }
}

/// The same through each forge's API (no clone): GitHub's
/// `createCommitOnBranch` with `expectedHeadOid`, GitLab's commits API.
#[test]
fn twelve_jobs_join_one_branch_through_each_api() {
    for gitlab in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let repo = crate::servers::seed(&dir.path().join("deploy.git"), &services());
        let token = "api-JOINTOKEN0123456789";
        let (fake, url, api, var, forge, description) = if gitlab {
            let fake = FakeRepoApi::gitlab(&repo.path, token);
            let api = format!("{}/api/v4", fake.url);
            let url = "https://gitlab.example.com/acme/deploy.git";
            (fake, url, api, "GITLAB_TOKEN", "gitlab", "description")
        } else {
            let fake = FakeRepoApi::github(&repo.path, token);
            let api = fake.url.clone();
            let url = "https://github.example.com/acme/deploy.git";
            (fake, url, api, "GITHUB_TOKEN", "github", "body")
        };
        let flags = ["--forge", forge, "--api-url", &api, "--via", "api"];
        let items = || fake.forge.lock().unwrap().items.clone();
        // The example hosts do not resolve: only the API can have done it.
        release(
            &repo,
            url,
            vec![(var, token.to_string())],
            &flags,
            &items,
            description,
        );
    }
}

#[test]
fn twelve_jobs_join_one_branch_over_https() {
    let token = "glpat-JOINTOKEN0123456789";
    let Some(server) = HttpServer::start(token) else {
        return;
    };
    let (repo, _http, https) = server.repo("team/release", &services());
    let ca = server.ca.to_string_lossy().into_owned();
    let env = vec![("GITLAB_TOKEN", token.to_string()), ("GIT_SSL_CAINFO", ca)];
    let forge = crate::fake_forge::FakeForge::start(token);
    let api = format!("{}/api/v4", forge.url);
    let flags = [
        "--forge",
        "gitlab",
        "--api-url",
        &api,
        "--project",
        "team/release",
    ];
    release(&repo, &https, env, &flags, &|| forge.items(), "description");
}

#[test]
fn join_needs_a_branch() {
    let u = update(
        &[
            "--repo",
            "/nonexistent.git",
            "--image",
            "r.example/a:1",
            "--join",
        ],
        &[],
    );
    assert_eq!(u.run.code, 2, "{}", u.run.stderr);
    assert!(
        u.run
            .stderr
            .starts_with("error: --join needs --branch NAME"),
        "{}",
        u.run.stderr
    );
    let u = update(
        &[
            "--repo",
            "/nonexistent.git",
            "--image",
            "r.example/a:1",
            "--join",
            "--branch",
            "r",
            "--direct",
        ],
        &[],
    );
    assert_eq!(u.run.code, 2, "{}", u.run.stderr);
    // clap refuses --branch beside --direct before tagbump's own check.
    assert!(
        u.run.stderr.contains("cannot be used with '--direct"),
        "{}",
        u.run.stderr
    );
}
