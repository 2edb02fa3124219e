//! What the user sees: results (diffs) on stdout, a summary on stderr.

use std::io::Write;

use crate::targets::{FileEdit, Plan};

/// A unified diff of one file, `a/` and `b/` prefixed like git's.
pub fn diff(edit: &FileEdit) -> String {
    similar::TextDiff::from_lines(&edit.old, &edit.new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{}", edit.path), &format!("b/{}", edit.path))
        .to_string()
}

/// Print every changed file's diff to `out`, in colour when stdout is a
/// terminal and NO_COLOR is not set.
pub fn write_diffs(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    let colour = use_colour();
    for edit in plan.files.iter().filter(|f| f.changed()) {
        let text = diff(edit);
        if colour {
            out.write_all(colourize(&text).as_bytes())?;
        } else {
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush()
}

fn use_colour() -> bool {
    crate::log::colour_stdout()
}

/// ANSI colours for a unified diff: headers bold, hunks cyan, - red, + green.
pub fn colourize(diff: &str) -> String {
    diff.split_inclusive('\n')
        .map(|line| {
            let code = if line.starts_with("+++") || line.starts_with("---") {
                "1"
            } else if line.starts_with("@@") {
                "36"
            } else if line.starts_with('+') {
                "32"
            } else if line.starts_with('-') {
                "31"
            } else {
                return line.to_string();
            };
            let (body, end) = match line.strip_suffix('\n') {
                Some(body) => (body, "\n"),
                None => (line, ""),
            };
            format!("\x1b[{code}m{body}\x1b[0m{end}")
        })
        .collect()
}

/// One line per value found, then what was skipped and any notes.
pub fn write_summary(err: &mut impl Write, plan: &Plan, dry_run: bool) -> std::io::Result<()> {
    write_findings(err, plan)?;
    let changed = plan.files.iter().filter(|f| f.changed()).count();
    if changed == 0 {
        writeln!(err, "already up to date")?;
    } else if dry_run {
        writeln!(
            err,
            "dry run: {changed} file(s) would change; nothing written"
        )?;
    } else {
        writeln!(err, "updated {changed} file(s)")?;
    }
    Ok(())
}

/// What was skipped, every value found (changed or already there), and notes.
fn write_findings(err: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    for (path, why) in &plan.skipped {
        writeln!(err, "skipped {path}: {why}")?;
    }
    for file in &plan.files {
        for o in &file.outcomes {
            if o.changed {
                writeln!(
                    err,
                    "{}:{}: {}: {} -> {}",
                    file.path,
                    o.line,
                    o.what,
                    show(&o.old),
                    show(&o.new)
                )?;
            } else {
                writeln!(
                    err,
                    "{}:{}: {}: already {}",
                    file.path,
                    o.line,
                    o.what,
                    show(&o.new)
                )?;
            }
        }
    }
    for note in &plan.notes {
        writeln!(err, "note: {note}")?;
    }
    Ok(())
}

fn show(value: &str) -> String {
    if value.is_empty() {
        "\"\"".to_string()
    } else {
        value.to_string()
    }
}

/// What `tagbump update` prints: diffs on stdout for a dry run, the summary
/// and the outcome on stderr.
pub fn write_update(
    out: &mut impl Write,
    err: &mut impl Write,
    report: &crate::update::Report,
    url: &str,
) -> std::io::Result<()> {
    use crate::update::Operation;
    if report.operation == Operation::DryRun {
        write_diffs(out, &report.plan)?;
    }
    write_findings(err, &report.plan)?;
    let short = |c: &Option<String>| {
        c.as_deref()
            .map(|c| c[..c.len().min(12)].to_string())
            .unwrap_or_default()
    };
    let target = if report.branch == report.base {
        format!("`{}`", report.branch)
    } else if report.branch_existed {
        format!("`{}` (updating the review branch)", report.branch)
    } else {
        format!(
            "`{}` (new review branch from `{}`)",
            report.branch, report.base
        )
    };
    match report.operation {
        Operation::AlreadyOnBranch => writeln!(
            err,
            "already up to date: review branch `{}` already has these changes",
            report.branch
        )?,
        Operation::Unchanged => writeln!(
            err,
            "already up to date: nothing to change on `{}`",
            report.base
        )?,
        Operation::DryRun if report.via.is_some() => writeln!(
            err,
            "dry run: would commit to {target} on {url} through {}'s API; nothing was sent",
            report.via.map(|k| k.to_string()).unwrap_or_default()
        )?,
        Operation::DryRun => writeln!(
            err,
            "dry run: would push commit {} to {target} on {url}; nothing was sent",
            short(&report.commit)
        )?,
        Operation::Pushed => {
            let retries = if report.attempts > 1 {
                format!(" after {} attempts", report.attempts)
            } else {
                String::new()
            };
            let via = match report.via {
                Some(kind) => format!(" through {kind}'s API"),
                None => String::new(),
            };
            writeln!(
                err,
                "pushed {} to {target} on {url}{via}{retries}",
                short(&report.commit)
            )?
        }
    }
    out.flush()
}

/// The merge/pull request a dry run would open or update.
pub fn write_change_request_plan(
    err: &mut impl Write,
    conn: &crate::forge::Connection,
    request: &crate::forge::ChangeRequest,
) -> std::io::Result<()> {
    writeln!(
        err,
        "dry run: would open or update the {} from `{}` into `{}` on {} ({}, project `{}`); nothing was sent",
        conn.kind.noun(),
        request.source_branch,
        request.target_branch,
        conn.kind,
        conn.api_url,
        conn.project
    )?;
    writeln!(err, "  title: {}", request.title)?;
    for (what, list) in [
        ("labels", &request.labels),
        ("assignees", &request.assignees),
        ("reviewers", &request.reviewers),
    ] {
        if !list.is_empty() {
            writeln!(err, "  {what}: {}", list.join(", "))?;
        }
    }
    let flags: Vec<&str> = [
        (request.draft, "draft"),
        (request.auto_merge, "auto-merge"),
        (request.squash, "squash"),
        (request.remove_source_branch, "remove source branch"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect();
    if !flags.is_empty() {
        writeln!(err, "  options: {}", flags.join(", "))?;
    }
    writeln!(err, "  description:")?;
    for line in request.description.lines() {
        writeln!(err, "    {line}")?;
    }
    Ok(())
}

/// The merge/pull request after the run: what happened, its number and URL.
pub fn write_change_request(
    err: &mut impl Write,
    outcome: &crate::forge::Outcome,
) -> std::io::Result<()> {
    writeln!(
        err,
        "{} {} {}: {}",
        outcome.kind.noun(),
        outcome.kind.reference(outcome.number),
        outcome.operation,
        outcome.url
    )?;
    for note in &outcome.notes {
        writeln!(err, "note: {note}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn diffs_are_coloured_line_by_line() {
        let plain = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n c\n";
        assert_eq!(
            super::colourize(plain),
            "\x1b[1m--- a/x\x1b[0m\n\x1b[1m+++ b/x\x1b[0m\n\x1b[36m@@ -1 +1 @@\x1b[0m\n\x1b[31m-a\x1b[0m\n\x1b[32m+b\x1b[0m\n c\n"
        );
    }
}
