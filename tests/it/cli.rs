//! Behaviour of the `set` and `image` commands on local files that fixtures
//! cannot show: permissions, symlinks, temp files, exit codes, help.

use crate::support::Test;

const VALUES: &str = "image:\n  repository: ghcr.io/acme/app\n  tag: \"1.0\" # CI\n";

#[test]
fn permissions_are_kept_and_no_temp_file_is_left() {
    use std::os::unix::fs::PermissionsExt;
    let t = Test::new().write("values.yaml", VALUES);
    std::fs::set_permissions(
        t.path("values.yaml"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let run = t.run(&["set", "values.yaml", "image.tag=1.1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(t.read("values.yaml"), VALUES.replace("\"1.0\"", "\"1.1\""));
    let mode = std::fs::metadata(t.path("values.yaml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert_eq!(t.listing(), ["values.yaml"]);
}

#[test]
fn a_symlinked_file_is_edited_through_the_link() {
    let t = Test::new().write("real/values.yaml", VALUES);
    std::os::unix::fs::symlink("real/values.yaml", t.path("values.yaml")).unwrap();
    let run = t.run(&["image", "ghcr.io/acme/app:2.0", "values.yaml"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::symlink_metadata(t.path("values.yaml"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(t.read("real/values.yaml").contains("tag: \"2.0\" # CI"));
}

#[test]
fn usage_errors_exit_2_and_write_nothing() {
    let t = Test::new().write("values.yaml", VALUES);
    for args in [
        &["image", "ghcr.io/acme/App:1", "values.yaml"][..],
        &["image", "ghcr.io/acme/app", "values.yaml"],
        &["image", "ghcr.io/acme/app:-x", "values.yaml"],
        &["set", "values.yaml", "image..tag=1"],
        &["set", "values.yaml", "image.tag"],
        &[
            "set",
            "--all",
            "--document",
            "1",
            "values.yaml",
            "image.tag=1",
        ],
        &["set", "values.yaml"],
        // An empty value (an unset CI variable) needs --allow-empty.
        &["set", "values.yaml", "image.tag="],
        // --document without --set, like --in without --image.
        &[
            "update",
            "--repo",
            "/nonexistent",
            "--image",
            "a/b:1",
            "--document",
            "1",
        ],
    ] {
        let run = t.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("error:"), "{args:?}: {}", run.stderr);
        assert_eq!(t.read("values.yaml"), VALUES);
    }
    let run = t.run(&["image", "ghcr.io/acme/app", "values.yaml"]);
    assert!(
        run.stderr.contains("has no tag or digest"),
        "{}",
        run.stderr
    );
}

#[test]
fn refused_targets_exit_3_naming_file_and_line() {
    let t = Test::new().write("v.yaml", "base: &b v1\nother: *b\nnotes: |\n  text\n");
    let run = t.run(&["set", "v.yaml", "other=v2"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains(
            "error: v.yaml:2: the value is an alias (`*b`) of the anchor defined at line 1"
        ),
        "{}",
        run.stderr
    );
    let run = t.run(&["set", "v.yaml", "notes=v2"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .contains("v.yaml:4: the value is a literal block scalar"),
        "{}",
        run.stderr
    );
    assert_eq!(
        t.read("v.yaml"),
        "base: &b v1\nother: *b\nnotes: |\n  text\n"
    );
}

#[test]
fn files_that_cannot_be_read_exit_5() {
    let t = Test::new();
    let run = t.run(&["set", "missing.yaml", "a=1"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot read missing.yaml"),
        "{}",
        run.stderr
    );
    let run = t.run(&["image", "app:1", "nowhere"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
}

#[test]
fn non_utf8_files_are_refused_by_set_and_skipped_by_scans() {
    let t = Test::new()
        .write("bin.yaml", b"image: \xff\xfe\n")
        .write("values.yaml", VALUES);
    let run = t.run(&["set", "bin.yaml", "image=x"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("bin.yaml: not UTF-8 text"),
        "{}",
        run.stderr
    );
    let run = t.run(&["image", "ghcr.io/acme/app:2", "."]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("skipped bin.yaml: not UTF-8 text"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_scan_edits_nothing_when_any_edit_fails() {
    // b.yaml's tag is an alias, which cannot be edited: a.yaml must stay too.
    let b = "t: &t \"1\"\nimage:\n  repository: ghcr.io/acme/app\n  tag: *t\n";
    let t = Test::new()
        .write("a.yaml", "image: ghcr.io/acme/app:1\n")
        .write("b.yaml", b);
    let run = t.run(&["image", "ghcr.io/acme/app:2", "."]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("b.yaml:4: the value is an alias (`*t`)"),
        "{}",
        run.stderr
    );
    assert_eq!(t.read("a.yaml"), "image: ghcr.io/acme/app:1\n");
    assert_eq!(t.read("b.yaml"), b);
}

#[test]
fn help_documents_the_path_grammar_and_examples() {
    let run = Test::new().run(&["set", "--help"]);
    assert_eq!(run.code, 0);
    for needle in [
        "containers[name=app]",
        "[\"prometheus.io/port\"]",
        "Examples:",
        "--dry-run",
    ] {
        assert!(run.stdout.contains(needle), "{needle}: {}", run.stdout);
    }
    let run = Test::new().run(&["image", "--help"]);
    assert!(run.stdout.contains("kustomization"), "{}", run.stdout);
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    use std::process::Stdio;
    let t = Test::new().write("values.yaml", VALUES.repeat(200));
    let sandbox = crate::support::Sandbox::new();
    let mut child = sandbox
        .command()
        .args(["image", "--dry-run", "ghcr.io/acme/app:2", "values.yaml"])
        .current_dir(t.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.code() == Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The README's first command, exactly: a dry run over the bundled example.
#[test]
fn the_readme_example_runs_and_writes_nothing() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("cargo run -q -- "))
        .expect("README has the example command");
    let args: Vec<&str> = line
        .trim_start_matches("cargo run -q -- ")
        .split_whitespace()
        .collect();
    let before =
        std::fs::read_to_string(root.join("examples/manifests/charts/app/values.yaml")).unwrap();
    let run = crate::support::run_in(root, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.matches("+++ b/").count(), 4, "{}", run.stdout);
    assert!(
        run.stdout.contains("+appVersion: \"1.4.2\""),
        "{}",
        run.stdout
    );
    let after =
        std::fs::read_to_string(root.join("examples/manifests/charts/app/values.yaml")).unwrap();
    assert_eq!(before, after);
}

#[test]
fn an_empty_value_is_written_only_when_allowed() {
    let t = Test::new().write("values.yaml", VALUES);
    t.run(&["set", "values.yaml", "image.tag="])
        .status(2)
        .stderr(
            "error: `image.tag=` sets an empty value; nothing was changed\n\
         hint: an empty value is usually a CI variable that is not set; \
         pass --allow-empty if an empty value is what you want\n",
        );
    t.expect_file("values.yaml", VALUES);
    t.run(&["set", "--allow-empty", "values.yaml", "image.tag="])
        .status(0)
        .stdout("")
        .stderr("values.yaml:3: image.tag: 1.0 -> \"\"\nupdated 1 file(s)\n");
    t.expect_file("values.yaml", &VALUES.replace("\"1.0\"", "\"\""));
}

// Issue #8: special files under a scanned directory are skipped and
// reported, never fatal and never a hang (reading a FIFO blocks forever).
#[test]
fn special_files_under_a_scanned_directory_are_skipped() {
    let t = Test::new().write("apps/values.yaml", VALUES);
    let dir = t.path("apps");
    std::os::unix::fs::symlink("missing.yaml", dir.join("dangling.yaml")).unwrap();
    std::os::unix::fs::symlink("loop-b.yaml", dir.join("loop-a.yaml")).unwrap();
    std::os::unix::fs::symlink("loop-a.yaml", dir.join("loop-b.yaml")).unwrap();
    let fifo = dir.join("pipe.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let run = t.run(&["image", "ghcr.io/acme/app:2.0", "apps"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(t.read("apps/values.yaml").contains("tag: \"2.0\" # CI"));
    for (name, why) in [
        ("apps/dangling.yaml", "a dangling symlink"),
        ("apps/loop-a.yaml", "a symlink loop"),
        ("apps/pipe.yaml", "not a regular file (a FIFO)"),
    ] {
        assert!(
            run.stderr.contains(&format!("skipped {name}: {why}")),
            "{name}: {}",
            run.stderr
        );
    }
    // Named directly, a FIFO is an error, not a hang.
    let run = t.run(&["set", "apps/pipe.yaml", "image.tag=1"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("not a regular file (a FIFO)"),
        "{}",
        run.stderr
    );
}

// Settings come from TAGBUMP_* variables too; a clean environment keeps the
// developer's (or CI's) own variables out of the run.
#[test]
fn the_repository_can_come_from_the_environment() {
    Test::new()
        .env("TAGBUMP_REPO", "/no/such/manifests.git")
        .run(&["update", "--image", "ghcr.io/acme/app:2.0"])
        .status(4)
        .stdout("")
        .stderr(
            "error: no such repository: `/no/such/manifests.git` does not exist here\n\
             hint: a --repo without `scheme://` or `host:` is a local path; for a server use \
             ssh://…, git@host:group/repo.git or https://…\n",
        );
}

// Issue #19, class 9: a closed stderr or stdout (`tagbump … 2>&1 | head -1`
// once head has exited) is not a panic with exit 101: the run's own exit
// code stands, and the file is still written.
#[test]
fn a_closed_stderr_or_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let t = Test::new().write("values.yaml", VALUES);
    let closed = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        Stdio::from(writer)
    };
    let cases: [(&[&str], i32); 3] = [
        (
            &[
                "update",
                "--repo",
                "/nonexistent/manifests",
                "--image",
                "ghcr.io/acme/app:1",
            ],
            4,
        ),
        (&["set", "values.yaml", "image.tag=1.1", "--dry-run"], 0),
        (&["set", "values.yaml", "image.tag=1.2"], 0),
    ];
    for (args, code) in cases {
        let status = crate::support::Sandbox::new()
            .command()
            .args(args)
            .current_dir(t.dir.path())
            .stdout(closed())
            .stderr(closed())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(code), "{args:?}");
    }
    assert!(t.read("values.yaml").contains("tag: \"1.2\""));
}

// Issue #20: a failed `update --output json` still answers in JSON on stdout
// (kind, message, hints, exit code) for the pipeline that parses it, the
// job summary says it failed, and the GitHub annotation goes to stderr,
// never into stdout's JSON.
#[test]
fn a_failed_run_reports_its_error_as_json_and_in_the_summary() {
    let t = Test::new();
    let summary = t.path("summary.md").display().to_string();
    let t = t
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary);
    let run = t.run(&[
        "update",
        "--repo",
        "/nonexistent/manifests",
        "--image",
        "ghcr.io/acme/app:1",
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).expect(&run.stdout);
    assert_eq!(
        json,
        serde_json::json!({
            "version": 1,
            "error": {
                "kind": "not-found",
                "message": "no such repository: `/nonexistent/manifests` does not exist here",
                "hints": ["a --repo without `scheme://` or `host:` is a local path; for a server use ssh://…, git@host:group/repo.git or https://…"],
                "exit_code": 4,
            }
        })
    );
    assert!(
        run.stderr.ends_with(
            "::error title=tagbump::no such repository: `/nonexistent/manifests` does not exist here\n"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&summary).unwrap(),
        "### tagbump: failed (not-found, exit 4)\n\nno such repository: `/nonexistent/manifests` does not exist here\n\n\
         *hint:* a --repo without `scheme://` or `host:` is a local path; for a server use ssh://…, git@host:group/repo.git or https://…\n"
    );
}

// Issue #20: every page tagbump.1 points at exists: `man --dir` writes them
// all, `man SUBCOMMAND` prints one, an unknown one is a usage error.
#[test]
fn every_man_page_tagbump_names_exists() {
    let t = Test::new();
    let dir = t.path("man1");
    std::fs::create_dir(&dir).unwrap();
    let run = t.run(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let main = std::fs::read_to_string(dir.join("tagbump.1")).unwrap();
    let named: Vec<String> = regex_lite::Regex::new(r"tagbump\\-((?:[a-z]|\\-)+)\(1\)")
        .unwrap()
        .captures_iter(&main)
        .map(|c| c[1].replace("\\-", "-"))
        .collect();
    assert!(named.len() >= 7, "{named:?}");
    for name in &named {
        assert!(
            dir.join(format!("tagbump-{name}.1")).is_file(),
            "tagbump-{name}.1"
        );
    }
    let update = t.run(&["man", "update"]);
    assert_eq!(update.code, 0, "{}", update.stderr);
    assert!(
        update.stdout.contains(".TH tagbump-update 1") && update.stdout.contains("\\-\\-image")
    );
    let nope = t.run(&["man", "nope"]);
    assert_eq!(nope.code, 2);
    assert!(
        nope.stderr
            .starts_with("error: no man page for `nope`: the subcommands are update, set, image"),
        "{}",
        nope.stderr
    );
}

// Issue #20: `--version` names the commit the binary was built from and
// its date; `-V` stays the bare version (what install checks compare).
#[test]
fn version_names_the_commit() {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let (commit, date) = match git(&["rev-parse", "--short=12", "HEAD"]) {
        c if c.is_empty() => ("unknown".to_string(), "unknown".to_string()),
        c => (c, git(&["log", "-1", "--format=%cs", "HEAD"])),
    };
    let t = Test::new();
    t.run(&["--version"]).status(0).stdout(&format!(
        "tagbump {} (commit {commit}, {date})\n",
        env!("CARGO_PKG_VERSION")
    ));
    t.run(&["-V"])
        .status(0)
        .stdout(concat!("tagbump ", env!("CARGO_PKG_VERSION"), "\n"));
}
