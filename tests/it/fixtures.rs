//! The generic fixture test: every `fixtures/<case>/` holds `cmd` (tagbump's
//! arguments, split on whitespace), `before/` (the input tree) and optionally
//! `after/` (the expected tree; absent means "unchanged"), `stdout`, `stderr`
//! and `exit` (default 0). The command runs in a copy of `before/`.
//!
//! `TAGBUMP_BLESS=1 cargo test fixtures` rewrites the expectations from the
//! current behaviour: review the resulting diff before committing it.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::support::run_in;

/// Relative path -> bytes for every file under `dir`.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                out.insert(
                    rel.to_string_lossy().replace('\\', "/"),
                    fs::read(&path).expect("read"),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn write_tree(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (rel, bytes) in files {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, bytes).expect("write");
    }
}

fn read_or_empty(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let bless = std::env::var_os("TAGBUMP_BLESS").is_some();
    let mut cases: Vec<_> = fs::read_dir(&root)
        .expect("fixtures/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("cmd").exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "expected the fixture cases, found {}",
        cases.len()
    );

    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let cmd = fs::read_to_string(case.join("cmd")).expect("cmd");
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let before = tree(&case.join("before"));
        let work = tempfile::tempdir().expect("temp dir");
        write_tree(work.path(), &before);

        let run = run_in(work.path(), &args);
        let got = tree(work.path());

        if bless {
            let after = case.join("after");
            let _ = fs::remove_dir_all(&after);
            if got != before {
                write_tree(&after, &got);
            }
            for (file, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
                let path = case.join(file);
                if text.is_empty() {
                    let _ = fs::remove_file(path);
                } else {
                    fs::write(path, text).expect("bless");
                }
            }
            if run.code != 0 {
                fs::write(case.join("exit"), format!("{}\n", run.code)).expect("bless");
            }
            continue;
        }

        let want_tree = match case.join("after").exists() {
            true => tree(&case.join("after")),
            false => before.clone(),
        };
        let want_code: i32 = read_or_empty(&case.join("exit"))
            .trim()
            .parse()
            .unwrap_or(0);
        let mut problems = Vec::new();
        if run.code != want_code {
            problems.push(format!("exit {} (want {want_code})", run.code));
        }
        for (file, got_text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            let want = read_or_empty(&case.join(file));
            if &want != got_text {
                problems.push(format!(
                    "{file} differs:\n--- want\n{want}--- got\n{got_text}"
                ));
            }
        }
        for path in want_tree.keys().chain(got.keys()) {
            let (w, g) = (want_tree.get(path), got.get(path));
            if w != g {
                problems.push(format!(
                    "{path} differs:\n--- want\n{}\n--- got\n{}",
                    w.map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or("(absent)".into()),
                    g.map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or("(absent)".into()),
                ));
                break;
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "fixture {name} (`tagbump {cmd}`):\n{}",
                problems.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
