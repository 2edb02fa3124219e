//! Picking a tag by policy, as Argo CD Image Updater and Flux image
//! automation do from inside the cluster, here from a scheduled CI job:
//!
//! - `semver:<range>`: the highest version in the range (`~1.4`, `^2`,
//!   `>=1.2 <2`; a `v` prefix on tags is allowed). Pre-releases only when
//!   the range names one on the same version (`>=2.0.0-rc.1`), as Cargo's
//!   and npm's ranges do;
//! - `regex:<re>`: the tags the expression matches, ordered by its first
//!   capture group (or the whole tag), `--tag-sort numeric|alphabetical`;
//! - `latest-digest`: keep the given tag (a moving one, `main`) and pin the
//!   digest it points to now.

use std::cmp::Ordering;

use clap::ValueEnum;
use regex_lite::Regex;
use schemars::JsonSchema;
use serde::Deserialize;

/// How `regex:` policies order the tags they match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "TagSortName")]
pub enum Sort {
    #[default]
    Alphabetical,
    Numeric,
}

#[derive(Debug, Clone)]
pub enum Policy {
    Semver(semver::VersionReq),
    Regex(Regex, Sort),
    LatestDigest,
}

impl Policy {
    /// `semver:…`, `regex:…` or `latest-digest`.
    pub fn parse(text: &str, sort: Sort) -> Result<Policy, String> {
        if text == "latest-digest" {
            return Ok(Policy::LatestDigest);
        }
        if let Some(range) = text.strip_prefix("semver:") {
            // npm-style `>=1.2 <2` is semver's `>=1.2, <2`.
            let cargo_style = range
                .split(',')
                .flat_map(str::split_whitespace)
                .map(npm_comparator)
                .collect::<Vec<_>>()
                .join(", ");
            return semver::VersionReq::parse(&cargo_style)
                .map(Policy::Semver)
                .map_err(|e| format!("`{range}` is not a semver range: {e}"));
        }
        if let Some(pattern) = text.strip_prefix("regex:") {
            return Regex::new(pattern)
                .map(|re| Policy::Regex(re, sort))
                .map_err(|e| format!("`{pattern}` is not a regular expression: {e}"));
        }
        Err(format!(
            "`{text}` is not a tag policy: use `semver:RANGE`, `regex:EXPR` or `latest-digest`"
        ))
    }

    /// The newest tag the policy allows; `None` if none matches.
    pub fn choose<'t>(&self, tags: &'t [String]) -> Option<&'t str> {
        match self {
            Policy::LatestDigest => None,
            Policy::Semver(range) => tags
                .iter()
                .filter_map(|t| version(t).map(|v| (v, t)))
                .filter(|(v, _)| range.matches(v))
                // On equal versions (`v1.2.0`, `1.2.0`) the later spelling in
                // alphabetical order wins, so the choice does not depend on
                // the registry's ordering.
                .max_by(|(a, ta), (b, tb)| a.cmp(b).then(ta.cmp(tb)))
                .map(|(_, t)| t.as_str()),
            Policy::Regex(re, sort) => tags
                .iter()
                .filter_map(|t| {
                    let captures = re.captures(t)?;
                    let key = captures.get(1).or_else(|| captures.get(0))?.as_str();
                    Some((key, t))
                })
                .filter(|(key, _)| *sort == Sort::Alphabetical || key.parse::<u128>().is_ok())
                .max_by(|(a, ta), (b, tb)| compare(a, b, *sort).then(ta.cmp(tb)))
                .map(|(_, t)| t.as_str()),
        }
    }
}

/// One comparator as npm, Flux and Argo CD Image Updater read it, in the
/// `semver` crate's grammar: a bare version is that version exactly (`1.4.2`
/// is `=1.4.2`, not Cargo's `^1.4.2`; `1.4` any 1.4.x), and a `v` after the
/// operator is allowed (`~v1.4`, as tags are spelled).
fn npm_comparator(token: &str) -> String {
    let version_at = token
        .find(|c: char| !matches!(c, '=' | '<' | '>' | '~' | '^'))
        .unwrap_or(token.len());
    let (operator, version) = token.split_at(version_at);
    let version = match version.strip_prefix(['v', 'V']) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => version,
    };
    let wildcard = version.contains(['*', 'x', 'X']);
    if operator.is_empty() && !wildcard && version.starts_with(|c: char| c.is_ascii_digit()) {
        format!("={version}")
    } else {
        format!("{operator}{version}")
    }
}

impl Policy {
    /// Why [`Policy::choose`] found nothing, when the cause is the policy's
    /// own form rather than the registry's tags: a `regex:` whose first group
    /// captured no number under `--tag-sort numeric`.
    pub fn why_nothing(&self, tags: &[String]) -> Option<String> {
        let Policy::Regex(re, Sort::Numeric) = self else {
            return None;
        };
        let captured: Vec<&str> = tags
            .iter()
            .filter_map(|t| {
                let captures = re.captures(t)?;
                Some(captures.get(1).or_else(|| captures.get(0))?.as_str())
            })
            .collect();
        let first = captured.first()?;
        Some(format!(
            "{} tag(s) match `{}`, but --tag-sort numeric orders them by the number its first \
             group captures, and it captured `{first}`{}, not a number",
            captured.len(),
            re.as_str(),
            if re.captures_len() > 1 {
                ""
            } else {
                " (it has no group: the whole tag)"
            },
        ))
    }
}

fn version(tag: &str) -> Option<semver::Version> {
    let text = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    semver::Version::parse(text).ok()
}

fn compare(a: &str, b: &str, sort: Sort) -> Ordering {
    match sort {
        Sort::Alphabetical => a.cmp(b),
        Sort::Numeric => {
            let n = |s: &str| s.parse::<u128>().unwrap_or(0);
            n(a).cmp(&n(b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn pick(policy: &str, list: &[&str]) -> Option<String> {
        let sort = if policy.contains("(\\d+)") {
            Sort::Numeric
        } else {
            Sort::Alphabetical
        };
        Policy::parse(policy, sort)
            .unwrap()
            .choose(&tags(list))
            .map(String::from)
    }

    #[test]
    fn semver_ranges() {
        let list = [
            "1.3.9",
            "1.4.0",
            "v1.4.7",
            "1.4.10",
            "1.5.0",
            "2.0.0",
            "2.1.0-rc.1",
            "latest",
            "main",
        ];
        assert_eq!(pick("semver:~1.4", &list).as_deref(), Some("1.4.10"));
        assert_eq!(pick("semver:^1", &list).as_deref(), Some("1.5.0"));
        assert_eq!(pick("semver:>=1.2 <2", &list).as_deref(), Some("1.5.0"));
        assert_eq!(pick("semver:^2", &list).as_deref(), Some("2.0.0"));
        // Pre-releases only when the range names one on that version.
        assert_eq!(
            pick("semver:>=2.1.0-rc.0", &list).as_deref(),
            Some("2.1.0-rc.1")
        );
        assert_eq!(pick("semver:^3", &list), None);
        assert!(Policy::parse("semver:banana", Sort::Alphabetical).is_err());
        // A bare version is that version, as npm, Flux and Image Updater read it.
        assert_eq!(pick("semver:1.4.0", &list).as_deref(), Some("1.4.0"));
        assert_eq!(pick("semver:1.4", &list).as_deref(), Some("1.4.10"));
        assert_eq!(pick("semver:1", &list).as_deref(), Some("1.5.0"));
        assert_eq!(pick("semver:1.4.x", &list).as_deref(), Some("1.4.10"));
        // `v` in the range, as the tags spell it.
        assert_eq!(pick("semver:~v1.4", &list).as_deref(), Some("1.4.10"));
        assert_eq!(pick("semver:>=v1.2 <v2", &list).as_deref(), Some("1.5.0"));
        assert_eq!(pick("semver:v1.4.7", &list).as_deref(), Some("v1.4.7"));
    }

    #[test]
    fn regex_orders_by_the_capture() {
        let list = ["main-9", "main-10", "main-2", "feature-99", "main-x"];
        assert_eq!(
            pick("regex:^main-(\\d+)$", &list).as_deref(),
            Some("main-10")
        );
        assert_eq!(
            Policy::parse("regex:^main-(.+)$", Sort::Alphabetical)
                .unwrap()
                .choose(&tags(&list)),
            Some("main-x")
        );
        assert!(Policy::parse("regex:(", Sort::Alphabetical).is_err());
        let words = Policy::parse("regex:^main-([a-z]+)$", Sort::Numeric).unwrap();
        assert_eq!(words.choose(&tags(&list)), None);
        assert_eq!(
            words.why_nothing(&tags(&list)).unwrap(),
            "1 tag(s) match `^main-([a-z]+)$`, but --tag-sort numeric orders them by the number \
             its first group captures, and it captured `x`, not a number"
        );
        assert_eq!(
            Policy::parse("regex:^main-(\\d+)$", Sort::Numeric)
                .unwrap()
                .why_nothing(&tags(&["other"])),
            None
        );
        assert!(Policy::parse("newest", Sort::Alphabetical).is_err());
    }
}
