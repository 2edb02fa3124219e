//! `tagbump update` against real git servers (sshd + git-shell, lighttpd +
//! git http-backend), checked with the git CLI on the server's repository.

use std::process::Command;

use crate::servers::{HttpServer, Repo, SshServer};
use crate::support::Run;

const VALUES: &str = "\
# Values for team/app.
image:
  repository: registry.example.com/team/app
  tag: \"1.4.1\"   # written by CI
replicas: 2
";

const OTHER: &str = "image:\n  repository: registry.example.com/team/other\n  tag: \"9.9.9\"\n";

pub fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("apps/app/values.yaml", VALUES),
        ("apps/other/values.yaml", OTHER),
        ("README.md", "manifests\n"),
    ]
}

/// A run of the real binary with a clean environment: only PATH, a private
/// HOME (no ~/.ssh of the developer's) and a private TMPDIR, whose contents
/// after the run are returned so tests can prove the clone was removed.
pub struct Update {
    pub run: Run,
    pub leftovers: Vec<String>,
}

pub fn update(args: &[&str], env: &[(&str, &str)]) -> Update {
    update_in(&std::env::temp_dir(), args, env)
}

/// [`update`], run in `dir` (where a `.tagbump.yaml` may be).
pub fn update_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Update {
    update_stopped(dir, args, env, None)
}

/// [`update_in`], sent SIGTERM after `stop_after` (never, for `None`). The
/// leftovers name each thing left in TMPDIR with what is inside it.
pub fn update_stopped(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    stop_after: Option<std::time::Duration>,
) -> Update {
    let sandbox = crate::support::Sandbox::new();
    let tmp = &sandbox.tmp;
    let child = sandbox
        .command()
        .arg("update")
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tagbump");
    if let Some(after) = stop_after {
        std::thread::sleep(after);
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    let out = child.wait_with_output().expect("run tagbump");
    let leftovers = std::fs::read_dir(tmp.path())
        .expect("ls tmp")
        .map(|e| {
            let e = e.expect("entry");
            let inside = Command::new("find").arg(e.path()).output().expect("find");
            format!(
                "{}: {}",
                e.file_name().to_string_lossy(),
                String::from_utf8_lossy(&inside.stdout)
            )
        })
        .collect();
    Update {
        run: Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        leftovers,
    }
}

pub fn ssh_env(server: &SshServer) -> Vec<(&'static str, String)> {
    vec![
        ("SSH_PRIVATE_KEY", server.key.clone()),
        ("SSH_KNOWN_HOSTS", server.known_hosts.clone()),
    ]
}

pub fn with<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A run that bumps `registry.example.com/team/app` to `tag` over SSH, plus `extra` flags.
pub fn bump(url: &str, server: &SshServer, tag: &str, extra: &[&str]) -> Update {
    let image = format!("registry.example.com/team/app:{tag}");
    let mut args = vec!["--repo", url, "--image", &image];
    args.extend_from_slice(extra);
    update(&args, &with(&ssh_env(server)))
}

/// A run that must succeed; its stderr otherwise.
#[track_caller]
pub fn succeeded(u: &Update) -> &Update {
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert!(u.leftovers.is_empty(), "temp files left: {:?}", u.leftovers);
    u
}

/// The failure contract: the given exit code, nothing pushed, no temp files.
pub fn assert_failed(u: &Update, code: i32, needle: &str, repo: &Repo, before: &str) {
    assert_eq!(u.run.code, code, "stderr: {}", u.run.stderr);
    assert!(
        u.run.stderr.contains(needle),
        "{needle:?} not in: {}",
        u.run.stderr
    );
    assert_eq!(repo.git(&["for-each-ref"]), before, "the remote changed");
    assert!(u.leftovers.is_empty(), "temp files left: {:?}", u.leftovers);
}

#[test]
fn ssh_direct_push_is_one_commit_touching_only_the_target_line() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/direct", &files());
    let env = ssh_env(&server);
    let u = update(
        &[
            "--repo",
            &url,
            "--image",
            "registry.example.com/team/app:1.4.2",
            "--direct",
        ],
        &with(&env),
    );
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert!(u.leftovers.is_empty(), "{:?}", u.leftovers);
    assert!(u.run.stderr.contains("pushed "), "{}", u.run.stderr);
    assert_eq!(repo.count("main"), 2);
    assert_eq!(
        repo.git(&["diff", "--stat", "main~1", "main"])
            .lines()
            .count(),
        2,
        "one file changed"
    );
    assert_eq!(
        repo.git(&["diff", "-U0", "main~1", "main"])
            .lines()
            .filter(|l| l.starts_with(['+', '-']) && !l.starts_with("+++") && !l.starts_with("---"))
            .collect::<Vec<_>>(),
        [
            "-  tag: \"1.4.1\"   # written by CI",
            "+  tag: \"1.4.2\"   # written by CI"
        ]
    );
    assert_eq!(
        repo.show("main:apps/app/values.yaml"),
        VALUES.replace("1.4.1", "1.4.2")
    );
    let message = repo.git(&["log", "-1", "--format=%B", "main"]);
    assert!(message.starts_with("Update team/app to 1.4.2"), "{message}");
    assert!(message.ends_with("Updated-by: tagbump"), "{message}");
    repo.git(&["fsck", "--no-progress"]);
}

#[test]
fn ssh_review_branch_lifecycle() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/review", &files());
    let main_before = repo.git(&["rev-parse", "main"]);
    let branch = "tagbump/main/team-app-d3545c89";

    let first = succeeded(&bump(&url, &server, "1.4.2", &[]))
        .run
        .stderr
        .clone();
    assert!(first.contains("new review branch"), "{}", first);
    assert_eq!(
        repo.git(&["rev-parse", "main"]),
        main_before,
        "main untouched"
    );
    assert_eq!(
        repo.git(&["rev-parse", &format!("{branch}~1")]),
        main_before
    );

    // Same tag again: nothing to do, the branch is not rewritten.
    let tip = repo.git(&["rev-parse", branch]);
    let again = succeeded(&bump(&url, &server, "1.4.2", &[]))
        .run
        .stderr
        .clone();
    assert!(again.contains("already has these changes"), "{}", again);
    assert_eq!(repo.git(&["rev-parse", branch]), tip);

    // A new tag: the same branch is updated, still one commit on top of main.
    let newer = succeeded(&bump(&url, &server, "1.4.3", &[]))
        .run
        .stderr
        .clone();
    assert!(newer.contains("updating the review branch"), "{}", newer);
    assert_eq!(
        repo.git(&["rev-list", "--count", &format!("main..{branch}")]),
        "1"
    );
    assert!(repo
        .show(&format!("{branch}:apps/app/values.yaml"))
        .contains("tag: \"1.4.3\""));

    // A human commit on the branch: never overwritten.
    let work = tempfile::tempdir().unwrap();
    crate::servers::run(
        Command::new("git")
            .args(["clone", "-q", "--branch", branch])
            .arg(&repo.path)
            .arg(work.path()),
    );
    std::fs::write(work.path().join("NOTE.md"), "please wait\n").unwrap();
    let git = |args: &[&str]| {
        crate::servers::run(
            Command::new("git")
                .arg("-C")
                .arg(work.path())
                .args(["-c", "user.name=h", "-c", "user.email=h@x"])
                .args(args),
        )
    };
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "human"]);
    git(&["push", "-q", "origin", branch]);
    let refs = repo.git(&["for-each-ref"]);
    let blocked = bump(&url, &server, "1.4.4", &[]);
    assert_failed(
        &blocked,
        8,
        "has commits tagbump did not make; not overwriting it",
        &repo,
        &refs,
    );
}

// Issue #8: `…/platform/services/api` and `…/billing/services/api` shared
// `tagbump/main/services-api`, and the second run overwrote the first's change.
#[test]
fn images_with_the_same_last_components_get_their_own_branches() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let values = |group: &str| {
        format!(
            "image:\n  repository: registry.gitlab.com/acme/{group}/services/api\n  tag: \"1.0.0\"\n"
        )
    };
    let (platform_values, billing_values) = (values("platform"), values("billing"));
    let (repo, url) = server.repo(
        "team/collide",
        &[
            ("platform/values.yaml", platform_values.as_str()),
            ("billing/values.yaml", billing_values.as_str()),
        ],
    );
    let env = ssh_env(&server);
    let run = |image: &str, extra: &[&str]| {
        let mut args = vec!["--repo", &url, "--image", image, "--output", "json"];
        args.extend_from_slice(extra);
        update(&args, &with(&env))
    };
    let branch_of = |u: &Update| {
        let report: serde_json::Value =
            serde_json::from_str(&u.run.stdout).unwrap_or_else(|e| panic!("{e}: {}", u.run.stdout));
        report["branch"].as_str().expect("a branch").to_string()
    };

    let platform = run("registry.gitlab.com/acme/platform/services/api:1.1.0", &[]);
    assert_eq!(platform.run.code, 0, "{}", platform.run.stderr);
    let billing = run("registry.gitlab.com/acme/billing/services/api:2.0.0", &[]);
    assert_eq!(billing.run.code, 0, "{}", billing.run.stderr);
    let (a, b) = (branch_of(&platform), branch_of(&billing));
    assert_ne!(a, b, "two images, two branches");
    assert!(a.starts_with("tagbump/main/services-api-"), "{a}");
    // Both changes are kept, each on its own branch.
    assert!(repo
        .show(&format!("{a}:platform/values.yaml"))
        .contains("tag: \"1.1.0\""));
    assert!(repo
        .show(&format!("{b}:billing/values.yaml"))
        .contains("tag: \"2.0.0\""));
    assert!(repo
        .show(&format!("{b}:platform/values.yaml"))
        .contains("tag: \"1.0.0\""));

    // Forced onto one name, the second set of targets is refused, not
    // written over the first one's pending change.
    let refs = repo.git(&["for-each-ref"]);
    let shared = run(
        "registry.gitlab.com/acme/billing/services/api:2.0.1",
        &["--branch", &a],
    );
    assert_failed(
        &shared,
        8,
        "holds tagbump's change for other targets",
        &repo,
        &refs,
    );
}

// A review branch named by tagbump 0.1 (`tagbump/main/team-app`) is not
// orphaned without a word: the run says which branch it uses now.
#[test]
fn a_review_branch_under_the_old_name_gets_a_note() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/legacy", &files());
    repo.git(&["branch", "tagbump/main/team-app", "main"]);
    let u = update(
        &[
            "--repo",
            &url,
            "--image",
            "registry.example.com/team/app:1.4.2",
        ],
        &with(&ssh_env(&server)),
    );
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert!(
        u.run
            .stderr
            .contains("note: `tagbump/main/team-app` on ssh://")
            && u.run
                .stderr
                .contains("this run uses `tagbump/main/team-app-d3545c89`"),
        "{}",
        u.run.stderr
    );
}

// Issue #8: `--set` on a path that is a symlink in the repository would
// write the new text into the link; it names the link and its target instead.
#[test]
fn a_set_on_a_symlink_in_the_repository_says_so() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/links", &files());
    let work = tempfile::tempdir().unwrap();
    crate::servers::run(
        Command::new("git")
            .args(["clone", "-q"])
            .arg(&repo.path)
            .arg(work.path()),
    );
    std::os::unix::fs::symlink("app/values.yaml", work.path().join("apps/current.yaml")).unwrap();
    let git = |args: &[&str]| {
        crate::servers::run(
            Command::new("git")
                .arg("-C")
                .arg(work.path())
                .args(["-c", "user.name=h", "-c", "user.email=h@x"])
                .args(args),
        )
    };
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "link"]);
    git(&["push", "-q", "origin", "main"]);
    let refs = repo.git(&["for-each-ref"]);
    let u = update(
        &[
            "--repo",
            &url,
            "--set",
            "apps/current.yaml:image.tag=2.0.0",
            "--direct",
        ],
        &with(&ssh_env(&server)),
    );
    assert_failed(
        &u,
        3,
        "`apps/current.yaml` is a symlink in the repository (to `app/values.yaml`)",
        &repo,
        &refs,
    );
}

#[test]
fn sets_and_dry_run() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/sets", &files());
    let env = ssh_env(&server);
    let refs = repo.git(&["for-each-ref"]);
    let dry = update(
        &[
            "--repo",
            &url,
            "--set",
            "apps/other/values.yaml:image.tag=10.0.0",
            "--dry-run",
            "--direct",
        ],
        &with(&env),
    );
    assert_eq!(dry.run.code, 0, "{}", dry.run.stderr);
    assert!(
        dry.run.stdout.contains("+  tag: \"10.0.0\""),
        "{}",
        dry.run.stdout
    );
    assert!(
        dry.run.stderr.contains("dry run: would push"),
        "{}",
        dry.run.stderr
    );
    assert_eq!(repo.git(&["for-each-ref"]), refs, "a dry run sends nothing");

    let missing = update(
        &[
            "--repo",
            &url,
            "--set",
            "apps/other/values.yaml:image.tags=1",
            "--direct",
        ],
        &with(&env),
    );
    assert_failed(
        &missing,
        4,
        "apps/other/values.yaml:2: `image.tags` not found",
        &repo,
        &refs,
    );
    let no_file = update(
        &["--repo", &url, "--set", "apps/nope.yaml:a=1", "--direct"],
        &with(&env),
    );
    assert_failed(
        &no_file,
        4,
        "`apps/nope.yaml` does not exist in the repository",
        &repo,
        &refs,
    );
    let no_base = update(
        &[
            "--repo",
            &url,
            "--image",
            "registry.example.com/team/app:2",
            "--base",
            "prod",
        ],
        &with(&env),
    );
    assert_failed(&no_base, 4, "branch `prod` does not exist", &repo, &refs);
    let no_image = update(
        &[
            "--repo",
            &url,
            "--image",
            "registry.example.com/team/nope:2",
        ],
        &with(&env),
    );
    assert_failed(
        &no_image,
        4,
        "no reference to `registry.example.com/team/nope`",
        &repo,
        &refs,
    );
}

#[test]
fn host_keys_are_verified() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/hostkeys", &files());
    let refs = repo.git(&["for-each-ref"]);
    let args = [
        "--repo",
        url.as_str(),
        "--image",
        "registry.example.com/team/app:1.4.2",
        "--direct",
    ];

    // Unknown: known_hosts has only some other host.
    let other = server
        .known_hosts
        .replace(&format!("[127.0.0.1]:{}", server.port), "git.example.com");
    let u = update(
        &args,
        &[
            ("SSH_PRIVATE_KEY", &server.key),
            ("SSH_KNOWN_HOSTS", &other),
        ],
    );
    assert_failed(
        &u,
        6,
        &format!("[127.0.0.1]:{} is not a known host", server.port),
        &repo,
        &refs,
    );
    assert!(
        u.run.stderr.contains(&server.fingerprint),
        "{}",
        u.run.stderr
    );
    assert!(
        u.run
            .stderr
            .contains(&format!("--ssh-host-fingerprint {}", server.fingerprint)),
        "{}",
        u.run.stderr
    );

    // No known_hosts at all (fresh HOME): refused, not trusted on first use.
    let u = update(&args, &[("SSH_PRIVATE_KEY", &server.key)]);
    assert_failed(&u, 6, "no known_hosts was found", &repo, &refs);

    // Changed: the entry for this host holds another ed25519 key.
    let wrong_pub = std::fs::read_to_string(server.dir.path().join("id_wrong.pub")).unwrap();
    let changed = format!(
        "[127.0.0.1]:{} {}",
        server.port,
        wrong_pub
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let u = update(
        &args,
        &[
            ("SSH_PRIVATE_KEY", &server.key),
            ("SSH_KNOWN_HOSTS", &changed),
        ],
    );
    assert_failed(&u, 6, "has CHANGED", &repo, &refs);

    // Pinned: the right fingerprint works, a wrong one does not.
    let mut pinned = args.to_vec();
    pinned.extend(["--ssh-host-fingerprint", server.fingerprint.as_str()]);
    let u = update(&pinned, &[("SSH_PRIVATE_KEY", &server.key)]);
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(repo.count("main"), 2);
}

#[test]
fn wrong_key_and_missing_key_fail_fast() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/keys", &files());
    let refs = repo.git(&["for-each-ref"]);
    let args = [
        "--repo",
        url.as_str(),
        "--image",
        "registry.example.com/team/app:1.4.2",
    ];
    let started = std::time::Instant::now();
    let u = update(
        &args,
        &[
            ("SSH_PRIVATE_KEY", &server.wrong_key),
            ("SSH_KNOWN_HOSTS", &server.known_hosts),
        ],
    );
    assert_failed(
        &u,
        6,
        "authentication failed: the server refused the SSH key",
        &repo,
        &refs,
    );
    // A credentials loop would run until a timeout; a refusal is prompt.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let u = update(&args, &[("SSH_KNOWN_HOSTS", &server.known_hosts)]);
    assert_failed(&u, 6, "no SSH key", &repo, &refs);
    let u = update(
        &args,
        &[
            ("SSH_PRIVATE_KEY", "not a key at all"),
            ("SSH_KNOWN_HOSTS", &server.known_hosts),
        ],
    );
    assert_failed(&u, 6, "the SSH private key cannot be used", &repo, &refs);
}

#[test]
fn server_stopping_mid_run_is_a_remote_error() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/dies", &files());
    let refs = repo.git(&["for-each-ref"]);
    server.die_on_push();
    let env = ssh_env(&server);
    let u = update(
        &[
            "--repo",
            &url,
            "--image",
            "registry.example.com/team/app:1.4.2",
            "--direct",
        ],
        &with(&env),
    );
    assert_failed(&u, 7, "cannot push to", &repo, &refs);
    // And with the server gone entirely: a connection error, same code.
    let u = update(
        &[
            "--repo",
            &url,
            "--image",
            "registry.example.com/team/app:1.4.2",
            "--direct",
        ],
        &with(&env),
    );
    assert_failed(&u, 7, "cannot connect to", &repo, &refs);
}

#[test]
fn concurrent_direct_pushes_all_land_with_linear_history() {
    let Some(server) = SshServer::start() else {
        return;
    };
    const SERVICES: usize = 8;
    let texts: Vec<(String, String)> = (0..SERVICES)
        .map(|i| {
            (
                format!("apps/svc-{i}/values.yaml"),
                format!("image:\n  repository: registry.example.com/team/svc-{i}\n  tag: \"1.0.0\" # CI\n"),
            )
        })
        .collect();
    let (repo, url) = server.repo("team/busy", &texts);
    let env = ssh_env(&server);
    let handles: Vec<_> = (0..SERVICES)
        .map(|i| {
            let (url, env) = (url.clone(), env.clone());
            std::thread::spawn(move || {
                let image = format!("registry.example.com/team/svc-{i}:2.0.{i}");
                update(
                    &[
                        "--repo",
                        &url,
                        "--image",
                        &image,
                        "--direct",
                        "--attempts",
                        "30",
                    ],
                    &with(&env),
                )
            })
        })
        .collect();
    let results: Vec<Update> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, u) in results.iter().enumerate() {
        assert_eq!(u.run.code, 0, "service {i}: {}", u.run.stderr);
        assert!(u.leftovers.is_empty());
    }
    assert_eq!(
        repo.count("main"),
        SERVICES + 1,
        "every update is one commit"
    );
    assert_eq!(
        repo.git(&["rev-list", "--min-parents=2", "main"]),
        "",
        "history is linear"
    );
    for i in 0..SERVICES {
        let text = repo.show(&format!("main:apps/svc-{i}/values.yaml"));
        assert!(
            text.contains(&format!("tag: \"2.0.{i}\" # CI")),
            "svc-{i} lost: {text}"
        );
    }
    let retried = results
        .iter()
        .filter(|u| u.run.stderr.contains("trying again"))
        .count();
    eprintln!("contention: {retried} of {SERVICES} runs retried at least once");
}

#[test]
fn https_with_a_token_and_a_private_ca() {
    let token = "glpat-TESTTOKEN1234567890";
    let Some(server) = HttpServer::start(token) else {
        return;
    };
    let (repo, http, https) = server.repo("team/https", &files());
    let ca = server.ca.to_string_lossy().into_owned();
    // A CA bundle that does not hold the test CA, as SSL_CERT_FILE is in many CI images.
    let other = tempfile::NamedTempFile::new().unwrap();
    let other_bundle = other.path().to_string_lossy().into_owned();
    let refs = repo.git(&["for-each-ref"]);
    let args = |url: &str| {
        vec![
            "--repo".to_string(),
            url.to_string(),
            "--image".into(),
            "registry.example.com/team/app:1.4.2".into(),
            "--direct".into(),
        ]
    };
    let a = args(&https);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();

    // No CA: the TLS failure says what was trusted and what to set.
    let u = update(&a, &[("GITLAB_TOKEN", token)]);
    assert_failed(
        &u,
        6,
        "trusted: the system store; for a private CA, put its PEM certificate in GIT_SSL_CAINFO",
        &repo,
        &refs,
    );
    // SSL_CERT_FILE set to something else (as in many CI images) names it.
    let u = update(
        &a,
        &[("GITLAB_TOKEN", token), ("SSL_CERT_FILE", &other_bundle)],
    );
    assert_failed(
        &u,
        6,
        &format!("trusted: SSL_CERT_FILE={other_bundle}"),
        &repo,
        &refs,
    );
    // Wrong token.
    let u = update(
        &a,
        &[
            ("GITLAB_TOKEN", "glpat-WRONGWRONGWRONG"),
            ("GIT_SSL_CAINFO", &ca),
        ],
    );
    assert_failed(&u, 6, "authentication failed", &repo, &refs);
    // No token.
    let u = update(&a, &[("GIT_SSL_CAINFO", &ca)]);
    assert_failed(&u, 6, "authentication failed", &repo, &refs);
    // Right token over HTTPS, GitHub style user.
    let u = update(&a, &[("GITHUB_TOKEN", token), ("SSL_CERT_FILE", &ca)]);
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(repo.count("main"), 2);
    // Issue #9: GIT_SSL_CAINFO adds trust even when SSL_CERT_FILE is set, as
    // with git (it was ignored then).
    let mut c = a.clone();
    c[3] = "registry.example.com/team/app:1.4.2-1";
    let u = update(
        &c,
        &[
            ("GITHUB_TOKEN", token),
            ("SSL_CERT_FILE", &other_bundle),
            ("GIT_SSL_CAINFO", &ca),
        ],
    );
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(repo.count("main"), 3);

    // Plain HTTP with a GitLab CI job token.
    let b = args(&http);
    let mut b: Vec<&str> = b.iter().map(String::as_str).collect();
    b[3] = "registry.example.com/team/app:1.4.3";
    let u = update(&b, &[("CI_JOB_TOKEN", token)]);
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(repo.count("main"), 4);
    assert!(!u.run.stderr.contains(token));
}

/// Every failure path, with recognisable secrets: none may appear in any output.
#[test]
fn secrets_never_leak() {
    let token = "glpat-LEAKCANARY0123456789";
    let Some(ssh) = SshServer::start() else {
        return;
    };
    let Some(http) = HttpServer::start(token) else {
        return;
    };
    let (_r1, ssh_url) = ssh.repo("team/leak", &files());
    let (_r2, http_url, https_url) = http.repo("team/leak", &files());
    let key_line = ssh.key.lines().nth(1).unwrap().to_string();
    let wrong_line = ssh.wrong_key.lines().nth(1).unwrap().to_string();
    let ca = http.ca.to_string_lossy().into_owned();
    let embedded = https_url.replace("https://", &format!("https://oauth2:{token}@"));
    let img = "registry.example.com/team/app:1.4.2";
    // A commit signing key (issue #11), encrypted: with a wrong passphrase,
    // and with the right one on a run that fails later (host key unknown).
    let keys = tempfile::tempdir().unwrap();
    let signing_path = keys.path().join("signing");
    crate::servers::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "SIGNPASS-canary-42", "-f"])
            .arg(&signing_path),
    );
    let signing = std::fs::read_to_string(&signing_path).unwrap();
    let signing_line = signing.lines().nth(1).unwrap().to_string();
    let runs: Vec<Update> = vec![
        update(
            &["--repo", &ssh_url, "--image", img],
            &[("SSH_PRIVATE_KEY", &ssh.key)],
        ),
        update(
            &["--repo", &ssh_url, "--image", img],
            &[
                ("SSH_PRIVATE_KEY", &ssh.key),
                ("TAGBUMP_SIGNING_KEY", &signing),
                ("TAGBUMP_SIGNING_PASSPHRASE", "SIGNPASS-wrong-42"),
            ],
        ),
        update(
            &["--repo", &ssh_url, "--image", img],
            &[
                ("SSH_PRIVATE_KEY", &ssh.key),
                ("TAGBUMP_SIGNING_KEY", &signing),
                ("TAGBUMP_SIGNING_PASSPHRASE", "SIGNPASS-canary-42"),
            ],
        ),
        update(
            &["--repo", &ssh_url, "--image", img],
            &[
                ("SSH_PRIVATE_KEY", &ssh.wrong_key),
                ("SSH_KNOWN_HOSTS", &ssh.known_hosts),
            ],
        ),
        update(
            &[
                "--repo",
                &ssh_url,
                "--image",
                "registry.example.com/team/nope:1",
            ],
            &[
                ("SSH_PRIVATE_KEY", &ssh.key),
                ("SSH_KNOWN_HOSTS", &ssh.known_hosts),
            ],
        ),
        update(
            &["--repo", &https_url, "--image", img],
            &[("GITLAB_TOKEN", token)],
        ),
        update(&["--repo", &embedded, "--image", img], &[]),
        update(
            &["--repo", &embedded, "--image", img, "--base", "nope"],
            &[("GIT_SSL_CAINFO", &ca)],
        ),
        update(
            &["--repo", &http_url, "--image", img, "--dry-run"],
            &[("TAGBUMP_GIT_TOKEN", token)],
        ),
        update(
            &[
                "--repo",
                &http_url.replace("/team/leak", "/team/missing"),
                "--image",
                img,
            ],
            &[("TAGBUMP_GIT_TOKEN", token)],
        ),
        update(
            &[
                "--repo",
                &format!("http://oauth2:{token}@127.0.0.1:1/x.git"),
                "--image",
                img,
            ],
            &[],
        ),
    ];
    for (i, u) in runs.iter().enumerate() {
        let all = format!("{}{}", u.run.stdout, u.run.stderr);
        for secret in [
            token,
            key_line.as_str(),
            wrong_line.as_str(),
            signing_line.as_str(),
            "SIGNPASS-canary-42",
            "SIGNPASS-wrong-42",
        ] {
            assert!(!all.contains(secret), "run {i} leaked a secret:\n{all}");
        }
        assert!(u.leftovers.is_empty(), "run {i} left {:?}", u.leftovers);
    }
    // The embedded-token URL is printed without the token.
    assert!(
        runs[7].run.stderr.contains(&https_url),
        "{}",
        runs[7].run.stderr
    );
}

#[test]
fn promotion_copies_the_tested_value_in_the_same_commit() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let staging =
        "image:\n  repository: registry.example.com/team/app\n  tag: \"2.0.0\" # tested\n";
    let prod = "image:\n  repository: registry.example.com/team/app\n  tag: 1.9.0 # promoted from staging\n";
    let (repo, url) = server.repo(
        "team/promote",
        &[
            ("envs/staging/values.yaml", staging),
            ("envs/prod/values.yaml", prod),
        ],
    );
    let env = ssh_env(&server);
    let u = update(
        &[
            "--repo",
            &url,
            "--direct",
            "--promote",
            "envs/staging/values.yaml:image.tag=envs/prod/values.yaml:image.tag",
            "--set",
            "envs/staging/values.yaml:image.tag=2.1.0",
        ],
        &with(&env),
    );
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(repo.count("main"), 2, "one commit for both edits");
    // Prod gets the value staging had (tested), not the one this run writes.
    assert_eq!(
        repo.show("main:envs/prod/values.yaml"),
        prod.replace("1.9.0", "2.0.0")
    );
    assert_eq!(
        repo.show("main:envs/staging/values.yaml"),
        staging.replace("2.0.0", "2.1.0")
    );

    let refs = repo.git(&["for-each-ref"]);
    let bad = update(
        &[
            "--repo",
            &url,
            "--direct",
            "--promote",
            "envs/staging/values.yaml:image=envs/prod/values.yaml:image.tag",
        ],
        &with(&env),
    );
    assert_failed(
        &bad,
        3,
        "`image` is a mapping, not a value to promote",
        &repo,
        &refs,
    );
}

// Issue #13: `--put` adds or replaces whole files (a rendered manifest, a
// directory of them) in the same commit as the other edits.
#[test]
fn put_writes_whole_files_in_the_same_commit() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/put", &files());
    let local = tempfile::tempdir().unwrap();
    let l = local.path();
    std::fs::write(l.join("manifest.yaml"), "kind: List\nitems: []\n").unwrap();
    std::fs::create_dir_all(l.join("rendered/sub")).unwrap();
    std::fs::write(l.join("rendered/a.yaml"), "a: 1\n").unwrap();
    std::fs::write(l.join("rendered/sub/b.yaml"), "b: 2\n").unwrap();
    let manifest = format!(
        "{}=apps/app/production/manifest.yaml",
        l.join("manifest.yaml").display()
    );
    let rendered = format!("{}=apps/app/rendered", l.join("rendered").display());
    let u = bump(
        &url,
        &server,
        "1.4.2",
        &["--direct", "--put", &manifest, "--put", &rendered],
    );
    succeeded(&u);
    assert_eq!(repo.count("main"), 2, "one commit for all of it");
    assert_eq!(
        repo.git(&["diff", "--name-only", "main~1", "main"]),
        "apps/app/production/manifest.yaml\napps/app/rendered/a.yaml\napps/app/rendered/sub/b.yaml\napps/app/values.yaml"
    );
    assert_eq!(
        repo.show("main:apps/app/production/manifest.yaml"),
        "kind: List\nitems: []\n"
    );
    assert_eq!(repo.show("main:apps/app/rendered/sub/b.yaml"), "b: 2\n");
    // The same files again: nothing to commit.
    let u = bump(
        &url,
        &server,
        "1.4.2",
        &["--direct", "--put", &manifest, "--put", &rendered],
    );
    assert!(
        succeeded(&u).run.stderr.contains("already up to date"),
        "{}",
        u.run.stderr
    );
    // Replacing one file.
    std::fs::write(l.join("manifest.yaml"), "kind: List\nitems: [x]\n").unwrap();
    succeeded(&bump(
        &url,
        &server,
        "1.4.2",
        &["--direct", "--put", &manifest],
    ));
    assert_eq!(
        repo.show("main:apps/app/production/manifest.yaml"),
        "kind: List\nitems: [x]\n"
    );

    // Refused before the network: a YAML file that does not load; a file
    // another target edits.
    let refs = repo.git(&["for-each-ref"]);
    std::fs::write(l.join("broken.yaml"), "a: [1\n").unwrap();
    let broken = format!("{}=apps/x.yaml", l.join("broken.yaml").display());
    let u = bump(&url, &server, "1.4.3", &["--direct", "--put", &broken]);
    assert_failed(&u, 3, "broken.yaml: is not valid YAML", &repo, &refs);
    let over = format!("{}=apps/app/values.yaml", l.join("manifest.yaml").display());
    let u = bump(&url, &server, "1.4.3", &["--direct", "--put", &over]);
    assert_failed(
        &u,
        2,
        "replaces `apps/app/values.yaml`, which --image/--set/--promote also edit",
        &repo,
        &refs,
    );
}
