//! The attempt loop: each attempt clones the newest tip, plans, commits and
//! pushes; contention (another push first) and transient faults (a shed
//! connection, a 503) are retried with [`push_backoff`] within `--attempts`
//! and `--timeout`, and anything else ends the run at once. (The forge's
//! HTTP calls have their own retry, `http::send_with_retries`.)

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use anyhow::Result;
use git2::Signature;

use super::message::message;
use super::plan::plan_on;
use super::review_branch::{branch_name, check_lease, legacy_branch_name};
use super::transport::{
    ApiCannot, Change, GitTransport, Naming, Tips, TooManyForTheApi, Transport, Written,
};
use super::{Operation, Report, UpdateSpec, Via};
use crate::error::{Failure, Kind};
use crate::forge::gitea::transport::GiteaRepo;
use crate::forge::github::transport::GitHubRepo;
use crate::forge::gitlab::transport::GitLabRepo;

/// Sleep before retry `attempt` (1-based): exponential from 200 ms, capped
/// at 5 s, times a random factor in [0.5, 1.5) so racing pipelines spread out.
pub fn push_backoff(attempt: u32) -> Duration {
    let base = 200u64.saturating_mul(1 << attempt.min(5)).min(5_000);
    let random = RandomState::new().hash_one(attempt) % 1000;
    Duration::from_millis(base * (500 + random) / 1000)
}

/// What one attempt came to.
enum Attempt {
    Done(Box<Report>),
    /// Try again from a fresh clone. `contention`: another push came first
    /// (the base moved), not a fault of the server or the network.
    Again {
        why: String,
        contention: bool,
    },
}

/// Run the update: attempts from a fresh clone each, retried with backoff
/// on contention and on transient faults, within `--attempts` and
/// `--timeout`; permanent failures (auth, host key, not found, a declined
/// push) end it at once.
pub fn run(spec: &UpdateSpec) -> Result<Report> {
    run_on(spec, None)
}

/// [`run`] on `shared` when given, every attempt: the groups of a fleet run
/// share one clone (or one API session) instead of one each.
pub fn run_on(
    spec: &UpdateSpec,
    mut shared: Option<&mut (dyn Transport + 'static)>,
) -> Result<Report> {
    let author = Signature::now(&spec.author_name, &spec.author_email).map_err(|e| {
        Failure::new(
            Kind::Usage,
            format!(
                "invalid author `{} <{}>`: {}",
                spec.author_name,
                spec.author_email,
                e.message()
            ),
        )
    })?;
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = match shared.as_deref_mut() {
            Some(repo) => attempt_on(repo, spec, attempt, &author)
                .map(|a| a.via(forge_of(&spec.via), &spec.via_reason)),
            None => attempt_once(spec, attempt, &author),
        };
        let (why, contention) = match result {
            Ok(Attempt::Done(report)) => return Ok(*report),
            Ok(Attempt::Again { why, contention }) => (why, contention),
            Err(e) if crate::error::is_transient(&e) => {
                (crate::secret::scrub(&format!("{e:#}")), false)
            }
            Err(e) => return Err(e),
        };
        let mut delay = push_backoff(attempt);
        let busy = ["http status code: 429", "http status code: 503"];
        if attempt < spec.attempts && busy.iter().any(|b| why.contains(b)) {
            if let Some(asked) = crate::git::http_retry_after(&spec.remote, &spec.auth) {
                crate::note!("the server asks to retry after {} s", asked.as_secs());
                delay = delay.max(asked.min(Duration::from_secs(60)));
            }
        }
        if attempt >= spec.attempts || started.elapsed() + delay >= spec.timeout {
            return Err(gave_up(
                attempt,
                started.elapsed(),
                &spec.remote.url,
                why,
                contention,
            ));
        }
        crate::note!(
            "attempt {attempt} of {} failed: {why}; trying again in {:.1} s",
            spec.attempts,
            delay.as_secs_f64()
        );
        crate::interrupt::waiting(format!("attempt {attempt} failed: {why}"));
        std::thread::sleep(delay);
        crate::interrupt::resumed();
    }
}

/// One attempt on a fresh transport. A fresh depth-1 clone per attempt:
/// nothing from a failed attempt can leak into the next, and a shallow clone
/// of the new tip costs about what an incremental fetch into the old one would.
fn attempt_once(spec: &UpdateSpec, attempt: u32, author: &Signature<'_>) -> Result<Attempt> {
    if let Via::Api { conn, fallback } = &spec.via {
        if fell_back().is_none() {
            // `auto` reads a scan of `--in` through the API only while the
            // listing is small; `--via api` reads whatever it is asked.
            let limit = fallback.then_some(super::AUTO_API_FILES);
            let mut repo: Box<dyn Transport> = match conn.kind {
                crate::forge::Kind::GitHub => Box::new(GitHubRepo::new(conn)?.scan_limit(limit)),
                crate::forge::Kind::GitLab => Box::new(GitLabRepo::new(conn)?.scan_limit(limit)),
                crate::forge::Kind::Gitea => Box::new(GiteaRepo::new(conn)?.scan_limit(limit)),
            };
            match attempt_on(repo.as_mut(), spec, attempt, author) {
                Err(e) if e.downcast_ref::<ApiCannot>().is_some() => {
                    let why = e.to_string();
                    if !*fallback {
                        return Err(Failure::new(Kind::Usage, why)
                            .hint("pass --via git (or --via auto, which uses git for it)")
                            .into());
                    }
                    crate::note!("note: --via auto: {why}: using git instead");
                    fall_back_to_git(format!("--via auto: {why}"));
                }
                Err(e) if e.downcast_ref::<TooManyForTheApi>().is_some() => {
                    let why = format!(
                        "--via auto: {}; a depth-1 clone reads less",
                        e.downcast_ref::<TooManyForTheApi>()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    );
                    crate::note!("note: {why}: using git instead");
                    fall_back_to_git(why);
                }
                // `--via auto`: a token that may not read the repository
                // through the API (a deploy or job token) may still push.
                Err(e)
                    if *fallback
                        && repo.requests() <= 1
                        && crate::error::kind(&e) == Kind::Auth =>
                {
                    crate::note!(
                        "note: {}'s API refused the first read ({}); using git instead",
                        conn.kind,
                        crate::secret::scrub(&format!("{e:#}"))
                    );
                    fall_back_to_git(format!(
                        "--via auto: {}'s API refused the first read",
                        conn.kind
                    ));
                }
                done => return done.map(|a| a.via(Some(conn.kind), &spec.via_reason)),
            }
        }
    }
    let mut transport = GitTransport::open(spec)?;
    let reason = fell_back().unwrap_or_else(|| spec.via_reason.clone());
    attempt_on(&mut transport, spec, attempt, author).map(|a| a.via(None, &reason))
}

/// The transport `spec.via` names, opened once for a whole fleet run. An
/// API transport reads whatever it is asked (`--via auto` chooses git for a
/// fleet: its scans read many directories, which one fetch does best).
pub fn open(spec: &UpdateSpec) -> Result<Box<dyn Transport>> {
    Ok(match &spec.via {
        Via::Api { conn, .. } => match conn.kind {
            crate::forge::Kind::GitHub => Box::new(GitHubRepo::new(conn)?),
            crate::forge::Kind::GitLab => Box::new(GitLabRepo::new(conn)?),
            crate::forge::Kind::Gitea => Box::new(GiteaRepo::new(conn)?),
        },
        Via::Git => Box::new(GitTransport::open(spec)?),
    })
}

fn forge_of(via: &Via) -> Option<crate::forge::Kind> {
    match via {
        Via::Api { conn, .. } => Some(conn.kind),
        Via::Git => None,
    }
}

/// Why `--via auto` fell back to git, once it has (a refused first read, a
/// scan too large for the API): later attempts use git too, and the report
/// gives the reason.
static FELL_BACK: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

fn fell_back() -> Option<String> {
    FELL_BACK.lock().ok().and_then(|why| why.clone())
}

fn fall_back_to_git(why: String) {
    if let Ok(mut reason) = FELL_BACK.lock() {
        *reason = Some(why);
    }
}

/// The last commit this run sent and did not see land: (branch, message,
/// the commit it was made on). Its answer may have been lost after the
/// server took it; a later attempt that finds it on the branch reports it
/// pushed, not "unchanged".
static SENT: std::sync::Mutex<Option<(String, String, String)>> = std::sync::Mutex::new(None);

/// Whether the tip of `branch` is the commit this run sent (its whole
/// message, trailers included, made on the recorded commit).
fn sent_earlier(repo: &dyn Transport, tips: &Tips) -> Option<(String, String, String)> {
    let tip = tips.branch_tip.as_ref()?;
    let sent = SENT.lock().ok()?.clone()?;
    let (branch, message, _) = &sent;
    // Compared without trailing line breaks: forges store the message
    // with or without the final one.
    let on_tip = repo.message_of(tip)?;
    (*branch == tips.branch && on_tip.trim_end() == message.trim_end()).then_some(sent)
}

impl Attempt {
    fn via(self, how: Option<crate::forge::Kind>, reason: &str) -> Attempt {
        match self {
            Attempt::Done(mut report) => {
                report.via = how;
                report.via_reason = reason.to_string();
                Attempt::Done(report)
            }
            again => again,
        }
    }
}

/// Read the tips, plan, and write the commit.
fn attempt_on(
    repo: &mut dyn Transport,
    spec: &UpdateSpec,
    attempt: u32,
    author: &Signature<'_>,
) -> Result<Attempt> {
    let branch_of = |base: &str| match (spec.direct, &spec.branch) {
        (true, _) => base.to_string(),
        (false, Some(b)) => b.clone(),
        (false, None) => branch_name(base, spec),
    };
    let legacy_of = |base: &str| legacy_branch_name(base, spec);
    let naming = Naming {
        spec,
        branch: &branch_of,
        legacy: &legacy_of,
    };
    let Some(tips) = repo.tips(&naming)? else {
        return Ok(Attempt::Again {
            why: "the branch tips were not fetched whole".into(),
            contention: true,
        });
    };
    if spec.join {
        return join(repo, spec, tips, author, attempt);
    }
    let legacy_note = legacy_note(spec, &tips, repo.url()).filter(|_| attempt == 1);
    if let Some(note) = &legacy_note {
        crate::note!("note: {note}");
    }

    let mut plan = plan_on(&*repo, &tips.base_tip, spec)?;
    plan.notes.extend(legacy_note);
    let mut report = unchanged(&tips, &tips.base_tip, plan, attempt);
    if !report.plan.changed() {
        if let Some((_, message, parent)) = sent_earlier(&*repo, &tips) {
            return Ok(Attempt::Done(Box::new(landed(
                report, message, parent, &tips, spec, &*repo,
            ))));
        }
        return Ok(Attempt::Done(Box::new(report)));
    }
    if let (false, Some(tip)) = (spec.direct, &tips.branch_tip) {
        // A branch still at the base holds nothing to lose (an API that
        // created it, then failed to commit, leaves one).
        if *tip != tips.base_tip || tips.branch == tips.base {
            check_lease(&*repo, tip, &tips.branch, spec)?;
        }
        // A branch holding the change unsigned (or signed by another key)
        // gets a new commit signed by the key configured now.
        if let Some((_, message, parent)) = sent_earlier(&*repo, &tips) {
            if repo.holds(tip, &parent, &report.plan.files, spec.signer.as_deref())? {
                return Ok(Attempt::Done(Box::new(landed(
                    report, message, parent, &tips, spec, &*repo,
                ))));
            }
        }
        if repo.holds(
            tip,
            &tips.base_tip,
            &report.plan.files,
            spec.signer.as_deref(),
        )? {
            report.commit = Some(tip.clone());
            report.signed = signed_as(spec, &*repo);
            report.operation = Operation::AlreadyOnBranch;
            return Ok(Attempt::Done(Box::new(report)));
        }
    }
    write(repo, spec, &tips, author, report)
}

/// Write the planned commit to the attempt's branch.
fn write(
    repo: &mut dyn Transport,
    spec: &UpdateSpec,
    tips: &Tips,
    author: &Signature<'_>,
    mut report: Report,
) -> Result<Attempt> {
    let edited: Vec<&str> = report
        .plan
        .files
        .iter()
        .filter(|f| f.changed())
        .map(|f| f.path.as_str())
        .collect();
    crate::interrupt::stage(format!("editing {}", edited.join(", ")));
    report.message = message(spec, &report.plan, &tips.base, &tips.branch)?;
    if !spec.dry_run {
        if let Ok(mut sent) = SENT.lock() {
            *sent = Some((
                tips.branch.clone(),
                report.message.clone(),
                tips.base_tip.clone(),
            ));
        }
    }
    let parent = tips.base_tip.clone();
    commit_on(repo, spec, tips, &parent, !spec.direct, author, report)
}

/// `--join`: this job's change on top of the branch's others (or, when the
/// base moved, all of them replayed on it), pushed with a compare-and-swap.
fn join(
    repo: &mut dyn Transport,
    spec: &UpdateSpec,
    tips: Tips,
    author: &Signature<'_>,
    attempt: u32,
) -> Result<Attempt> {
    let joined = super::join::plan(&*repo, spec, &tips)?;
    let mut report = unchanged(&tips, &joined.parent, joined.plan, attempt);
    report.joined = joined
        .ledger
        .images
        .iter()
        .map(|(_, i)| i.clone())
        .collect();
    if !joined.rebuild && !report.plan.changed() {
        if let Some(tip) = &tips.branch_tip {
            report.commit = Some(tip.clone());
            report.signed = signed_as(spec, &*repo);
            report.operation = Operation::AlreadyOnBranch;
        }
        return Ok(Attempt::Done(Box::new(report)));
    }
    let message = message(spec, &report.plan, &tips.base, &tips.branch)?;
    let head = message
        .trim_end()
        .strip_suffix(crate::git::TRAILER)
        .unwrap_or(&message);
    report.message = format!(
        "{head}{}{}\n",
        joined.ledger.trailers(),
        crate::git::TRAILER
    );
    crate::interrupt::stage(format!("joining `{}`", tips.branch));
    // Adding to the branch is a fast-forward; a rebuild replaces it.
    let mut attempt = commit_on(
        repo,
        spec,
        &tips,
        &joined.parent,
        joined.rebuild,
        author,
        report,
    )?;
    // GitLab put the commit on a newer head: the images of the commits in
    // between are the merge request's too.
    if let Attempt::Done(report) = &mut attempt {
        // `commit_on` reported the parent the commit landed on. Best
        // effort: the commit has landed whatever this read says.
        if let (Some(commit), true) = (&report.commit, report.parent != joined.parent) {
            if let Ok(ledger) = super::join::Ledger::read(&*repo, commit) {
                report.joined = ledger.images.into_iter().map(|(_, i)| i).collect();
            }
        }
    }
    Ok(attempt)
}

/// A report of nothing done yet: the plan made on `parent`.
fn unchanged(tips: &Tips, parent: &str, plan: crate::targets::Plan, attempt: u32) -> Report {
    Report {
        operation: Operation::Unchanged,
        base: tips.base.clone(),
        branch: tips.branch.clone(),
        branch_existed: tips.branch_tip.is_some(),
        parent: parent.to_string(),
        commit: None,
        via: None,
        via_reason: String::new(),
        signed: None,
        plan,
        attempts: attempt,
        message: String::new(),
        joined: Vec::new(),
    }
}

/// Write the report's plan as a commit on `parent` to the attempt's branch
/// (replacing it when `force`), and report how that went.
fn commit_on(
    repo: &mut dyn Transport,
    spec: &UpdateSpec,
    tips: &Tips,
    parent: &str,
    force: bool,
    author: &Signature<'_>,
    report: Report,
) -> Result<Attempt> {
    let written = repo.write(&Change {
        base: &tips.base,
        base_tip: parent,
        branch: &tips.branch,
        branch_tip: tips.branch_tip.as_deref(),
        edits: &report.plan.files,
        message: &report.message,
        author,
        signer: spec.signer.as_deref(),
        review: force,
        dry_run: spec.dry_run,
    })?;
    let signed = signed_as(spec, &*repo);
    let mut report = report;
    // GitLab's and Gitea's commit APIs land on the head of the moment: the
    // parent reported is the one the commit has.
    if let Written::Pushed(commit) = &written {
        if let Some(landed) = repo.parent_of(commit).ok().flatten() {
            report.parent = landed;
        }
    }
    finish(written, report, signed)
}

/// The report of a write, or the reason to try again.
fn finish(
    written: Written,
    mut report: Report,
    signed: Option<(crate::signing::Format, String)>,
) -> Result<Attempt> {
    match written {
        Written::Pushed(commit) => {
            report.commit = Some(commit);
            report.signed = signed;
            report.operation = Operation::Pushed;
        }
        Written::DryRun(commit) => {
            report.signed = commit.as_ref().and(signed);
            report.commit = commit;
            report.operation = Operation::DryRun;
        }
        Written::Stale(why) => {
            return Ok(Attempt::Again {
                why,
                contention: true,
            })
        }
        Written::Declined(message) => {
            return Err(Failure::new(Kind::Declined, message)
                .hint(
                    "a server hook or branch protection refused it; retrying would not help. \
                     Push to a review branch (drop --direct), or ask for push rights on the branch",
                )
                .into())
        }
    }
    Ok(Attempt::Done(Box::new(report)))
}

/// A note when the review branch under tagbump 0.1's name exists for these
/// targets and the new name does not yet: its merge request would be left
/// open without a word otherwise.
fn legacy_note(spec: &UpdateSpec, tips: &Tips, url: &str) -> Option<String> {
    let legacy = legacy_branch_name(&tips.base, spec);
    (!spec.direct
        && spec.branch.is_none()
        && legacy != tips.branch
        && tips.branch_tip.is_none()
        && tips.legacy_exists)
        .then(|| {
            format!(
                "`{legacy}` on {url} is a review branch from an older tagbump for these targets; \
                 this run uses `{}` (names now include a hash of the whole targets). \
                 Close the merge request from `{legacy}` and delete that branch",
                tips.branch
            )
        })
}

fn gave_up(
    attempts: u32,
    took: Duration,
    url: &str,
    why: String,
    contention: bool,
) -> anyhow::Error {
    let message = format!(
        "gave up after {attempts} attempt(s) in {:.1} s to push to {url}; the last one: {why}",
        took.as_secs_f64()
    );
    if contention {
        Failure::new(Kind::Conflict, message)
            .hint("others kept pushing first; raise --attempts or --timeout")
            .into()
    } else {
        Failure::new(Kind::Remote, message)
            .hint("the server or the network kept failing; check that the server is up and not overloaded, or raise --attempts or --timeout")
            .into()
    }
}

/// The report of a commit an earlier attempt sent whose answer was lost:
/// it is on the branch, so it was pushed, on `parent`.
fn landed(
    mut report: Report,
    message: String,
    parent: String,
    tips: &Tips,
    spec: &UpdateSpec,
    repo: &dyn Transport,
) -> Report {
    crate::note!(
        "note: the commit an earlier attempt sent is on `{}`: its answer was lost, the commit \
         was not",
        tips.branch
    );
    // The edits as made on that parent, where it can still be read (the
    // APIs; a depth-1 clone has only the new tip).
    if let Ok(plan) = plan_on(repo, &parent, spec) {
        report.plan = plan;
    }
    report.commit = tips.branch_tip.clone();
    report.signed = signed_as(spec, repo);
    report.operation = Operation::Pushed;
    report.message = message;
    report.parent = parent;
    report
}

/// What the report says of the signature of a commit tagbump made or kept:
/// the key's, when the transport signs with it (a kept review-branch commit
/// was checked to be signed by it).
fn signed_as(spec: &UpdateSpec, repo: &dyn Transport) -> Option<(crate::signing::Format, String)> {
    let signer = spec.signer.as_ref().filter(|_| repo.signs_with_key())?;
    Some((signer.format(), signer.fingerprint().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        for attempt in 1..20 {
            let d = push_backoff(attempt);
            assert!(
                d >= Duration::from_millis(100) && d < Duration::from_millis(7_500),
                "{d:?}"
            );
        }
    }
}
