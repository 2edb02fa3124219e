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

fn show(value: &str) -> String {
    if value.is_empty() {
        "\"\"".to_string()
    } else {
        value.to_string()
    }
}
