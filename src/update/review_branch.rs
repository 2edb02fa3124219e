//! Review branches: their names, and the rules for overwriting one.
//!
//! A name is stable across runs (no values in it), so a re-run updates the
//! same branch and the same merge request, and unique per set of targets (a
//! hash of the whole targets beside a readable part). A branch is overwritten
//! only when its tip is tagbump's commit for the same targets ([`check_lease`]),
//! and only if it still is at the moment of the push: the push connection's
//! advertised value is the old value the server verifies, a compare-and-swap
//! like `git push --force-with-lease` (see `Session::push`).

use anyhow::Result;

use super::transport::Transport;
use super::UpdateSpec;
use crate::error::{Failure, Kind};

/// The review branch for a set of targets: stable across runs (no values in
/// it), so a re-run updates the same branch and the same MR/PR, and unique
/// per set of targets: a readable part (the last two components of each
/// image's name, or the directory of the first file set) and a hash of the
/// whole targets (every image's full normalized name, every file and path),
/// so `…/platform/services/api` and `…/billing/services/api` never share one.
pub fn branch_name(base: &str, spec: &UpdateSpec) -> String {
    let mut parts: Vec<String> = spec
        .images
        .iter()
        .map(|i| last_two(i.path.strip_prefix("library/").unwrap_or(&i.path)))
        .collect();
    parts.extend(first_file_dir(spec));
    let slug: String = sanitize(&parts.join("-")).chars().take(60).collect();
    let slug = slug.trim_end_matches(['-', '.', '/']);
    let slug = if slug.is_empty() { "update" } else { slug };
    format!(
        "tagbump/{}/{slug}-{}",
        sanitize(base),
        &targets_id(spec)[..8]
    )
}

/// A stable id of what a run changes (not the values): the hash behind the
/// review branch's name, and the `Tagbump-Targets:` trailer of its commits,
/// so a branch holding another set of targets' change is never overwritten.
pub fn targets_id(spec: &UpdateSpec) -> String {
    let mut keys: Vec<String> = spec
        .images
        .iter()
        .map(|i| format!("image {}", i.normalized_name()))
        .chain(
            spec.sets
                .iter()
                .map(|s| format!("set {}:{}", s.file, s.assignment.path)),
        )
        .chain(
            spec.promotions
                .iter()
                .map(|p| format!("promote {}:{}<-{}:{}", p.to_file, p.to, p.from_file, p.from)),
        )
        .chain(spec.dirs.iter().map(|d| format!("in {d}")))
        .chain(spec.puts.iter().map(|p| format!("put {}", p.path)))
        .collect();
    keys.sort();
    keys.dedup();
    format!("{:016x}", fnv1a(keys.join("\n").as_bytes()))
}

/// The name tagbump 0.1 gave the review branch (last two path components
/// only, which let two images share a branch). Checked for so that a merge
/// request opened under it is not left behind without a word.
pub fn legacy_branch_name(base: &str, spec: &UpdateSpec) -> String {
    let mut parts: Vec<String> = spec.images.iter().map(|i| last_two(&i.path)).collect();
    if let Some(stem) = first_file_dir(spec) {
        let mut keys: Vec<String> = spec
            .sets
            .iter()
            .map(|s| format!("{}:{}", s.file, s.assignment.path))
            .chain(
                spec.promotions
                    .iter()
                    .map(|p| format!("{}:{}<-{}:{}", p.to_file, p.to, p.from_file, p.from)),
            )
            .collect();
        keys.sort();
        parts.push(format!(
            "{stem}-{:08x}",
            fnv1a(keys.join("\n").as_bytes()) as u32
        ));
    }
    let slug = sanitize(&parts.join("-"));
    format!(
        "tagbump/{}/{}",
        sanitize(base),
        if slug.is_empty() {
            "update".into()
        } else {
            slug
        }
    )
}

/// The directory of the first file a `--set` or `--promote` writes (the
/// file's name when it is at the root): the readable part for file targets.
fn first_file_dir(spec: &UpdateSpec) -> Option<String> {
    let file = spec
        .sets
        .first()
        .map(|s| s.file.as_str())
        .or(spec.promotions.first().map(|p| p.to_file.as_str()))?;
    Some(file.rsplit('/').nth(1).unwrap_or(file).to_string())
}

fn last_two(path: &str) -> String {
    let mut parts: Vec<&str> = path.rsplit('/').take(2).collect();
    parts.reverse();
    parts.join("-")
}

/// The trailer naming a commit's targets, see [`targets_id`].
pub const TARGETS_TRAILER: &str = "Tagbump-Targets:";

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Keep a ref-name-safe subset: letters, digits, `.`, `_`, `-`, `/`.
fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/') {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let out = out.replace("..", "-").replace("/.", "/-");
    out.trim_matches(|c| c == '-' || c == '.' || c == '/')
        .chars()
        .take(80)
        .collect()
}

/// Whether a commit's message carries the trailer of tagbump's commits.
pub fn made_by_tagbump(message: &str) -> bool {
    message.lines().any(|l| l.trim() == crate::git::TRAILER)
}

/// Whether the review branch whose tip is `tip` may be overwritten by this
/// run: only if the tip is a tagbump commit, for the same targets (a commit
/// without the targets trailer, from tagbump 0.1, counts as the same).
pub fn check_lease(repo: &dyn Transport, tip: &str, branch: &str, spec: &UpdateSpec) -> Result<()> {
    let message = repo.message_of(tip).unwrap_or_default();
    if !made_by_tagbump(&message) {
        return Err(Failure::new(
            Kind::Conflict,
            format!(
                "branch `{branch}` on {} has commits tagbump did not make; not overwriting it",
                repo.url()
            ),
        )
        .hint("merge or close its merge request and delete the branch, or pass --branch with another name")
        .into());
    }
    let theirs = message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(TARGETS_TRAILER))
        .map(|v| v.trim().to_string());
    if theirs.as_deref().is_some_and(|t| t != targets_id(spec)) {
        return Err(Failure::new(
            Kind::Conflict,
            format!(
                "branch `{branch}` on {} holds tagbump's change for other targets \
                 ({TARGETS_TRAILER} {}); not overwriting it",
                repo.url(),
                theirs.unwrap_or_default()
            ),
        )
        .hint("pass --branch with another name, or let that change merge (or close it) first")
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageRef;
    use crate::update::{example_spec as spec, parse_file_set};

    #[test]
    fn branch_names_are_stable_and_safe() {
        let mut s = spec();
        s.images = vec![ImageRef::parse("registry.example.com/team/app:1.4.2").unwrap()];
        let name = branch_name("main", &s);
        assert!(name.starts_with("tagbump/main/team-app-"), "{name}");
        assert_eq!(name.len(), "tagbump/main/team-app-".len() + 8);
        assert_eq!(legacy_branch_name("main", &s), "tagbump/main/team-app");
        s.images = vec![ImageRef::parse("registry.example.com/team/app:9.9.9").unwrap()];
        assert_eq!(branch_name("main", &s), name);
        // Issue #8: two images with the same last components, two branches.
        s.images =
            vec![ImageRef::parse("registry.gitlab.com/acme/platform/services/api:1").unwrap()];
        let platform = branch_name("main", &s);
        s.images =
            vec![ImageRef::parse("registry.gitlab.com/acme/billing/services/api:1").unwrap()];
        let billing = branch_name("main", &s);
        assert_ne!(platform, billing);
        assert!(
            platform.starts_with("tagbump/main/services-api-"),
            "{platform}"
        );
        // Docker Hub names are one image however they are spelled.
        s.images = vec![ImageRef::parse("nginx:1").unwrap()];
        let short = branch_name("main", &s);
        s.images = vec![ImageRef::parse("docker.io/library/nginx:2").unwrap()];
        assert_eq!(branch_name("main", &s), short);
        s.images.clear();
        s.sets = vec![parse_file_set("apps/web/values.yaml:image.tag=1").unwrap()];
        let a = branch_name("release/1.x", &s);
        s.sets = vec![parse_file_set("apps/web/values.yaml:image.tag=2").unwrap()];
        assert_eq!(branch_name("release/1.x", &s), a);
        assert!(a.starts_with("tagbump/release/1.x/web-"), "{a}");
        assert_eq!(sanitize("a b..c/.d"), "a-b-c/-d");
    }
}
