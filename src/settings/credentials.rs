//! Credentials for the git transport and the signing key, read only from the
//! environment or files: the git token or SSH key, the host-key policy, and the
//! commit signing key, repaired where CI variables mangle them.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::first;
use crate::cli::UpdateArgs;
use crate::config::Layer;
use crate::env::Env;
use crate::error::{Failure, Kind};
use crate::git::hostkey::{Policy, Source};
use crate::git::{Auth, RemoteUrl, Scheme};
use crate::secret::Secret;
use crate::signing::Signer;

pub(super) fn auth(args: &UpdateArgs, remote: &RemoteUrl, env: Env<'_>) -> Result<Auth> {
    let mut auth = Auth::default();
    if remote.scheme == Scheme::Ssh {
        auth.ssh_key = match &args.ssh_key_file {
            Some(path) => Some(Secret::new(normalize_key(&read_secret_file(
                path,
                "SSH private key",
            )?))),
            None => match env(&args.ssh_key_env) {
                Some(value) => Some(Secret::new(normalize_key(&value_or_file(
                    &value,
                    &args.ssh_key_env,
                )?))),
                None => None,
            },
        };
        auth.ssh_key_source = match &args.ssh_key_file {
            Some(path) => format!("--ssh-key-file {}", path.display()),
            None => args.ssh_key_env.clone(),
        };
        auth.ssh_passphrase =
            env(&args.ssh_passphrase_env).map(|p| Secret::new(p.trim_end_matches(['\r', '\n'])));
        auth.ssh_agent = auth.ssh_key.is_none() && env("SSH_AUTH_SOCK").is_some();
        auth.host_keys = host_key_policy(args, env)?;
    }
    let (token, token_var) = match (&remote.embedded_secret, &args.token_env) {
        (Some(secret), _) => (Some(secret.clone()), None),
        (None, Some(var)) => match env(var) {
            Some(v) => (Some(Secret::new(v)), Some(var.clone())),
            None => {
                return Err(Failure::new(
                    Kind::Usage,
                    format!("--token-env names ${var}, which is not set"),
                )
                .into())
            }
        },
        (None, None) => [
            "TAGBUMP_GIT_TOKEN",
            "GITLAB_TOKEN",
            "GITHUB_TOKEN",
            "GITEA_TOKEN",
            "FORGEJO_TOKEN",
            "CI_JOB_TOKEN",
        ]
        .iter()
        .find_map(|var| env(var).map(|v| (Some(Secret::new(v)), Some(var.to_string()))))
        .unwrap_or((None, None)),
    };
    auth.token = token;
    auth.http_user = match (&args.git_user, &remote.user) {
        (Some(user), _) => user.clone(),
        (None, Some(user)) if remote.scheme != Scheme::Ssh => user.clone(),
        _ if token_var.as_deref() == Some("CI_JOB_TOKEN") => "gitlab-ci-token".into(),
        _ if token_var.as_deref() == Some("GITHUB_TOKEN") || remote.host.contains("github") => {
            "x-access-token".into()
        }
        _ => "oauth2".into(),
    };
    // Both add trust, as with git: OpenSSL's default paths (the system store,
    // or SSL_CERT_FILE) are loaded when libgit2 starts, and GIT_SSL_CAINFO is
    // loaded on top of them, not instead.
    auth.trust = vec!["the system store".to_string()];
    if let Some(file) = env("SSL_CERT_FILE") {
        auth.trust = vec![format!("SSL_CERT_FILE={file}")];
    }
    if let Some(ca) = env("GIT_SSL_CAINFO") {
        // SAFETY: called before any network operation, from the main thread.
        unsafe { git2::opts::set_ssl_cert_file(&ca) }.map_err(|e| {
            Failure::new(Kind::Usage, format!("GIT_SSL_CAINFO={ca}: {}", e.message()))
        })?;
        auth.trust.push(format!("GIT_SSL_CAINFO={ca}"));
    }
    Ok(auth)
}

/// The commit signing key: `--signing-key-file`, else the variable
/// `--signing-key-env` names (its value, or a path), else
/// `TAGBUMP_SIGNING_KEY` when set; the config file's keys below the flags.
/// Parsed and unlocked now, before any network traffic.
pub(super) fn signer(args: &UpdateArgs, config: &Layer, env: Env<'_>) -> Result<Option<Signer>> {
    let (text, source) = match first(&args.signing_key_file, &config.signing_key_file) {
        Some(path) => (
            read_secret_file(&path, "signing key")?,
            path.display().to_string(),
        ),
        None => {
            let named = first(&args.signing_key_env, &config.signing_key_env);
            let var = named.as_deref().unwrap_or("TAGBUMP_SIGNING_KEY");
            if env(var).is_none() && set_but_empty(var) {
                // What GitHub passes for a secret that does not exist, and
                // what a forked pull request's run gets for every secret.
                return Err(Failure::new(
                    Kind::Usage,
                    format!("${var} is set but empty: no signing key, and the commit must not go unsigned"),
                )
                .hint(format!(
                    "check that the CI secret behind ${var} exists and is available to this run \
                     (forked pull requests and unprotected branches get none), or unset ${var} \
                     to push unsigned commits"
                ))
                .into());
            }
            match (env(var), &named) {
                (Some(value), _) => (value_or_file(&value, var)?, format!("${var}")),
                (None, Some(_)) => {
                    return Err(Failure::new(
                        Kind::Usage,
                        format!("--signing-key-env names ${var}, which is not set"),
                    )
                    .into())
                }
                (None, None) => return Ok(None),
            }
        }
    };
    // Registered as a secret first, so no message can echo the key.
    let key = Secret::new(normalize_key(&text));
    // A trailing line break comes with values read from files or pasted.
    let passphrase =
        env(&args.signing_passphrase_env).map(|p| Secret::new(p.trim_end_matches(['\r', '\n'])));
    Signer::from_text(
        key.expose(),
        passphrase.as_ref(),
        &source,
        &args.signing_passphrase_env,
    )
    .map(Some)
}

pub(super) fn host_key_policy(args: &UpdateArgs, env: Env<'_>) -> Result<Policy> {
    let mut sources = Vec::new();
    if let Some(path) = &args.ssh_known_hosts_file {
        if !path.is_file() {
            return Err(Failure::new(
                Kind::Io,
                format!("cannot read {}: no such file", path.display()),
            )
            .into());
        }
        sources.push(Source::File(path.clone()));
    }
    if let Some(value) = env(&args.ssh_known_hosts_env) {
        let looks_like_path = !value.contains(' ') && Path::new(value.trim()).is_file();
        sources.push(if looks_like_path {
            Source::File(PathBuf::from(value.trim()))
        } else {
            Source::Env {
                name: args.ssh_known_hosts_env.clone(),
                text: value,
            }
        });
    }
    if sources.is_empty() {
        if let Some(home) = env("HOME") {
            sources.push(Source::File(Path::new(&home).join(".ssh/known_hosts")));
        }
        sources.push(Source::File(PathBuf::from("/etc/ssh/ssh_known_hosts")));
        sources.retain(|s| matches!(s, Source::File(p) if p.is_file()));
    }
    for fp in &args.ssh_host_fingerprint {
        if !fp.starts_with("SHA256:") {
            return Err(Failure::new(
                Kind::Usage,
                format!("--ssh-host-fingerprint `{fp}` is not a SHA256 fingerprint"),
            )
            .hint("use the `SHA256:…` form that `ssh-keygen -lf` prints")
            .into());
        }
    }
    if args.insecure_accept_any_host_key {
        crate::note!("warning: --insecure-accept-any-host-key: the SSH host key is NOT verified");
    }
    Ok(Policy {
        sources,
        fingerprints: args.ssh_host_fingerprint.clone(),
        insecure_accept_any: args.insecure_accept_any_host_key,
    })
}

/// A variable holding a key, or (GitLab "file" variables) a path to one.
fn value_or_file(value: &str, var: &str) -> Result<String> {
    let trimmed = value.trim();
    let one_line = !value.contains("-----BEGIN") && !trimmed.contains('\n');
    if one_line && Path::new(trimmed).is_file() {
        return read_secret_file(Path::new(trimmed), &format!("${var}"));
    }
    let looks_like_path = ["/", "./", "../", "~/"]
        .iter()
        .any(|p| trimmed.starts_with(p))
        && !trimmed.contains(char::is_whitespace);
    if one_line && looks_like_path {
        // The value is not printed: it might be a key after all.
        return Err(Failure::new(
            Kind::Usage,
            format!("${var} looks like a path to a file, and there is no such file"),
        )
        .hint(format!(
            "a GitLab \"File\" variable holds the path of a file the job can read; check the \
             variable's name and type, or put the key itself in ${var}"
        ))
        .into());
    }
    Ok(value.to_string())
}

/// A variable that is set to the empty string (`process_env` reads it as
/// unset).
fn set_but_empty(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v.is_empty())
}

/// A key file's text. A binary key (`gpg --export-secret-keys` without
/// `--armor`, a DER file) is refused in words, its bytes never shown.
fn read_secret_file(path: &Path, what: &str) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| crate::error::io(&format!("read the {what} from"), path)(e))?;
    match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Ok(text),
        _ => Err(Failure::new(
            Kind::Usage,
            format!(
                "{} (the {what}) is binary, not an armored (text) key",
                path.display()
            ),
        )
        .hint(
            "export an OpenPGP key armored: `gpg --export-secret-keys --armor KEYID`; an \
             OpenSSH key is the text file `ssh-keygen` wrote (e.g. `id_ed25519`)",
        )
        .into()),
    }
}

/// Keys pasted into CI variables arrive mangled: CRLF, literal `\n`, quotes,
/// or no final newline (which libssh2 rejects).
pub(super) fn normalize_key(text: &str) -> String {
    let mut key = text
        .trim()
        .trim_matches('"')
        .trim_matches('\'')
        .replace("\r\n", "\n");
    if !key.contains('\n') && key.contains("\\n") {
        key = key.replace("\\n", "\n");
    }
    key.push('\n');
    key
}
