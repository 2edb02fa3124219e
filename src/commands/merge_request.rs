//! The merge/pull request step after a review branch is pushed: its title
//! and description from the templates (or the defaults), then the forge
//! client opens it or brings the open one in line; a dry run prints it.

use anyhow::Result;

use crate::{error, forge, output, settings, update};

/// Open or update the merge/pull request for a pushed review branch.
pub fn open_or_update(
    spec: &update::UpdateSpec,
    forge_spec: &settings::ForgeSpec,
    report: &update::Report,
) -> Result<Option<forge::Outcome>> {
    let mut outcome = once(spec, forge_spec, report)?;
    if !spec.join || outcome.is_none() {
        return Ok(outcome);
    }
    // `--join`: jobs write the request concurrently, and one that pushed
    // earlier may write after one that pushed later, listing less. Each job
    // reads the branch again after writing and writes what it holds until
    // the two agree: the last writer sees every push, so the request ends
    // listing every image. Best effort: the push has landed either way.
    let mut report = report.clone();
    for _ in 0..4 {
        let Ok(now) = update::join::images_on(spec, &report.branch) else {
            break;
        };
        let (mut have, mut want) = (report.joined.clone(), now.clone());
        have.sort();
        want.sort();
        if now.is_empty() || have == want {
            break;
        }
        report.joined = now;
        outcome = once(spec, forge_spec, &report)?;
    }
    Ok(outcome)
}

/// Open or update the merge request for `report`, once.
fn once(
    spec: &update::UpdateSpec,
    forge_spec: &settings::ForgeSpec,
    report: &update::Report,
) -> Result<Option<forge::Outcome>> {
    let Some(conn) = &forge_spec.connection else {
        if let Some(note) = &forge_spec.note {
            crate::note!("note: {note}");
        }
        return Ok(None);
    };
    // Nothing on the branch to review: the base already had the values.
    if report.commit.is_none() {
        return Ok(None);
    }
    let vars = update::template_vars(spec, &report.plan, &report.base, &report.branch);
    let render = |template: &str| {
        update::render_message(template, &vars)
            .map_err(|e| error::Failure::new(error::Kind::Usage, e))
    };
    let mut request = forge_spec.request.clone();
    request.title = match &forge_spec.title {
        Some(t) => render(t)?,
        None => update::message::joined_summary(&report.joined)
            .unwrap_or_else(|| update::summary(spec, &report.plan)),
    };
    request.description = match &forge_spec.description {
        Some(t) => render(t)?,
        None => update::default_description(spec, report, conn.kind.noun()),
    };
    if spec.join {
        request.joined = report.joined.len();
        request.mark_joined();
    }
    request.source_branch = report.branch.clone();
    request.target_branch = report.base.clone();
    if let Some(note) = &forge_spec.note {
        crate::note!("note: {note}");
    }
    if report.operation == update::Operation::DryRun {
        output::write_change_request_plan(&mut std::io::stderr().lock(), conn, &request)?;
        return Ok(None);
    }
    let outcome = crate::http::block_on(forge::open_or_update(conn, &request))?;
    output::write_change_request(&mut std::io::stderr().lock(), &outcome)?;
    Ok(Some(outcome))
}
