//! Issue #20: the README runs as pasted. Every fenced block is checked: each
//! `tagbump` command's flags exist in that subcommand's `--help`; each YAML
//! block parses, has no placeholder left outside its comments, and the CI
//! ones validate against their published schemas (GitLab CI; a GitHub
//! workflow, or its steps inside one). And every flag `--help` lists is
//! documented in the README.

use std::collections::BTreeSet;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// (language, body) of each fenced block.
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(lang) = line.strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        out.push((lang.trim().to_string(), body.join("\n") + "\n"));
    }
    out
}

/// The long flags `tagbump SUB --help` lists.
fn help_flags(sub: &str) -> BTreeSet<String> {
    let out = crate::support::Sandbox::new()
        .command()
        .args([sub, "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let flag = regex_lite::Regex::new(r"--[a-z][a-z0-9-]+").unwrap();
    text.lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .flat_map(|l| {
            flag.find_iter(l)
                .map(|m| m.as_str().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Each `tagbump SUB …` command in shell text, its continuation lines
/// joined: (subcommand, flags).
fn commands(text: &str) -> Vec<(String, Vec<String>)> {
    let joined = text.replace("\\\n", " ");
    let flag = regex_lite::Regex::new(r"(?:^|\s)(--[a-z][a-z0-9-]+)").unwrap();
    joined
        .lines()
        .flat_map(|l| l.split(['|', ';']).map(str::to_string).collect::<Vec<_>>())
        .filter_map(|l| {
            let at = l.find("tagbump ")?;
            // `tagbump` as a command, not inside a path or a URL.
            if at > 0 && !l[..at].ends_with([' ', '(', '`', '-']) {
                return None;
            }
            let rest = l[at + "tagbump ".len()..].split(" #").next()?.to_string();
            let sub = rest.split_whitespace().next()?.to_string();
            let flags = flag
                .captures_iter(&rest)
                .map(|c| c[1].to_string())
                .collect();
            Some((sub, flags))
        })
        .collect()
}

#[test]
fn every_tagbump_command_in_the_readme_uses_flags_that_exist() {
    let text = readme();
    let mut checked = 0;
    let subs = [
        "update",
        "set",
        "image",
        "demo",
        "completions",
        "man",
        "config-schema",
        "report-schema",
    ];
    for (_, body) in blocks(&text) {
        for (sub, flags) in commands(&body) {
            if !subs.contains(&sub.as_str()) {
                continue;
            }
            let known = help_flags(&sub);
            for flag in flags {
                assert!(
                    known.contains(&flag),
                    "`tagbump {sub} {flag}` in the README: no such flag"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "only {checked} flags checked");
}

#[test]
fn every_flag_in_help_is_documented() {
    let text = readme();
    for sub in ["update", "set", "image", "demo"] {
        // (The global flags, -v/-q/--color, are listed by every subcommand.)
        for flag in help_flags(sub) {
            if ["--help", "--version"].contains(&flag.as_str()) {
                continue;
            }
            assert!(
                text.contains(&flag),
                "`tagbump {sub} {flag}` is not in the README"
            );
        }
    }
}

#[test]
fn every_yaml_block_parses_has_no_placeholder_and_validates() {
    let text = readme();
    let dir = tempfile::tempdir().unwrap();
    let mut ci = 0;
    for (i, (lang, body)) in blocks(&text).into_iter().enumerate() {
        if lang != "yaml" {
            continue;
        }
        let value: serde_norway::Value =
            serde_norway::from_str(&body).unwrap_or_else(|e| panic!("block {i}: {e}\n{body}"));
        let code: String = body
            .lines()
            .map(|l| l.split(" #").next().unwrap_or_default())
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !code.contains('…') && !code.contains("..."),
            "a placeholder in block {i}:\n{body}"
        );
        check_inputs(&value, i);
        let schema = if body.contains("- uses: tagbump/tagbump") && value.get("jobs").is_none() {
            // Steps: checked inside a workflow.
            let workflow = serde_norway::to_string(&serde_json::json!({
                "on": "push",
                "jobs": {"bump": {"runs-on": "ubuntu-latest", "steps": value}},
            }))
            .unwrap();
            std::fs::write(dir.path().join(format!("{i}.yml")), workflow).unwrap();
            "vendor.github-workflows"
        } else if value.get("jobs").is_some() {
            std::fs::write(dir.path().join(format!("{i}.yml")), &body).unwrap();
            "vendor.github-workflows"
        } else if body.contains("script:") || body.contains("include:") {
            std::fs::write(dir.path().join(format!("{i}.yml")), &body).unwrap();
            "vendor.gitlab-ci"
        } else {
            continue;
        };
        ci += 1;
        let Some(check) = crate::packaging::tool("check-jsonschema") else {
            return;
        };
        let out = Command::new(check)
            .args(["--builtin-schema", schema])
            .arg(dir.path().join(format!("{i}.yml")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "block {i} against {schema}: {}{}\n{body}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(ci >= 4, "only {ci} CI blocks");
}

// The versions the README and the component's comment name (action,
// component, image) are this release's: a copied example installs what
// the text around it describes.
#[test]
fn the_versions_the_docs_name_are_this_release() {
    let pattern =
        regex_lite::Regex::new(r"tagbump/tagbump(?:/tagbump)?[@:]v?(\d+\.\d+\.\d+)").unwrap();
    for file in ["README.md", "templates/tagbump.yml"] {
        let text =
            std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let found: Vec<&str> = pattern
            .captures_iter(&text)
            .map(|c| c.get(1).unwrap().as_str())
            .collect();
        assert!(!found.is_empty(), "{file}");
        for version in found {
            assert_eq!(version, env!("CARGO_PKG_VERSION"), "{file}");
        }
    }
}

/// Every `with:` of the Action and every `inputs:` of the component in a
/// README block is one they declare.
fn check_inputs(value: &serde_norway::Value, block: usize) {
    let root = env!("CARGO_MANIFEST_DIR");
    let action: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(format!("{root}/action.yml")).unwrap())
            .unwrap();
    let component = std::fs::read_to_string(format!("{root}/templates/tagbump.yml")).unwrap();
    let spec: serde_norway::Value =
        serde_norway::from_str(component.split_once("\n---\n").unwrap().0).unwrap();
    let mut stack = vec![value.clone()];
    while let Some(v) = stack.pop() {
        if let Some(map) = v.as_mapping() {
            let uses = map.get("uses").and_then(|u| u.as_str()).unwrap_or_default();
            let component_ref = map
                .get("component")
                .and_then(|u| u.as_str())
                .unwrap_or_default();
            let (given, declared) = if uses.starts_with("tagbump/tagbump@") {
                (map.get("with"), &action["inputs"])
            } else if component_ref.contains("tagbump/tagbump/tagbump@") {
                (map.get("inputs"), &spec["spec"]["inputs"])
            } else {
                (None, &action["inputs"])
            };
            for key in given
                .and_then(|g| g.as_mapping())
                .into_iter()
                .flat_map(|m| m.keys())
            {
                let key = key.as_str().unwrap();
                assert!(
                    declared.get(key).is_some(),
                    "block {block}: `{key}` is not an input of {uses}{component_ref}"
                );
            }
            stack.extend(map.values().cloned());
        } else if let Some(seq) = v.as_sequence() {
            stack.extend(seq.iter().cloned());
        }
    }
}
