//! Merge/pull requests end to end: a real git server (sshd) for the push and
//! the stateful fake forge for the API, through the real binary.

use serde_json::json;

use crate::fake_forge::FakeForge;
use crate::pipeline::{files, update, Update};
use crate::servers::SshServer;

const TOKEN: &str = "glpat-FORGECANARY123456";

struct Setup {
    server: SshServer,
    url: String,
    forge: FakeForge,
}

fn setup(name: &str) -> Option<Setup> {
    let server = SshServer::start()?;
    let (_repo, url) = server.repo(name, &files());
    Some(Setup {
        server,
        url,
        forge: FakeForge::start(TOKEN),
    })
}

impl Setup {
    fn run(&self, forge: &str, tag: &str, extra: &[&str], token_var: &str) -> Update {
        let api = if forge == "gitlab" {
            format!("{}/api/v4", self.forge.url)
        } else {
            self.forge.url.clone()
        };
        let image = format!("registry.example.com/team/app:{tag}");
        let mut args = vec![
            "--repo",
            &self.url,
            "--image",
            &image,
            "--forge",
            forge,
            "--api-url",
            &api,
            "--project",
            "team/app-manifests",
        ];
        args.extend_from_slice(extra);
        let env = [
            ("SSH_PRIVATE_KEY", self.server.key.as_str()),
            ("SSH_KNOWN_HOSTS", self.server.known_hosts.as_str()),
            (token_var, TOKEN),
            ("TAGBUMP_POLL_MS", "50"),
        ];
        let u = update(&args, &env);
        let all = format!("{}{}", u.run.stdout, u.run.stderr);
        assert!(!all.contains(TOKEN), "the token leaked:\n{all}");
        u
    }

    fn assert_token_only_in_headers(&self) {
        for r in self.forge.requests() {
            assert!(
                !r.path.contains(TOKEN) && !r.query.contains(TOKEN),
                "token in URL: {r:?}"
            );
        }
    }
}

#[test]
fn gitlab_merge_request_is_created_then_updated_then_left_alone() {
    let Some(s) = setup("team/mr") else { return };
    let extra = [
        "--label",
        "gitops,bump",
        "--assignee",
        "alice",
        "--reviewer",
        "bob",
        "--remove-source-branch",
    ];

    let first = s.run("gitlab", "1.4.2", &extra, "GITLAB_TOKEN");
    assert_eq!(first.run.code, 0, "{}", first.run.stderr);
    let url = format!("{}/team/app-manifests/-/merge_requests/1", s.forge.url);
    assert!(
        first
            .run
            .stderr
            .contains(&format!("merge request !1 created: {url}")),
        "{}",
        first.run.stderr
    );
    let items = s.forge.items();
    assert_eq!(items.len(), 1);
    let mr = &items[0];
    assert_eq!(mr["title"], "Update team/app to 1.4.2");
    assert_eq!(mr["source_branch"], "tagbump/main/team-app-d3545c89");
    assert_eq!(mr["target_branch"], "main");
    assert_eq!(mr["labels"], json!(["gitops", "bump"]));
    assert_eq!(mr["assignees"].as_array().unwrap().len(), 1);
    let description = mr["description"].as_str().unwrap();
    assert!(
        description.contains("| `apps/app/values.yaml` | `image.tag` | `1.4.1` | `1.4.2` |"),
        "{description}"
    );
    let create = s
        .forge
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(create.header("private-token"), Some(TOKEN));
    assert_eq!(create.body["remove_source_branch"], json!(true));

    let second = s.run("gitlab", "1.4.3", &extra, "GITLAB_TOKEN");
    assert_eq!(second.run.code, 0, "{}", second.run.stderr);
    assert!(
        second.run.stderr.contains("merge request !1 updated"),
        "{}",
        second.run.stderr
    );
    assert_eq!(s.forge.items().len(), 1, "no second merge request");
    assert_eq!(s.forge.items()[0]["title"], "Update team/app to 1.4.3");

    let third = s.run("gitlab", "1.4.3", &extra, "GITLAB_TOKEN");
    assert_eq!(third.run.code, 0, "{}", third.run.stderr);
    assert!(
        third.run.stderr.contains("merge request !1 unchanged"),
        "{}",
        third.run.stderr
    );
    assert_eq!(s.forge.items().len(), 1);
    s.assert_token_only_in_headers();
}

#[test]
fn gitlab_job_token_and_auto_merge_field_follow_the_server() {
    let Some(s) = setup("team/automerge") else {
        return;
    };
    let first = s.run("gitlab", "1.4.2", &["--auto-merge"], "CI_JOB_TOKEN");
    assert_eq!(first.run.code, 0, "{}", first.run.stderr);
    let merge = s
        .forge
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/merge"))
        .expect("merge call");
    assert_eq!(merge.header("job-token"), Some(TOKEN));
    assert_eq!(
        merge.body,
        json!({"auto_merge": true}),
        "GitLab 17.11 takes auto_merge"
    );
    assert_eq!(s.forge.items()[0]["auto_merge"], json!(true));

    s.forge.state.lock().unwrap().version = "16.9.1".into();
    let second = s.run("gitlab", "1.4.3", &["--auto-merge"], "CI_JOB_TOKEN");
    assert_eq!(second.run.code, 0, "{}", second.run.stderr);
    let merge = s
        .forge
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/merge"))
        .unwrap();
    assert_eq!(
        merge.body,
        json!({"merge_when_pipeline_succeeds": true}),
        "older GitLab"
    );
}

#[test]
fn github_pull_request_lifecycle_and_a_refused_auto_merge() {
    let Some(s) = setup("team/pr") else { return };
    s.forge.state.lock().unwrap().auto_merge_error =
        Some("Pull request Auto merge is not allowed for this repository".into());
    let extra = ["--label", "gitops", "--reviewer", "bob", "--auto-merge"];
    let first = s.run("github", "1.4.2", &extra, "GITHUB_TOKEN");
    assert_eq!(first.run.code, 0, "{}", first.run.stderr);
    assert!(
        first.run.stderr.contains("pull request #1 created"),
        "{}",
        first.run.stderr
    );
    assert!(
        first.run.stderr.contains("does not allow auto-merge"),
        "{}",
        first.run.stderr
    );
    let pr = &s.forge.items()[0];
    assert_eq!(pr["head"]["ref"], "tagbump/main/team-app-d3545c89");
    assert_eq!(pr["labels"], json!([{"name": "gitops"}]));
    assert_eq!(pr["requested_reviewers"], json!([{"login": "bob"}]));
    let create = s
        .forge
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/pulls"))
        .unwrap();
    assert_eq!(
        create.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    s.forge.state.lock().unwrap().auto_merge_error = None;
    let second = s.run("github", "1.4.3", &extra, "GITHUB_TOKEN");
    assert_eq!(second.run.code, 0, "{}", second.run.stderr);
    assert!(
        second.run.stderr.contains("pull request #1 updated"),
        "{}",
        second.run.stderr
    );
    assert_eq!(s.forge.items().len(), 1, "no second pull request");
    assert_eq!(s.forge.items()[0]["auto_merge"], json!("SQUASH"));
    s.assert_token_only_in_headers();
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let Some(s) = setup("team/retry") else { return };
    s.forge.state.lock().unwrap().fail_next = vec![429, 502];
    let u = s.run("gitlab", "1.4.2", &[], "GITLAB_TOKEN");
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert!(
        u.run.stderr.contains("HTTP 429; retrying in 1.0 s"),
        "Retry-After honoured: {}",
        u.run.stderr
    );
    assert!(
        u.run.stderr.contains("HTTP 502; retrying"),
        "{}",
        u.run.stderr
    );
    assert!(
        u.run.stderr.contains("merge request !1 created"),
        "{}",
        u.run.stderr
    );
}

#[test]
fn a_refused_token_names_the_scope_and_never_prints_it() {
    let Some(s) = setup("team/denied") else {
        return;
    };
    let u = s.run("gitlab", "1.4.2", &[], "WRONG_VAR_SO_NO_TOKEN_MATCHES");
    // No token for the forge at all: refused before anything is cloned or pushed.
    assert_eq!(u.run.code, 2, "{}", u.run.stderr);
    assert!(
        u.run
            .stderr
            .contains("no token to open the merge request on GitLab"),
        "{}",
        u.run.stderr
    );
    assert!(s.forge.requests().is_empty());

    let wrong = "glpat-WRONGWRONGWRONG1";
    let env = [
        ("SSH_PRIVATE_KEY", s.server.key.as_str()),
        ("SSH_KNOWN_HOSTS", s.server.known_hosts.as_str()),
        ("GITLAB_TOKEN", wrong),
    ];
    let api = format!("{}/api/v4", s.forge.url);
    let u = update(
        &[
            "--repo",
            &s.url,
            "--image",
            "registry.example.com/team/app:1.4.2",
            "--forge",
            "gitlab",
            "--api-url",
            &api,
        ],
        &env,
    );
    assert_eq!(u.run.code, 6, "{}", u.run.stderr);
    assert!(u.run.stderr.contains("HTTP 401"), "{}", u.run.stderr);
    assert!(
        u.run.stderr.contains("hint: the token was not accepted"),
        "{}",
        u.run.stderr
    );
    assert!(!format!("{}{}", u.run.stdout, u.run.stderr).contains(wrong));
}

#[test]
fn a_dry_run_sends_nothing_to_the_forge() {
    let Some(s) = setup("team/dry") else { return };
    let u = s.run(
        "gitlab",
        "1.4.2",
        &["--dry-run", "--label", "gitops"],
        "GITLAB_TOKEN",
    );
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert!(u.run.stderr.contains("dry run: would open or update the merge request from `tagbump/main/team-app-d3545c89` into `main`"), "{}", u.run.stderr);
    assert!(
        u.run.stderr.contains("title: Update team/app to 1.4.2"),
        "{}",
        u.run.stderr
    );
    assert!(u.run.stderr.contains("labels: gitops"), "{}", u.run.stderr);
    assert!(
        s.forge.requests().is_empty(),
        "sent: {:?}",
        s.forge.requests()
    );
}

/// Replace what differs between runs (SHAs, ports, temp paths) for snapshots.
fn normalize(text: &str, s: &Setup) -> String {
    let mut out = text
        .replace(&s.forge.url, "http://FORGE")
        .replace(&s.url, "ssh://REPO");
    let hex = regex_lite::Regex::new(r"\b[0-9a-f]{40}\b").unwrap();
    out = hex.replace_all(&out, "<sha>").into_owned();
    let short = regex_lite::Regex::new(r"`[0-9a-f]{12}`").unwrap();
    short.replace_all(&out, "`<sha>`").into_owned()
}

#[test]
fn json_output_github_outputs_and_dotenv() {
    let Some(s) = setup("team/outputs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (out_file, summary_file, dotenv) = (
        dir.path().join("out"),
        dir.path().join("summary"),
        dir.path().join("tagbump.env"),
    );
    let api = format!("{}/api/v4", s.forge.url);
    let env = [
        ("SSH_PRIVATE_KEY", s.server.key.as_str()),
        ("SSH_KNOWN_HOSTS", s.server.known_hosts.as_str()),
        ("GITLAB_TOKEN", TOKEN),
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_OUTPUT", out_file.to_str().unwrap()),
        ("GITHUB_STEP_SUMMARY", summary_file.to_str().unwrap()),
    ];
    let u = update(
        &[
            "--repo",
            &s.url,
            "--image",
            "registry.example.com/team/app:1.4.2",
            "--forge",
            "gitlab",
            "--api-url",
            &api,
            "--project",
            "team/app-manifests",
            "--output",
            "json",
            "--dotenv",
            dotenv.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    let json = normalize(&u.run.stdout, &s);
    let expected = r#"{
  "version": 1,
  "changed": true,
  "operation": "pushed",
  "repository": "ssh://REPO",
  "base": "main",
  "branch": "tagbump/main/team-app-d3545c89",
  "commit": "<sha>",
  "parent": "<sha>",
  "via": "git",
  "via_reason": "--via auto: no https:// GitHub, GitLab or Gitea repository with an API token",
  "signed": null,
  "signing_key": null,
  "attempts": 1,
  "images": [
    {
      "reference": "registry.example.com/team/app:1.4.2",
      "name": "registry.example.com/team/app",
      "tag": "1.4.2",
      "digest": null,
      "source": "given"
    }
  ],
  "files": [
    {
      "path": "apps/app/values.yaml",
      "changes": [
        {
          "path": "image.tag",
          "document": 0,
          "line": 4,
          "old": "1.4.1",
          "new": "1.4.2",
          "changed": true
        }
      ],
      "diff": "--- a/apps/app/values.yaml\n+++ b/apps/app/values.yaml\n@@ -1,5 +1,5 @@\n # Values for team/app.\n image:\n   repository: registry.example.com/team/app\n-  tag: \"1.4.1\"   # written by CI\n+  tag: \"1.4.2\"   # written by CI\n replicas: 2\n"
    }
  ],
  "skipped": [],
  "notes": [],
  "change_request": {
    "forge": "gitlab",
    "number": 1,
    "url": "http://FORGE/team/app-manifests/-/merge_requests/1",
    "operation": "created",
    "notes": []
  }
}
"#;
    assert_eq!(json, expected);

    let outputs = normalize(&std::fs::read_to_string(&out_file).unwrap(), &s);
    assert_eq!(
        outputs,
        "changed=true\npush-operation=pushed\noperation=pushed\ncommit=<sha>\nbranch=tagbump/main/team-app-d3545c89\nbase=main\n\
         pr-url=http://FORGE/team/app-manifests/-/merge_requests/1\npr-number=1\npr-operation=created\n"
    );
    // Issue #20: every output the binary writes is declared in action.yml
    // (an undeclared one reads empty in later steps), and nothing more.
    let written: std::collections::BTreeSet<String> = outputs
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    let action: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml")).unwrap(),
    )
    .unwrap();
    let declared: std::collections::BTreeSet<String> = action["outputs"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let name = k.as_str().unwrap().to_string();
            assert_eq!(
                v["value"].as_str().unwrap(),
                format!("${{{{ steps.run.outputs.{name} }}}}"),
                "{name} is the run step's output of the same name"
            );
            name
        })
        .collect();
    assert_eq!(written, declared);
    let summary = normalize(&std::fs::read_to_string(&summary_file).unwrap(), &s);
    assert_eq!(
        summary,
        "### tagbump: pushed on `tagbump/main/team-app-d3545c89`\n\n| file | path | old | new |\n|---|---|---|---|\n\
         | `apps/app/values.yaml` | `image.tag` | `1.4.1` | `1.4.2` |\n\nCommit `<sha>` on `tagbump/main/team-app-d3545c89` \
         · [gitlab 1](http://FORGE/team/app-manifests/-/merge_requests/1) created\n"
    );
    let env_file = normalize(&std::fs::read_to_string(&dotenv).unwrap(), &s);
    assert_eq!(
        env_file,
        "TAGBUMP_CHANGED=true\nTAGBUMP_PUSH_OPERATION=pushed\nTAGBUMP_OPERATION=pushed\nTAGBUMP_COMMIT=<sha>\nTAGBUMP_BRANCH=tagbump/main/team-app-d3545c89\n\
         TAGBUMP_BASE=main\nTAGBUMP_PR_URL=http://FORGE/team/app-manifests/-/merge_requests/1\nTAGBUMP_PR_NUMBER=1\n\
         TAGBUMP_PR_OPERATION=created\n"
    );

    // A failure in GitHub Actions is also an ::error:: annotation, on stderr
    // (stdout keeps only results).
    let u = update(
        &[
            "--repo",
            &s.url,
            "--image",
            "registry.example.com/team/nope:1",
            "--forge",
            "none",
        ],
        &env,
    );
    assert_eq!(u.run.code, 4, "{}", u.run.stderr);
    assert!(
        u.run
            .stderr
            .contains("\n::error title=tagbump::no reference to `registry.example.com/team/nope`"),
        "{}",
        u.run.stderr
    );
    assert_eq!(u.run.stdout, "");
}

#[test]
fn a_config_file_supplies_repo_targets_and_merge_request_defaults() {
    let Some(s) = setup("team/config") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let api = format!("{}/api/v4", s.forge.url);
    std::fs::write(
        work.path().join(".tagbump.yaml"),
        format!(
            "# yaml-language-server: $schema=tagbump.schema.json\n\
             repo: {url}\n\
             environments:\n  staging:\n    in: [apps/app]\n    labels: [staging]\n  prod:\n    direct: true\n\
             merge_request:\n  forge: gitlab\n  api_url: {api}\n  project: team/config\n  labels: [gitops]\n",
            url = s.url,
        ),
    )
    .unwrap();
    let env = [
        ("SSH_PRIVATE_KEY", s.server.key.as_str()),
        ("SSH_KNOWN_HOSTS", s.server.known_hosts.as_str()),
        ("GITLAB_TOKEN", TOKEN),
    ];
    let u = crate::pipeline::update_in(
        work.path(),
        &[
            "--image",
            "registry.example.com/team/app:1.4.2",
            "--env",
            "staging",
        ],
        &env,
    );
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(s.forge.items()[0]["labels"], json!(["gitops", "staging"]));
    // A flag wins over the config file.
    let u = crate::pipeline::update_in(
        work.path(),
        &[
            "--image",
            "registry.example.com/team/app:1.4.3",
            "--env",
            "staging",
            "--label",
            "urgent",
        ],
        &env,
    );
    assert_eq!(u.run.code, 0, "{}", u.run.stderr);
    assert_eq!(s.forge.items()[0]["labels"], json!(["urgent"]));
    // An unknown environment is a usage error naming the known ones.
    let u = crate::pipeline::update_in(
        work.path(),
        &[
            "--image",
            "registry.example.com/team/app:1.4.3",
            "--env",
            "qa",
        ],
        &env,
    );
    assert_eq!(u.run.code, 2, "{}", u.run.stderr);
    assert!(
        u.run
            .stderr
            .contains("no environment `qa` (environments: prod, staging)"),
        "{}",
        u.run.stderr
    );
}

#[test]
fn the_committed_config_schema_is_current() {
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tagbump.schema.json"),
    )
    .unwrap();
    assert_eq!(
        committed.trim_end(),
        tagbump::config::schema().trim_end(),
        "run `tagbump config-schema > tagbump.schema.json`"
    );
}

#[test]
fn the_committed_report_schema_is_current() {
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tagbump.report.schema.json"),
    )
    .unwrap();
    assert_eq!(
        committed.trim_end(),
        tagbump::report::schema().trim_end(),
        "run `tagbump report-schema > tagbump.report.schema.json`"
    );
}
