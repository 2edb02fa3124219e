//! The GitHub Action (`action.yml`): it installs exactly what the release
//! publishes (run here against archives the packaging step made), and passes
//! its inputs as flags.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::packaging::{outcome, root, step_script, yaml};

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
pub fn run_step(script: &str, dir: &Path, env: &[(&str, &str)]) -> (bool, String) {
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
pub fn package_as_release(ws: &Path, target: &str) -> PathBuf {
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
    install_with(releases, arch, version, false, &[])
}

/// [`install`], with the `build-from-source` input.
fn install_with(
    releases: &Releases,
    arch: &str,
    version: &str,
    build: bool,
    extra: &[(&str, &str)],
) -> Installed {
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
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let (run_dir, output_s, cargo_s) = (
        run.path().display().to_string(),
        output.display().to_string(),
        cargo_args.display().to_string(),
    );
    let root = root().display().to_string();
    let mut env = vec![
        ("VERSION", version),
        ("BUILD_FROM_SOURCE", if build { "true" } else { "false" }),
        ("ACTION_REPO", "tagbump/tagbump"),
        ("GITHUB_ACTION_PATH", &root),
        ("GITHUB_SERVER_URL", &releases.url),
        ("RUNNER_OS", "Linux"),
        ("RUNNER_ARCH", arch),
        ("RUNNER_TEMP", &run_dir),
        ("GITHUB_OUTPUT", &output_s),
        ("CARGO_ARGS", &cargo_s),
        ("PATH", &path),
    ];
    env.extend_from_slice(extra);
    let (ok, log) = run_step(
        &step_script(&yaml("action.yml")["runs"]["steps"], "Install tagbump"),
        run.path(),
        &env,
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
    let run = install_with(&releases, "ARM64", "v9.9.9", true, &[]);
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

/// Issue #24: under Gitea's or Forgejo's runner, GITHUB_SERVER_URL is
/// their own instance, which does not host tagbump's releases: they come
/// from github.com, or from a mirror TAGBUMP_RELEASES_URL names.
#[test]
fn under_gitea_actions_the_release_comes_from_github_or_a_mirror() {
    let ws = tempfile::tempdir().unwrap();
    let dist = package_as_release(ws.path(), "x86_64-unknown-linux-musl");
    let releases = Releases::serve(&dist, "tagbump/tagbump");
    let mirror = releases.url.clone();
    for runner in ["GITEA_ACTIONS", "FORGEJO_ACTIONS"] {
        let gitea = [
            (runner, "true"),
            ("GITHUB_SERVER_URL", "https://gitea.example.com"),
        ];
        let run = install_with(&releases, "X64", "v9.9.9", false, &gitea);
        assert!(!run.ok, "{}", run.log);
        assert!(
            run.log.contains(
                "from https://github.com/tagbump/tagbump/releases/download/v9.9.9: curl: ("
            ),
            "{}",
            run.log
        );
        let mirrored = [
            gitea[0],
            gitea[1],
            ("TAGBUMP_RELEASES_URL", mirror.as_str()),
        ];
        let run = install_with(&releases, "X64", "v9.9.9", false, &mirrored);
        assert!(run.ok, "{}", run.log);
        let expected = concat!("tagbump ", env!("CARGO_PKG_VERSION"), "\n");
        assert_eq!(run.version.as_deref(), Some(expected), "{}", run.log);
    }
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
        ("IN_JOIN", "false"),
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
    // Issue #23: join, with the branch every job of the release names.
    let (args, _) = run_step_with(&[
        ("IN_IMAGE", "ghcr.io/acme/app:1"),
        ("IN_BRANCH", "release/1"),
        ("IN_JOIN", "true"),
    ]);
    let joined = args.join(" ");
    assert!(
        joined.contains("--branch release/1") && joined.contains("--join"),
        "{joined}"
    );
    let (_, key) = run_step_with(&[("IN_IMAGE", "ghcr.io/acme/app:1"), ("IN_SIGNING_KEY", "")]);
    assert_eq!(key, "key=[]\n");
}
