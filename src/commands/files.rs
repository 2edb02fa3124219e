//! `tagbump set` and `tagbump image` on files in the working directory.
//!
//! Everything is read, parsed and planned before the first write, so a bad
//! file or path leaves every file as it was. Each write is atomic: a temporary
//! file beside the target, with the target's permissions, renamed over it.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::{ImageArgs, SetArgs};
use crate::error::{Failure, Kind};
use crate::output;
use crate::targets::{self, ImageUpdate, Plan, SourceFile};
use crate::yaml::Documents;

pub fn set(args: &SetArgs) -> Result<()> {
    let path = &args.file;
    if !args.allow_empty {
        if let Some(a) = args.assignments.iter().find(|a| a.value.is_empty()) {
            return Err(targets::empty_value_refused(&a.path.to_string()).into());
        }
    }
    let text = read_text(path)?;
    let file = SourceFile {
        path: display(path),
        text,
    };
    let documents = match (args.all, args.document) {
        (true, _) => Documents::All,
        (false, Some(n)) => Documents::Index(n),
        (false, None) => Documents::One,
    };
    let edit = targets::plan_set(&file, &args.assignments, documents).map_err(Failure::from)?;
    let plan = Plan {
        notes: edit.notes.clone(),
        files: vec![edit],
        ..Plan::default()
    };
    finish(&plan, std::slice::from_ref(path), args.common.dry_run)
}

pub fn image(args: &ImageArgs) -> Result<()> {
    let (files, on_disk, unreadable) = collect(&args.paths)?;
    let update = ImageUpdate {
        image: args.image.clone(),
        app_version: args.app_version,
        digest_in_tag: false,
    };
    let mut plan = targets::plan_image(&files, &update).map_err(Failure::from)?;
    let unreadable_len = unreadable.len();
    plan.skipped.splice(0..0, unreadable);
    if plan.files.is_empty() {
        for (path, why) in &plan.skipped {
            crate::note!("skipped {path}: {why}");
        }
        let searched: Vec<String> = args.paths.iter().map(|p| display(p)).collect();
        return Err(Failure::new(
            Kind::NotFound,
            format!(
                "no reference to `{}` in {} ({} YAML file(s) read)",
                args.image.name(),
                searched.join(", "),
                files.len() - (plan.skipped.len() - unreadable_len)
            ),
        )
        .hint(
            "tagbump looks for `image:` keys, Helm `repository`+`tag` mappings and \
             kustomization `images:`; check the image name and the directories",
        )
        .into());
    }
    let paths: Vec<PathBuf> = plan
        .files
        .iter()
        .map(|f| {
            let i = files
                .iter()
                .position(|s| s.path == f.path)
                .unwrap_or_default();
            on_disk[i].clone()
        })
        .collect();
    finish(&plan, &paths, args.common.dry_run)
}

/// Print the result and, unless dry-running, write each changed file.
/// `paths[i]` is where `plan.files[i]` lives.
fn finish(plan: &Plan, paths: &[PathBuf], dry_run: bool) -> Result<()> {
    let mut stderr = std::io::stderr().lock();
    if dry_run {
        output::write_diffs(&mut std::io::stdout().lock(), plan)
            .context("cannot write the diff")?;
    } else {
        for (edit, path) in plan.files.iter().zip(paths) {
            if edit.changed() {
                write_atomic(path, &edit.new)?;
            }
        }
    }
    output::write_summary(&mut stderr, plan, dry_run).context("cannot write to stderr")?;
    Ok(())
}

/// Read every YAML file under `paths`: files as given, directories walked for
/// `*.yaml`/`*.yml` (hidden directories skipped, symlinked ones not followed).
/// Returns the files, where each lives on disk, and those that are not text.
type Collected = (Vec<SourceFile>, Vec<PathBuf>, Vec<(String, String)>);

fn collect(paths: &[PathBuf]) -> Result<Collected> {
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(io("read", path))?;
        if meta.is_dir() {
            walk(path, &mut found, &mut unreadable)?;
        } else if meta.is_file() {
            found.push(path.clone());
        } else {
            unreadable.push((display(path), special_file(&meta.file_type())));
        }
    }
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    let mut on_disk = Vec::new();
    for path in found {
        let key = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if !seen.insert(key) {
            continue;
        }
        let bytes = fs::read(&path).map_err(io("read", &path))?;
        let Ok(text) = String::from_utf8(bytes) else {
            unreadable.push((display(&path), "not UTF-8 text".to_string()));
            continue;
        };
        files.push(SourceFile {
            path: display(&path),
            text,
        });
        on_disk.push(path);
    }
    Ok((files, on_disk, unreadable))
}

/// Why a directory entry that is not a regular file is skipped: reading a
/// FIFO would block forever, a device could be anything.
fn special_file(kind: &fs::FileType) -> String {
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a file or directory"
    };
    format!("not a regular file ({what})")
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>, skipped: &mut Vec<(String, String)>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io("list", dir))?
        .collect::<std::io::Result<_>>()
        .map_err(io("list", dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        let kind = entry.file_type().map_err(io("read", &path))?;
        if kind.is_dir() {
            if targets::is_scanned_dir(&name) {
                walk(&path, found, skipped)?;
            }
        } else if !targets::is_yaml_name(&name) {
            continue;
        } else if kind.is_file() {
            found.push(path);
        } else if kind.is_symlink() {
            // Followed to a file; never to a directory (no loops, no escapes).
            match fs::metadata(&path) {
                Ok(meta) if meta.is_file() => found.push(path),
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) => skipped.push((display(&path), special_file(&meta.file_type()))),
                Err(e) => {
                    let why = match e.raw_os_error() {
                        Some(40) => "a symlink loop".to_string(),
                        _ if e.kind() == std::io::ErrorKind::NotFound => {
                            "a dangling symlink (its target does not exist)".to_string()
                        }
                        _ => format!("a symlink that cannot be followed ({e})"),
                    };
                    skipped.push((display(&path), why));
                }
            }
        } else {
            skipped.push((display(&path), special_file(&kind)));
        }
    }
    Ok(())
}

fn read_text(path: &Path) -> Result<String> {
    let meta = fs::metadata(path).map_err(io("read", path))?;
    if !meta.is_file() {
        return Err(Failure::new(
            Kind::Io,
            format!(
                "cannot read {}: {}",
                display(path),
                special_file(&meta.file_type())
            ),
        )
        .into());
    }
    let bytes = fs::read(path).map_err(io("read", path))?;
    String::from_utf8(bytes).map_err(|e| {
        Failure::new(
            Kind::Input,
            format!(
                "{}: not UTF-8 text (invalid byte at offset {})",
                display(path),
                e.utf8_error().valid_up_to()
            ),
        )
        .into()
    })
}

/// Replace `path`'s content with `text` atomically, keeping its permissions.
/// A symlink is followed, so the link stays a link.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let target = fs::canonicalize(path).map_err(io("resolve", path))?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let perms = fs::metadata(&target)
        .map_err(io("read", path))?
        .permissions();
    let tmp = dir.join(format!(".{name}.tagbump-{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(perms)?;
        file.sync_all()?;
        fs::rename(&tmp, &target)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io("write", path)(e).into());
    }
    Ok(())
}

/// An I/O error naming the path as the user wrote it.
fn io(doing: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Failure {
    crate::error::io(doing, Path::new(&display(path)))
}

/// A path as the user wrote it, with `/` separators.
fn display(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    match text.strip_prefix("./") {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => text,
    }
}
