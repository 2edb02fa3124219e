//! The CI files users copy: validated against the published schemas
//! (check-jsonschema's bundled GitHub Actions and GitLab CI schemas), and the
//! example GitLab job actually run with gitlab-emulator against a real git
//! server and the fake forge. scripts/test.sh installs both tools into
//! target/tools/py.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::action::{package_as_release, run_step};
use crate::fake_forge::FakeForge;
use crate::pipeline::files;
use crate::servers::SshServer;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn tool(name: &str) -> Option<PathBuf> {
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

/// Runs `command`: whether it succeeded, and its stdout then stderr.
pub fn outcome(command: &mut Command) -> (bool, String) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `(ok, output)` of check-jsonschema on `file` with a bundled schema.
fn validate(schema: &str, file: &Path) -> (bool, String) {
    outcome(
        Command::new(tool("check-jsonschema").unwrap())
            .args(["--builtin-schema", schema])
            .arg(file),
    )
}

/// zizmor, the GitHub Actions security linter, finds nothing at medium
/// severity or above in the workflows and the action (run offline).
#[test]
fn the_actions_pass_zizmor() {
    let Some(zizmor) = tool("zizmor") else {
        return;
    };
    let (ok, text) = outcome(
        Command::new(zizmor)
            .args(["--offline", "--min-severity", "medium"])
            .arg(root().join("action.yml"))
            .arg(root().join(".github")),
    );
    assert!(ok, "{text}");
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
    // The component is two documents: its `spec:` header, and its jobs,
    // checked as GitLab sees them, with the inputs interpolated (an array
    // input is an array only then).
    let component = std::fs::read_to_string(root().join("templates/tagbump.yml")).unwrap();
    let (spec, _) = component
        .split_once("\n---\n")
        .expect("spec header and jobs");
    let jobs = render_component(&[("repo", s("git@gitlab.example.com:team/manifests.git"))]);
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("spec.yml", spec), ("jobs.yml", jobs.as_str())] {
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
    let home = tempfile::tempdir().unwrap();
    let (ok, log) = outcome(
        gle_in(
            &gle,
            project.path(),
            home.path(),
            &server,
            &forge,
            "team/gle",
        )
        .arg("update-manifests")
        .env("TAGBUMP_REPO", &url)
        .env("GITLAB_TOKEN", "glpat-GLECANARY1234567")
        .env("CI_REGISTRY_IMAGE", "registry.example.com/team/app")
        .env("CI_COMMIT_SHORT_SHA", "1.4.2"),
    );
    assert!(ok, "the job failed:\n{log}");
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

/// gitlab-emulator in `project` (a git work tree with its .gitlab-ci.yml):
/// this build's tagbump on PATH, a private HOME, only the variables a job
/// would have — the SSH server's key and host key, and the fake forge as
/// the GitLab of `gitlab_project`. Callers add the job and its token.
fn gle_in(
    gle: &Path,
    project: &Path,
    home: &Path,
    server: &SshServer,
    forge: &FakeForge,
    gitlab_project: &str,
) -> Command {
    let bin_dir = Path::new(crate::support::bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new(gle);
    command
        .args(["--ignore-docker", "-C"])
        .arg(project)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("SSH_PRIVATE_KEY", &server.key)
        .env("SSH_KNOWN_HOSTS", &server.known_hosts)
        .env("TAGBUMP_FORGE", "gitlab")
        .env("TAGBUMP_API_URL", format!("{}/api/v4", forge.url))
        .env("TAGBUMP_PROJECT", gitlab_project);
    command
}

pub fn yaml(relative: &str) -> serde_norway::Value {
    let text = std::fs::read_to_string(root().join(relative)).expect(relative);
    serde_norway::from_str(&text).expect(relative)
}

/// The `run:` script of the step called `name`; it must take its inputs
/// from `env:`, never from `${{ }}` expressions (so it can run here).
pub fn step_script(steps: &serde_norway::Value, name: &str) -> String {
    let step = steps
        .as_sequence()
        .expect("steps")
        .iter()
        .find(|step| step["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no step {name:?}"));
    let script = step["run"].as_str().expect("run").to_string();
    assert!(!script.contains("${{"), "{name}: {script}");
    script
}

/// The image is made from the release archives: both pipelines unpack them
/// where the Dockerfile copies from (run here on archives the packaging
/// step made), the Dockerfile runs nothing for the target platform (no
/// emulation), its user is not root, and hadolint finds nothing.
#[test]
fn the_image_is_made_from_the_release_archives() {
    let Some(hadolint) = tool("hadolint") else {
        return;
    };
    let ws = tempfile::tempdir().unwrap();
    for target in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
        package_as_release(ws.path(), target);
    }
    let binary = std::fs::read(crate::support::bin()).unwrap();
    let unpacked = |how: &str| {
        for arch in ["amd64", "arm64"] {
            let path = ws.path().join("image").join(arch).join("tagbump");
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{how}: {e}"));
            assert!(
                bytes == binary,
                "{how}: {} is not the binary",
                path.display()
            );
        }
        std::fs::remove_dir_all(ws.path().join("image")).unwrap();
    };
    let release = yaml(".github/workflows/release.yml");
    let script = step_script(&release["jobs"]["image"]["steps"], "Unpack the binaries");
    let (ok, log) = run_step(&script, ws.path(), &[]);
    assert!(ok, "{log}");
    unpacked("release.yml");
    let gitlab = yaml(".gitlab-ci.yml");
    let lines: Vec<&str> = gitlab["container-image"]["script"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .take_while(|line| !line.contains("docker"))
        .collect();
    let (ok, log) = outcome(
        Command::new("sh")
            .args(["-euc", &lines.join("\n")])
            .current_dir(ws.path()),
    );
    assert!(ok, "{log}");
    unpacked(".gitlab-ci.yml");

    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let last_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(!last_stage.contains("\nRUN "), "{last_stage}");
    assert!(last_stage
        .contains("COPY --chmod=0755 image/${TARGETARCH}/tagbump /usr/local/bin/tagbump\n"));
    assert!(last_stage.contains("\nUSER 10001:10001\n"), "{last_stage}");
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    assert!(ignore.contains("\n*\n!image/\n"), "{ignore}");
    let (ok, findings) = outcome(Command::new(hadolint).arg(root().join("Dockerfile")));
    assert!(ok, "{findings}");
}

/// The component's jobs with `inputs` interpolated, as GitLab does for an
/// `include: component:` (each `$[[ inputs.NAME ]]`: the given value, else
/// the default; arrays as YAML flow sequences).
fn render_component(inputs: &[(&str, serde_norway::Value)]) -> String {
    let text = std::fs::read_to_string(root().join("templates/tagbump.yml")).unwrap();
    let (spec, jobs) = text.split_once("\n---\n").unwrap();
    let spec: serde_norway::Value = serde_norway::from_str(spec).unwrap();
    let mut out = jobs.to_string();
    for (name, declared) in spec["spec"]["inputs"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let value = inputs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| declared.get("default").cloned())
            .unwrap_or_else(|| panic!("input {name} has no value"));
        // A value is inserted as a value, not as YAML text: a string stays
        // a string (`""` is not null), quoted or not in the template.
        let (text, bare) = match &value {
            serde_norway::Value::String(s) => (s.clone(), serde_json::to_string(s).unwrap()),
            serde_norway::Value::Bool(b) => (b.to_string(), b.to_string()),
            other => {
                let json = serde_json::to_string(other).unwrap();
                (json.clone(), json)
            }
        };
        let placeholder = format!("$[[ inputs.{name} ]]");
        out = out.replace(
            &format!("\"{placeholder}\""),
            &serde_json::to_string(&text).unwrap(),
        );
        out = out.replace(&placeholder, &bare);
    }
    assert!(
        !out.contains("$[["),
        "an input was not interpolated:\n{out}"
    );
    out
}

fn s(text: &str) -> serde_norway::Value {
    serde_norway::Value::String(text.into())
}

/// Issue #20: the component, safe by default. Its image is its own version;
/// included twice (two job names) in one pipeline, both jobs update the
/// manifest repo; with `dry_run` and extra `args` nothing is pushed; and by
/// its rules it runs in pipelines of the default branch and of tags, not of
/// a feature branch (gitlab-emulator evaluates the rules).
#[test]
fn the_component_included_twice_and_its_rules() {
    let Some(gle) = tool("gle") else { return };
    let Some(server) = SshServer::start() else {
        return;
    };
    let spec: serde_norway::Value = serde_norway::from_str(
        std::fs::read_to_string(root().join("templates/tagbump.yml"))
            .unwrap()
            .split_once("\n---\n")
            .unwrap()
            .0,
    )
    .unwrap();
    assert_eq!(
        spec["spec"]["inputs"]["tagbump_image"]["default"].as_str(),
        Some(concat!(
            "registry.gitlab.com/tagbump/tagbump:",
            env!("CARGO_PKG_VERSION")
        )),
        "the default image is the component's own version"
    );
    let (repo, url) = server.repo("team/component", &files());
    let forge = FakeForge::start("glpat-COMPONENT12345678");
    let project = tempfile::tempdir().unwrap();
    let pipeline = format!(
        "stages: [deploy]\n{}\n{}\n{}",
        render_component(&[
            ("job_name", s("bump-app")),
            ("repo", s(&url)),
            ("image", s("registry.example.com/team/app:1.4.2")),
            ("in", s("apps/app")),
            ("labels", s("gitops")),
        ]),
        render_component(&[
            ("job_name", s("bump-other")),
            ("repo", s(&url)),
            ("image", s("registry.example.com/team/other:9.9.10")),
            ("in", s("apps/other")),
        ]),
        render_component(&[
            ("job_name", s("bump-dry")),
            ("repo", s(&url)),
            ("image", s("registry.example.com/team/app:7.7.7")),
            ("dry_run", serde_norway::Value::Bool(true)),
            ("args", s("--title 'Deploy {name} {new_tag}' --in apps/app")),
        ]),
    );
    std::fs::write(project.path().join(".gitlab-ci.yml"), &pipeline).unwrap();
    crate::servers::run(Command::new("git").args(["init", "-q"]).arg(project.path()));
    let home = tempfile::tempdir().unwrap();
    let gle_run = |args: &[&str], vars: &[(&str, &str)]| {
        outcome(
            gle_in(
                &gle,
                project.path(),
                home.path(),
                &server,
                &forge,
                "team/component",
            )
            .args(args)
            .env("GITLAB_TOKEN", "glpat-COMPONENT12345678")
            .envs(vars.iter().copied()),
        )
    };
    let main = [("CI_COMMIT_BRANCH", "main"), ("CI_DEFAULT_BRANCH", "main")];
    for job in ["bump-app", "bump-other"] {
        let (ok, log) = gle_run(&[job], &main);
        assert!(ok, "{job} failed:\n{log}");
        assert!(
            !log.contains("glpat-COMPONENT12345678"),
            "the token leaked:\n{log}"
        );
    }
    let branches = repo.git(&[
        "for-each-ref",
        "--format=%(refname:short)",
        "refs/heads/tagbump",
    ]);
    assert_eq!(branches.lines().count(), 2, "{branches}");
    assert_eq!(forge.items().len(), 2);
    let refs = repo.git(&["for-each-ref"]);
    let (ok, log) = gle_run(&["bump-dry"], &main);
    assert!(ok, "{log}");
    assert!(
        log.contains("title: Deploy registry.example.com/team/app 7.7.7\n"),
        "{log}"
    );
    assert_eq!(
        repo.git(&["for-each-ref"]),
        refs,
        "a dry run pushed:\n{log}"
    );

    // The rules, as gitlab-emulator evaluates them for each kind of pipeline.
    for (vars, runs) in [
        (
            &[
                ("CI_COMMIT_BRANCH", "feature/x"),
                ("CI_DEFAULT_BRANCH", "main"),
            ][..],
            false,
        ),
        (&main[..], true),
        (
            &[("CI_COMMIT_TAG", "v1.4.2"), ("CI_DEFAULT_BRANCH", "main")][..],
            true,
        ),
    ] {
        let (_, log) = gle_run(&["--list", "--debug-rules"], vars);
        let skipped = log.contains("bump-app skipped by rules");
        assert_eq!(!skipped, runs, "{vars:?}:\n{log}");
    }
}
