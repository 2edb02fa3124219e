//! The CI files users copy: validated against the published schemas
//! (check-jsonschema's bundled GitHub Actions and GitLab CI schemas), and the
//! example GitLab job actually run with gitlab-emulator against a real git
//! server and the fake forge. scripts/test.sh installs both tools into
//! target/tools/py.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fake_forge::FakeForge;
use crate::pipeline::files;
use crate::servers::SshServer;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> Option<PathBuf> {
    let path = root().join("target/tools/py/bin").join(name);
    if path.exists() {
        return Some(path);
    }
    let reason = format!(
        "{name} not installed at {} (scripts/test.sh installs it)",
        path.display()
    );
    crate::support::skip_or_fail(&reason);
    None
}

/// `(ok, output)` of check-jsonschema on `file` with a bundled schema.
fn validate(schema: &str, file: &Path) -> (bool, String) {
    let out = Command::new(tool("check-jsonschema").unwrap())
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .expect("check-jsonschema");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// zizmor, the GitHub Actions security linter, finds nothing at medium
/// severity or above in the workflows and the action (run offline).
#[test]
fn the_actions_pass_zizmor() {
    let Some(zizmor) = tool("zizmor") else {
        return;
    };
    let out = Command::new(zizmor)
        .args(["--offline", "--min-severity", "medium"])
        .arg(root().join("action.yml"))
        .arg(root().join(".github"))
        .output()
        .expect("zizmor");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("No findings to report"), "{text}");
}

#[test]
fn ci_files_match_the_published_schemas() {
    if tool("check-jsonschema").is_none() {
        return;
    }
    let (ok, out) = validate("vendor.github-actions", &root().join("action.yml"));
    assert!(ok, "action.yml: {out}");
    for workflow in std::fs::read_dir(root().join(".github/workflows")).unwrap() {
        let path = workflow.unwrap().path();
        let (ok, out) = validate("vendor.github-workflows", &path);
        assert!(ok, "{}: {out}", path.display());
    }
    let (ok, out) = validate("vendor.gitlab-ci", &root().join(".gitlab-ci.yml"));
    assert!(ok, ".gitlab-ci.yml: {out}");
    // The component is two documents: its `spec:` header and its jobs.
    let component = std::fs::read_to_string(root().join("templates/tagbump.yml")).unwrap();
    let (spec, jobs) = component
        .split_once("\n---\n")
        .expect("spec header and jobs");
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("spec.yml", spec), ("jobs.yml", jobs)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let (ok, out) = validate("vendor.gitlab-ci", &path);
        assert!(ok, "templates/tagbump.yml ({name}): {out}");
    }
    // The check is not vacuous: a misspelt key fails it.
    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, "job:\n  scrip: [echo]\n").unwrap();
    assert!(
        !validate("vendor.gitlab-ci", &broken).0,
        "the GitLab schema must reject `scrip:`"
    );
    let broken = dir.path().join("action.yml");
    std::fs::write(
        &broken,
        "name: x\ndescription: y\nruns:\n  using: composite\n  step: []\n",
    )
    .unwrap();
    assert!(
        !validate("vendor.github-actions", &broken).0,
        "the Actions schema must reject `step:`"
    );
}

#[test]
fn the_example_gitlab_job_updates_the_manifest_repo_and_opens_an_mr() {
    let Some(gle) = tool("gle") else { return };
    let Some(server) = SshServer::start() else {
        return;
    };
    let (repo, url) = server.repo("team/gle", &files());
    let forge = FakeForge::start("glpat-GLECANARY1234567");
    let project = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join(".gitlab-ci.yml"),
        project.path().join(".gitlab-ci.yml"),
    )
    .unwrap();
    crate::servers::run(Command::new("git").args(["init", "-q"]).arg(project.path()));
    let bin_dir = Path::new(crate::support::bin())
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(gle)
        .args(["--ignore-docker", "-C"])
        .arg(project.path())
        .arg("update-manifests")
        .env_clear()
        .env("PATH", path)
        .env("HOME", home.path())
        .env("TAGBUMP_REPO", &url)
        .env("SSH_PRIVATE_KEY", &server.key)
        .env("SSH_KNOWN_HOSTS", &server.known_hosts)
        .env("GITLAB_TOKEN", "glpat-GLECANARY1234567")
        .env("TAGBUMP_FORGE", "gitlab")
        .env("TAGBUMP_API_URL", format!("{}/api/v4", forge.url))
        .env("TAGBUMP_PROJECT", "team/gle")
        .env("CI_REGISTRY_IMAGE", "registry.example.com/team/app")
        .env("CI_COMMIT_SHORT_SHA", "1.4.2")
        .output()
        .expect("gle");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the job failed:\n{log}");
    assert!(
        !log.contains("glpat-GLECANARY1234567"),
        "the token leaked:\n{log}"
    );
    assert!(
        repo.show("tagbump/main/team-app-d3545c89:apps/app/values.yaml")
            .contains("tag: \"1.4.2\""),
        "{log}"
    );
    let mrs = forge.items();
    assert_eq!(mrs.len(), 1, "{log}");
    assert_eq!(mrs[0]["labels"], serde_json::json!(["gitops"]));
    let dotenv =
        std::fs::read_to_string(project.path().join("tagbump.env")).expect("dotenv report");
    assert!(
        dotenv.contains("TAGBUMP_CHANGED=true\n") && dotenv.contains("TAGBUMP_PR_NUMBER=1\n"),
        "{dotenv}"
    );
}
