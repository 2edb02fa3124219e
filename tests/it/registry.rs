//! Issue #12: `--verify-image`, `--pin-digest` and `--tag-policy` against a
//! real registry (CNCF distribution), with anonymous, Basic and Bearer-token
//! auth. The manifest repository is a local bare repository, inspected with
//! the git CLI; digests are compared with what skopeo sees.

use std::process::Command;

use crate::pipeline::{assert_failed, update, Update};
use crate::registry_server::{Auth, Registry, PASSWORD, USER};
use crate::servers::{seed, Repo};

fn manifests(host: &str) -> Vec<(String, String)> {
    vec![
        (
            "apps/app/values.yaml".into(),
            format!("image:\n  repository: {host}/team/app\n  tag: \"1.0.0\"   # CI\n"),
        ),
        (
            "apps/app/deploy.yaml".into(),
            format!("spec:\n  containers:\n    - name: app\n      image: {host}/team/app:1.0.0\n"),
        ),
    ]
}

fn repo_with(dir: &std::path::Path, files: &[(String, String)]) -> (Repo, String) {
    let path = dir.join("manifests.git");
    let repo = seed(&path, files);
    (repo, path.to_string_lossy().into_owned())
}

fn json(u: &Update) -> serde_json::Value {
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    serde_json::from_str(&u.run.stdout).unwrap_or_else(|e| panic!("{e}: {}", u.run.stdout))
}

/// `update --direct --output json` of `image` with `extra` flags.
fn bump(url: &str, image: &str, extra: &[&str], env: &[(&str, &str)]) -> Update {
    let mut args = vec![
        "--repo", url, "--image", image, "--direct", "--output", "json",
    ];
    args.extend_from_slice(extra);
    update(&args, env)
}

// The push model, guarded: a tag the registry does not have is refused
// before the clone (exit 10, the repository untouched); one it has is
// written, checked with a HEAD and never a GET of the manifest.
#[test]
fn verify_image_refuses_a_missing_tag_before_the_clone() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let host = registry.host();
    registry.push("team/app:1.4.2");
    let dir = tempfile::tempdir().unwrap();
    let (repo, url) = repo_with(dir.path(), &manifests(&host));
    let refs = repo.git(&["for-each-ref"]);

    let missing = format!("{host}/team/app:1.4.3");
    let u = bump(&url, &missing, &["--verify-image"], &[]);
    assert_failed(
        &u,
        10,
        &format!("error: {host}/team/app:1.4.3 does not exist on {host}\n"),
        &repo,
        &refs,
    );
    assert!(
        u.run.stderr.contains("hint: check the tag for a typo"),
        "{}",
        u.run.stderr
    );

    let before = registry.requests().len();
    let image = format!("{host}/team/app:1.4.2");
    let report = json(&bump(&url, &image, &["--verify-image"], &[]));
    assert_eq!(report["images"][0]["source"], "verified");
    assert_eq!(report["images"][0]["reference"], image.as_str());
    assert!(repo.show("main:apps/app/deploy.yaml").contains(&image));
    let sent: Vec<String> = registry.requests()[before..].to_vec();
    assert_eq!(
        sent,
        ["HEAD /v2/team/app/manifests/1.4.2"],
        "one HEAD, no GET"
    );
}

// `--pin-digest` writes the digest the registry resolves (skopeo's, the
// index's for a multi-arch image) into image strings and Helm digest keys;
// behind Bearer-token auth that costs three requests: the HEAD that is
// challenged, the token, the HEAD again.
#[test]
fn pinned_digests_are_the_ones_the_registry_serves() {
    let Some(registry) = Registry::start(Auth::Token) else {
        return;
    };
    let host = registry.host();
    let single = registry.push("team/app:1.4.2");
    let index = registry.push_index("team/multi:2.0.0");
    assert_eq!(index, registry.inspect_digest("team/multi:2.0.0"));
    let dir = tempfile::tempdir().unwrap();
    let mut files = manifests(&host);
    files.push((
        "apps/multi/values.yaml".into(),
        format!("image:\n  repository: {host}/team/multi\n  tag: 1.0.0\n  digest: \"\"\n"),
    ));
    let (repo, url) = repo_with(dir.path(), &files);
    let creds = [
        ("TAGBUMP_REGISTRY_USER", USER),
        ("TAGBUMP_REGISTRY_PASSWORD", PASSWORD),
    ];

    let before = registry.requests().len();
    let tokens = || registry.tokens.load(std::sync::atomic::Ordering::SeqCst);
    let tokens_before = tokens();
    let image = format!("{host}/team/app:1.4.2");
    let u = bump(&url, &image, &["--pin-digest"], &creds);
    let report = json(&u);
    assert_eq!(tokens() - tokens_before, 1);
    let sent: Vec<String> = registry.requests()[before..].to_vec();
    assert_eq!(
        sent,
        [
            "HEAD /v2/team/app/manifests/1.4.2",
            "HEAD /v2/team/app/manifests/1.4.2"
        ],
        "challenged HEAD + HEAD with the token (and one token request)"
    );
    assert_eq!(report["images"][0]["digest"], single.as_str());
    assert_eq!(report["images"][0]["source"], "resolved");
    assert!(repo
        .show("main:apps/app/deploy.yaml")
        .contains(&format!("image: {host}/team/app:1.4.2@{single}")));
    // The Helm block has no digest key: the tag is written, the digest is not
    // (a note says so) ...
    assert_eq!(
        repo.show("main:apps/app/values.yaml"),
        format!("image:\n  repository: {host}/team/app\n  tag: \"1.4.2\"   # CI\n")
    );
    assert!(
        u.run.stderr.contains("has no `digest` key"),
        "{}",
        u.run.stderr
    );
    // ... unless --pin-digest=tag asks for `tag@sha256:…` there.
    let newer = registry.push("team/app:1.4.3");
    let image = format!("{host}/team/app:1.4.3");
    json(&bump(&url, &image, &["--pin-digest=tag"], &creds));
    assert_eq!(
        repo.show("main:apps/app/values.yaml"),
        format!("image:\n  repository: {host}/team/app\n  tag: \"1.4.3@{newer}\"   # CI\n")
    );

    // A multi-arch image: the index digest, into the chart's digest key.
    let image = format!("{host}/team/multi:2.0.0");
    let report = json(&bump(&url, &image, &["--pin-digest"], &creds));
    assert_eq!(report["images"][0]["digest"], index.as_str());
    assert_eq!(
        repo.show("main:apps/multi/values.yaml"),
        format!("image:\n  repository: {host}/team/multi\n  tag: 2.0.0\n  digest: \"{index}\"\n")
    );
}

/// Give `name` these extra tags, all pointing at the manifest of `from`.
pub fn retag(registry: &Registry, name: &str, from: &str, tags: &[String]) {
    let base = format!("http://{}/v2/{name}/manifests", registry.host());
    let manifest = tempfile::NamedTempFile::new().unwrap();
    crate::servers::run(
        Command::new("curl")
            .args([
                "-sSf",
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json",
                "-o",
            ])
            .arg(manifest.path())
            .arg(format!("{base}/{from}")),
    );
    let mut put = Command::new("curl");
    put.args([
        "-sSf",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
    ])
    .arg("--data-binary")
    .arg(format!("@{}", manifest.path().display()));
    for tag in tags {
        put.arg(format!("{base}/{tag}"));
    }
    crate::servers::run(&mut put);
}

// The poll model: the newest tag by policy, over more tags than one page
// (the registry pages by 100 and links the next page).
#[test]
fn tag_policies_choose_from_every_page() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let host = registry.host();
    registry.push("team/app:1.0.0");
    let mut tags: Vec<String> = (1..=130).map(|i| format!("1.0.{i}")).collect();
    tags.extend(
        [
            "1.5.0",
            "v1.6.0",
            "2.0.0-rc.1",
            "main",
            "build-9",
            "build-10",
        ]
        .map(String::from),
    );
    retag(&registry, "team/app", "1.0.0", &tags);
    let dir = tempfile::tempdir().unwrap();
    let (repo, url) = repo_with(dir.path(), &manifests(&host));
    let name = format!("{host}/team/app");

    let chosen = |policy: &str, extra: &[&str]| {
        let mut flags = vec!["--tag-policy", policy];
        flags.extend_from_slice(extra);
        let report = json(&bump(&url, &name, &flags, &[]));
        (
            report["images"][0]["tag"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            report["images"][0]["source"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    assert_eq!(
        chosen("semver:~1.0", &[]),
        ("1.0.130".into(), "policy".into())
    );
    assert!(repo
        .show("main:apps/app/deploy.yaml")
        .contains(&format!("{name}:1.0.130")));
    // Pre-releases stay out unless the range names one.
    assert_eq!(chosen("semver:>=1.0", &[]).0, "v1.6.0");
    // Issue #19, class 6: a bare version is that version (npm, Flux, Image
    // Updater), not Cargo's caret; `v` in a range as the tags spell it.
    assert_eq!(chosen("semver:1.5.0", &[]).0, "1.5.0");
    assert_eq!(chosen("semver:1.0", &[]).0, "1.0.130");
    assert_eq!(chosen("semver:~v1.5", &[]).0, "1.5.0");
    assert_eq!(chosen("semver:^v1", &[]).0, "v1.6.0");
    assert_eq!(chosen("semver:>=2.0.0-rc.0", &[]).0, "2.0.0-rc.1");
    assert_eq!(
        chosen("regex:^build-(\\d+)$", &["--tag-sort", "numeric"]).0,
        "build-10"
    );
    // The same tag again: nothing to change.
    let u = bump(
        &url,
        &name,
        &[
            "--tag-policy",
            "regex:^build-(\\d+)$",
            "--tag-sort",
            "numeric",
        ],
        &[],
    );
    assert_eq!(json(&u)["operation"], "unchanged");
    // A moving tag, pinned to what it points at now.
    let main = format!("{name}:main");
    let report = json(&bump(&url, &main, &["--tag-policy", "latest-digest"], &[]));
    let digest = registry.inspect_digest("team/app:main");
    assert_eq!(report["images"][0]["digest"], digest.as_str());
    assert!(repo
        .show("main:apps/app/deploy.yaml")
        .contains(&format!("{name}:main@{digest}")));
    // Nothing matches: exit 10, nothing written.
    let refs = repo.git(&["for-each-ref"]);
    // A first group that captures no number under --tag-sort numeric says
    // so (exit 2), rather than "no tag matches".
    let u = bump(
        &url,
        &name,
        &[
            "--quiet",
            "--tag-policy",
            "regex:^(build)-\\d+$",
            "--tag-sort",
            "numeric",
        ],
        &[],
    );
    assert_failed(&u, 2, "", &repo, &refs);
    assert_eq!(
        u.run.stderr,
        format!(
            "error: --tag-policy for {host}/team/app: 2 tag(s) match `^(build)-\\d+$`, but \
             --tag-sort numeric orders them by the number its first group captures, and it \
             captured `build`, not a number\n\
             hint: put the number in the first group (`^main-(\\d+)$`), or use --tag-sort \
             alphabetical\n"
        )
    );
    let u = bump(&url, &name, &["--tag-policy", "semver:^3"], &[]);
    assert_failed(
        &u,
        10,
        &format!("error: no tag of {host}/team/app matches the policy (137 tags looked at)"),
        &repo,
        &refs,
    );
}

// A config `set` without `value` takes the tag the policy chose (not the
// empty version of the untagged --image); a digest pinned for the image
// references stays out of it.
#[test]
fn config_sets_take_the_tag_the_registry_settled_on() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let host = registry.host();
    registry.push("team/app:1.0.0");
    retag(
        &registry,
        "team/app",
        "1.0.0",
        &["1.2.0".into(), "2.0.0".into()],
    );
    let dir = tempfile::tempdir().unwrap();
    let mut files = manifests(&host);
    let chart = |version: &str| format!("name: app\nappVersion: \"{version}\"   # the chart\n");
    files.push(("apps/app/Chart.yaml".into(), chart("1.0.0")));
    let (repo, url) = repo_with(dir.path(), &files);
    let config = dir.path().join("tagbump.yaml");
    std::fs::write(
        &config,
        "targets:\n  set:\n    - file: apps/app/Chart.yaml\n      path: appVersion\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let name = format!("{host}/team/app");

    let flags = ["--tag-policy", "semver:^1", "--config", config];
    assert_eq!(
        json(&bump(&url, &name, &flags, &[]))["images"][0]["tag"],
        "1.2.0"
    );
    assert_eq!(repo.show("main:apps/app/Chart.yaml"), chart("1.2.0"));
    assert!(repo
        .show("main:apps/app/deploy.yaml")
        .contains(&format!("{name}:1.2.0\n")));

    let pinned = format!("{name}:2.0.0");
    json(&bump(
        &url,
        &pinned,
        &["--pin-digest", "--config", config],
        &[],
    ));
    let digest = registry.inspect_digest("team/app:2.0.0");
    assert_eq!(repo.show("main:apps/app/Chart.yaml"), chart("2.0.0"));
    assert!(repo
        .show("main:apps/app/deploy.yaml")
        .contains(&format!("{pinned}@{digest}\n")));
}

// Credentials: a private repository needs them (an auth error, never
// "missing"); a wrong password is an auth error naming where it came from;
// anonymous pulls of public repositories need none. The password never
// appears in any output.
#[test]
fn credentials_for_private_repositories() {
    let Some(registry) = Registry::start(Auth::Token) else {
        return;
    };
    let host = registry.host();
    registry.push("private/app:1.0.1");
    registry.push("public/app:1.0.1");
    let dir = tempfile::tempdir().unwrap();
    let (repo, url) = repo_with(
        dir.path(),
        &[(
            "deploy.yaml".into(),
            format!("containers:\n  - image: {host}/private/app:1.0.0\n  - image: {host}/public/app:1.0.0\n"),
        )],
    );
    let refs = repo.git(&["for-each-ref"]);
    let private = format!("{host}/private/app:1.0.1");
    let mut outputs = Vec::new();

    let u = bump(&url, &private, &["--verify-image"], &[]);
    assert_failed(
        &u,
        6,
        &format!("error: {host} wants credentials to read private/app, and none were found for it"),
        &repo,
        &refs,
    );
    outputs.push(u);
    let u = bump(
        &url,
        &private,
        &["--verify-image"],
        &[
            ("TAGBUMP_REGISTRY_USER", USER),
            ("TAGBUMP_REGISTRY_PASSWORD", "not-the-password"),
        ],
    );
    assert_failed(
        &u,
        6,
        &format!(
            "error: {host} refused the credentials from TAGBUMP_REGISTRY_PASSWORD (user `{USER}`) for private/app"
        ),
        &repo,
        &refs,
    );
    outputs.push(u);
    // From docker's config.json, as `docker login` writes it.
    let docker = tempfile::tempdir().unwrap();
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{USER}:{PASSWORD}"),
    );
    std::fs::write(
        docker.path().join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let config = docker.path().to_string_lossy().into_owned();
    let u = bump(
        &url,
        &private,
        &["--verify-image"],
        &[("DOCKER_CONFIG", &config)],
    );
    assert_eq!(json(&u)["images"][0]["source"], "verified");
    outputs.push(u);
    // From a credential helper named in config.json, when its binary exists.
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-tagbumptest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$server\" = \"{host}\" ] || exit 1\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let helpers = tempfile::tempdir().unwrap();
    std::fs::write(
        helpers.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{host}":"tagbumptest"}}}}"#),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let helper_config = helpers.path().to_string_lossy().into_owned();
    let u = bump(
        &url,
        &private,
        &["--verify-image"],
        &[("DOCKER_CONFIG", &helper_config), ("PATH", &path)],
    );
    assert_eq!(json(&u)["images"][0]["source"], "verified");
    outputs.push(u);
    let public = format!("{host}/public/app:1.0.1");
    let u = bump(&url, &public, &["--pin-digest"], &[]);
    assert_eq!(json(&u)["images"][0]["source"], "resolved");
    outputs.push(u);
    for u in &outputs {
        let all = format!("{}{}", u.run.stdout, u.run.stderr);
        assert!(
            !all.contains(PASSWORD) && !all.contains(&auth),
            "leaked:\n{all}"
        );
    }
}

// Basic auth (htpasswd), as ECR-style registries answer.
#[test]
fn basic_auth_registries() {
    let Some(registry) = Registry::start(Auth::Basic) else {
        return;
    };
    let host = registry.host();
    registry.push("team/app:1.0.1");
    let dir = tempfile::tempdir().unwrap();
    let (repo, url) = repo_with(dir.path(), &manifests(&host));
    let refs = repo.git(&["for-each-ref"]);
    let image = format!("{host}/team/app:1.0.1");
    let u = bump(&url, &image, &["--verify-image"], &[]);
    assert_failed(&u, 6, "wants credentials to read team/app", &repo, &refs);
    let u = bump(
        &url,
        &image,
        &["--verify-image"],
        &[
            ("TAGBUMP_REGISTRY_USER", USER),
            ("TAGBUMP_REGISTRY_PASSWORD", "wrong-pass-123"),
        ],
    );
    assert_failed(
        &u,
        6,
        "refused the credentials from TAGBUMP_REGISTRY_PASSWORD",
        &repo,
        &refs,
    );
    let u = bump(
        &url,
        &image,
        &["--verify-image"],
        &[
            ("TAGBUMP_REGISTRY_USER", USER),
            ("TAGBUMP_REGISTRY_PASSWORD", PASSWORD),
        ],
    );
    assert_eq!(json(&u)["images"][0]["source"], "verified");
    assert!(!u.run.stderr.contains(PASSWORD));
}

// A registry that answers 503 first is retried, not reported missing.
#[test]
fn a_registry_answering_503_then_200_is_retried() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    registry.push("team/app:1.0.1");
    let (port, refused) = crate::faults::flaky_proxy(registry.port, 1);
    let host = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let (_repo, url) = repo_with(dir.path(), &manifests(&host));
    let u = bump(
        &url,
        &format!("{host}/team/app:1.0.1"),
        &["--verify-image"],
        &[],
    );
    assert_eq!(json(&u)["images"][0]["source"], "verified");
    assert_eq!(refused.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(
        u.run.stderr.contains("HTTP 503; retrying in"),
        "{}",
        u.run.stderr
    );
}

// Issue #19, class 2: `NAME:TAG@DIGEST` is checked whole. A tag that does
// not exist is missing (exit 10) even with a real digest beside it; a digest
// that belongs to another tag is refused naming both digests (exit 10), with
// --verify-image and with --pin-digest; the right pair is written. The JSON
// carries the digest the registry answered after a verifying HEAD.
#[test]
fn a_tag_and_digest_must_belong_together() {
    let Some(registry) = Registry::start(Auth::Anonymous) else {
        return;
    };
    let host = registry.host();
    let old = registry.push("team/app:1.4.2");
    let new = registry.push("team/app:1.6.0");
    assert_ne!(old, new);
    let dir = tempfile::tempdir().unwrap();
    let (repo, url) = repo_with(dir.path(), &manifests(&host));
    let refs = repo.git(&["for-each-ref"]);

    // Whole stderr (-q: no progress lines) and the JSON error on stdout.
    let failed = |u: &crate::pipeline::Update, stderr: String| {
        assert_failed(u, 10, "", &repo, &refs);
        assert_eq!(u.run.stderr, stderr);
        let json: serde_json::Value = serde_json::from_str(&u.run.stdout).unwrap();
        assert_eq!(json["error"]["kind"], "missing-image");
    };
    for flag in ["--verify-image", "--pin-digest"] {
        let no_such_tag = format!("{host}/team/app:9.9.9@{new}");
        let u = bump(&url, &no_such_tag, &[flag, "-q"], &[]);
        failed(
            &u,
            format!(
                "error: {host}/team/app:9.9.9 does not exist on {host}\n\
                 hint: check the tag for a typo, and that the build job pushed it; nothing was \
                 changed\n"
            ),
        );
        let foreign = format!("{host}/team/app:1.4.2@{new}");
        let u = bump(&url, &foreign, &[flag, "-q"], &[]);
        failed(
            &u,
            format!(
                "error: `{host}/team/app:1.4.2` on {host} has the digest {old}, not the given {new}\n\
                 hint: pass the digest the tag has now, or the tag that has this digest (the tag \
                 may have moved); nothing was changed\n"
            ),
        );
    }
    let right = format!("{host}/team/app:1.4.2@{old}");
    let report = json(&bump(&url, &right, &["--pin-digest"], &[]));
    assert_eq!(report["images"][0]["reference"], right.as_str());
    assert!(repo.show("main:apps/app/deploy.yaml").contains(&right));

    // Verified without pinning: the digest is reported, not written.
    let image = format!("{host}/team/app:1.6.0");
    let u = bump(&url, &image, &["--verify-image"], &[]);
    let report = json(&u);
    assert_eq!(report["images"][0]["digest"], new.as_str());
    assert_eq!(report["images"][0]["reference"], image.as_str());
    assert!(
        u.run
            .stderr
            .contains(&format!("registry: verified: {image} exists ({new})\n")),
        "{}",
        u.run.stderr
    );
}
