//! `--put LOCAL=REPO_PATH`: whole files added or replaced in the same commit
//! as the other edits — the rendered-manifests workflow (`skaffold render`,
//! `helm template`, `kustomize build` in CI, the result committed). Local
//! files are read while the settings are resolved, before any network work:
//! regular UTF-8 files only, YAML files must parse, at most [`MAX_BYTES`].

use std::path::Path;

use anyhow::Result;

use crate::error::{Failure, Kind};

/// GitHub refuses files over 100 MiB in a push; GitLab's limit is set per
/// instance (often lower). Larger files are refused before anything is sent.
pub const MAX_BYTES: u64 = 100 * 1024 * 1024;

/// One file to write, read from disk.
#[derive(Debug, Clone)]
pub struct Put {
    /// Where it goes in the repository.
    pub path: String,
    /// Where it came from, as the user wrote it (for messages).
    pub local: String,
    pub text: String,
}

/// Read every `--put`; a directory gives its files, recursively.
pub fn read(args: &[PutArg]) -> Result<Vec<Put>> {
    let mut out: Vec<Put> = Vec::new();
    for arg in args {
        let meta =
            std::fs::symlink_metadata(&arg.local).map_err(crate::error::io("read", &arg.local))?;
        if meta.is_dir() {
            read_dir(&arg.local, &arg.repo, &mut out)?;
        } else {
            out.push(read_file(&arg.local, &arg.repo, &meta)?);
        }
    }
    for (i, put) in out.iter().enumerate() {
        if let Some(other) = out[..i].iter().find(|p| p.path == put.path) {
            return Err(Failure::new(
                Kind::Usage,
                format!(
                    "--put writes `{}` twice (from `{}` and `{}`)",
                    put.path, other.local, put.local
                ),
            )
            .into());
        }
    }
    Ok(out)
}

fn read_dir(dir: &Path, repo: &str, out: &mut Vec<Put>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(crate::error::io("list", dir))?
        .collect::<Result<_, _>>()
        .map_err(crate::error::io("list", dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let target = format!("{repo}/{name}");
        let meta = std::fs::symlink_metadata(&path).map_err(crate::error::io("read", &path))?;
        if meta.is_dir() {
            read_dir(&path, &target, out)?;
        } else {
            out.push(read_file(&path, &target, &meta)?);
        }
    }
    Ok(())
}

fn read_file(local: &Path, repo: &str, meta: &std::fs::Metadata) -> Result<Put> {
    let shown = local.display().to_string();
    let refuse = |why: String| -> anyhow::Error {
        Failure::new(Kind::Input, format!("--put {shown}: {why}"))
            .hint("nothing was written")
            .into()
    };
    if meta.file_type().is_symlink() {
        return Err(refuse(
            "is a symlink; --put copies regular files (name the file it points to)".into(),
        ));
    }
    if !meta.is_file() {
        return Err(refuse("is not a regular file".into()));
    }
    if meta.len() > MAX_BYTES {
        return Err(refuse(format!(
            "is {} MiB; forges refuse files over {} MiB",
            meta.len() / (1024 * 1024),
            MAX_BYTES / (1024 * 1024)
        )));
    }
    let bytes = std::fs::read(local).map_err(crate::error::io("read", local))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        refuse(format!(
            "is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    if crate::targets::is_yaml_name(repo) {
        // Never a broken manifest: what is written must load.
        crate::yaml::Editor::new(&text).map_err(|e| refuse(format!("is not valid YAML ({e})")))?;
    }
    Ok(Put {
        path: repo.to_string(),
        local: shown,
        text,
    })
}

/// One `--put LOCAL=REPO_PATH`.
#[derive(Debug, Clone)]
pub struct PutArg {
    pub local: std::path::PathBuf,
    pub repo: String,
}

pub fn parse_put(text: &str) -> Result<PutArg, String> {
    let Some((local, repo)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not LOCAL=REPO_PATH, e.g. `manifest.yaml=apps/app/manifest.yaml`"
        ));
    };
    if local.is_empty() || repo.is_empty() {
        return Err(format!("`{text}` needs both LOCAL and REPO_PATH"));
    }
    let repo = super::repo_path(repo)?;
    if repo.is_empty() {
        return Err(format!(
            "`{text}`: REPO_PATH names the repository root, not a file"
        ));
    }
    Ok(PutArg {
        local: local.into(),
        repo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(local: &Path, repo: &str) -> PutArg {
        PutArg {
            local: local.to_path_buf(),
            repo: repo.into(),
        }
    }

    #[test]
    fn files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("out/sub")).unwrap();
        std::fs::write(d.join("out/a.yaml"), "a: 1\n").unwrap();
        std::fs::write(d.join("out/sub/b.txt"), "b\n").unwrap();
        std::fs::write(d.join("m.yaml"), "kind: List\n").unwrap();
        let puts = read(&[
            put(&d.join("m.yaml"), "apps/m.yaml"),
            put(&d.join("out"), "rendered"),
        ])
        .unwrap();
        let paths: Vec<&str> = puts.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["apps/m.yaml", "rendered/a.yaml", "rendered/sub/b.txt"]
        );
        assert_eq!(puts[0].text, "kind: List\n");
    }

    #[test]
    fn what_cannot_be_put_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("bad.yaml"), "a: [1\n").unwrap();
        std::fs::write(d.join("bin"), [0xff, 0xfe]).unwrap();
        std::os::unix::fs::symlink("bad.yaml", d.join("link")).unwrap();
        let error = |arg: PutArg| {
            let err = read(&[arg]).unwrap_err();
            assert_eq!(crate::error::kind(&err), Kind::Input, "{err:#}");
            format!("{err:#}")
        };
        assert!(error(put(&d.join("bad.yaml"), "x.yaml")).contains("is not valid YAML"));
        assert!(error(put(&d.join("bin"), "x")).contains("is not UTF-8 text"));
        assert!(error(put(&d.join("link"), "x")).contains("is a symlink"));
        std::fs::write(d.join("ok.txt"), "ok\n").unwrap();
        let twice = read(&[put(&d.join("ok.txt"), "x"), put(&d.join("ok.txt"), "x")]).unwrap_err();
        assert!(format!("{twice:#}").contains("--put writes `x` twice"));
    }
}
