//! Words: the commit message (from a `--message` template or the default
//! summary, with the trailers that mark tagbump's commits) and the merge
//! request's default title and description.

use std::collections::BTreeMap;

use anyhow::Result;

use super::{review_branch::targets_id, Report, UpdateSpec, TARGETS_TRAILER};
use crate::error::{Failure, Kind};
use crate::git::TRAILER;
use crate::image::ImageRef;
use crate::targets::{FileEdit, Plan};

/// The placeholders a `--message` template may use.
pub const MESSAGE_VARIABLES: &[&str] = &[
    "image",
    "name",
    "old_tag",
    "new_tag",
    "files",
    "changes",
    "branch",
    "base",
    "source_commit",
    "pipeline_url",
];

/// Fill a message template: `{name}` placeholders from [`MESSAGE_VARIABLES`];
/// `{{` and `}}` are literal braces. Unknown placeholders are an error.
pub fn render_message(template: &str, vars: &BTreeMap<&str, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if tail.starts_with('}') {
            return Err(
                "unmatched `}` in the message template (write `}}` for a literal brace)".into(),
            );
        }
        let Some(end) = tail.find('}') else {
            return Err(
                "unclosed `{` in the message template (write `{{` for a literal brace)".into(),
            );
        };
        let name = &tail[1..end];
        match vars.get(name) {
            Some(value) => out.push_str(value),
            None if MESSAGE_VARIABLES.contains(&name) => {}
            None => {
                return Err(format!(
                    "unknown placeholder `{{{name}}}` in the message template; use {}",
                    MESSAGE_VARIABLES
                        .iter()
                        .map(|v| format!("{{{v}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// What is wrong with a `--message` template, checked before any
/// connection: empty (the subject would be the trailers), or a placeholder
/// that does not exist.
pub fn template_problem(template: &str) -> Option<String> {
    if template.trim().is_empty() {
        return Some("is empty: a commit needs a subject".into());
    }
    let vars = MESSAGE_VARIABLES
        .iter()
        .map(|v| (*v, String::from("x")))
        .collect();
    render_message(template, &vars).err()
}

/// The values behind the `{…}` placeholders of messages, titles and descriptions.
pub fn template_vars(
    spec: &UpdateSpec,
    plan: &Plan,
    base: &str,
    branch: &str,
) -> BTreeMap<&'static str, String> {
    let changed: Vec<&FileEdit> = plan.files.iter().filter(|f| f.changed()).collect();
    let first = changed
        .iter()
        .flat_map(|f| f.outcomes.iter())
        .find(|o| o.changed);
    let changes: Vec<String> = changed
        .iter()
        .flat_map(|f| {
            f.outcomes
                .iter()
                .filter(|o| o.changed)
                .map(move |o| format!("- {}: {}: {} -> {}", f.path, o.what, o.old, o.new))
        })
        .collect();
    let files: Vec<&str> = changed.iter().map(|f| f.path.as_str()).collect();
    let mut vars: BTreeMap<&'static str, String> = BTreeMap::new();
    vars.insert("changes", changes.join("\n"));
    vars.insert("files", files.join(", "));
    vars.insert("branch", branch.to_string());
    vars.insert("base", base.to_string());
    if let Some(image) = spec.images.first() {
        vars.insert("image", image.to_string());
        vars.insert("name", image.name());
        vars.insert("new_tag", image.version());
    } else if let Some(o) = first {
        vars.insert("new_tag", o.new.clone());
    }
    if let Some(o) = first {
        let old = ImageRef::parse(&o.old)
            .ok()
            .map(|r| r.version())
            .filter(|v| !v.is_empty());
        vars.insert("old_tag", old.unwrap_or_else(|| o.old.clone()));
    }
    if let Some(sha) = &spec.source_commit {
        vars.insert("source_commit", sha.clone());
    }
    if let Some(url) = &spec.pipeline_url {
        vars.insert("pipeline_url", url.clone());
    }
    vars
}

/// The one-line summary used for commits and titles by default.
/// The title of a joined branch's merge request: every image its jobs
/// asked for (the first few by name).
pub fn joined_summary(joined: &[String]) -> Option<String> {
    if joined.len() < 2 {
        return None;
    }
    let names: Vec<&str> = joined.iter().take(3).map(String::as_str).collect();
    let more = joined.len().saturating_sub(3);
    Some(match more {
        0 => format!("Update {}", names.join(", ")),
        n => format!("Update {} and {n} more", names.join(", ")),
    })
}

pub fn summary(spec: &UpdateSpec, plan: &Plan) -> String {
    match spec.images.first() {
        Some(image) => format!("Update {} to {}", image.path, image.version()),
        None => {
            let files: Vec<&str> = plan
                .files
                .iter()
                .filter(|f| f.changed())
                .map(|f| f.path.as_str())
                .collect();
            format!("Update {}", files.join(", "))
        }
    }
}

/// The commit message: the template (or a default summary), the list of
/// changes, CI links, and the trailer that marks tagbump's commits.
pub fn message(spec: &UpdateSpec, plan: &Plan, base: &str, branch: &str) -> Result<String> {
    let vars = template_vars(spec, plan, base, branch);
    let body = match &spec.message {
        Some(template) => {
            render_message(template, &vars).map_err(|e| Failure::new(Kind::Usage, e))?
        }
        None => {
            let mut text = format!("{}\n\n{}\n", summary(spec, plan), vars["changes"]);
            if let Some(sha) = &spec.source_commit {
                text.push_str(&format!("\nSource-Commit: {sha}"));
            }
            if let Some(url) = &spec.pipeline_url {
                text.push_str(&format!("\nPipeline: {url}"));
            }
            text
        }
    };
    Ok(format!(
        "{}\n\n{TARGETS_TRAILER} {}\n{TRAILER}\n",
        body.trim_end(),
        targets_id(spec)
    ))
}

/// The default merge/pull request description: a table of the changes, and
/// links to where they came from.
pub fn default_description(spec: &UpdateSpec, report: &Report, noun: &str) -> String {
    let mut text = match spec.images.first() {
        Some(image) => format!(
            "tagbump updated `{}` to `{}` on `{}`.\n\n",
            image.name(),
            image.version(),
            report.base
        ),
        None => format!("tagbump updated these values on `{}`.\n\n", report.base),
    };
    for (image, source) in spec.images.iter().zip(&spec.image_sources) {
        let how = match source {
            crate::registry::Source::Given => continue,
            crate::registry::Source::Verified => "the registry has it",
            crate::registry::Source::Resolved => "digest resolved from the registry",
            crate::registry::Source::Policy => "tag chosen from the registry by --tag-policy",
        };
        text.push_str(&format!("- `{image}` ({how})\n"));
    }
    if spec
        .image_sources
        .iter()
        .any(|s| *s != crate::registry::Source::Given)
    {
        text.push('\n');
    }
    text.push_str("| file | path | old | new |\n|---|---|---|---|\n");
    for file in report.plan.files.iter().filter(|f| f.changed()) {
        for o in file.outcomes.iter().filter(|o| o.changed) {
            text.push_str(&format!(
                "| `{}` | `{}` | `{}` | `{}` |\n",
                file.path, o.what, o.old, o.new
            ));
        }
    }
    if report.joined.len() > 1 {
        text.push_str(&format!(
            "\nThe jobs joined on `{}` asked for:\n\n",
            report.branch
        ));
        for image in &report.joined {
            text.push_str(&format!("- `{image}`\n"));
        }
    }
    let mut links = Vec::new();
    if let Some(sha) = &spec.source_commit {
        links.push(format!("source commit `{sha}`"));
    }
    if let Some(url) = &spec.pipeline_url {
        links.push(format!("[pipeline]({url})"));
    }
    if !links.is_empty() {
        text.push_str(&format!("\nFrom {}.\n", links.join(", ")));
    }
    text.push_str(&format!(
        "\n<sub>Opened by tagbump from branch `{}`; running it again with a newer tag updates this {noun}.</sub>\n",
        report.branch
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_says_where_each_image_came_from() {
        let mut spec = crate::update::example_spec();
        spec.images = vec![
            crate::image::ImageRef::parse("ghcr.io/o/app:1.4.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").unwrap(),
            crate::image::ImageRef::parse("ghcr.io/o/web:2.0.0").unwrap(),
        ];
        spec.image_sources = vec![
            crate::registry::Source::Resolved,
            crate::registry::Source::Policy,
        ];
        let report = Report {
            operation: crate::update::Operation::Pushed,
            base: "main".into(),
            branch: "b".into(),
            branch_existed: false,
            parent: String::new(),
            commit: None,
            via: None,
            via_reason: String::new(),
            signed: None,
            plan: Default::default(),
            attempts: 1,
            message: String::new(),
            joined: Vec::new(),
        };
        let text = default_description(&spec, &report, "merge request");
        assert!(text.contains(
            "- `ghcr.io/o/app:1.4.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef` (digest resolved from the registry)\n\
             - `ghcr.io/o/web:2.0.0` (tag chosen from the registry by --tag-policy)\n\n| file |"
        ), "{text}");
    }

    #[test]
    fn message_templates() {
        let mut vars = BTreeMap::new();
        vars.insert("name", "team/app".to_string());
        vars.insert("new_tag", "1.4.2".to_string());
        assert_eq!(
            render_message("chore: {name} -> {new_tag} {{x}} {pipeline_url}", &vars).unwrap(),
            "chore: team/app -> 1.4.2 {x} "
        );
        assert!(render_message("{nope}", &vars)
            .unwrap_err()
            .contains("unknown placeholder `{nope}`"));
        assert!(render_message("{name", &vars)
            .unwrap_err()
            .contains("unclosed"));
    }
}
