//! `--join`: parallel jobs add their changes to one review branch, and so
//! to one merge request. The branch's tip commit carries a ledger in its
//! trailers: the base it was built on, and every joined change (file,
//! document, path, value, the commit that made it, the images asked). A job
//! reads the ledger, refuses a scalar another job set to something else
//! (naming that commit), and commits on top with a compare-and-swap push,
//! retried from the new tip like `--direct` on the base. When the base has
//! moved, the branch is rebuilt on it by replaying the ledger's changes
//! (path by path, not a textual rebase) with this job's added.
//!
//! GitLab's commits API has no compare-and-swap on a branch: a commit lands
//! on whatever the head is by then (a file changed meanwhile is refused, so
//! the content is right), and its ledger may lack the commits in between.
//! Each commit records the parent it was planned on; where the real parent
//! differs, the ledger is read on through it.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::transport::{Tips, Transport};
use super::{plan::plan_on, UpdateSpec};
use crate::error::{Failure, Kind};
use crate::targets::{self, Assignment, FileEdit, Plan, SourceFile};
use crate::yaml::Documents;

const BASE: &str = "Tagbump-Join-Base:";
const PARENT: &str = "Tagbump-Join-Parent:";
const CHANGE: &str = "Tagbump-Joined:";
const IMAGE: &str = "Tagbump-Joined-Image:";

/// What a joined branch holds, as its tip's trailers say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// The base commit the branch is built on.
    pub base: String,
    /// The commit this one was planned on (its ledger's source).
    pub parent: String,
    pub changes: Vec<Change>,
    /// The images the jobs asked for, with the commit of each.
    pub images: Vec<(String, String)>,
}

/// One scalar a job set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The commit that set it; empty in the commit that records it first.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub commit: String,
    pub file: String,
    #[serde(default)]
    pub document: usize,
    pub path: String,
    pub value: String,
}

impl Ledger {
    /// The ledger in `message`, the message of commit `tip` (a change with
    /// no commit was made by `tip` itself).
    pub fn parse(message: &str, tip: &str) -> Ledger {
        let mut ledger = Ledger::default();
        for line in message.lines().map(str::trim) {
            if let Some(base) = line.strip_prefix(BASE) {
                ledger.base = base.trim().to_string();
            } else if let Some(parent) = line.strip_prefix(PARENT) {
                ledger.parent = parent.trim().to_string();
            } else if let Some(json) = line.strip_prefix(CHANGE) {
                if let Ok(mut change) = serde_json::from_str::<Change>(json.trim()) {
                    if change.commit.is_empty() {
                        change.commit = tip.to_string();
                    }
                    ledger.changes.push(change);
                }
            } else if let Some(rest) = line.strip_prefix(IMAGE) {
                if let Some((commit, image)) = rest.trim().split_once(' ') {
                    let commit = if commit == "-" { tip } else { commit };
                    ledger.images.push((commit.to_string(), image.to_string()));
                }
            }
        }
        ledger
    }

    /// The trailers that record the ledger.
    pub fn trailers(&self) -> String {
        let mut text = format!("{BASE} {}\n", self.base);
        if !self.parent.is_empty() {
            text.push_str(&format!("{PARENT} {}\n", self.parent));
        }
        for (commit, image) in &self.images {
            let commit = if commit.is_empty() { "-" } else { commit };
            text.push_str(&format!("{IMAGE} {commit} {image}\n"));
        }
        for change in &self.changes {
            let json = serde_json::to_string(change).unwrap_or_default();
            text.push_str(&format!("{CHANGE} {json}\n"));
        }
        text
    }

    /// The ledger at `tip`, read on through the commits a forge put between
    /// `tip` and the parent it was planned on.
    pub fn read(repo: &dyn Transport, tip: &str) -> Result<Ledger> {
        let mut at = tip.to_string();
        let mut ledger = Ledger::parse(&repo.message_of(&at).unwrap_or_default(), &at);
        let mut planned = ledger.parent.clone();
        // Bounded: a branch of a thousand jobs' commits is not a release.
        for _ in 0..1000 {
            let Some(parent) = repo.parent_of(&at)? else {
                break;
            };
            if planned.is_empty() || parent == planned {
                break;
            }
            repo.parent_of(&parent)?; // reads its message
            let message = repo.message_of(&parent).unwrap_or_default();
            if !super::review_branch::made_by_tagbump(&message) {
                break;
            }
            let earlier = Ledger::parse(&message, &parent);
            planned = earlier.parent.clone();
            ledger.absorb(earlier);
            at = parent;
        }
        Ok(ledger)
    }

    /// Take in an earlier commit's entries this ledger lacks.
    fn absorb(&mut self, earlier: Ledger) {
        let mut changes: Vec<Change> = earlier
            .changes
            .into_iter()
            .filter(|c| !self.changes.iter().any(|m| same_place(m, c)))
            .collect();
        changes.append(&mut self.changes);
        self.changes = changes;
        let mut images: Vec<(String, String)> = earlier
            .images
            .into_iter()
            .filter(|(_, i)| !self.images.iter().any(|(_, m)| m == i))
            .collect();
        images.append(&mut self.images);
        self.images = images;
    }

    fn find(&self, file: &str, document: usize, path: &str) -> Option<&Change> {
        self.changes
            .iter()
            .rev()
            .find(|c| c.file == file && c.document == document && c.path == path)
    }
}

/// The images the ledger at `branch`'s tip lists (none when the branch is
/// not there or still at the base), read through a fresh transport.
pub fn images_on(spec: &UpdateSpec, branch: &str) -> Result<Vec<String>> {
    let mut repo = super::attempt::open(spec)?;
    let name = |_: &str| branch.to_string();
    let naming = super::transport::Naming {
        spec,
        branch: &name,
        legacy: &name,
    };
    let Some(tips) = repo.tips(&naming)? else {
        return Ok(Vec::new());
    };
    match tips.branch_tip {
        Some(tip) if tip != tips.base_tip => Ok(Ledger::read(&*repo, &tip)?
            .images
            .into_iter()
            .map(|(_, image)| image)
            .collect()),
        _ => Ok(Vec::new()),
    }
}

/// What a joining job writes: the edits on `parent`, whether the push
/// replaces the branch (a rebuild on a moved base) rather than adding to
/// it, and the ledger after it.
pub struct Joined {
    pub plan: Plan,
    pub parent: String,
    pub rebuild: bool,
    pub ledger: Ledger,
}

/// Plan this job's change on the branch (or on the base, for a new branch
/// or a rebuild), against the branch's ledger.
pub fn plan(repo: &dyn Transport, spec: &UpdateSpec, tips: &Tips) -> Result<Joined> {
    let previous = match &tips.branch_tip {
        None => Ledger::default(),
        // Made by a job that has not committed to it yet (an API creates
        // the branch first, then commits).
        Some(tip) if *tip == tips.base_tip => Ledger {
            base: tip.clone(),
            ..Ledger::default()
        },
        Some(tip) => {
            let message = repo.message_of(tip).unwrap_or_default();
            if !super::review_branch::made_by_tagbump(&message) {
                return Err(Failure::new(
                    Kind::Conflict,
                    format!(
                        "branch `{}` on {} has commits tagbump did not make; not adding to it",
                        tips.branch,
                        repo.url()
                    ),
                )
                .hint("--join adds to a branch only tagbump's jobs write")
                .into());
            }
            Ledger::read(repo, tip)?
        }
    };
    let rebuild = tips.branch_tip.is_some() && previous.base != tips.base_tip;
    let parent = match (&tips.branch_tip, rebuild) {
        (Some(tip), false) => tip.clone(),
        _ => tips.base_tip.clone(),
    };
    let mut plan = plan_on(repo, &parent, spec)?;
    let mine = refuse_conflicts(&plan, &previous, &tips.branch)?;
    if rebuild {
        replay(repo, &parent, &mut plan, &previous, &mine)?;
    }
    let mut ledger = Ledger {
        base: tips.base_tip.clone(),
        parent: parent.clone(),
        changes: previous
            .changes
            .iter()
            .filter(|c| !mine.iter().any(|m| same_place(m, c)))
            .cloned()
            .collect(),
        images: previous.images.clone(),
    };
    ledger.changes.extend(mine);
    for image in &spec.images {
        let image = image.to_string();
        ledger.images.retain(|(_, i)| *i != image);
        ledger.images.push((String::new(), image));
    }
    Ok(Joined {
        plan,
        parent,
        rebuild,
        ledger,
    })
}

fn same_place(a: &Change, b: &Change) -> bool {
    a.file == b.file && a.document == b.document && a.path == b.path
}

/// This job's changes as ledger entries; a scalar another job set to
/// another value is refused, naming the commit that set it.
fn refuse_conflicts(plan: &Plan, previous: &Ledger, branch: &str) -> Result<Vec<Change>> {
    let mut mine = Vec::new();
    for file in &plan.files {
        for outcome in &file.outcomes {
            if let Some(theirs) = previous.find(&file.path, outcome.document, &outcome.what) {
                if theirs.value != outcome.new {
                    return Err(Failure::new(
                        Kind::Input,
                        format!(
                            "{}: `{}` is `{}` on `{branch}`, set by commit {} of another job; \
                             this job asks for `{}`",
                            file.path,
                            outcome.what,
                            theirs.value,
                            theirs.commit.chars().take(12).collect::<String>(),
                            outcome.new
                        ),
                    )
                    .hint("two jobs of one release ask for different values of one scalar; nothing was pushed")
                    .into());
                }
            }
            mine.push(Change {
                commit: String::new(),
                file: file.path.clone(),
                document: outcome.document,
                path: outcome.what.clone(),
                value: outcome.new.clone(),
            });
        }
    }
    Ok(mine)
}

/// Apply the other jobs' recorded changes on top of this job's plan on the
/// new base, scalar by scalar.
fn replay(
    repo: &dyn Transport,
    base: &str,
    plan: &mut Plan,
    previous: &Ledger,
    mine: &[Change],
) -> Result<()> {
    let mut by_file: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for change in previous
        .changes
        .iter()
        .filter(|c| !mine.iter().any(|m| same_place(m, c)))
    {
        by_file
            .entry(change.file.as_str())
            .or_default()
            .push(change);
    }
    for (path, changes) in by_file {
        let (old, current) = match plan.files.iter().find(|f| f.path == path) {
            Some(edit) => (edit.old.clone(), edit.new.clone()),
            None => {
                let text = repo.read_file(base, path)?.ok_or_else(|| {
                    Failure::new(
                        Kind::Conflict,
                        format!("`{path}`, which a joined job changed, is gone from the base"),
                    )
                })?;
                (text.clone(), text)
            }
        };
        let mut text = current;
        let mut outcomes = Vec::new();
        for change in changes {
            let assignment = Assignment {
                path: crate::yaml::Path::parse(&change.path).map_err(|e| {
                    Failure::new(
                        Kind::Internal,
                        format!("a recorded path `{}`: {e}", change.path),
                    )
                })?,
                value: change.value.clone(),
            };
            let file = SourceFile {
                path: path.to_string(),
                text: text.clone(),
            };
            let edit = targets::plan_set(
                &file,
                std::slice::from_ref(&assignment),
                Documents::Index(change.document),
            )
            .map_err(Failure::from)?;
            text = edit.new;
            outcomes.extend(edit.outcomes);
        }
        match plan.files.iter_mut().find(|f| f.path == path) {
            Some(edit) => {
                edit.new = text;
                edit.outcomes.extend(outcomes);
            }
            None => plan.files.push(FileEdit {
                path: path.to_string(),
                old,
                new: text,
                outcomes,
                notes: Vec::new(),
            }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_round_trips_through_trailers() {
        let ledger = Ledger {
            base: "b".repeat(40),
            parent: "p".repeat(40),
            changes: vec![Change {
                commit: "c".repeat(40),
                file: "apps/a.yaml".into(),
                document: 1,
                path: "spec.containers[name=app].image".into(),
                value: "r.example/a:1.2 # not a comment".into(),
            }],
            images: vec![(String::new(), "r.example/a:1.2".into())],
        };
        let message = format!("Update a\n\n{}Updated-by: tagbump\n", ledger.trailers());
        let parsed = Ledger::parse(&message, &"t".repeat(40));
        assert_eq!(parsed.base, ledger.base);
        assert_eq!(parsed.parent, ledger.parent);
        assert_eq!(parsed.changes, ledger.changes);
        assert_eq!(
            parsed.images,
            vec![("t".repeat(40), "r.example/a:1.2".into())]
        );
    }

    #[test]
    fn an_earlier_ledger_fills_in_what_a_later_one_lacks() {
        let change = |commit: &str, file: &str, value: &str| Change {
            commit: commit.into(),
            file: file.into(),
            document: 0,
            path: "image.tag".into(),
            value: value.into(),
        };
        let mut later = Ledger {
            changes: vec![change("c2", "b.yaml", "2"), change("c2", "a.yaml", "3")],
            images: vec![("c2".into(), "r/b:2".into())],
            ..Ledger::default()
        };
        later.absorb(Ledger {
            changes: vec![change("c1", "a.yaml", "1"), change("c1", "c.yaml", "1")],
            images: vec![("c1".into(), "r/a:1".into()), ("c1".into(), "r/b:2".into())],
            ..Ledger::default()
        });
        assert_eq!(
            later.changes,
            vec![
                change("c1", "c.yaml", "1"),
                change("c2", "b.yaml", "2"),
                change("c2", "a.yaml", "3"),
            ]
        );
        assert_eq!(
            later.images,
            vec![
                ("c1".to_string(), "r/a:1".to_string()),
                ("c2".to_string(), "r/b:2".to_string())
            ]
        );
    }
}
