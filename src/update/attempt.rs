//! The attempt loop: each attempt clones the newest tip, plans, commits and
//! pushes; contention (another push first) and transient faults (a shed
//! connection, a 503) are retried with [`push_backoff`] within `--attempts`
//! and `--timeout`, and anything else ends the run at once. (The forge's
//! HTTP calls have their own retry, `forge::send_with_retries`.)

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use anyhow::Result;
use git2::Signature;

use super::branch::{branch_name, check_lease, legacy_branch_name};
use super::message::message;
use super::plan::plan_on;
use super::{Operation, Report, UpdateSpec};
use crate::error::{Failure, Kind};
use crate::git::{Advert, Pushed, Session};

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
        let (why, contention) = match attempt_once(spec, attempt, &author) {
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
                eprintln!("the server asks to retry after {} s", asked.as_secs());
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
        eprintln!(
            "attempt {attempt} of {} failed: {why}; trying again in {:.1} s",
            spec.attempts,
            delay.as_secs_f64()
        );
        std::thread::sleep(delay);
    }
}

/// One attempt: clone the tips, plan, commit, push.
fn attempt_once(spec: &UpdateSpec, attempt: u32, author: &Signature<'_>) -> Result<Attempt> {
    // A fresh depth-1 clone per attempt: nothing from a failed attempt can
    // leak into the next, and a shallow clone of the new tip costs about
    // what an incremental fetch into the old one would.
    let session = Session::open(spec.remote.clone(), spec.auth.clone())?;
    crate::interrupt::stage(format!("connecting to {}", session.url()));
    let mut chosen = None;
    let advert = session.discover_and_fetch(|advert| {
        let base = resolve_base(spec, advert, session.url())?;
        let branch = match (spec.direct, &spec.branch) {
            (true, _) => base.clone(),
            (false, Some(b)) => b.clone(),
            (false, None) => branch_name(&base, spec),
        };
        let mut wanted = vec![base.clone()];
        if !spec.direct && advert.head(&branch).is_some() {
            wanted.push(branch.clone());
        }
        crate::interrupt::stage(format!("fetching `{base}` from {}", session.url()));
        chosen = Some((base, branch));
        Ok(wanted)
    })?;
    let (base, branch) = chosen.expect("set by the fetch");
    let legacy_note =
        legacy_note(spec, &advert, &base, &branch, session.url()).filter(|_| attempt == 1);
    if let Some(note) = &legacy_note {
        eprintln!("note: {note}");
    }
    // The tips are the advertised ones, fetched on the same connection.
    let base_tip = session.fetched(&base).filter(|&c| session.has_commit(c));
    let branch_tip = if spec.direct {
        base_tip
    } else {
        session.fetched(&branch)
    };
    let Some(base_tip) = base_tip else {
        return Ok(Attempt::Again {
            why: format!("`{base}` was not fetched whole"),
            contention: true,
        });
    };

    let mut plan = plan_on(&session, base_tip, spec)?;
    plan.notes.extend(legacy_note);
    let mut report = Report {
        operation: Operation::Unchanged,
        base: base.clone(),
        branch: branch.clone(),
        branch_existed: branch_tip.is_some(),
        parent: base_tip.to_string(),
        commit: None,
        signed: None,
        plan,
        attempts: attempt,
        message: String::new(),
    };
    if !report.plan.changed() {
        return Ok(Attempt::Done(Box::new(report)));
    }
    let tree = session.build_tree(base_tip, &report.plan.files)?;
    if let (false, Some(tip)) = (spec.direct, branch_tip) {
        check_lease(&session, tip, &branch, spec)?;
        // A branch holding the change unsigned (or signed by another key)
        // gets a new commit signed by the key configured now.
        let signed_enough = match &spec.signer {
            Some(signer) => session.is_signed_by(tip, signer),
            None => true,
        };
        if signed_enough && session.tree_and_parent(tip) == Some((tree, Some(base_tip))) {
            report.commit = Some(tip.to_string());
            report.signed = signed_as(spec);
            report.operation = Operation::AlreadyOnBranch;
            return Ok(Attempt::Done(Box::new(report)));
        }
    }
    report.message = message(spec, &report.plan, &base, &branch)?;
    let commit = session.commit(
        base_tip,
        tree,
        &report.message,
        author,
        spec.signer.as_deref(),
    )?;
    report.commit = Some(commit.to_string());
    report.signed = signed_as(spec);
    if spec.dry_run {
        report.operation = Operation::DryRun;
        return Ok(Attempt::Done(Box::new(report)));
    }
    crate::interrupt::stage(format!("pushing `{branch}` to {}", session.url()));
    crate::interrupt::pushing(&commit.to_string(), &branch);
    let pushed = session.push(commit, &branch, branch_tip, !spec.direct);
    crate::interrupt::pushed(matches!(pushed, Ok(Pushed::Done)));
    match pushed? {
        Pushed::Done => {
            report.operation = Operation::Pushed;
            Ok(Attempt::Done(Box::new(report)))
        }
        Pushed::Rejected(why) => refused(&session, &branch, why),
        Pushed::Stale => Ok(Attempt::Again {
            why: format!("`{branch}` moved while pushing"),
            contention: true,
        }),
    }
}

/// A note when the review branch under tagbump 0.1's name exists for these
/// targets and the new name does not yet: its merge request would be left
/// open without a word otherwise.
fn legacy_note(
    spec: &UpdateSpec,
    advert: &Advert,
    base: &str,
    branch: &str,
    url: &str,
) -> Option<String> {
    let legacy = legacy_branch_name(base, spec);
    (!spec.direct
        && spec.branch.is_none()
        && legacy != branch
        && advert.head(branch).is_none()
        && advert.head(&legacy).is_some())
    .then(|| {
        format!(
            "`{legacy}` on {url} is a review branch from an older tagbump for these targets; \
             this run uses `{branch}` (names now include a hash of the whole targets). \
             Close the merge request from `{legacy}` and delete that branch"
        )
    })
}

/// What the server's refusal of a push means: declined by policy (final,
/// with its `remote:` lines), or lost to a concurrent update (try again).
fn refused(session: &Session, branch: &str, why: String) -> Result<Attempt> {
    if !crate::git::declined(&why) {
        return Ok(Attempt::Again {
            why: format!("the push was rejected ({why})"),
            contention: true,
        });
    }
    let mut message = format!("{} declined the push to `{branch}`: {why}", session.url());
    for line in session.remote_lines() {
        message.push_str(&format!("\n  remote: {line}"));
    }
    Err(Failure::new(Kind::Declined, message)
        .hint(
            "a server hook or branch protection refused it; retrying would not help. \
             Push to a review branch (drop --direct), or ask for push rights on the branch",
        )
        .into())
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

fn resolve_base(spec: &UpdateSpec, advert: &Advert, url: &str) -> Result<String> {
    if advert.heads.is_empty() {
        return Err(
            Failure::new(Kind::NotFound, format!("{url} has no branches"))
                .hint("push an initial commit first")
                .into(),
        );
    }
    let base = match (&spec.base, &advert.default_branch) {
        (Some(b), _) => b.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => {
            return Err(Failure::new(
                Kind::NotFound,
                format!("{url} does not say which branch is its default"),
            )
            .hint("pass --base BRANCH")
            .into())
        }
    };
    if advert.head(&base).is_none() {
        let names: Vec<&str> = advert.heads.keys().map(String::as_str).take(10).collect();
        return Err(Failure::new(
            Kind::NotFound,
            format!(
                "branch `{base}` does not exist on {url} (branches: {})",
                names.join(", ")
            ),
        )
        .hint("pass --base with an existing branch")
        .into());
    }
    Ok(base)
}

/// What the report says of the signature of a commit tagbump made or kept.
fn signed_as(spec: &UpdateSpec) -> Option<(crate::signing::Format, String)> {
    let signer = spec.signer.as_ref()?;
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
