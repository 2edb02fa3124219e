//! Settings resolved in fixed environments, layer by layer.

use super::credentials::normalize_key;
use super::*;
use crate::forge::{Kind as ForgeKind, MergeMethod};
use crate::git::hostkey::Source;
use clap::Parser;
use std::path::Path;

fn args(extra: &[&str]) -> UpdateArgs {
    let mut argv = vec!["tagbump", "update", "--image", "ghcr.io/acme/app:1"];
    argv.extend_from_slice(extra);
    match crate::cli::Cli::try_parse_from(argv).unwrap().command {
        crate::cli::Command::Update(a) => *a,
        _ => unreachable!(),
    }
}

use crate::testing::env_of;

#[test]
fn token_user_follows_the_source() {
    let a = args(&["--repo", "https://gitlab.example.com/g/r.git"]);
    let s = update_spec(
        &a,
        &Layer::default(),
        &env_of(&[("CI_JOB_TOKEN", "job-token-123")]),
    )
    .unwrap();
    assert_eq!(s.auth.http_user, "gitlab-ci-token");
    assert_eq!(s.auth.token.unwrap().expose(), "job-token-123");
    let s = update_spec(
        &a,
        &Layer::default(),
        &env_of(&[("GITLAB_TOKEN", "glpat-123456")]),
    )
    .unwrap();
    assert_eq!(s.auth.http_user, "oauth2");
    let a = args(&["--repo", "https://github.com/o/r.git"]);
    let s = update_spec(
        &a,
        &Layer::default(),
        &env_of(&[("TAGBUMP_GIT_TOKEN", "ghp_123456")]),
    )
    .unwrap();
    assert_eq!(s.auth.http_user, "x-access-token");
    let a = args(&["--repo", "https://user:pw-123456@git.example.com/r.git"]);
    let s = update_spec(&a, &Layer::default(), &env_of(&[])).unwrap();
    assert_eq!(
        (s.auth.http_user.as_str(), s.auth.token.unwrap().expose()),
        ("user", "pw-123456")
    );
    assert_eq!(s.remote.url, "https://git.example.com/r.git");
}

#[test]
fn keys_from_ci_variables_are_repaired() {
    assert_eq!(
        normalize_key("\"-----BEGIN X-----\\nabc\\n-----END X-----\""),
        "-----BEGIN X-----\nabc\n-----END X-----\n"
    );
    assert_eq!(
        normalize_key("-----BEGIN X-----\r\nabc\r\n-----END X-----\r\n"),
        "-----BEGIN X-----\nabc\n-----END X-----\n"
    );
}

#[test]
fn known_hosts_from_the_variable_and_pins() {
    let a = args(&["--repo", "git@gitlab.com:g/r.git"]);
    let s = update_spec(
        &a,
        &Layer::default(),
        &env_of(&[("SSH_KNOWN_HOSTS", "gitlab.com ssh-ed25519 AAAA")]),
    )
    .unwrap();
    assert!(
        matches!(&s.auth.host_keys.sources[..], [Source::Env { name, .. }] if name == "SSH_KNOWN_HOSTS")
    );
    let a = args(&[
        "--repo",
        "git@gitlab.com:g/r.git",
        "--ssh-host-fingerprint",
        "MD5:aa",
    ]);
    let err = update_spec(&a, &Layer::default(), &env_of(&[])).unwrap_err();
    assert_eq!(
        crate::error::kind(&err),
        crate::error::Kind::Usage,
        "{err:#}"
    );
    assert!(format!("{err:#}").contains("MD5:aa"), "{err:#}");
}

#[test]
fn authors_and_ci_links() {
    let a = args(&[
        "--repo",
        "https://example.com/x.git",
        "--author",
        "CI Bot <ci@example.com>",
    ]);
    let s = update_spec(
        &a,
        &Layer::default(),
        &env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", "abc"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_RUN_ID", "42"),
        ]),
    )
    .unwrap();
    assert_eq!(
        (s.author_name.as_str(), s.author_email.as_str()),
        ("CI Bot", "ci@example.com")
    );
    assert_eq!(s.source_commit.as_deref(), Some("abc"));
    assert_eq!(
        s.pipeline_url.as_deref(),
        Some("https://github.com/o/r/actions/runs/42")
    );
    // Without --author: the user who started the GitLab pipeline, or tagbump.
    let a = args(&["--repo", "https://example.com/x.git"]);
    let gitlab = env_of(&[
        ("GITLAB_CI", "true"),
        ("GITLAB_USER_NAME", "Alice"),
        ("GITLAB_USER_EMAIL", "a@x"),
    ]);
    let s = update_spec(&a, &Layer::default(), &gitlab).unwrap();
    assert_eq!(
        (s.author_name.as_str(), s.author_email.as_str()),
        ("Alice", "a@x")
    );
    let s = update_spec(&a, &Layer::default(), &env_of(&[])).unwrap();
    assert_eq!(
        (s.author_name.as_str(), s.author_email.as_str()),
        ("tagbump", "tagbump@localhost")
    );
    let a = args(&["--repo", "https://example.com/x.git", "--author", "nobody"]);
    let err = update_spec(&a, &Layer::default(), &env_of(&[])).unwrap_err();
    assert_eq!(
        crate::error::kind(&err),
        crate::error::Kind::Usage,
        "{err:#}"
    );
    assert!(format!("{err:#}").contains("nobody"), "{err:#}");
}

/// The spec and forge spec of a dry run with these flags over this
/// config file, in this (fixed) environment.
fn resolved(
    config: &str,
    flags: &[&str],
    env: &'static [(&'static str, &'static str)],
) -> (UpdateSpec, ForgeSpec) {
    // A dry run: no forge token needed where a test does not set one.
    let a = args(&[&["--dry-run"], flags].concat());
    let config = crate::config::parse(".tagbump.yaml", config).unwrap();
    let image = a.images.first().map(|i| i.version());
    let layer = crate::config::layer(
        &config,
        Path::new(".tagbump.yaml"),
        a.environment.as_deref(),
        image.as_deref(),
    )
    .unwrap();
    let env = env_of(env);
    let spec = update_spec(&a, &layer, &env).unwrap();
    let forge = forge_spec(&a, &layer, &spec, &env).unwrap();
    (spec, forge)
}

const REPO: &str = "repo: https://gitlab.example.com/team/manifests.git\n";

// Values: flag, then config, then built-in (none).
#[test]
fn values_come_from_the_flag_then_the_config() {
    let config = format!("{REPO}base: develop\nmerge_request:\n  title: config title\n");
    let (s, f) = resolved(&config, &["--title", "flag title"], &[]);
    assert_eq!(
        s.remote.url,
        "https://gitlab.example.com/team/manifests.git"
    );
    assert_eq!(s.base.as_deref(), Some("develop"));
    assert_eq!(f.title.as_deref(), Some("flag title"));
    let (s, f) = resolved(&config, &["--base", "main", "--repo", "/tmp"], &[]);
    assert_eq!(
        (s.remote.url.as_str(), s.base.as_deref()),
        ("/tmp", Some("main"))
    );
    assert_eq!(f.title.as_deref(), Some("config title"));
    let (s, f) = resolved(REPO, &[], &[]);
    assert_eq!((s.base, f.title), (None, None));
}

// Issue #10: a boolean the config file switches on can be switched off on
// the command line; a bare flag is `true`; unset anywhere is off.
#[test]
fn flags_switch_off_config_booleans() {
    let on = format!(
            "{REPO}targets:\n  app_version: true\nmerge_request:\n  draft: true\n  squash: true\n  auto_merge: true\n  remove_source_branch: true\n"
        );
    let bools = |(s, f): (UpdateSpec, ForgeSpec)| {
        let r = f.request;
        [
            s.app_version,
            r.draft,
            r.squash,
            r.auto_merge,
            r.remove_source_branch,
        ]
    };
    assert_eq!(bools(resolved(&on, &[], &[])), [true; 5]);
    let off = [
        "--app-version=false",
        "--draft=false",
        "--squash=no",
        "--auto-merge=0",
        "--remove-source-branch=false",
    ];
    assert_eq!(bools(resolved(&on, &off, &[])), [false; 5]);
    assert_eq!(bools(resolved(REPO, &[], &[])), [false; 5]);
    let (_, f) = resolved(REPO, &["--draft"], &[]);
    assert_eq!((f.request.draft, f.request.squash), (true, false));
    // `direct` too: with it on, no merge request is resolved at all.
    // The registry's booleans too.
    let registry = format!("{REPO}registry:\n  verify_image: true\n  pin_digest: tag\n");
    let (s, _) = resolved(&registry, &[], &[]);
    assert!(s.registry.verify);
    assert_eq!(s.registry.pin, crate::registry::Pin::Tag);
    let (s, _) = resolved(
        &registry,
        &["--verify-image=false", "--pin-digest=false"],
        &[],
    );
    assert!(!s.registry.verify);
    assert_eq!(s.registry.pin, crate::registry::Pin::Off);
    let direct = format!("{REPO}direct: true\n");
    assert!(resolved(&direct, &[], &[]).0.direct);
    assert!(!resolved(&direct, &["--direct=false"], &[]).0.direct);
}

// Lists: the command line's replaces the config's, never extends it.
#[test]
fn lists_from_the_flag_replace_the_config() {
    let config = format!(
            "{REPO}merge_request:\n  labels: [gitops]\n  reviewers: [alice]\nenvironments:\n  prod:\n    in: [envs/prod]\n    labels: [prod]\n"
        );
    let (_, f) = resolved(&config, &["--env", "prod"], &[]);
    assert_eq!(f.request.labels, ["gitops", "prod"]);
    assert_eq!(f.request.reviewers, ["alice"]);
    let (_, f) = resolved(&config, &["--env", "prod", "--label", " hotfix "], &[]);
    assert_eq!(f.request.labels, ["hotfix"]);
    assert_eq!(f.request.reviewers, ["alice"]);
    // As CI passes lists: comma- or newline-separated, spaces around.
    let (_, f) = resolved(
        &config,
        &[
            "--env",
            "prod",
            "--reviewer",
            "alice, bob",
            "--reviewer",
            " carol\n dave ,",
        ],
        &[],
    );
    assert_eq!(f.request.reviewers, ["alice", "bob", "carol", "dave"]);
}

// Choices: flag, then config, then detected (forge) or built-in (squash).
#[test]
fn choices_come_from_the_flag_then_the_config_then_detection() {
    const TOKEN: &[(&str, &str)] = &[
        ("GITLAB_TOKEN", "glpat-123456"),
        ("GITHUB_TOKEN", "ghp-123456"),
    ];
    let kind = |(_, f): (UpdateSpec, ForgeSpec)| f.connection.map(|c| c.kind);
    assert_eq!(kind(resolved(REPO, &[], TOKEN)), Some(ForgeKind::GitLab));
    let config = format!("{REPO}merge_request:\n  forge: github\n  merge_method: rebase\n");
    assert_eq!(kind(resolved(&config, &[], TOKEN)), Some(ForgeKind::GitHub));
    assert_eq!(kind(resolved(&config, &["--forge", "none"], TOKEN)), None);
    let (_, f) = resolved(&config, &[], TOKEN);
    assert_eq!(f.request.merge_method, MergeMethod::Rebase);
    let (_, f) = resolved(&config, &["--merge-method", "merge"], TOKEN);
    assert_eq!(f.request.merge_method, MergeMethod::Merge);
    let (_, f) = resolved(REPO, &[], TOKEN);
    assert_eq!(f.request.merge_method, MergeMethod::Squash);
}

// Facts CI knows: flag, then config, then CI, then built-in.
#[test]
fn ci_facts_come_after_the_flag_and_the_config() {
    const CI: &[(&str, &str)] = &[
        ("GITLAB_CI", "true"),
        ("GITLAB_USER_NAME", "Alice"),
        ("GITLAB_USER_EMAIL", "a@x"),
        ("CI_SERVER_HOST", "gitlab.example.com"),
        ("CI_API_V4_URL", "https://gitlab.example.com/ci-api/v4"),
        ("CI_JOB_TOKEN", "job-token-123"),
    ];
    let author =
        |(s, _): &(UpdateSpec, ForgeSpec)| format!("{} <{}>", s.author_name, s.author_email);
    let api = |(_, f): &(UpdateSpec, ForgeSpec)| f.connection.clone().unwrap().api_url;
    let config = format!(
            "{REPO}commit:\n  author: Config <c@x>\nmerge_request:\n  api_url: https://config.example.com/api/v4\n"
        );
    let flags = [
        "--author",
        "Flag <f@x>",
        "--api-url",
        "https://flag.example.com/api/v4",
    ];
    let r = resolved(&config, &flags, CI);
    assert_eq!(
        (author(&r), api(&r)),
        (
            "Flag <f@x>".into(),
            "https://flag.example.com/api/v4".into()
        )
    );
    let r = resolved(&config, &[], CI);
    assert_eq!(
        (author(&r), api(&r)),
        (
            "Config <c@x>".into(),
            "https://config.example.com/api/v4".into()
        )
    );
    let r = resolved(REPO, &[], CI);
    assert_eq!(
        (author(&r), api(&r)),
        (
            "Alice <a@x>".into(),
            "https://gitlab.example.com/ci-api/v4".into()
        )
    );
    let r = resolved(REPO, &[], &[("GITLAB_TOKEN", "glpat-123456")]);
    assert_eq!(
        (author(&r), api(&r)),
        (
            "tagbump <tagbump@localhost>".into(),
            "https://gitlab.example.com/api/v4".into()
        )
    );
}

// Targets: the command line's replace the config's; a config `set`
// without `value` takes the --image's version.
#[test]
fn targets_from_the_flag_add_to_the_config() {
    let config = format!(
        "{REPO}targets:\n  in: [apps]\n  set:\n    - file: Chart.yaml\n      path: appVersion\n"
    );
    let (s, _) = resolved(&config, &[], &[]);
    assert_eq!(s.dirs, ["apps"]);
    assert_eq!(
        (s.sets[0].file.as_str(), s.sets[0].assignment.value.as_str()),
        ("Chart.yaml", "1")
    );
    // Issue #19, class 4: one rule for --image, --set, --promote and
    // --in: the command line's targets add to the config's.
    let (s, _) = resolved(&config, &["--in", "envs", "--set", "a.yaml:x=2"], &[]);
    assert_eq!(s.dirs, ["apps", "envs"]);
    let sets: Vec<(&str, &str, &str)> = s
        .sets
        .iter()
        .map(|s| (s.file.as_str(), s.assignment.value.as_str(), s.ask.as_str()))
        .collect();
    assert_eq!(
        sets,
        [
            (
                "Chart.yaml",
                "1",
                "`set` Chart.yaml:appVersion in .tagbump.yaml"
            ),
            ("a.yaml", "2", "--set a.yaml:x=2")
        ]
    );
}

// An environment scans for --image only in its own `in`; one without
// `in` and without a `set` to take the version refuses the --image.
#[test]
fn an_environment_scans_only_where_it_says() {
    let config = format!(
            "{REPO}environments:\n  prod:\n    promote:\n      - from: s.yaml:tag\n        to: p.yaml:tag\n  qa:\n    set:\n      - file: Chart.yaml\n        path: appVersion\n"
        );
    let a = args(&["--dry-run", "--env", "prod"]);
    let parsed = crate::config::parse(".tagbump.yaml", &config).unwrap();
    let layer =
        crate::config::layer(&parsed, Path::new(".tagbump.yaml"), Some("prod"), Some("1")).unwrap();
    let err = update_spec(&a, &layer, &env_of(&[])).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "environment `prod` in .tagbump.yaml has no `in`, so --image would change nothing there"
    );
    let (s, _) = resolved(&config, &["--env", "qa"], &[]);
    assert!(!s.scan);
    assert_eq!(s.sets[0].assignment.value, "1");
    let (s, _) = resolved(&config, &["--env", "qa", "--in", "envs/qa"], &[]);
    assert!(s.scan);
}

#[test]
fn two_tags_for_one_image_are_refused() {
    let a = args(&["--image", "ghcr.io/acme/app:2"]);
    let err = update_spec(&a, &crate::config::Layer::default(), &env_of(&[])).unwrap_err();
    assert_eq!(crate::error::kind(&err), Kind::Input);
    assert_eq!(
            format!("{err:#}"),
            "two values asked for `ghcr.io/acme/app`: `--image ghcr.io/acme/app:1` and `--image ghcr.io/acme/app:2`"
        );
    let a = args(&[
        "--image",
        "ghcr.io/acme/app:1",
        "--repo",
        "https://gitlab.example.com/a/b.git",
    ]);
    assert!(update_spec(&a, &crate::config::Layer::default(), &env_of(&[])).is_ok());
}
