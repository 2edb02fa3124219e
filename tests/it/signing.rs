//! Signed commits (issue #11): tagbump signs with an SSH or OpenPGP key held
//! in a variable; real `git verify-commit` on the server's copy must accept
//! the signature for the right key and refuse it for another. Keys are made
//! for each test by the real `ssh-keygen` and `gpg` in throwaway homes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::pipeline::{assert_failed, files, ssh_env, succeeded, update, with, Update};
use crate::servers::{available, seed, HttpServer, Repo, SshServer};

const EMAIL: &str = "ci@example.com";
const AUTHOR: &str = "CI Bot <ci@example.com>";
const IMAGE: &str = "registry.example.com/team/app";

/// An OpenSSH key pair made by ssh-keygen.
struct SshKey {
    private: String,
    public: String,
    fingerprint: String,
}

fn ssh_key(dir: &Path, kind: &str, passphrase: &str) -> SshKey {
    let path = dir.join(format!("sign-{kind}-{}", passphrase.len()));
    let (kind, bits): (&str, &[&str]) = match kind {
        "rsa" => ("rsa", &["-b", "3072"]),
        "ecdsa-521" => ("ecdsa", &["-b", "521"]),
        kind => (kind, &[]),
    };
    crate::servers::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", passphrase, "-C", EMAIL])
            .args(bits)
            .arg("-f")
            .arg(&path),
    );
    let fingerprint = crate::servers::run(Command::new("ssh-keygen").arg("-lf").arg(&path));
    SshKey {
        private: std::fs::read_to_string(&path).unwrap(),
        public: std::fs::read_to_string(path.with_extension("pub")).unwrap(),
        fingerprint: fingerprint.split_whitespace().nth(1).unwrap().to_string(),
    }
}

/// A throwaway GnuPG home; its agent is stopped when dropped.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        let home = tempfile::Builder::new().prefix("g").tempdir().unwrap();
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        Gpg { home }
    }

    fn gpg(&self, args: &[&str]) -> String {
        crate::servers::run(
            Command::new("gpg")
                .env("GNUPGHOME", self.home.path())
                .args(["--batch", "--pinentry-mode", "loopback"])
                .args(args),
        )
    }

    /// A new key for `uid`; `usage` as `gpg --quick-gen-key` takes it.
    /// Returns its fingerprint.
    fn generate(&self, uid: &str, algo: &str, usage: &str, passphrase: &str) -> String {
        self.gpg(&[
            "--passphrase",
            passphrase,
            "--quick-gen-key",
            uid,
            algo,
            usage,
            "never",
        ]);
        self.fingerprints(uid)[0].clone()
    }

    /// The primary key's, then the subkeys' fingerprints.
    fn fingerprints(&self, uid: &str) -> Vec<String> {
        self.gpg(&["--with-colons", "--list-secret-keys", uid])
            .lines()
            .filter(|l| l.starts_with("fpr:"))
            .map(|l| l.split(':').nth(9).unwrap().to_string())
            .collect()
    }

    fn export_secret(&self, uid: &str, passphrase: &str) -> String {
        self.gpg(&[
            "--passphrase",
            passphrase,
            "--armor",
            "--export-secret-keys",
            uid,
        ])
    }

    fn export_public(&self, uid: &str) -> String {
        self.gpg(&["--armor", "--export", uid])
    }

    /// A home that trusts only `public` (a verifier's keyring).
    fn trusting(public: &str) -> Gpg {
        let gpg = Gpg::new();
        let file = gpg.home.path().join("key.asc");
        std::fs::write(&file, public).unwrap();
        gpg.gpg(&["--import", file.to_str().unwrap()]);
        gpg
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// How a verifier trusts keys.
enum Trust<'a> {
    /// `gpg.ssh.allowedSignersFile` holding this public key for EMAIL.
    Ssh(&'a str),
    /// A GnuPG home holding the public key.
    OpenPgp(&'a Gpg),
}

/// `git verify-commit rev` on the server's repository: (success, output).
fn verify(repo: &Repo, rev: &str, trust: &Trust<'_>) -> (bool, String) {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(&repo.path);
    let allowed = tempfile::NamedTempFile::new().unwrap();
    match trust {
        Trust::Ssh(public) => {
            std::fs::write(allowed.path(), format!("{EMAIL} {public}")).unwrap();
            cmd.arg("-c").arg(format!(
                "gpg.ssh.allowedSignersFile={}",
                allowed.path().display()
            ));
        }
        Trust::OpenPgp(gpg) => {
            cmd.env("GNUPGHOME", gpg.home.path());
        }
    }
    let out = cmd.args(["verify-commit", "-v", rev]).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[track_caller]
fn assert_verified(repo: &Repo, rev: &str, trust: &Trust<'_>, good: &str) {
    let (ok, text) = verify(repo, rev, trust);
    assert!(ok && text.contains(good), "{rev}: {good:?} not in:\n{text}");
}

#[track_caller]
fn assert_refused(repo: &Repo, rev: &str, trust: &Trust<'_>) {
    let (ok, text) = verify(repo, rev, trust);
    assert!(!ok, "{rev} verified against the wrong key:\n{text}");
}

fn json(u: &Update) -> serde_json::Value {
    serde_json::from_str(&u.run.stdout).unwrap_or_else(|e| panic!("{e}: {}", u.run.stdout))
}

fn tools() -> bool {
    available("signing tests", &["ssh-keygen", "gpg", "gpgconf"])
}

// SSH signatures over SSH: a review branch, then a direct push; each commit
// verifies for the signing key and not for another.
#[test]
fn ssh_signed_commits_verify_on_the_server() {
    let Some(server) = SshServer::start() else {
        return;
    };
    if !tools() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let key = ssh_key(keys.path(), "ed25519", "");
    let other = ssh_key(keys.path(), "ed25519", "x-other-key");
    let (repo, url) = server.repo("team/signed", &files());
    let mut env = ssh_env(&server);
    env.push(("TAGBUMP_SIGNING_KEY", key.private.clone()));
    let good = format!(
        "Good \"git\" signature for {EMAIL} with ED25519 key {}",
        key.fingerprint
    );

    let image = format!("{IMAGE}:1.4.2");
    let args = [
        "--repo", &url, "--image", &image, "--author", AUTHOR, "--output", "json",
    ];
    let u = update(&args, &with(&env));
    succeeded(&u);
    let report = json(&u);
    assert_eq!(report["signed"], "ssh");
    assert_eq!(report["signing_key"], key.fingerprint.as_str());
    let branch = report["branch"].as_str().unwrap().to_string();
    assert_verified(&repo, &branch, &Trust::Ssh(&key.public), &good);
    assert_refused(&repo, &branch, &Trust::Ssh(&other.public));
    // What the report says is what the pushed commit's header holds.
    let header = repo.git(&["cat-file", "commit", report["commit"].as_str().unwrap()]);
    assert!(
        header.contains("gpgsig -----BEGIN SSH SIGNATURE-----"),
        "{header}"
    );

    // The same change again: the signed commit on the branch stays.
    let again = update(&args, &with(&env));
    assert_eq!(json(succeeded(&again))["commit"], report["commit"]);

    let image = format!("{IMAGE}:1.4.3");
    let direct = [
        "--repo", &url, "--image", &image, "--author", AUTHOR, "--direct",
    ];
    succeeded(&update(&direct, &with(&env)));
    assert_verified(&repo, "main", &Trust::Ssh(&key.public), &good);
    assert_refused(&repo, "main", &Trust::Ssh(&other.public));
    assert!(repo.git(&["fsck", "--strict"]).is_empty());
}

// OpenPGP signatures over HTTPS, from a passphrase-protected key: review
// branch and direct, verified by gpg with only the public key.
#[test]
fn openpgp_signed_commits_verify_on_the_server() {
    let token = "glpat-SIGNING0123456789";
    let Some(server) = HttpServer::start(token) else {
        return;
    };
    if !tools() {
        return;
    }
    let signer = Gpg::new();
    let fingerprint = signer.generate(AUTHOR, "ed25519", "sign", "correct horse");
    let secret = signer.export_secret(AUTHOR, "correct horse");
    let trusted = Gpg::trusting(&signer.export_public(AUTHOR));
    let stranger = Gpg::new();
    stranger.generate(AUTHOR, "ed25519", "sign", "");
    let stranger = Gpg::trusting(&stranger.export_public(AUTHOR));

    let (repo, _, https) = server.repo("team/signed", &files());
    let ca = server.ca.to_string_lossy().into_owned();
    let env = [
        ("GITLAB_TOKEN", token),
        ("GIT_SSL_CAINFO", ca.as_str()),
        ("TAGBUMP_SIGNING_KEY", secret.as_str()),
        ("TAGBUMP_SIGNING_PASSPHRASE", "correct horse"),
    ];
    let image = format!("{IMAGE}:1.4.2");
    let u = update(
        &[
            "--repo", &https, "--image", &image, "--author", AUTHOR, "--forge", "none", "--output",
            "json",
        ],
        &env,
    );
    let report = json(succeeded(&u));
    assert_eq!(report["signed"], "openpgp");
    assert_eq!(report["signing_key"], fingerprint.as_str());
    let branch = report["branch"].as_str().unwrap().to_string();
    let header = repo.git(&["cat-file", "commit", report["commit"].as_str().unwrap()]);
    assert!(
        header.contains("gpgsig -----BEGIN PGP SIGNATURE-----"),
        "{header}"
    );
    let good = format!("Good signature from \"{AUTHOR}\"");
    assert_verified(&repo, &branch, &Trust::OpenPgp(&trusted), &good);
    assert_refused(&repo, &branch, &Trust::OpenPgp(&stranger));

    let image = format!("{IMAGE}:1.4.3");
    let u = update(
        &[
            "--repo", &https, "--image", &image, "--author", AUTHOR, "--direct",
        ],
        &env,
    );
    succeeded(&u);
    assert_verified(&repo, "main", &Trust::OpenPgp(&trusted), &good);
    assert_refused(&repo, "main", &Trust::OpenPgp(&stranger));
}

// Every commit of concurrent direct writers is signed, the ones made on a
// retry (after another writer's push moved the base) included.
#[test]
fn commits_made_on_a_retry_are_signed_too() {
    let Some(server) = SshServer::start() else {
        return;
    };
    if !tools() {
        return;
    }
    const WRITERS: usize = 6;
    let keys = tempfile::tempdir().unwrap();
    let key = ssh_key(keys.path(), "ed25519", "");
    // Half the writers sign with OpenPGP: both kinds under contention.
    let gpg = Gpg::new();
    gpg.generate(AUTHOR, "ed25519", "sign", "");
    let pgp_secret = gpg.export_secret(AUTHOR, "");
    let trusted = Gpg::trusting(&gpg.export_public(AUTHOR));
    let texts: Vec<(String, String)> = (0..WRITERS)
        .map(|i| {
            (
                format!("apps/svc-{i}/values.yaml"),
                format!("image: registry.example.com/team/svc-{i}:1.0.0\n"),
            )
        })
        .collect();
    let (repo, url) = server.repo("team/busy-signed", &texts);
    let runs: Vec<Update> = (0..WRITERS)
        .map(|i| {
            let mut env = ssh_env(&server);
            let signing = if i % 2 == 0 {
                &key.private
            } else {
                &pgp_secret
            };
            env.push(("TAGBUMP_SIGNING_KEY", signing.clone()));
            let url = url.clone();
            std::thread::spawn(move || {
                let image = format!("registry.example.com/team/svc-{i}:2.0.0");
                let args = [
                    "--repo",
                    &url,
                    "--image",
                    &image,
                    "--direct",
                    "--attempts",
                    "30",
                    "--author",
                    AUTHOR,
                ];
                update(&args, &with(&env))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for u in &runs {
        succeeded(u);
    }
    let retried = runs
        .iter()
        .filter(|u| u.run.stderr.contains("trying again"))
        .count();
    assert!(
        retried > 0,
        "{WRITERS} writers at once, and none had to retry"
    );
    assert_eq!(repo.count("main"), WRITERS + 1, "every writer landed");
    let commits = repo.git(&["rev-list", "main", "--max-count", &WRITERS.to_string()]);
    let (mut ssh, mut openpgp) = (0, 0);
    for commit in commits.lines() {
        if verify(&repo, commit, &Trust::Ssh(&key.public)).0 {
            assert_verified(
                &repo,
                commit,
                &Trust::Ssh(&key.public),
                "Good \"git\" signature",
            );
            ssh += 1;
        } else {
            assert_verified(&repo, commit, &Trust::OpenPgp(&trusted), "Good signature");
            openpgp += 1;
        }
    }
    assert_eq!((ssh, openpgp), (WRITERS / 2, WRITERS / 2));
}

/// A bare repository on disk (no server): for the key-kind matrix.
fn local_repo(dir: &Path) -> (Repo, String) {
    let path: PathBuf = dir.join("manifests.git");
    let repo = seed(&path, &files());
    let url = path.to_string_lossy().into_owned();
    (repo, url)
}

// Each kind of key the issue names: SSH ed25519, ECDSA and RSA; OpenPGP
// ed25519 and RSA, and a certify-only primary key with a signing subkey
// (gpg signs with the subkey; so does tagbump).
#[test]
fn every_kind_of_key_signs_what_git_verifies() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (repo, url) = local_repo(dir.path());
    let mut tag = 0;
    let mut bump = |env: &[(&str, &str)]| {
        tag += 1;
        let image = format!("{IMAGE}:2.0.{tag}");
        let args = [
            "--repo", &url, "--image", &image, "--direct", "--author", AUTHOR, "--output", "json",
        ];
        json(succeeded(&update(&args, env)))
    };
    for (kind, name) in [("ed25519", "ED25519"), ("ecdsa", "ECDSA"), ("rsa", "RSA")] {
        let key = ssh_key(dir.path(), kind, "");
        let report = bump(&[("TAGBUMP_SIGNING_KEY", &key.private)]);
        assert_eq!(report["signing_key"], key.fingerprint.as_str(), "{kind}");
        let good = format!(
            "Good \"git\" signature for {EMAIL} with {name} key {}",
            key.fingerprint
        );
        assert_verified(&repo, "main", &Trust::Ssh(&key.public), &good);
    }
    for (algo, usage) in [("rsa3072", "sign"), ("ed25519", "cert")] {
        let gpg = Gpg::new();
        gpg.generate(AUTHOR, algo, usage, "");
        if usage == "cert" {
            let primary = gpg.fingerprints(AUTHOR)[0].clone();
            gpg.gpg(&[
                "--passphrase",
                "",
                "--quick-add-key",
                &primary,
                "ed25519",
                "sign",
            ]);
        }
        let signing = gpg.fingerprints(AUTHOR).last().unwrap().clone();
        let report = bump(&[("TAGBUMP_SIGNING_KEY", &gpg.export_secret(AUTHOR, ""))]);
        assert_eq!(report["signing_key"], signing.as_str(), "{algo}/{usage}");
        let trusted = Gpg::trusting(&gpg.export_public(AUTHOR));
        assert_verified(
            &repo,
            "main",
            &Trust::OpenPgp(&trusted),
            &format!(
                "using {} key {signing}",
                if algo.starts_with("rsa") {
                    "RSA"
                } else {
                    "EDDSA"
                }
            ),
        );
    }
    assert!(repo.git(&["fsck", "--strict"]).is_empty());
}

// Keys that cannot sign are usage errors before any network traffic (the
// remote is a closed port: reaching it would be exit 7), each with its own
// message, and the key never appears in any output.
#[test]
fn unusable_signing_keys_fail_before_any_traffic() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (repo, url) = local_repo(dir.path());
    let refs = repo.git(&["for-each-ref"]);
    let encrypted = ssh_key(dir.path(), "ed25519", "s3cret-pass");
    let plain = ssh_key(dir.path(), "ed25519", "");
    let gpg = Gpg::new();
    gpg.generate(AUTHOR, "ed25519", "sign", "pgp-pass-123");
    let pgp_secret = gpg.export_secret(AUTHOR, "pgp-pass-123");
    let pgp_public = gpg.export_public(AUTHOR);
    let mut corrupt = plain.private.lines().map(String::from).collect::<Vec<_>>();
    corrupt[2] = corrupt[2].chars().rev().collect();
    let corrupt = corrupt.join("\n");
    let image = format!("{IMAGE}:1.4.2");
    let run = |env: &[(&str, &str)]| update(&["--repo", &url, "--image", &image, "--direct"], env);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("TAGBUMP_SIGNING_KEY", &encrypted.private)],
            "error: the signing key in $TAGBUMP_SIGNING_KEY is encrypted, and TAGBUMP_SIGNING_PASSPHRASE is not set\n\
             hint: set TAGBUMP_SIGNING_PASSPHRASE to its passphrase (a masked CI variable)\n",
        ),
        (
            vec![("TAGBUMP_SIGNING_KEY", &encrypted.private), ("TAGBUMP_SIGNING_PASSPHRASE", "wrong-pass")],
            "error: cannot decrypt the signing key in $TAGBUMP_SIGNING_KEY with the passphrase in TAGBUMP_SIGNING_PASSPHRASE\n\
             hint: check TAGBUMP_SIGNING_PASSPHRASE: it must be the passphrase of this key\n",
        ),
        (
            vec![("TAGBUMP_SIGNING_KEY", &pgp_secret)],
            "error: the signing key in $TAGBUMP_SIGNING_KEY is encrypted, and TAGBUMP_SIGNING_PASSPHRASE is not set\n",
        ),
        (
            vec![("TAGBUMP_SIGNING_KEY", &pgp_secret), ("TAGBUMP_SIGNING_PASSPHRASE", "wrong-pass")],
            "error: cannot decrypt the signing key in $TAGBUMP_SIGNING_KEY with the passphrase in TAGBUMP_SIGNING_PASSPHRASE\n",
        ),
        (
            vec![("TAGBUMP_SIGNING_KEY", &corrupt)],
            "error: the OpenSSH signing key in $TAGBUMP_SIGNING_KEY does not decode: its body is damaged\n",
        ),
        (
            vec![("TAGBUMP_SIGNING_KEY", &plain.public)],
            "error: the signing key in $TAGBUMP_SIGNING_KEY is an SSH public key, not a private one\n",
        ),
        (
            vec![("TAGBUMP_SIGNING_KEY", &pgp_public)],
            "error: the signing key in $TAGBUMP_SIGNING_KEY is an OpenPGP public key, not a private one\n",
        ),
        (
            vec![("TAGBUMP_SIGNING_KEY", "not a key at all")],
            "error: the signing key in $TAGBUMP_SIGNING_KEY is neither an OpenSSH nor an OpenPGP private key\n",
        ),
    ];
    let secrets: Vec<&str> = [&encrypted.private, &plain.private, &pgp_secret]
        .iter()
        .flat_map(|k| {
            k.lines()
                .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
        })
        .chain(["s3cret-pass", "pgp-pass-123"])
        .collect();
    for (env, expected) in &cases {
        let u = run(env);
        assert_failed(&u, 2, expected, &repo, &refs);
        assert!(
            u.run.stderr.starts_with(expected.lines().next().unwrap()),
            "{}",
            u.run.stderr
        );
        let all = format!("{}{}", u.run.stdout, u.run.stderr);
        for secret in &secrets {
            assert!(!all.contains(secret), "leaked a key line:\n{all}");
        }
    }
    // Refused before any network traffic: against a closed port the run
    // still fails on the key (2), not on the connection (7).
    let closed = [
        "--repo",
        "ssh://git@127.0.0.1:1/team/app.git",
        "--image",
        &image,
        "--attempts",
        "1",
    ];
    let u = update(&closed, &[("TAGBUMP_SIGNING_KEY", &encrypted.private)]);
    assert_eq!(u.run.code, 2, "{}", u.run.stderr);
    // With the right passphrase both keys sign, and git verifies.
    for (key, passphrase, tag) in [
        (&encrypted.private, "s3cret-pass", "1.5.0"),
        (&pgp_secret, "pgp-pass-123", "1.6.0"),
    ] {
        let image = format!("{IMAGE}:{tag}");
        let u = update(
            &["--repo", &url, "--image", &image, "--direct"],
            &[
                ("TAGBUMP_SIGNING_KEY", key),
                ("TAGBUMP_SIGNING_PASSPHRASE", passphrase),
            ],
        );
        succeeded(&u);
    }
    assert_verified(
        &repo,
        "main~1",
        &Trust::Ssh(&encrypted.public),
        "Good \"git\" signature",
    );
    let trusted = Gpg::trusting(&pgp_public);
    assert_verified(&repo, "main", &Trust::OpenPgp(&trusted), "Good signature");
}

// A key whose comment (SSH) or user ids (OpenPGP) lack the committer email
// gets a warning: GitHub and GitLab would show the commit as Unverified.
#[test]
fn a_key_for_another_email_is_warned_about() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_repo, url) = local_repo(dir.path());
    let key = ssh_key(dir.path(), "ed25519", "");
    let image = format!("{IMAGE}:1.4.2");
    let run = |author: &str| {
        let args = [
            "--repo",
            &url,
            "--image",
            &image,
            "--dry-run",
            "--author",
            author,
        ];
        update(&args, &[("TAGBUMP_SIGNING_KEY", &key.private)])
    };
    let u = run("Someone <someone@example.com>");
    succeeded(&u);
    assert!(
        u.run.stderr.contains(
            "warning: the signing key's comment `ci@example.com` does not contain the committer \
             email `someone@example.com`: GitHub and GitLab show such commits as Unverified"
        ),
        "{}",
        u.run.stderr
    );
    let u = run(AUTHOR);
    assert!(
        !succeeded(&u).run.stderr.contains("warning"),
        "{}",
        u.run.stderr
    );
}

/// The shapes an armored key takes when CI mangles it.
fn mangled(armored: &str) -> Vec<(&'static str, String)> {
    let lines: Vec<&str> = armored.lines().collect();
    let indent = |prefix: &str| {
        lines
            .iter()
            .map(|l| format!("{prefix}{l}\n"))
            .collect::<String>()
    };
    vec![
        ("indented", indent("    ")),
        ("tabbed", indent("\t")),
        ("joined", lines.join(" ")),
        ("truncated", lines[..lines.len() / 2].join("\n")),
    ]
}

/// No line of the key, and no decimal or hex dump of its bytes, in `all`.
#[track_caller]
fn assert_no_key_material(all: &str, key: &str) {
    for line in key.lines().map(str::trim).filter(|l| l.len() >= 8) {
        assert!(!all.contains(line), "leaked a key line {line:?}:\n{all}");
    }
    let decimal = regex_lite::Regex::new(r"\d{1,3}, \d{1,3}, \d{1,3}, \d{1,3}").unwrap();
    assert!(!decimal.is_match(all), "a decimal dump:\n{all}");
    let hex = regex_lite::Regex::new(
        r"[0-9a-fA-F]{2}[ ,]+[0-9a-fA-F]{2}[ ,]+[0-9a-fA-F]{2}[ ,]+[0-9a-fA-F]{2}",
    )
    .unwrap();
    assert!(!hex.is_match(all), "a hex dump:\n{all}");
    let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let bytes = body.as_bytes();
    for window in bytes.windows(6).step_by(97) {
        let hexed: String = window.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!all.contains(&hexed), "hex of the key:\n{all}");
    }
}

// Issue #19, class 1: a key pasted indented, tab-indented, joined into one
// line, cut off, binary, or of the wrong kind is refused in tagbump's own
// words (exit 2, before any connection: the remote is a closed port), and no
// output holds any line of the key or a dump of its bytes.
#[test]
fn mangled_signing_keys_are_described_never_shown() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ssh = ssh_key(dir.path(), "ed25519", "");
    let gpg = Gpg::new();
    gpg.generate(AUTHOR, "ed25519", "sign", "");
    let pgp = gpg.export_secret(AUTHOR, "");
    let binary = dir.path().join("secret.gpg");
    crate::servers::run(
        Command::new("gpg")
            .env("GNUPGHOME", gpg.home.path())
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args([
                "--output",
                binary.to_str().unwrap(),
                "--export-secret-keys",
                AUTHOR,
            ]),
    );
    let binary = binary.to_string_lossy().into_owned();
    // The SSH key's bytes without their armor: what a key decoded once too
    // often looks like.
    let ssh_binary = dir.path().join("id_ed25519.bin");
    let body: String = ssh
        .private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    std::fs::write(
        &ssh_binary,
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap(),
    )
    .unwrap();
    let ssh_binary = ssh_binary.to_string_lossy().into_owned();
    let pgp_public = gpg.export_public(AUTHOR);
    let image = format!("{IMAGE}:1.4.2");
    let closed = [
        "--repo",
        "ssh://git@127.0.0.1:1/team/app.git",
        "--image",
        &image,
    ];
    // (what, $TAGBUMP_SIGNING_KEY, what the first line of stderr must say)
    let mut cases: Vec<(String, String, Vec<String>)> = Vec::new();
    for (kind, key) in [("OpenSSH", &ssh.private), ("OpenPGP", &pgp)] {
        for (shape, text) in mangled(key) {
            let what = match shape {
                "indented" => "indented line(s) (with spaces)",
                "tabbed" => "indented line(s) (with tabs)",
                "joined" => "is on one line: its line breaks were lost",
                _ => "is cut off: it has no `-----END` line",
            };
            let start = format!("error: the {kind} signing key in $TAGBUMP_SIGNING_KEY ");
            cases.push((
                format!("{kind} {shape}"),
                text,
                vec![start, what.to_string()],
            ));
        }
    }
    cases.push((
        "binary OpenPGP".into(),
        binary.clone(),
        vec![format!(
            "error: {binary} (the $TAGBUMP_SIGNING_KEY) is binary, not an armored (text) key"
        )],
    ));
    cases.push((
        "binary OpenSSH".into(),
        ssh_binary.clone(),
        vec![format!(
            "error: {ssh_binary} (the $TAGBUMP_SIGNING_KEY) is binary, not an armored (text) key"
        )],
    ));
    cases.push((
        "wrong kind".into(),
        ssh.public.clone(),
        vec!["error: the signing key in $TAGBUMP_SIGNING_KEY is an SSH public key, not a private one".into()],
    ));
    cases.push((
        "wrong kind OpenPGP".into(),
        pgp_public,
        vec!["error: the signing key in $TAGBUMP_SIGNING_KEY is an OpenPGP public key, not a private one".into()],
    ));
    cases.push((
        "a path that is not there".into(),
        "/run/secrets/signing-key".into(),
        vec![
            "error: $TAGBUMP_SIGNING_KEY looks like a path to a file, and there is no such file"
                .into(),
        ],
    ));
    for (name, key, needles) in &cases {
        let u = update(&closed, &[("TAGBUMP_SIGNING_KEY", key)]);
        assert_eq!(u.run.code, 2, "{name}: {}", u.run.stderr);
        let first = u.run.stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with(&needles[0]), "{name}: {first}");
        for needle in needles {
            assert!(
                first.contains(needle.trim_start_matches("error: ")),
                "{name}: {first}"
            );
        }
        assert!(
            u.run.stderr.contains("\nhint: "),
            "{name}: no hint:\n{}",
            u.run.stderr
        );
        let all = format!("{}{}", u.run.stdout, u.run.stderr);
        assert_no_key_material(&all, &ssh.private);
        assert_no_key_material(&all, &pgp);
    }
    // The same binary key by --signing-key-file: exit 2 as well.
    let mut args = closed.to_vec();
    args.extend(["--signing-key-file", &binary]);
    let u = update(&args, &[]);
    assert_eq!(u.run.code, 2, "{}", u.run.stderr);
    assert!(
        u.run.stderr.starts_with(&format!(
            "error: {binary} (the signing key) is binary, not an armored (text) key\n"
        )),
        "{}",
        u.run.stderr
    );
}

// Issue #19, class 5: an empty key variable (a missing GitHub secret, a
// forked pull request's run) is refused before any connection, never
// pushed unsigned; so is an empty variable named by --signing-key-env.
#[test]
fn an_empty_signing_key_is_refused_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, url) = local_repo(dir.path());
    let refs = repo.git(&["for-each-ref"]);
    let image = format!("{IMAGE}:1.4.2");
    let u = update(
        &["--repo", &url, "--image", &image, "--direct"],
        &[("TAGBUMP_SIGNING_KEY", "")],
    );
    assert_failed(&u, 2, "", &repo, &refs);
    assert_eq!(
        u.run.stderr,
        "error: $TAGBUMP_SIGNING_KEY is set but empty: no signing key, and the commit must not go unsigned\n\
         hint: check that the CI secret behind $TAGBUMP_SIGNING_KEY exists and is available to this \
         run (forked pull requests and unprotected branches get none), or unset \
         $TAGBUMP_SIGNING_KEY to push unsigned commits\n"
    );
    let u = update(
        &[
            "--repo",
            &url,
            "--image",
            &image,
            "--direct",
            "--signing-key-env",
            "RELEASE_KEY",
        ],
        &[("RELEASE_KEY", "")],
    );
    assert_failed(&u, 2, "$RELEASE_KEY is set but empty", &repo, &refs);
}

// Issue #19, class 5: every P-521 key signs (OpenSSH drops the scalar's
// leading zero byte, about every other key), each commit verified by git.
#[test]
fn every_p521_key_signs_what_git_verifies() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (repo, url) = local_repo(dir.path());
    for i in 0..20 {
        let key_dir = dir.path().join(format!("k{i}"));
        std::fs::create_dir(&key_dir).unwrap();
        let key = ssh_key(&key_dir, "ecdsa-521", "");
        let passphrase = if i % 4 == 3 { "p521-pass\n" } else { "" };
        let key = if passphrase.is_empty() {
            key
        } else {
            // Encrypted too; the passphrase arrives with a trailing newline.
            let path = key_dir.join("sign-ecdsa-521-0");
            crate::servers::run(
                Command::new("ssh-keygen")
                    .args(["-q", "-p", "-N", "p521-pass", "-P", ""])
                    .arg("-f")
                    .arg(&path),
            );
            SshKey {
                private: std::fs::read_to_string(&path).unwrap(),
                ..key
            }
        };
        let image = format!("{IMAGE}:5.21.{i}");
        let args = [
            "--repo", &url, "--image", &image, "--direct", "--author", AUTHOR,
        ];
        let mut env = vec![("TAGBUMP_SIGNING_KEY", key.private.as_str())];
        if !passphrase.is_empty() {
            env.push(("TAGBUMP_SIGNING_PASSPHRASE", passphrase));
        }
        succeeded(&update(&args, &env));
        let good = format!(
            "Good \"git\" signature for {EMAIL} with ECDSA key {}",
            key.fingerprint
        );
        assert_verified(&repo, "main", &Trust::Ssh(&key.public), &good);
    }
}

// Issue #19, class 5: an expired or revoked OpenPGP key, or one whose only
// signing subkey expired, is refused before any connection (git would not
// verify what it signs); beside an expired newer signing subkey, an older
// valid one signs, as gpg would choose.
#[test]
fn expired_or_revoked_openpgp_keys_are_refused() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (repo, url) = local_repo(dir.path());
    let refs = repo.git(&["for-each-ref"]);

    let expired = Gpg::new();
    expired.gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        AUTHOR,
        "ed25519",
        "sign",
        "seconds=1",
    ]);
    let expired_fp = expired.fingerprints(AUTHOR)[0].clone();

    let revoked = Gpg::new();
    let revoked_fp = revoked.generate(AUTHOR, "ed25519", "sign", "");
    let certificate = revoked
        .home
        .path()
        .join(format!("openpgp-revocs.d/{revoked_fp}.rev"));
    let text = std::fs::read_to_string(&certificate)
        .unwrap()
        .replace(":-----BEGIN", "-----BEGIN");
    std::fs::write(&certificate, text).unwrap();
    revoked.gpg(&["--import", certificate.to_str().unwrap()]);

    let add_subkey = |gpg: &Gpg, primary: &str, expire: &str| {
        gpg.gpg(&[
            "--passphrase",
            "",
            "--quick-add-key",
            primary,
            "ed25519",
            "sign",
            expire,
        ]);
    };
    let older_valid = Gpg::new();
    let primary = older_valid.generate(AUTHOR, "ed25519", "cert", "");
    add_subkey(&older_valid, &primary, "never");
    let valid_subkey = older_valid.fingerprints(AUTHOR)[1].clone();
    add_subkey(&older_valid, &primary, "seconds=1");

    let only_expired = Gpg::new();
    let only_primary = only_expired.generate(AUTHOR, "ed25519", "cert", "");
    add_subkey(&only_expired, &only_primary, "seconds=1");
    let expired_subkey = only_expired.fingerprints(AUTHOR)[1].clone();
    std::thread::sleep(std::time::Duration::from_secs(2));

    let image = format!("{IMAGE}:1.4.2");
    let args = [
        "--repo", &url, "--image", &image, "--direct", "--author", AUTHOR, "--output", "json",
    ];
    let cases = [
        (
            &expired,
            format!("error: the OpenPGP key in $TAGBUMP_SIGNING_KEY ({expired_fp}) expired on 20"),
        ),
        (
            &revoked,
            format!("error: the OpenPGP key in $TAGBUMP_SIGNING_KEY ({revoked_fp}) is revoked\n"),
        ),
        (
            &only_expired,
            format!(
                "error: the signing subkey {expired_subkey} of the OpenPGP key in \
                 $TAGBUMP_SIGNING_KEY ({only_primary}) expired on 20"
            ),
        ),
    ];
    for (gpg, expected) in &cases {
        let secret = gpg.export_secret(AUTHOR, "");
        let u = update(&args, &[("TAGBUMP_SIGNING_KEY", &secret)]);
        assert_failed(&u, 2, "", &repo, &refs);
        assert!(
            u.run.stderr.starts_with(expected.as_str()),
            "{expected:?} not at the start of:\n{}",
            u.run.stderr
        );
    }

    let secret = older_valid.export_secret(AUTHOR, "");
    let report = json(succeeded(&update(
        &args,
        &[("TAGBUMP_SIGNING_KEY", &secret)],
    )));
    assert_eq!(report["signing_key"], valid_subkey.as_str());
    let trusted = Gpg::trusting(&older_valid.export_public(AUTHOR));
    assert_verified(
        &repo,
        "main",
        &Trust::OpenPgp(&trusted),
        &format!("using EDDSA key {valid_subkey}"),
    );
}

// Issue #19, class 5: a kind of key that cannot sign (DSA) is refused
// before any connection, not after the clone.
#[test]
fn a_dsa_key_is_refused_before_any_connection() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = ssh_key(dir.path(), "dsa", "");
    let image = format!("{IMAGE}:1.4.2");
    let closed = [
        "--repo",
        "ssh://git@127.0.0.1:1/team/app.git",
        "--image",
        &image,
    ];
    let u = update(&closed, &[("TAGBUMP_SIGNING_KEY", &key.private)]);
    assert_eq!(
        u.run.stderr,
        "error: the SSH signing key in $TAGBUMP_SIGNING_KEY is a ssh-dss key, which cannot sign \
         commits here: DSA keys are obsolete: OpenSSH has refused them since 7.0, and GitHub and \
         GitLab do not verify them\n\
         hint: create a signing key with `ssh-keygen -t ed25519`\n"
    );
    assert_eq!(u.run.code, 2);
}
