//! The CI files users copy: validated against the published schemas
//! (check-jsonschema's bundled GitHub Actions and GitLab CI schemas), and the
//! example GitLab job actually run with gitlab-emulator against a real git
//! server and the fake forge. scripts/test.sh installs both tools into
//! target/tools/py.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fake_forge::FakeForge;
use crate::pipeline::files;
use crate::servers::SshServer;

fn root() -> &'static Path {
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
fn outcome(command: &mut Command) -> (bool, String) {
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

fn yaml(relative: &str) -> serde_norway::Value {
    let text = std::fs::read_to_string(root().join(relative)).expect(relative);
    serde_norway::from_str(&text).expect(relative)
}

/// The `run:` script of the step called `name`; it must take its inputs
/// from `env:`, never from `${{ }}` expressions (so it can run here).
fn step_script(steps: &serde_norway::Value, name: &str) -> String {
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

/// What each release target is published as: `(target, asset)` from the
/// build matrix of release.yml.
fn release_matrix() -> Vec<(String, String)> {
    let release = yaml(".github/workflows/release.yml");
    release["jobs"]["build"]["strategy"]["matrix"]["include"]
        .as_sequence()
        .expect("matrix include")
        .iter()
        .map(|entry| {
            (
                entry["target"].as_str().expect("target").to_string(),
                entry["asset"].as_str().expect("asset").to_string(),
            )
        })
        .collect()
}

/// The file names `cargo binstall` asks for: `pkg-url` (and its overrides)
/// from `[package.metadata.binstall]`, as cargo reads them, expanded for each
/// target. Also checks the URL's directory is the release of tag `v{version}`.
fn binstall_names(targets: &[String]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = crate::servers::run(
        Command::new(cargo)
            .args([
                "metadata",
                "--no-deps",
                "--format-version",
                "1",
                "--offline",
            ])
            .current_dir(root()),
    );
    let metadata: serde_json::Value = serde_json::from_str(&out).expect("cargo metadata");
    let package = &metadata["packages"][0];
    let binstall = &package["metadata"]["binstall"];
    let (repo, version) = (
        package["repository"].as_str().unwrap(),
        package["version"].as_str().unwrap(),
    );
    targets
        .iter()
        .map(|target| {
            let template = binstall["overrides"][target]["pkg-url"]
                .as_str()
                .or(binstall["pkg-url"].as_str())
                .expect("pkg-url");
            let url = template
                .replace("{ repo }", repo)
                .replace("{ version }", version)
                .replace("{ target }", target);
            let dir = format!("{repo}/releases/download/v{version}/");
            let name = url.strip_prefix(&dir).unwrap_or_else(|| panic!("{url}"));
            name.to_string()
        })
        .collect()
}

/// The names release.yml publishes are exactly those action.yml and
/// `cargo binstall` download: a renamed asset on either side fails here,
/// not in a user's pipeline.
#[test]
fn the_action_and_binstall_download_what_the_release_publishes() {
    let matrix = release_matrix();
    let mut published = BTreeSet::new();
    for (target, asset) in &matrix {
        let archive = if target.contains("windows") {
            "zip"
        } else {
            "tar.gz"
        };
        assert_eq!(asset, &format!("tagbump-{target}.{archive}"));
        published.insert(asset.clone());
        published.insert(format!("{asset}.sha256"));
    }
    let release = yaml(".github/workflows/release.yml");
    let package = step_script(&release["jobs"]["build"]["steps"], "Package");
    assert!(package.contains(r#"dist/$ASSET""#) && package.contains(r#""$ASSET.sha256""#));

    let action = yaml("action.yml");
    let install = step_script(&action["runs"]["steps"], "Install tagbump");
    for line in [
        r#"file="tagbump-$target.$archive""#,
        "archive=tar.gz",
        r#"[ "$RUNNER_OS" != Windows ] || archive=zip"#,
        r#""$base/$file.sha256""#,
    ] {
        assert!(install.contains(line), "action.yml no longer has {line}");
    }
    let arm = regex_lite::Regex::new(r"(?m)^\s*(Linux|macOS|Windows)-\w+\) target=(\S+)").unwrap();
    let mut downloaded = BTreeSet::new();
    for found in arm.captures_iter(&install) {
        let archive = if &found[1] == "Windows" {
            "zip"
        } else {
            "tar.gz"
        };
        downloaded.insert(format!("tagbump-{}.{archive}", &found[2]));
        downloaded.insert(format!("tagbump-{}.{archive}.sha256", &found[2]));
    }
    assert_eq!(downloaded, published, "action.yml vs release.yml");

    let targets: Vec<String> = matrix.iter().map(|(target, _)| target.clone()).collect();
    let archives: BTreeSet<String> = matrix.into_iter().map(|(_, asset)| asset).collect();
    assert_eq!(
        binstall_names(&targets),
        archives,
        "binstall vs release.yml"
    );

    // GitLab builds the Linux ones under the same names, and its release
    // links each (at the package registry path the upload job writes).
    let linux: BTreeSet<String> = published
        .into_iter()
        .filter(|name| name.contains("linux"))
        .collect();
    let gitlab = yaml(".gitlab-ci.yml");
    let mut built = BTreeSet::new();
    for entry in gitlab["build"]["parallel"]["matrix"]
        .as_sequence()
        .expect("matrix")
    {
        let target = format!("{}-unknown-linux-musl", entry["ARCH"].as_str().unwrap());
        built.insert(format!("tagbump-{target}.tar.gz"));
        built.insert(format!("tagbump-{target}.tar.gz.sha256"));
    }
    assert_eq!(built, linux, ".gitlab-ci.yml build");
    let script: Vec<&str> = gitlab["build"]["script"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|line| line.as_str().unwrap())
        .collect();
    let script = script.join("\n");
    assert!(script.contains("--profile dist") && script.contains("target/$target/dist/tagbump"));
    let links = gitlab["release"]["release"]["assets"]["links"]
        .as_sequence()
        .expect("links");
    let mut linked = BTreeSet::new();
    for link in links {
        let name = link["name"].as_str().unwrap().to_string();
        let url = link["url"].as_str().unwrap();
        assert_eq!(url, format!("$PACKAGES/$CI_COMMIT_TAG/{name}"));
        assert_eq!(link["filepath"].as_str(), Some(format!("/{name}").as_str()));
        linked.insert(name);
    }
    assert_eq!(linked, built, ".gitlab-ci.yml release links");
    let upload = gitlab["upload-packages"]["script"].as_sequence().unwrap();
    assert!(upload.iter().any(|line| line
        .as_str()
        .unwrap()
        .contains("packages/generic/tagbump/$CI_COMMIT_TAG/$file")));
}

/// Serves `dir`'s files as the assets of every release of `repo` (any tag), the way
/// GitHub's download URLs name them; records each path asked for.
struct Releases {
    url: String,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Releases {
    fn serve(dir: &Path, repo: &'static str) -> Releases {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (dir, log) = (dir.to_path_buf(), asked.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(stream);
                let mut request = String::new();
                std::io::BufRead::read_line(&mut reader, &mut request).ok();
                let path = request.split(' ').nth(1).unwrap_or("").to_string();
                log.lock().unwrap().push(path.clone());
                let latest = format!("/{repo}/releases/latest/download/");
                let tagged = format!("/{repo}/releases/download/");
                let file = path
                    .strip_prefix(&latest)
                    .or_else(|| Some(path.strip_prefix(&tagged)?.split_once('/')?.1))
                    .filter(|name| !name.contains('/'))
                    .and_then(|name| std::fs::read(dir.join(name)).ok());
                let (status, body) = match file {
                    Some(body) => ("200 OK", body),
                    None => ("404 Not Found", b"Not Found".to_vec()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let mut stream = reader.into_inner();
                let _ = std::io::Write::write_all(&mut stream, head.as_bytes());
                let _ = std::io::Write::write_all(&mut stream, &body);
            }
        });
        Releases { url, asked }
    }
}

/// Runs a step's script with bash in `dir` with `env`; `(ok, output)`.
fn run_step(script: &str, dir: &Path, env: &[(&str, &str)]) -> (bool, String) {
    outcome(
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .envs(env.iter().copied()),
    )
}

/// Runs release.yml's packaging step for `target` on this build's binary in
/// the workspace `ws`; returns `dist/`, checked to hold the archive (binary
/// at the top, where action.yml and binstall's `bin-dir` expect it) and its
/// checksum, nothing else.
fn package_as_release(ws: &Path, target: &str) -> PathBuf {
    let asset = format!("tagbump-{target}.tar.gz");
    let built = ws.join("target").join(target).join("dist");
    std::fs::create_dir_all(&built).unwrap();
    std::fs::copy(crate::support::bin(), built.join("tagbump")).unwrap();
    for file in ["LICENSE-MIT", "LICENSE-APACHE", "README.md"] {
        std::fs::copy(root().join(file), ws.join(file)).unwrap();
    }
    std::fs::create_dir_all(ws.join("tmp")).unwrap();
    let release = yaml(".github/workflows/release.yml");
    let build = step_script(&release["jobs"]["build"]["steps"], "Build");
    assert!(
        build.contains("--profile dist"),
        "Package reads target/<target>/dist: {build}"
    );
    let (ok, log) = run_step(
        &step_script(&release["jobs"]["build"]["steps"], "Package"),
        ws,
        &[
            ("TARGET", target),
            ("ASSET", &asset),
            ("RUNNER_OS", "Linux"),
            ("RUNNER_TEMP", &ws.join("tmp").display().to_string()),
            ("GITHUB_WORKSPACE", &ws.display().to_string()),
        ],
    );
    assert!(ok, "{log}");
    let dist = ws.join("dist");
    let made: Vec<String> = std::fs::read_dir(&dist)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains(target))
        .collect();
    assert_eq!(
        made.iter().collect::<BTreeSet<_>>(),
        [&asset, &format!("{asset}.sha256")].into()
    );
    let listing = crate::servers::run(Command::new("tar").arg("-tzf").arg(dist.join(&asset)));
    assert_eq!(listing, "tagbump\nLICENSE-MIT\nLICENSE-APACHE\nREADME.md\n");
    dist
}

/// One run of action.yml's install step on a Linux runner.
struct Installed {
    ok: bool,
    log: String,
    /// What the installed binary printed for `-V`, if one was named.
    version: Option<String>,
    /// The arguments `cargo` got, if the step fell back to building.
    cargo: Option<String>,
}

/// `version` as the input gives it (`""`: the default); the action is this
/// checkout (`GITHUB_ACTION_PATH`).
fn install(releases: &Releases, arch: &str, version: &str) -> Installed {
    install_with(releases, arch, version, false)
}

/// [`install`], with the `build-from-source` input.
fn install_with(releases: &Releases, arch: &str, version: &str, build: bool) -> Installed {
    let run = tempfile::tempdir().unwrap();
    // A `cargo` that only records what it was asked, and "builds" a script.
    let fake = run.path().join("fake");
    std::fs::create_dir(&fake).unwrap();
    std::fs::write(
        fake.join("cargo"),
        "#!/bin/sh\necho \"$@\" > \"$CARGO_ARGS\"\nwhile [ \"$1\" != --root ]; do shift; done\n\
         mkdir -p \"$2/bin\" && printf '#!/bin/sh\\necho built\\n' > \"$2/bin/tagbump\" && chmod +x \"$2/bin/tagbump\"\n",
    )
    .unwrap();
    crate::servers::run(Command::new("chmod").arg("+x").arg(fake.join("cargo")));
    let (output, cargo_args) = (run.path().join("output"), run.path().join("cargo-args"));
    let (ok, log) = run_step(
        &step_script(&yaml("action.yml")["runs"]["steps"], "Install tagbump"),
        run.path(),
        &[
            ("VERSION", version),
            ("BUILD_FROM_SOURCE", if build { "true" } else { "false" }),
            ("ACTION_REPO", "tagbump/tagbump"),
            ("GITHUB_ACTION_PATH", &root().display().to_string()),
            ("GITHUB_SERVER_URL", &releases.url),
            ("RUNNER_OS", "Linux"),
            ("RUNNER_ARCH", arch),
            ("RUNNER_TEMP", &run.path().display().to_string()),
            ("GITHUB_OUTPUT", &output.display().to_string()),
            ("CARGO_ARGS", &cargo_args.display().to_string()),
            (
                "PATH",
                &format!("{}:{}", fake.display(), std::env::var("PATH").unwrap()),
            ),
        ],
    );
    let bin = std::fs::read_to_string(&output)
        .unwrap_or_default()
        .strip_prefix("bin=")
        .map(|line| line.trim().to_string());
    Installed {
        ok,
        log,
        version: bin.map(|bin| crate::servers::run(Command::new(bin).arg("-V"))),
        cargo: std::fs::read_to_string(&cargo_args).ok(),
    }
}

/// release.yml's packaging step makes an archive that action.yml's install
/// step downloads, checks and runs; a changed archive is refused (no
/// fallback), and a platform without an archive builds with `cargo install`
/// from the same server and tag.
#[test]
fn the_action_installs_what_the_release_packages() {
    let asset = "tagbump-x86_64-unknown-linux-musl.tar.gz";
    let ws = tempfile::tempdir().unwrap();
    let dist = package_as_release(ws.path(), "x86_64-unknown-linux-musl");
    let releases = Releases::serve(&dist, "tagbump/tagbump");

    // An explicit version, latest, and the default: the action's own
    // version, read from its Cargo.toml.
    for version in ["v9.9.9", "latest", ""] {
        let run = install(&releases, "X64", version);
        assert!(run.ok, "{}", run.log);
        let expected = concat!("tagbump ", env!("CARGO_PKG_VERSION"), "\n");
        assert_eq!(run.version.as_deref(), Some(expected), "{}", run.log);
        assert_eq!(run.cargo, None, "an archive was published: {}", run.log);
    }
    let asked = releases.asked.lock().unwrap().clone();
    let from = |dir: &str| {
        [
            format!("/tagbump/tagbump/releases/{dir}/{asset}"),
            format!("/tagbump/tagbump/releases/{dir}/{asset}.sha256"),
        ]
    };
    let own = concat!("download/v", env!("CARGO_PKG_VERSION"));
    let expected = [from("download/v9.9.9"), from("latest/download"), from(own)].concat();
    assert_eq!(asked, expected);

    // Issue #20: an archive that cannot be downloaded (here: not published
    // for Linux-ARM64) fails the step with the reason, never a silent
    // 13-minute build...
    let run = install(&releases, "ARM64", "v9.9.9");
    let failed = format!(
        "::error::cannot download tagbump-aarch64-unknown-linux-musl.tar.gz (or its .sha256) \
         from {}/tagbump/tagbump/releases/download/v9.9.9: curl: (22) The requested URL returned \
         error: 404",
        releases.url
    );
    assert!(!run.ok && run.log.contains(&failed), "{}", run.log);
    assert_eq!((run.version, run.cargo), (None, None), "{}", run.log);
    // ...unless build-from-source asks for one: from the named release...
    let run = install_with(&releases, "ARM64", "v9.9.9", true);
    assert!(run.ok, "{}", run.log);
    assert!(
        run.log
            .contains("build-from-source: building tagbump v9.9.9 with cargo install"),
        "{}",
        run.log
    );
    assert_eq!(run.version.as_deref(), Some("built\n"));
    let expected = format!(
        "--git {}/tagbump/tagbump tagbump --tag v9.9.9",
        releases.url
    );
    assert!(run.cargo.unwrap().contains(&expected));
    // ...and on a platform with no archive at all, by default from the
    // action's own source.
    let run = install(&releases, "ARM", "");
    assert!(run.ok, "{}", run.log);
    assert!(
        run.log.contains("no prebuilt tagbump for Linux-ARM ("),
        "{}",
        run.log
    );
    let expected = format!("--path {}\n", root().display());
    assert!(run.cargo.unwrap().ends_with(&expected), "{}", run.log);

    // One byte changed after the checksum was published: refused, not
    // replaced by a build.
    let mut bytes = std::fs::read(dist.join(asset)).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(dist.join(asset), bytes).unwrap();
    let run = install(&releases, "X64", "v9.9.9");
    let refused = format!(
        "::error::{asset} from {}/tagbump/tagbump/releases/download/v9.9.9 has SHA-256 ",
        releases.url
    );
    assert!(!run.ok && run.log.contains(&refused), "{}", run.log);
    assert_eq!((run.version, run.cargo), (None, None), "{}", run.log);
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

/// The Run step with `inputs` (the rest empty, or their defaults), against
/// a `tagbump` that records its arguments and its signing-key variable.
fn run_step_with(inputs: &[(&str, &str)]) -> (Vec<String>, String) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("tagbump");
    std::fs::write(
        &bin,
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$ARGS_FILE\"\n\
         if [ \"${TAGBUMP_SIGNING_KEY+set}\" = set ]; then echo \"key=[$TAGBUMP_SIGNING_KEY]\"; else echo unset; fi > \"$KEY_FILE\"\n",
    )
    .unwrap();
    crate::servers::run(Command::new("chmod").arg("+x").arg(&bin));
    let (args_file, key_file) = (dir.path().join("args"), dir.path().join("key"));
    let mut env: Vec<(String, String)> = [
        "IMAGE",
        "SET",
        "PROMOTE",
        "IN",
        "PUT",
        "BASE",
        "BRANCH",
        "LABELS",
        "ASSIGNEES",
        "REVIEWERS",
        "API_URL",
        "TITLE",
        "BODY",
        "MESSAGE",
        "AUTHOR",
        "VIA",
        "TAG_POLICY",
    ]
    .iter()
    .map(|n| (format!("IN_{n}"), String::new()))
    .collect();
    for (name, value) in [
        ("IN_DIRECT", "false"),
        ("IN_DRY_RUN", "false"),
        ("IN_DRAFT", "false"),
        ("IN_AUTO_MERGE", "false"),
        ("IN_MERGE_METHOD", "squash"),
        ("IN_VERIFY_IMAGE", "false"),
        ("IN_PIN_DIGEST", "false"),
        ("IN_SIGNING_KEY", "(none)"),
    ] {
        env.push((name.into(), value.into()));
    }
    for (name, value) in inputs {
        env.retain(|(n, _)| n != name);
        env.push((name.to_string(), value.to_string()));
    }
    env.push(("TAGBUMP_BIN".into(), bin.display().to_string()));
    env.push(("ARGS_FILE".into(), args_file.display().to_string()));
    env.push(("KEY_FILE".into(), key_file.display().to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let script = step_script(&yaml("action.yml")["runs"]["steps"], "Run tagbump");
    let (ok, log) = run_step(&script, dir.path(), &env);
    assert!(ok, "{log}");
    let args = std::fs::read_to_string(&args_file).unwrap();
    (
        args.lines().map(String::from).collect(),
        std::fs::read_to_string(&key_file).unwrap(),
    )
}

// Issue #20: the Action passes each input as its flag — lists one flag per
// line (tagbump splits commas and trims), the inputs users look for (title,
// body, commit-message, author, put, via, the registry's) — and a
// signing-key given but empty reaches tagbump (which refuses it) while a
// left-out one does not.
#[test]
fn the_action_passes_its_inputs_as_flags() {
    let (args, key) = run_step_with(&[
        ("IN_IMAGE", "ghcr.io/acme/app:1.2.3"),
        ("IN_REVIEWERS", "alice, bob\ncarol"),
        ("IN_LABELS", "gitops"),
        ("IN_PUT", "out/app.yaml=apps/app/rendered.yaml"),
        ("IN_TITLE", "Deploy {new_tag}"),
        ("IN_BODY", "From {source_commit}"),
        ("IN_MESSAGE", "deploy {name}: {new_tag}"),
        ("IN_AUTHOR", "Bot <bot@example.com>"),
        ("IN_VIA", "git"),
        ("IN_VERIFY_IMAGE", "true"),
        ("IN_PIN_DIGEST", "tag"),
    ]);
    assert_eq!(
        args,
        [
            "update",
            "--merge-method",
            "squash",
            "--image",
            "ghcr.io/acme/app:1.2.3",
            "--put",
            "out/app.yaml=apps/app/rendered.yaml",
            "--label",
            "gitops",
            "--reviewer",
            "alice, bob",
            "--reviewer",
            "carol",
            "--title",
            "Deploy {new_tag}",
            "--description",
            "From {source_commit}",
            "--message",
            "deploy {name}: {new_tag}",
            "--author",
            "Bot <bot@example.com>",
            "--via",
            "git",
            "--verify-image",
            "--pin-digest=tag",
        ]
    );
    assert_eq!(key, "unset\n");
    let (_, key) = run_step_with(&[("IN_IMAGE", "ghcr.io/acme/app:1"), ("IN_SIGNING_KEY", "")]);
    assert_eq!(key, "key=[]\n");
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
