//! Issue #19, classes 3 and 4: one rule for every kind of target. Two
//! different values asked for one scalar are refused (exit 3, naming both
//! asks, nothing pushed) whoever asked them — `--image`, `--set`,
//! `--promote`, `--app-version`, the config file; the same value twice is
//! fine. The command line's targets add to the config file's, and the
//! README's config example runs as written, for each environment.

use crate::pipeline::{assert_failed, succeeded, update_in};
use crate::servers::{seed, Repo};

const IMAGE: &str = "registry.example.com/team/app";

const VALUES: &str = "\
image:
  repository: registry.example.com/team/app
  tag: \"1.4.1\"   # written by CI
replicas: 2
";

fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("apps/app/values.yaml", VALUES),
        (
            "apps/app/Chart.yaml",
            "apiVersion: v2\nname: app\nversion: 0.1.0\nappVersion: \"1.4.1\"\n",
        ),
        ("envs/staging/values.yaml", "image:\n  tag: \"1.3.0\"\n"),
    ]
}

struct Case {
    dir: tempfile::TempDir,
    repo: Repo,
    url: String,
}

fn case(config: Option<&str>) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let repo = seed(&dir.path().join("m.git"), &files());
    let url = dir.path().join("m.git").to_string_lossy().into_owned();
    if let Some(text) = config {
        std::fs::write(dir.path().join(".tagbump.yaml"), text).unwrap();
    }
    Case { dir, repo, url }
}

impl Case {
    fn run(&self, extra: &[&str]) -> crate::pipeline::Update {
        // --quiet: whole stderr compared, no progress lines.
        let mut args = vec![
            "--quiet",
            "--repo",
            &self.url,
            "--direct",
            "--author",
            "CI <ci@example.com>",
        ];
        args.extend_from_slice(extra);
        update_in(self.dir.path(), &args, &[])
    }
}

#[test]
fn two_values_for_one_scalar_are_refused_whoever_asked() {
    let tag = "apps/app/values.yaml:image.tag";
    let promote = "envs/staging/values.yaml:image.tag=apps/app/values.yaml:image.tag";
    let image = |t: &str| format!("{IMAGE}:{t}");
    let (i142, i143) = (image("1.4.2"), image("1.4.3"));
    let set143 = format!("{tag}=1.4.3");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--image", &i142, "--set", &set143],
            format!(
                "error: apps/app/values.yaml:3: two values asked for `image.tag`: `1.4.2` by \
                 --image {i142}, and `1.4.3` by --set {set143}\n"
            ),
        ),
        (
            vec!["--image", &i142, "--promote", promote],
            format!(
                "error: apps/app/values.yaml:3: two values asked for `image.tag`: `1.4.2` by \
                 --image {i142}, and `1.3.0` by --promote {promote}\n"
            ),
        ),
        (
            vec!["--image", &i142, "--image", &i143],
            format!(
                "error: two values asked for `{IMAGE}`: `--image {i142}` and `--image {i143}`\n"
            ),
        ),
        (
            vec![
                "--image",
                &i142,
                "--app-version",
                "--set",
                "apps/app/Chart.yaml:appVersion=2.0",
            ],
            format!(
                "error: apps/app/Chart.yaml:4: two values asked for `appVersion`: `1.4.2` by \
                 --image {i142}, and `2.0` by --set apps/app/Chart.yaml:appVersion=2.0\n"
            ),
        ),
    ];
    for (args, expected) in &cases {
        let c = case(None);
        let refs = c.repo.git(&["for-each-ref"]);
        let u = c.run(args);
        assert_failed(&u, 3, "", &c.repo, &refs);
        assert_eq!(
            u.run.stderr,
            format!("{expected}hint: ask for one value: drop or change one of the two; nothing was changed\n"),
            "{args:?}"
        );
    }
    // A config file's target against a flag's.
    let config = "targets:\n  set:\n    - file: apps/app/values.yaml\n      path: image.tag\n      value: \"9.9.9\"\n";
    let c = case(Some(config));
    let refs = c.repo.git(&["for-each-ref"]);
    let u = c.run(&["--set", &set143]);
    assert_failed(
        &u,
        3,
        &format!(
            "error: apps/app/values.yaml:3: two values asked for `image.tag`: `9.9.9` by `set` \
             apps/app/values.yaml:image.tag in .tagbump.yaml, and `1.4.3` by --set {set143}\n"
        ),
        &c.repo,
        &refs,
    );
    // The same value asked twice, by any two kinds: fine.
    let c = case(None);
    let set142 = format!("{tag}=1.4.2");
    succeeded(&c.run(&["--image", &i142, "--set", &set142, "--image", &i142]));
    assert!(c
        .repo
        .show("main:apps/app/values.yaml")
        .contains("tag: \"1.4.2\"   # written by CI"));
    assert_eq!(c.repo.count("main"), 2);
}

/// A tiny deterministic generator: the same cases on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn coin(&mut self) -> bool {
        self.next().is_multiple_of(2)
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() as usize) % from.len()]
    }
}

// The rule as a property: random combinations of --image, --set,
// --promote, --app-version and config targets; each run either refuses
// (exit 3, nothing pushed) or leaves every scalar holding the one value
// asked for it.
#[test]
fn every_combination_refuses_or_writes_the_one_value_asked() {
    let mut rng = Lcg(19);
    let (mut refused, mut written) = (0, 0);
    for _ in 0..30 {
        // scalar (file, path) -> the values asked for it
        let mut asked: std::collections::BTreeMap<(&str, &str), Vec<String>> = Default::default();
        let mut args: Vec<String> = Vec::new();
        let mut config = String::new();
        if rng.coin() {
            let t = rng.pick(&["1.4.2", "1.4.3"]);
            args.extend(["--image".into(), format!("{IMAGE}:{t}")]);
            asked
                .entry(("apps/app/values.yaml", "image.tag"))
                .or_default()
                .push(t.into());
            if rng.coin() {
                args.push("--app-version".into());
                asked
                    .entry(("apps/app/Chart.yaml", "appVersion"))
                    .or_default()
                    .push(t.into());
            }
        }
        for (file, path) in [
            ("apps/app/values.yaml", "image.tag"),
            ("apps/app/Chart.yaml", "appVersion"),
        ] {
            if rng.coin() {
                let v = rng.pick(&["1.4.2", "1.4.3"]);
                args.extend(["--set".into(), format!("{file}:{path}={v}")]);
                asked.entry((file, path)).or_default().push(v.into());
            }
            if rng.coin() {
                let v = rng.pick(&["1.4.2", "1.5.0"]);
                config.push_str(&format!(
                    "    - file: {file}\n      path: {path}\n      value: \"{v}\"\n"
                ));
                asked.entry((file, path)).or_default().push(v.into());
            }
        }
        if rng.coin() {
            args.extend([
                "--promote".into(),
                "envs/staging/values.yaml:image.tag=apps/app/values.yaml:image.tag".into(),
            ]);
            asked
                .entry(("apps/app/values.yaml", "image.tag"))
                .or_default()
                .push("1.3.0".into());
        }
        if asked.is_empty() {
            continue;
        }
        let config = (!config.is_empty()).then(|| format!("targets:\n  set:\n{config}"));
        let c = case(config.as_deref());
        let refs = c.repo.git(&["for-each-ref"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let u = c.run(&args);
        let conflict = asked.values().any(|v| v.iter().any(|x| *x != v[0]));
        if conflict {
            assert_failed(&u, 3, "two values asked for", &c.repo, &refs);
            refused += 1;
            continue;
        }
        succeeded(&u);
        written += 1;
        for ((file, path), values) in &asked {
            let text = c.repo.show(&format!("main:{file}"));
            let key = path.rsplit('.').next().unwrap();
            assert!(
                text.contains(&format!("{key}: \"{}\"", values[0])),
                "{args:?} {config:?}: {file} {path} should hold {}:\n{text}",
                values[0]
            );
        }
    }
    assert!(
        refused > 3 && written > 3,
        "{refused} refused, {written} written"
    );
}

/// The first ```yaml block under "### Config file" in the README.
fn readme_config() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("### Config file").expect("the section")..];
    let start = section.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    section[start..][..section[start..].find("```").unwrap()].to_string()
}

// Issue #19, class 4: the README's config example, verbatim, run as its
// comments say for each environment (and without one): each run changes
// exactly its own environment's files.
#[test]
fn the_readme_config_example_does_what_it_says() {
    let payments = |tag: &str| {
        format!("image:\n  repository: registry.example.com/team/payments\n  tag: \"{tag}\"\n")
    };
    let chart =
        |v: &str| format!("apiVersion: v2\nname: payments\nversion: 0.1.0\nappVersion: \"{v}\"\n");
    let files = vec![
        ("apps/payments/values.yaml".to_string(), payments("1.0.0")),
        (
            "envs/staging/payments/values.yaml".to_string(),
            payments("1.4.1"),
        ),
        (
            "envs/staging/payments/Chart.yaml".to_string(),
            chart("1.4.1"),
        ),
        (
            "envs/prod/payments/values.yaml".to_string(),
            payments("1.3.0"),
        ),
        ("envs/prod/payments/Chart.yaml".to_string(), chart("1.3.0")),
    ];
    let dir = tempfile::tempdir().unwrap();
    let repo = seed(&dir.path().join("m.git"), &files);
    let url = dir.path().join("m.git").to_string_lossy().into_owned();
    std::fs::write(dir.path().join(".tagbump.yaml"), readme_config()).unwrap();
    let image = "registry.example.com/team/payments:1.4.2";
    let run = |extra: &[&str]| {
        // The config's repo and forge are a real server's: this test's
        // local repository, with no merge request, instead.
        let mut args = vec![
            "--repo",
            url.as_str(),
            "--forge",
            "none",
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        let u = update_in(dir.path(), &args, &[]);
        let report: serde_json::Value = serde_json::from_str(&succeeded(&u).run.stdout).unwrap();
        let changed: Vec<String> = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect();
        (report["branch"].as_str().unwrap().to_string(), changed)
    };
    let (branch, changed) = run(&["--image", image]);
    assert_eq!(changed, ["apps/payments/values.yaml"]);
    assert_eq!(
        repo.show(&format!("{branch}:apps/payments/values.yaml")),
        payments("1.4.2")
    );

    let (branch, changed) = run(&["--env", "staging", "--image", image]);
    assert_eq!(
        changed,
        [
            "envs/staging/payments/Chart.yaml",
            "envs/staging/payments/values.yaml"
        ]
    );
    assert_eq!(
        repo.show(&format!("{branch}:envs/staging/payments/values.yaml")),
        payments("1.4.2")
    );
    assert_eq!(
        repo.show(&format!("{branch}:envs/staging/payments/Chart.yaml")),
        chart("1.4.2")
    );
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", &branch]),
        "deploy 1.4.2: envs/staging/payments/Chart.yaml, envs/staging/payments/values.yaml"
    );

    // Prod copies what staging runs on main (1.4.1), both values.
    let (branch, changed) = run(&["--env", "prod"]);
    assert_eq!(
        changed,
        [
            "envs/prod/payments/Chart.yaml",
            "envs/prod/payments/values.yaml"
        ]
    );
    assert_eq!(
        repo.show(&format!("{branch}:envs/prod/payments/values.yaml")),
        payments("1.4.1")
    );
    assert_eq!(
        repo.show(&format!("{branch}:envs/prod/payments/Chart.yaml")),
        chart("1.4.1")
    );
    assert_eq!(
        repo.show("main:envs/prod/payments/values.yaml"),
        payments("1.3.0")
    );

    // Prod with an --image, as the README once showed: refused, nothing pushed.
    let refs = repo.git(&["for-each-ref"]);
    let args = ["--repo", url.as_str(), "--env", "prod", "--image", image];
    let u = update_in(dir.path(), &args, &[]);
    assert_failed(
        &u,
        2,
        &format!(
            "error: environment `prod` in {} has no `in`, so --image would change nothing there\n",
            ".tagbump.yaml"
        ),
        &repo,
        &refs,
    );
}

// Issue #19, class 10: what cannot apply is a usage error (exit 2) before
// any connection — the remote is a closed port, which would be exit 7.
#[test]
fn usage_errors_come_before_the_network() {
    let closed = "ssh://git@127.0.0.1:1/team/app.git";
    let tagged = format!("{IMAGE}:1.4.2");
    let other = "registry.example.com/team/other";
    let cases: Vec<(Vec<&str>, &str)> =
        vec![
        (
            vec!["--image", &tagged, "--message", "deploy {nmae}"],
            "error: --message: unknown placeholder `{nmae}` in the message template; use {image}, \
             {name}, {old_tag}, {new_tag}, {files}, {changes}, {branch}, {base}, \
             {source_commit}, {pipeline_url}\n",
        ),
        (
            vec!["--image", &tagged, "--message", ""],
            "error: --message is empty: a commit needs a subject\n\
             hint: drop --message for the default summary, or write e.g. `deploy {name}: {new_tag}`\n",
        ),
        (
            vec!["--image", &tagged, "--image", other, "--tag-policy", "semver:^1"],
            "error: --tag-policy chooses the tag, and `registry.example.com/team/app:1.4.2` \
             already has one (`1.4.2`)\n\
             hint: pass --image registry.example.com/team/app without a tag, or run it without \
             --tag-policy\n",
        ),
        (
            vec!["--image", &tagged, "--tag-sort", "numeric"],
            "error: --tag-sort orders the tags a `regex:` --tag-policy matches; there is none\n\
             hint: pass --tag-policy 'regex:EXPR', or drop --tag-sort\n",
        ),
        (
            vec!["--image", &tagged, "--direct", "--draft", "--reviewer", "alice"],
            "error: --reviewer, --draft apply to a merge request, and --direct pushes to the \
             base and opens none\n\
             hint: drop them, or push a review branch (no --direct) to a forge\n",
        ),
        (
            vec!["--image", &tagged, "--forge", "none", "--label", "x", "--auto-merge"],
            "error: --label, --auto-merge apply to a merge request, and --forge none opens none\n\
             hint: drop them, or push a review branch (no --direct) to a forge\n",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["--repo", closed, "--attempts", "1"];
        args.extend_from_slice(&extra);
        let dir = tempfile::tempdir().unwrap();
        let u = update_in(dir.path(), &args, &[]);
        assert_eq!(u.run.code, 2, "{extra:?}: {}", u.run.stderr);
        assert_eq!(u.run.stderr, expected, "{extra:?}");
        assert_eq!(u.run.stdout, "", "{extra:?}");
    }
}

/// stderr with the times and commit ids masked.
fn masked(text: &str) -> String {
    let time = regex_lite::Regex::new(r"\[ *\d+\.\d+s\]").unwrap();
    let ms = regex_lite::Regex::new(r"\(\d+ ms\)").unwrap();
    let sha = regex_lite::Regex::new(r"\b[0-9a-f]{12}\b").unwrap();
    let fetched = regex_lite::Regex::new(r"fetched \d+ objects, [\d.]+ (B|KiB|MiB)").unwrap();
    let text = time.replace_all(text, "[T]");
    let text = fetched.replace_all(&text, "fetched N objects, SIZE");
    let text = ms.replace_all(&text, "(N ms)");
    sha.replace_all(&text, "<sha>").into_owned()
}

// Issue #20: logs a person can follow — a line per stage with the time
// since the start; `-q` leaves only the results; `-v` adds each request
// (what, status, time); `--color always` colours the diff for CI viewers.
#[test]
fn logs_a_person_can_follow() {
    let c = case(None);
    let url = c.url.clone();
    let image = format!("{IMAGE}:1.4.2");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--repo",
            url.as_str(),
            "--direct",
            "--image",
            image.as_str(),
        ];
        args.extend_from_slice(extra);
        update_in(c.dir.path(), &args, &[])
    };
    let u = run(&[]);
    assert_eq!(
        masked(&succeeded(&u).run.stderr),
        format!(
            "[T] connecting to {url}\n[T] fetching `main` from {url}\n\
             [T] fetched N objects, SIZE\n[T] editing apps/app/values.yaml\n\
             [T] pushing `main` to {url}\napps/app/values.yaml:3: image.tag: 1.4.1 -> 1.4.2\n\
             pushed <sha> to `main` on {url}\n"
        )
    );
    let image = format!("{IMAGE}:1.4.3");
    let u = update_in(
        c.dir.path(),
        &["-q", "--repo", &url, "--direct", "--image", &image],
        &[],
    );
    assert_eq!(
        masked(&succeeded(&u).run.stderr),
        format!(
            "apps/app/values.yaml:3: image.tag: 1.4.2 -> 1.4.3\npushed <sha> to `main` on {url}\n"
        )
    );
    let image = format!("{IMAGE}:1.4.4");
    let u = update_in(
        c.dir.path(),
        &[
            "--repo",
            &url,
            "--dry-run",
            "--color",
            "always",
            "--image",
            &image,
        ],
        &[],
    );
    assert!(
        succeeded(&u)
            .run
            .stdout
            .contains("\x1b[32m+  tag: \"1.4.4\""),
        "{:?}",
        u.run.stdout
    );

    // -v through the API: each request, as the fake saw it.
    let dir = tempfile::tempdir().unwrap();
    let repo = seed(&dir.path().join("api.git"), &files());
    let fake = crate::fake_repo_api::FakeRepoApi::github(&repo.path, "ghp_LOGS0123456789");
    let u = crate::pipeline::update(
        &[
            "-v",
            "--repo",
            "https://github.example.com/acme/deploy.git",
            "--forge",
            "github",
            "--api-url",
            &fake.url,
            "--direct",
            "--set",
            "apps/app/values.yaml:replicas=3",
        ],
        &[("GITHUB_TOKEN", "ghp_LOGS0123456789")],
    );
    let stderr = masked(&succeeded(&u).run.stderr);
    let requests: Vec<&str> = stderr.lines().filter(|l| l.starts_with("[T]   ")).collect();
    assert_eq!(
        requests,
        [
            "[T]   GitHub POST /graphql -> HTTP 200 (N ms)",
            "[T]   GitHub POST /graphql -> HTTP 200 (N ms)",
            "[T]   GitHub POST /graphql -> HTTP 200 (N ms)",
        ],
        "{stderr}"
    );
    assert_eq!(fake.requests().len(), 3);
    assert!(!stderr.contains("ghp_LOGS0123456789"));
}
