//! Helm charts around a scan: `appVersion` in the `Chart.yaml` of a chart
//! that uses the image, and how the chart's templates write a digest.

use std::collections::BTreeSet;

use crate::yaml::{self, Documents, Path};

use super::{plan_set, Assignment, FileError, ImageUpdate, Plan, SourceFile};

/// Set `appVersion` in every `Chart.yaml` whose chart directory holds a file
/// the scan found the image in.
pub(super) fn set_app_versions(
    files: &[SourceFile],
    update: &ImageUpdate,
    plan: &mut Plan,
) -> Result<(), FileError> {
    let Some(tag) = update.image.tag.clone() else {
        plan.notes
            .push("--app-version needs a tag in the new reference; appVersion left alone".into());
        return Ok(());
    };
    let touched: Vec<String> = plan.files.iter().map(|f| f.path.clone()).collect();
    let charts: BTreeSet<&str> = files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| p.rsplit('/').next() == Some("Chart.yaml"))
        .filter(|chart| {
            let dir = chart.strip_suffix("Chart.yaml").unwrap_or("");
            touched.iter().any(|t| t.starts_with(dir))
        })
        .collect();
    let app_version = Path::parse("appVersion").expect("a valid path");
    for chart in charts {
        let Some(file) = files.iter().find(|f| f.path == chart) else {
            continue;
        };
        let assignment = Assignment {
            path: app_version.clone(),
            value: tag.clone(),
        };
        match plan_set(file, &[assignment], Documents::One) {
            Ok(edit) => {
                plan.notes.extend(edit.notes.iter().cloned());
                plan.files.push(edit)
            }
            Err(e) if e.error.kind == yaml::YamlErrorKind::NotFound => plan
                .notes
                .push(format!("{chart}: has no `appVersion`; left alone")),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The texts of the templates of the Helm chart `path` belongs to (the
/// nearest directory above it with a `Chart.yaml`), among the files read.
pub(super) fn chart_templates<'a>(files: &'a [SourceFile], path: &str) -> Vec<&'a str> {
    let mut dir = path;
    while let Some(cut) = dir.rfind('/') {
        dir = &dir[..cut];
        let chart = format!("{dir}/Chart.yaml");
        if files.iter().any(|f| f.path == chart) {
            let templates = format!("{dir}/templates/");
            return files
                .iter()
                .filter(|f| f.path.starts_with(&templates))
                .map(|f| f.text.as_str())
                .collect();
        }
    }
    if files.iter().any(|f| f.path == "Chart.yaml") {
        return files
            .iter()
            .filter(|f| f.path.starts_with("templates/"))
            .map(|f| f.text.as_str())
            .collect();
    }
    Vec::new()
}

/// How a chart's value for a digest is written: `sha256:<hex>` or bare hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DigestShape {
    /// `sha256:<hex>`, for templates that write `…@{{ .digest }}`.
    Full,
    /// `<hex>`, for templates that write `…@sha256:{{ .sha }}`.
    Bare,
}

impl DigestShape {
    /// The shape of a value already in the file, if it holds one.
    pub(super) fn of_value(value: &str) -> Option<DigestShape> {
        match value {
            "" | "~" | "null" => None,
            v if v.contains(':') => Some(DigestShape::Full),
            _ => Some(DigestShape::Bare),
        }
    }

    /// What the templates expect for `.key`: every `{{ … .key … }}` that
    /// follows `@sha256:` wants bare hex, one that follows `@` the full digest.
    /// `Err` when they disagree.
    pub(super) fn of_templates(templates: &[&str], key: &str) -> Result<Option<DigestShape>, ()> {
        let mut seen = None;
        for text in templates {
            let mut rest = *text;
            let mut before_len = 0;
            while let Some(open) = rest.find("{{") {
                let before = &text[..before_len + open];
                let Some(close) = rest[open..].find("}}") else {
                    break;
                };
                let inside = &rest[open + 2..open + close];
                let names_key = inside.match_indices(&format!(".{key}")).any(|(i, m)| {
                    !inside[i + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                let shape = if !names_key {
                    None
                } else if before.ends_with("@sha256:") {
                    Some(DigestShape::Bare)
                } else if before.ends_with('@') {
                    Some(DigestShape::Full)
                } else {
                    None
                };
                if let Some(shape) = shape {
                    if seen.is_some_and(|s| s != shape) {
                        return Err(());
                    }
                    seen = Some(shape);
                }
                before_len += open + close + 2;
                rest = &rest[open + close + 2..];
            }
        }
        Ok(seen)
    }

    /// The key's convention: `sha` holds bare hex (kube-prometheus-stack),
    /// `digest` the full `sha256:<hex>` (Bitnami and most others).
    pub(super) fn of_key(key: &str) -> DigestShape {
        if key == "sha" {
            DigestShape::Bare
        } else {
            DigestShape::Full
        }
    }
}
