//! Issue #9: `tagbump update` under load and faults, against real servers:
//! an sshd that sheds connections (`MaxStartups`), a pre-receive hook that
//! declines, a smart-HTTP server behind a proxy that answers 503 first, a
//! server that accepts and never answers, a SIGTERM mid-run, and input that
//! must be refused before any network work.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pipeline::{assert_failed, files, ssh_env, update, with, Update};
use crate::servers::{HttpServer, SshServer};

/// `n` concurrent `--direct` writers, each bumping its own service, with
/// default flags.
fn writers(url: &str, env: &[(&'static str, String)], n: usize) -> Vec<Update> {
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (url, env) = (url.to_string(), env.to_vec());
            std::thread::spawn(move || {
                let image = format!("registry.example.com/team/svc-{i}:2.0.{i}");
                update(
                    &["--repo", &url, "--image", &image, "--direct"],
                    &with(&env),
                )
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn services(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            (
                format!("apps/svc-{i}/values.yaml"),
                format!(
                    "image:\n  repository: registry.example.com/team/svc-{i}\n  tag: \"1.0.0\"\n"
                ),
            )
        })
        .collect()
}

// sshd with `MaxStartups 2:100:2` drops every unauthenticated connection
// beyond two before the banner: "Failed getting banner", a transient fault.
#[test]
fn a_server_shedding_connections_loses_no_writer() {
    let Some(server) = SshServer::start_with("2:100:2") else {
        return;
    };
    const N: usize = 8;
    let texts = services(N);
    let (repo, url) = server.repo("team/shed", &texts);
    let env = ssh_env(&server);
    let results = writers(&url, &env, N);
    for (i, u) in results.iter().enumerate() {
        assert_eq!(u.run.code, 0, "writer {i}: {}", u.run.stderr);
        assert!(u.leftovers.is_empty(), "writer {i} left {:?}", u.leftovers);
    }
    assert_eq!(repo.count("main"), N + 1, "every writer landed, once");
    assert_eq!(repo.git(&["rev-list", "--min-parents=2", "main"]), "");
    let shed = results
        .iter()
        .filter(|u| u.run.stderr.contains("banner") || u.run.stderr.contains("SSH session"))
        .count();
    eprintln!("{shed} of {N} writers were shed at least once and retried");
}

#[test]
fn wrong_key_and_unknown_host_key_fail_at_once() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/auth", &files());
    let refs = repo.git(&["for-each-ref"]);
    let args = [
        "--repo",
        url.as_str(),
        "--image",
        "registry.example.com/team/app:2.0.0",
        "--direct",
    ];
    let wrong = update(
        &args,
        &[
            ("SSH_PRIVATE_KEY", &server.wrong_key),
            ("SSH_KNOWN_HOSTS", &server.known_hosts),
        ],
    );
    assert_failed(&wrong, 6, "authentication failed", &repo, &refs);
    let other = SshServer::start().expect("a second server");
    let unknown = update(
        &args,
        &[
            ("SSH_PRIVATE_KEY", &server.key),
            ("SSH_KNOWN_HOSTS", &other.known_hosts),
        ],
    );
    assert_failed(&unknown, 6, "host key verification failed", &repo, &refs);
    for u in [&wrong, &unknown] {
        assert!(
            !u.run.stderr.contains("trying again"),
            "retried: {}",
            u.run.stderr
        );
    }
}

// A protected branch: the hook's words are shown, one attempt, its own code.
#[test]
fn a_declining_hook_is_final_and_its_message_is_shown() {
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/protected", &files());
    let hook = repo.path.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'GitLab: You are not allowed to push code to protected branches on this project.'\nexit 1\n",
    )
    .unwrap();
    crate::servers::run(Command::new("chmod").arg("755").arg(&hook));
    let refs = repo.git(&["for-each-ref"]);
    let started = Instant::now();
    let u = update(
        &[
            "--repo",
            &url,
            "--image",
            "registry.example.com/team/app:2.0.0",
            "--direct",
        ],
        &with(&ssh_env(&server)),
    );
    assert_failed(
        &u,
        9,
        "remote: GitLab: You are not allowed to push code to protected branches on this project.",
        &repo,
        &refs,
    );
    assert!(
        u.run.stderr.contains("declined the push to `main`"),
        "{}",
        u.run.stderr
    );
    assert!(
        !u.run.stderr.contains("trying again"),
        "retried: {}",
        u.run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

/// A TCP server that accepts every connection and never says a word.
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

#[test]
fn a_server_that_never_answers_fails_after_the_timeout() {
    let Some(keys) = SshServer::start() else {
        return;
    };
    let port = silent_server();
    let url = format!("ssh://git@127.0.0.1:{port}/team/x.git");
    let started = Instant::now();
    let u = update(
        &[
            "--repo",
            &url,
            "--image",
            "registry.example.com/team/app:2.0.0",
            "--timeout",
            "3",
        ],
        &with(&ssh_env(&keys)),
    );
    let took = started.elapsed();
    assert_eq!(u.run.code, 7, "{}", u.run.stderr);
    assert!(
        u.run.stderr.contains(&format!(
            "gave up after 3 s (--timeout) while connecting to {url}"
        )),
        "{}",
        u.run.stderr
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(u.leftovers.is_empty(), "left {:?}", u.leftovers);
}

#[test]
fn sigterm_removes_the_temporary_clone() {
    let Some(keys) = SshServer::start() else {
        return;
    };
    let port = silent_server();
    let url = format!("ssh://git@127.0.0.1:{port}/team/x.git");
    let sandbox = crate::support::Sandbox::new();
    let tmp = &sandbox.tmp;
    let child = sandbox
        .command()
        .args([
            "update",
            "--repo",
            &url,
            "--image",
            "registry.example.com/team/app:2.0.0",
        ])
        .env("SSH_PRIVATE_KEY", &keys.key)
        .env("SSH_KNOWN_HOSTS", &keys.known_hosts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the clone exists (the run is connecting), then stop it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(tmp.path()).unwrap().next().is_none() {
        assert!(Instant::now() < deadline, "no temporary clone appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    crate::servers::run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("stopped by SIGTERM while connecting to"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A proxy in front of a real smart-HTTP server that answers the first
/// `refuse` connections with `503 Service Unavailable` and `Retry-After: 1`,
/// and passes the rest through. Returns its port and the count of 503s sent.
pub fn flaky_proxy(backend: u16, refuse: usize) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let refused = Arc::new(AtomicUsize::new(0));
    let count = refused.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            if count.load(Ordering::SeqCst) < refuse {
                count.fetch_add(1, Ordering::SeqCst);
                let mut client = client;
                let mut buf = [0u8; 4096];
                let _ = client.read(&mut buf);
                let _ = client.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            relay(client, backend, Duration::ZERO);
        }
    });
    (port, refused)
}

/// Pass `client`'s connection on to `backend`, both ways, holding each
/// chunk the server sends for `delay` (none: a plain proxy).
fn relay(client: TcpStream, backend: u16, delay: Duration) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", backend)) else {
        return;
    };
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut c1, mut s1) = (client, server);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c1, &mut s1);
        let _ = s1.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(n) = s2.read(&mut buf) {
            if n == 0 {
                break;
            }
            std::thread::sleep(delay);
            if c2.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = c2.shutdown(std::net::Shutdown::Write);
    });
}

#[test]
fn http_503_is_retried_and_401_is_not() {
    let token = "glpat-FLAKY1234567890abc";
    let Some(server) = HttpServer::start(token) else {
        return;
    };
    let (repo, _http, _https) = server.repo("team/flaky", &files());
    let (port, refused) = flaky_proxy(server.http_port, 3);
    let url = format!("http://127.0.0.1:{port}/team/flaky.git");
    let u = update(
        &[
            "--repo",
            &url,
            "--image",
            "registry.example.com/team/app:2.0.0",
            "--direct",
        ],
        &[("CI_JOB_TOKEN", token)],
    );
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(refused.load(Ordering::SeqCst), 3);
    assert!(
        u.run.stderr.contains("503") && u.run.stderr.contains("trying again"),
        "{}",
        u.run.stderr
    );
    // libgit2 hides the headers; tagbump asks again to read Retry-After.
    assert!(
        u.run.stderr.contains("the server asks to retry after 1 s"),
        "{}",
        u.run.stderr
    );
    assert_eq!(repo.count("main"), 2);
    assert!(!u.run.stderr.contains(token));

    let refs = repo.git(&["for-each-ref"]);
    let denied = update(
        &[
            "--repo",
            &url,
            "--image",
            "registry.example.com/team/app:3.0.0",
            "--direct",
        ],
        &[("CI_JOB_TOKEN", "glpat-WRONG-WRONG-WRONG")],
    );
    assert_failed(&denied, 6, "authentication failed", &repo, &refs);
    assert!(
        !denied.run.stderr.contains("trying again"),
        "{}",
        denied.run.stderr
    );
}

// Mistakes in the input are found before any network work: the URL points
// at a port where nothing listens, and the errors are not "cannot connect".
#[test]
fn bad_input_is_refused_before_the_network() {
    let url = "ssh://git@127.0.0.1:1/team/x.git";
    let image = "registry.example.com/team/app:2.0.0";
    for (args, code, needle) in [
        (
            vec!["--repo", url, "--image", image, "--branch", "bad..name"],
            2,
            "--branch `bad..name` is not a valid branch name",
        ),
        (
            vec![
                "--repo",
                url,
                "--image",
                image,
                "--base",
                "release/1.x.lock",
            ],
            2,
            "--base `release/1.x.lock` is not a valid branch name",
        ),
        (
            vec!["--repo", url, "--image", image, "--in", "../../etc"],
            2,
            "--in `../../etc` goes up with `..`",
        ),
        (
            vec!["--repo", url, "--set", "../x.yaml:a=1"],
            2,
            "`../x.yaml` goes up with `..`",
        ),
        (
            vec!["--repo", "/no/such/manifests.git", "--image", image],
            4,
            "no such repository: `/no/such/manifests.git`",
        ),
    ] {
        let u = update(&args, &[("SSH_PRIVATE_KEY", "x"), ("SSH_KNOWN_HOSTS", "x")]);
        assert_eq!(u.run.code, code, "{args:?}: {}", u.run.stderr);
        assert!(u.run.stderr.contains(needle), "{args:?}: {}", u.run.stderr);
    }
}

// No credential is printed, whatever the shape of the URL it came in.
#[test]
fn tokens_in_odd_urls_never_leak() {
    let token = "glpat-ODDURL9876543210";
    for repo in [
        format!("oauth2:{token}@gitlab.example.com:team/x.git"),
        format!("https://oauth2:{token}@[bad-host/team/x.git"),
        format!("ftp://oauth2:{token}@host/team/x.git"),
        format!("https://oauth2:{token}@127.0.0.1:1/team/x.git"),
    ] {
        let u = update(
            &[
                "--repo",
                &repo,
                "--image",
                "registry.example.com/team/app:2.0.0",
            ],
            &[],
        );
        assert_ne!(u.run.code, 0);
        let all = format!("{}{}", u.run.stdout, u.run.stderr);
        assert!(!all.contains(token), "{repo}: the token leaked:\n{all}");
        assert!(all.contains("error:"), "{all}");
    }
}

/// A TCP proxy in front of `backend` that holds every chunk the server
/// sends for `delay` before passing it on: a slow link, so that a run
/// spends long enough in each stage (connect, fetch, push) to be stopped
/// there.
fn slow_proxy(backend: u16, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            relay(client, backend, delay);
        }
    });
    port
}

/// SIGTERM at points spread over a whole run through a slow link: every
/// stopped run exits 143 with nothing left in TMPDIR, and the stops landed
/// in each of `stages`.
fn stop_everywhere(
    name: &str,
    args: &dyn Fn(usize) -> Vec<String>,
    env: &[(&str, &str)],
    stages: &[&str],
) {
    let started = Instant::now();
    let tmp = std::env::temp_dir();
    let run = |argv: Vec<String>, after: Option<Duration>| {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let u = crate::pipeline::update_stopped(&tmp, &argv, env, after);
        (u.run.code, u.run.stderr, u.leftovers)
    };
    let (code, stderr, left) = run(args(0), None);
    assert_eq!(code, 0, "{name}: {stderr}");
    assert!(left.is_empty(), "{name}: {left:?}");
    let whole = started.elapsed();
    let mut seen: Vec<String> = Vec::new();
    const STOPS: usize = 12;
    // Points spread over the whole run, and the middle of each stage's
    // window as the reference run's stage lines timed it: a loaded machine
    // stretches the stages unevenly, and a short one could fall between
    // evenly spread points.
    let mut stops: Vec<Duration> = (1..=STOPS)
        .map(|i| whole.mul_f64(i as f64 / (STOPS as f64 + 1.0)))
        .collect();
    stops.extend(stage_middles(&stderr, stages));
    for (i, after) in stops.into_iter().enumerate() {
        let i = i + 1;
        let (code, stderr, left) = run(args(i), Some(after));
        assert!(
            left.is_empty(),
            "{name}, stopped after {after:?}: left {left:?}\n{stderr}"
        );
        if code == 0 {
            continue; // finished before the signal
        }
        assert_eq!(code, 143, "{name}, stopped after {after:?}: {stderr}");
        let Some(stage) = stderr
            .lines()
            .find_map(|l| l.strip_prefix("error: stopped by SIGTERM while "))
        else {
            panic!("{name}: {stderr}");
        };
        seen.push(
            stage
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
        );
    }
    for stage in stages {
        assert!(
            seen.iter().any(|s| s == stage),
            "{name}: never stopped while {stage}: {seen:?} (a run takes {whole:?})"
        );
    }
}

/// The middle of each of `stages`' windows in a run's stage lines
/// (`[   1.2s] fetching …`), from its first line to the next line.
fn stage_middles(stderr: &str, stages: &[&str]) -> Vec<Duration> {
    let timed: Vec<(f64, &str)> = stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('[')?;
            let (secs, text) = rest.split_once("s] ")?;
            Some((secs.trim().parse().ok()?, text.split_whitespace().next()?))
        })
        .collect();
    stages
        .iter()
        .filter_map(|stage| {
            let at = timed.iter().position(|(_, word)| word == stage)?;
            let start = timed[at].0;
            let end = timed.get(at + 1).map_or(start + 0.2, |(t, _)| *t);
            Some(Duration::from_secs_f64((start + end) / 2.0 + 0.05))
        })
        .collect()
}

// Issue #19, class 9: SIGTERM at each stage — connecting, fetching,
// pushing — over SSH, HTTPS and the API: exit 143, TMPDIR empty.
#[test]
fn sigterm_at_every_stage_leaves_nothing_behind() {
    let token = "glpat-SIGTERM0123456789";
    let (Some(ssh), Some(http)) = (SshServer::start(), HttpServer::start(token)) else {
        return;
    };
    let delay = Duration::from_millis(120);
    let git_stages = ["connecting", "fetching", "pushing"];
    let image = |i: usize| format!("registry.example.com/team/app:3.0.{i}");

    let (_repo, url) = ssh.repo("team/slow", &files());
    let port = slow_proxy(ssh.port, delay);
    let slow_url = url.replace(&format!(":{}/", ssh.port), &format!(":{port}/"));
    let known_hosts = ssh
        .known_hosts
        .replace(&format!(":{}", ssh.port), &format!(":{port}"));
    let env = [
        ("SSH_PRIVATE_KEY", ssh.key.as_str()),
        ("SSH_KNOWN_HOSTS", known_hosts.as_str()),
    ];
    let args = |i: usize| {
        vec![
            "--repo".into(),
            slow_url.clone(),
            "--image".into(),
            image(i),
            "--direct".into(),
        ]
    };
    stop_everywhere("SSH", &args, &env, &git_stages);

    let (_repo, _, https) = http.repo("team/slow", &files());
    let port = slow_proxy(http.https_port, delay);
    let slow_url = https.replace(&format!(":{}/", http.https_port), &format!(":{port}/"));
    let ca = http.ca.to_string_lossy().into_owned();
    let env = [
        ("TAGBUMP_GIT_TOKEN", token),
        ("GIT_SSL_CAINFO", ca.as_str()),
    ];
    let args = |i: usize| {
        vec![
            "--repo".into(),
            slow_url.clone(),
            "--image".into(),
            image(i),
            "--direct".into(),
            "--forge".into(),
            "none".into(),
        ]
    };
    stop_everywhere("HTTPS", &args, &env, &git_stages);

    let dir = tempfile::tempdir().unwrap();
    let repo = crate::servers::seed(&dir.path().join("api.git"), &files());
    let fake = crate::fake_repo_api::FakeRepoApi::github(&repo.path, token);
    let fake_port: u16 = fake
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let api = format!("http://127.0.0.1:{}", slow_proxy(fake_port, delay));
    let env = [("GITHUB_TOKEN", token)];
    let args = |i: usize| {
        vec![
            "--repo".into(),
            "https://github.example.com/acme/deploy.git".into(),
            "--forge".into(),
            "github".into(),
            "--api-url".into(),
            api.clone(),
            "--via".into(),
            "api".into(),
            "--image".into(),
            image(i),
            "--direct".into(),
        ]
    };
    stop_everywhere("API", &args, &env, &["reading", "committing"]);
}

// Issue #19, class 9: --timeout expiring while the run backs off after a
// refused connection gives that cause, not "accepts connections but does
// not answer".
#[test]
fn a_timeout_during_backoff_gives_the_last_cause() {
    let Some(keys) = SshServer::start() else {
        return;
    };
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("ssh://git@127.0.0.1:{port}/team/x.git");
    let u = update(
        &[
            "--repo",
            &url,
            "--image",
            "registry.example.com/team/app:2.0.0",
            "--timeout",
            "3",
            "--attempts",
            "50",
        ],
        &with(&ssh_env(&keys)),
    );
    assert_eq!(u.run.code, 7, "{}", u.run.stderr);
    let last = u
        .run
        .stderr
        .lines()
        .rfind(|l| l.starts_with("error: "))
        .unwrap();
    assert!(last.to_lowercase().contains("refused"), "{}", u.run.stderr);
    assert!(
        !u.run.stderr.contains("does not answer"),
        "{}",
        u.run.stderr
    );
    assert!(u.leftovers.is_empty(), "left {:?}", u.leftovers);
}

// The same for an API that answers 429 with a long Retry-After: the
// watchdog fires while the run waits, and says so with the 429.
#[test]
fn a_timeout_while_waiting_out_a_429_says_429() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut client in listener.incoming().flatten() {
            let mut buf = [0u8; 8192];
            let _ = client.read(&mut buf);
            let _ = client.write_all(
                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let api = format!("http://127.0.0.1:{port}");
    let u = update(
        &[
            "--repo",
            "https://github.example.com/acme/deploy.git",
            "--forge",
            "github",
            "--api-url",
            &api,
            "--via",
            "api",
            "--direct",
            "--set",
            "apps/app/values.yaml:replicas=3",
            "--timeout",
            "3",
        ],
        &[("GITHUB_TOKEN", "ghp_TIMEOUT0123456789")],
    );
    assert_eq!(u.run.code, 7, "{}", u.run.stderr);
    let last = u
        .run
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap();
    assert!(
        last.starts_with("error: gave up after 3 s (--timeout) waiting to try again while ")
            && last.contains("HTTP 429"),
        "{}",
        u.run.stderr
    );
    assert!(
        !u.run.stderr.contains("does not answer"),
        "{}",
        u.run.stderr
    );
}
