//! Contract tests: every request tagbump's forge clients send is checked
//! against the vendor's own OpenAPI description, served by Stoplight Prism
//! with request validation on. Prism answers an invalid request with 422 (and
//! an `sl-violations` header), which the clients turn into an error, so an
//! invalid request fails the test.
//!
//! The descriptions are the project's own trimmed copies in `tests/contracts/`
//! (GitLab's openapi_v2; GitHub's from npm @octokit/openapi; sources and
//! licences in `tests/contracts/SOURCES.md`). Prism is installed by
//! `scripts/test.sh` (npm) into `target/tools/prism`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tagbump::forge::{self, ChangeRequest, Connection, Kind, Operation, TokenHeader};
use tagbump::secret::Secret;

use crate::servers::free_port;

fn contracts() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contracts");
    if dir.join("github-pulls.trimmed.json").is_file() {
        Some(dir)
    } else {
        crate::support::skip_or_fail(&format!(
            "contract tests: the OpenAPI descriptions are missing from {}",
            dir.display()
        ));
        None
    }
}

fn prism_binary() -> Option<PathBuf> {
    let path = std::env::var_os("TAGBUMP_PRISM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/prism/node_modules/.bin/prism")
        });
    if path.exists() {
        return Some(path);
    }
    let reason = format!(
        "contract tests: Prism not installed at {} (scripts/test.sh installs it)",
        path.display()
    );
    crate::support::skip_or_fail(&reason);
    None
}

struct Prism {
    child: Child,
    url: String,
}

impl Prism {
    fn start(spec: &Path) -> Option<Prism> {
        let binary = prism_binary()?;
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("log");
        let child = Command::new(binary)
            .args(["mock", "--host", "127.0.0.1", "--port", &port.to_string()])
            .arg(spec)
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start prism");
        let mut prism = Prism {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = prism.child.try_wait() {
                panic!(
                    "prism exited with {status}: {}",
                    std::fs::read_to_string(log.path()).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "prism did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(prism)
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn request(source: &str, target: &str) -> ChangeRequest {
    ChangeRequest {
        title: "Update team/app to 1.4.2".into(),
        description: "| file | path | old | new |\n|---|---|---|---|\n| `values.yaml` | `image.tag` | `1.4.1` | `1.4.2` |\n".into(),
        source_branch: source.into(),
        target_branch: target.into(),
        merge_method: tagbump::forge::MergeMethod::Squash,
        ..ChangeRequest::default()
    }
}

/// A raw request, to read Prism's example data and to prove it validates.
fn raw(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, Option<String>) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "-", "-D", "/dev/stderr", "-X", method, url]);
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    if let Some(body) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data", body]);
    }
    let out = cmd.output().expect("curl");
    let head = String::from_utf8_lossy(&out.stderr).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let violations = head
        .lines()
        .find(|l| l.to_lowercase().starts_with("sl-violations"))
        .map(str::to_string);
    (
        status,
        String::from_utf8_lossy(&out.stdout).to_string(),
        violations,
    )
}

#[test]
fn gitlab_requests_match_gitlabs_openapi_description() {
    let Some(dir) = contracts() else { return };
    let Some(prism) = Prism::start(&dir.join("gitlab-merge-requests.openapi_v2.trimmed.yaml"))
    else {
        return;
    };
    let api = format!("{}/api/v4", prism.url);
    let rt = runtime();
    for header in [TokenHeader::Private, TokenHeader::Bearer] {
        let conn = Connection {
            kind: Kind::GitLab,
            api_url: api.clone(),
            project: "team/manifests".into(),
            token: Secret::new("glpat-contract-test-token"),
            header,
            timeout: Duration::from_secs(20),
        };
        // List (no match among the examples), then create: both validated.
        let mut create = request("tagbump/main/team-app", "main");
        create.labels = vec!["gitops".into(), "bump".into()];
        create.remove_source_branch = true;
        create.squash = true;
        create.draft = true;
        let outcome = rt
            .block_on(forge::open_or_update(&conn, &create))
            .expect("list + create are valid requests");
        assert_eq!(outcome.operation, Operation::Created);

        // Update: pick the branches of the MR the mock lists, so the client finds it.
        let (status, body, _) = raw(
            "GET",
            &format!("{api}/projects/team%2Fmanifests/merge_requests?state=opened"),
            &[("PRIVATE-TOKEN", "x")],
            None,
        );
        assert_eq!(status, 200, "{body}");
        let listed: serde_json::Value = serde_json::from_str(&body).expect("json");
        let first = &listed[0];
        let mut update = request(
            first["source_branch"].as_str().unwrap(),
            first["target_branch"].as_str().unwrap(),
        );
        update.labels = vec!["gitops".into()];
        let outcome = rt
            .block_on(forge::open_or_update(&conn, &update))
            .expect("update is a valid request");
        assert_eq!(outcome.operation, Operation::Updated);
    }

    // The mock does validate: a create without its required fields is refused.
    let (status, _, violations) = raw(
        "POST",
        &format!("{api}/projects/team%2Fmanifests/merge_requests"),
        &[("PRIVATE-TOKEN", "x")],
        Some(r#"{"title": 42}"#),
    );
    assert_eq!(status, 422, "an invalid request must be refused");
    assert!(violations.is_some());
    // ... and so does the client: an invalid request is an error, not a success.
    let conn = Connection {
        kind: Kind::GitLab,
        api_url: api.clone(),
        project: "team/manifests".into(),
        token: Secret::new("glpat-contract-test-token"),
        header: TokenHeader::Job,
        timeout: Duration::from_secs(20),
    };
    let refused = rt.block_on(forge::open_or_update(&conn, &request("b", "main")));
    assert!(
        refused.is_err(),
        "JOB-TOKEN is not in this description's security schemes: {refused:?}"
    );
}

#[test]
fn github_requests_match_githubs_openapi_description() {
    let Some(dir) = contracts() else { return };
    let Some(prism) = Prism::start(&dir.join("github-pulls.trimmed.json")) else {
        return;
    };
    let rt = runtime();
    let conn = Connection {
        kind: Kind::GitHub,
        api_url: prism.url.clone(),
        project: "octocat/hello-world".into(),
        token: Secret::new("ghp_contract_test_token"),
        header: TokenHeader::Bearer,
        timeout: Duration::from_secs(20),
    };
    // List, create, labels, reviewers.
    let mut create = request("tagbump/main/team-app", "main");
    create.labels = vec!["gitops".into()];
    create.reviewers = vec!["octocat".into(), "acme/platform".into()];
    create.draft = true;
    let outcome = rt
        .block_on(forge::open_or_update(&conn, &create))
        .expect("list + create + labels + reviewers are valid");
    assert_eq!(outcome.operation, Operation::Created);

    // Update an open PR the mock lists.
    let (status, body, _) = raw(
        "GET",
        &format!("{}/repos/octocat/hello-world/pulls?state=open", prism.url),
        &[],
        None,
    );
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).expect("json");
    let first = &listed[0];
    let update = request(
        first["head"]["ref"].as_str().unwrap(),
        first["base"]["ref"].as_str().unwrap(),
    );
    let outcome = rt
        .block_on(forge::open_or_update(&conn, &update))
        .expect("update is a valid request");
    assert_eq!(outcome.operation, Operation::Updated);

    let (status, _, violations) = raw(
        "POST",
        &format!("{}/repos/octocat/hello-world/pulls", prism.url),
        &[],
        Some(r#"{"title": "no head or base"}"#),
    );
    assert_eq!(status, 422, "an invalid request must be refused");
    assert!(violations.is_some());
}

/// Every GraphQL document `--via api` sends is valid against GitHub's
/// published schema (npm @octokit/graphql-schema), checked with graphql-js's
/// `validate`. `scripts/test.sh` installs both into `target/tools/graphql`.
#[test]
fn github_graphql_documents_match_the_published_schema() {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/graphql/node_modules");
    let schema = tools.join("@octokit/graphql-schema/schema.json");
    if !schema.is_file() || !tools.join("graphql").is_dir() {
        crate::support::skip_or_fail(&format!(
            "GraphQL contract: {} not installed (scripts/test.sh installs it)",
            schema.display()
        ));
        return;
    }
    let documents: Vec<serde_json::Value> = tagbump::forge::github::documents()
        .into_iter()
        .map(|(name, query)| serde_json::json!({"name": name, "query": query}))
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_string(&documents).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/contracts/validate-graphql.js"))
        .arg(&schema)
        .arg(file.path())
        .env("NODE_PATH", &tools)
        .output()
        .expect("run node");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.ends_with(": valid")).count(),
        documents.len(),
        "{text}"
    );
}

/// The REST call `--via api` makes on GitHub besides GraphQL — the recursive
/// tree listing — sent by the real client to Prism serving GitHub's full
/// OpenAPI description (npm @octokit/openapi, installed by
/// `scripts/test.sh`), cut down to that path and the components it refers
/// to. Prism refuses a request that does not match (422), and the client
/// must read the example answer it sends.
#[test]
fn github_tree_listing_matches_the_published_openapi() {
    use tagbump::update::transport::Transport;
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "target/tools/octokit-openapi/node_modules/@octokit/openapi/generated/api.github.com.json",
    );
    let Ok(text) = std::fs::read_to_string(&file) else {
        crate::support::skip_or_fail(&format!(
            "REST contract: {} not installed (scripts/test.sh installs it)",
            file.display()
        ));
        return;
    };
    let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    let path = "/repos/{owner}/{repo}/git/trees/{tree_sha}";
    let op = &spec["paths"][path]["get"];
    let params: Vec<&str> = op["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(params.contains(&"recursive"), "{params:?}");
    let trimmed = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(trimmed.path(), trim(&spec, path).to_string()).unwrap();
    let Some(prism) = Prism::start(trimmed.path()) else {
        return;
    };
    let repo = tagbump::forge::github::transport::GitHubRepo::new(&Connection {
        kind: Kind::GitHub,
        api_url: prism.url.clone(),
        project: "octocat/hello-world".into(),
        token: Secret::new("ghp_CONTRACTTOKEN0123"),
        header: TokenHeader::Bearer,
        timeout: Duration::from_secs(30),
    })
    .unwrap();
    let listed = repo.yaml_files("9fb037999f264ba9a7fc6274d15fa3ae2ab98312", "");
    assert!(listed.is_ok(), "{:#}", listed.err().unwrap());
    assert_eq!(
        repo.requests(),
        1,
        "one listing, no file reads for non-YAML paths"
    );
}

/// `spec` with only the `path` item, and the components it refers to
/// (transitively): a description Prism loads in a second instead of 13 MB.
fn trim(spec: &serde_json::Value, path: &str) -> serde_json::Value {
    fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(r) = map.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r.to_string());
                }
                map.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let item = spec["paths"][path].clone();
    let mut components = serde_json::json!({});
    let mut todo = Vec::new();
    refs(&item, &mut todo);
    while let Some(r) = todo.pop() {
        let Some(parts) = r.strip_prefix("#/components/") else {
            continue;
        };
        let (section, name) = parts.split_once('/').unwrap();
        if components[section].get(name).is_some() {
            continue;
        }
        let found = spec["components"][section][name].clone();
        refs(&found, &mut todo);
        if components.get(section).is_none() {
            components[section] = serde_json::json!({});
        }
        components[section][name] = found;
    }
    serde_json::json!({
        "openapi": spec["openapi"],
        "info": spec["info"],
        "paths": {path: item},
        "components": components,
    })
}

/// Issue #24: every request tagbump sends to Gitea, recorded by the fake
/// (`fake_repo_api_gitea.rs`) over runs that reach each endpoint — a scan
/// (tree, contents), a new branch and its commit, a pull request with labels
/// by id, assignee, reviewer, draft and auto-merge, the same run again (the
/// branch's commit read), a direct commit, the version probe — and replayed
/// to Prism serving Gitea's Swagger (`gitea.trimmed.apiv1.json`): none is
/// refused, and none goes to a path the description lacks.
#[test]
fn gitea_requests_match_giteas_swagger_description() {
    let Some(dir) = contracts() else { return };
    let s = crate::gitea::setup();
    let mut args = vec![
        "--image",
        "registry.example.com/team/app:1.4.2",
        "--in",
        "apps",
        "--via",
        "api",
    ];
    args.extend_from_slice(&crate::gitea::REQUEST_FLAGS);
    crate::gitea::json(&s.run(&args));
    // Again, with a label the open pull request lacks.
    args.extend_from_slice(&["--label", "release"]);
    crate::gitea::json(&s.run(&args));
    crate::gitea::json(&s.run(&["--set", "apps/app/values.yaml:replicas=4", "--direct"]));
    let host = s.fake.url.trim_start_matches("http://").to_string();
    let detected = crate::pipeline::update(
        &[
            "--repo",
            &format!("http://{host}/acme/deploy.git"),
            "--set",
            "apps/app/values.yaml:replicas=3",
            "--dry-run",
        ],
        &[("GITEA_TOKEN", crate::gitea::TOKEN)],
    );
    assert_eq!(detected.run.code, 0, "{}", detected.run.stderr);
    let recorded = s.fake.state.lock().unwrap().recorded.clone();

    let Some(prism) = Prism::start(&dir.join("gitea.trimmed.apiv1.json")) else {
        return;
    };
    let mut endpoints = std::collections::BTreeSet::new();
    for (method, target, body) in &recorded {
        let target = prism_path(target);
        let body = (!body.is_null()).then(|| body.to_string());
        let (status, answer, violations) = raw(
            method,
            &format!("{}{target}", prism.url),
            &[("Authorization", "token gta_contract_test")],
            body.as_deref(),
        );
        assert!(
            violations.is_none() && !matches!(status, 400 | 404 | 405 | 422),
            "{method} {target} {}: HTTP {status} {violations:?} {answer}",
            body.unwrap_or_default()
        );
        let path = target.split('?').next().unwrap_or_default();
        const WORDS: [&str; 10] = [
            "contents",
            "branches",
            "git",
            "trees",
            "commits",
            "pulls",
            "issues",
            "labels",
            "requested_reviewers",
            "merge",
        ];
        let shape: Vec<&str> = path
            .split('/')
            .skip(6)
            .filter(|p| WORDS.contains(p))
            .collect();
        endpoints.insert(format!("{method} {}", shape.join("/")));
    }
    let expected = [
        "GET ",
        "GET branches",
        "POST branches",
        "GET contents",
        "POST contents",
        "GET git/trees",
        "GET git/commits",
        "GET pulls",
        "POST pulls",
        "POST issues/labels",
        "POST pulls/requested_reviewers",
        "POST pulls/merge",
        "GET labels",
    ];
    for endpoint in expected {
        assert!(
            endpoints.contains(endpoint),
            "{endpoint} not replayed: {endpoints:?}"
        );
    }
    // And the check bites: a change-files body without `files` is refused.
    let (status, _, violations) = raw(
        "POST",
        &format!("{}/api/v1/repos/acme/deploy/contents", prism.url),
        &[("Authorization", "token gta_contract_test")],
        Some(r#"{"branch": "main"}"#),
    );
    assert_eq!(status, 422, "an invalid request must be refused");
    assert!(violations.is_some());
}

/// A recorded request's target as Prism can route it: an OpenAPI path
/// parameter holds no `/`, so the file path of `contents/{filepath}` and
/// the branch name of `branches/{branch}` (tagbump's review branches have
/// slashes; Gitea's routes take them as they are) go encoded.
fn prism_path(target: &str) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut out = path.to_string();
    for marker in ["/contents/", "/branches/"] {
        if let Some(at) = path.find(marker) {
            let (head, tail) = path.split_at(at + marker.len());
            out = format!("{head}{}", tail.replace('/', "%2F"));
        }
    }
    if query.is_empty() {
        out
    } else {
        format!("{out}?{query}")
    }
}
