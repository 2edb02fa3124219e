//! What the user sees: results (diffs) on stdout, a summary on stderr.

use std::io::Write;

use crate::target::{FileEdit, Plan};

/// A unified diff of one file, `a/` and `b/` prefixed like git's.
pub fn diff(edit: &FileEdit) -> String {
    similar::TextDiff::from_lines(&edit.old, &edit.new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{}", edit.path), &format!("b/{}", edit.path))
        .to_string()
}

/// Print every changed file's diff to `out`.
pub fn write_diffs(out: &mut impl Write, plan: &Plan) -> std::io::Result<()> {
    for edit in plan.files.iter().filter(|f| f.changed()) {
        out.write_all(diff(edit).as_bytes())?;
    }
    out.flush()
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
        Operation::Unchanged if report.commit.is_some() => writeln!(
            err,
            "already up to date: review branch `{}` already has these changes",
            report.branch
        )?,
        Operation::Unchanged => writeln!(
            err,
            "already up to date: nothing to change on `{}`",
            report.base
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
            writeln!(
                err,
                "pushed {} to {target} on {url}{retries}",
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
