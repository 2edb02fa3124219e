//! Registry credentials, first found for the image's registry:
//!
//! 1. `--registry-user` / `TAGBUMP_REGISTRY_USER` with the password in
//!    `TAGBUMP_REGISTRY_PASSWORD` (or the variable `--registry-password-env`
//!    names);
//! 2. docker's `config.json`: GitLab's `DOCKER_AUTH_CONFIG` variable,
//!    `$DOCKER_CONFIG/config.json`, `~/.docker/config.json` — `auths`
//!    entries, and `credHelpers` / `credsStore` where the
//!    `docker-credential-<name>` binary exists;
//! 3. the CI's own: `CI_REGISTRY_USER`/`CI_REGISTRY_PASSWORD` for
//!    `CI_REGISTRY` in GitLab CI, `GITHUB_TOKEN` for `ghcr.io` in Actions;
//! 4. none (anonymous, as for public images).
//!
//! Everything is read once, while the settings are resolved; secrets go
//! straight into [`Secret`]s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::env::Env;
use crate::secret::Secret;

/// A user and password (or token) for one registry, and where they came from.
#[derive(Debug, Clone)]
pub struct Credential {
    pub user: String,
    pub secret: Secret,
    /// For messages: `TAGBUMP_REGISTRY_PASSWORD`, `DOCKER_AUTH_CONFIG`, a path…
    pub source: String,
}

impl Credential {
    /// `user:secret`, base64: the `Basic` credentials.
    pub fn basic(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.user,
            self.secret.expose()
        ))
    }
}

/// docker's `config.json`, the parts tagbump reads.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// Everything the lookup may use, read from the environment once.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    explicit: Option<Credential>,
    /// Each config with where it came from.
    configs: Vec<(String, DockerConfig)>,
    /// (registry host, credential) from the CI system.
    ci: Vec<(String, Credential)>,
    /// Problems worth saying once (an unreadable config file).
    pub notes: Vec<String>,
}

impl Credentials {
    /// Read the sources: `user` from the flag (or `TAGBUMP_REGISTRY_USER`),
    /// the password from the variable `password_var`.
    pub fn from_env(user: Option<&str>, password_var: &str, env: Env<'_>) -> Credentials {
        let mut out = Credentials::default();
        if let (Some(user), Some(password)) = (user, env(password_var)) {
            out.explicit = Some(Credential {
                user: user.to_string(),
                secret: Secret::new(password),
                source: password_var.to_string(),
            });
        }
        if let Some(text) = env("DOCKER_AUTH_CONFIG") {
            // Registered as a secret first: it holds passwords.
            let text = Secret::new(text);
            out.config("DOCKER_AUTH_CONFIG", text.expose());
        }
        let dirs: Vec<PathBuf> = match (env("DOCKER_CONFIG"), env("HOME")) {
            (Some(dir), _) => vec![PathBuf::from(dir)],
            (None, Some(home)) => vec![Path::new(&home).join(".docker")],
            (None, None) => Vec::new(),
        };
        for dir in dirs {
            let path = dir.join("config.json");
            if let Ok(text) = std::fs::read_to_string(&path) {
                let text = Secret::new(text);
                out.config(&path.display().to_string(), text.expose());
            }
        }
        if env("GITLAB_CI").as_deref() == Some("true") {
            if let (Some(host), Some(user), Some(password)) = (
                env("CI_REGISTRY"),
                env("CI_REGISTRY_USER"),
                env("CI_REGISTRY_PASSWORD"),
            ) {
                out.ci.push((
                    host,
                    Credential {
                        user,
                        secret: Secret::new(password),
                        source: "CI_REGISTRY_PASSWORD".into(),
                    },
                ));
            }
        }
        if env("GITHUB_ACTIONS").as_deref() == Some("true") {
            if let Some(token) = env("GITHUB_TOKEN") {
                out.ci.push((
                    "ghcr.io".into(),
                    Credential {
                        user: env("GITHUB_ACTOR").unwrap_or_else(|| "github-actions".into()),
                        secret: Secret::new(token),
                        source: "GITHUB_TOKEN".into(),
                    },
                ));
            }
        }
        out
    }

    fn config(&mut self, source: &str, text: &str) {
        match serde_json::from_str::<DockerConfig>(text) {
            Ok(config) => {
                for (host, entry) in &config.auths {
                    if entry.auth.as_deref().is_some_and(|a| !a.is_empty())
                        && decode_auth(entry).is_none()
                    {
                        self.notes.push(format!(
                            "{source}: the `auth` of the entry for `{host}` is not base64 of \
                             `user:password`, so that entry cannot be used (write it with \
                             `printf '%s' 'USER:PASSWORD' | base64 -w0`)"
                        ));
                    }
                }
                self.configs.push((source.to_string(), config));
            }
            // serde_json's message names the position, never the content.
            Err(e) => self.notes.push(format!(
                "{source} is not a docker config.json ({e}); ignored"
            )),
        }
    }

    /// The credential for a registry (`docker.io`, `ghcr.io`, `host:port`).
    pub fn find(&self, host: &str) -> Option<Credential> {
        if let Some(c) = &self.explicit {
            return Some(c.clone());
        }
        for (source, config) in &self.configs {
            if let Some(c) = from_config(config, source, host) {
                return Some(c);
            }
        }
        self.ci
            .iter()
            .find(|(h, _)| same_registry(h, host))
            .map(|(_, c)| c.clone())
    }

    /// Where credentials were looked for, for the "none found" message.
    pub fn searched(&self) -> String {
        let mut places = vec!["TAGBUMP_REGISTRY_USER/TAGBUMP_REGISTRY_PASSWORD".to_string()];
        places.extend(self.configs.iter().map(|(s, _)| s.clone()));
        if self.configs.is_empty() {
            places.push("DOCKER_AUTH_CONFIG, $DOCKER_CONFIG/config.json, ~/.docker/config.json (none found)".into());
        }
        places.push("CI_REGISTRY_PASSWORD (GitLab CI), GITHUB_TOKEN for ghcr.io (Actions)".into());
        places.join("; ")
    }
}

fn from_config(config: &DockerConfig, source: &str, host: &str) -> Option<Credential> {
    let helper = config
        .cred_helpers
        .iter()
        .find(|(k, _)| same_registry(k, host))
        .map(|(_, v)| v.clone())
        .or_else(|| config.creds_store.clone());
    let entry = config
        .auths
        .iter()
        .find(|(k, _)| same_registry(k, host))
        .map(|(_, v)| v);
    if let Some(entry) = entry {
        if let Some(c) = from_entry(entry, source) {
            return Some(c);
        }
    }
    helper.and_then(|name| from_helper(&name, host))
}

fn from_entry(entry: &AuthEntry, source: &str) -> Option<Credential> {
    let (user, password) = match (&entry.auth, &entry.username, &entry.password) {
        (Some(auth), _, _) if !auth.is_empty() => decode_auth(entry)?,
        (_, Some(user), Some(password)) => (user.clone(), password.clone()),
        _ => return None,
    };
    Some(Credential {
        user,
        secret: Secret::new(password),
        source: source.to_string(),
    })
}

/// An entry's `auth`: base64 of `user:password`.
fn decode_auth(entry: &AuthEntry) -> Option<(String, String)> {
    let auth = entry.auth.as_deref()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// `docker-credential-<name> get`, when that binary exists.
fn from_helper(name: &str, host: &str) -> Option<Credential> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    let program = format!("docker-credential-{name}");
    let server = if host == "docker.io" {
        "https://index.docker.io/v1/"
    } else {
        host
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take()?;
        stdin.write_all(server.as_bytes()).ok()?;
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let answer: Answer = serde_json::from_slice(&out.stdout).ok()?;
    Some(Credential {
        user: answer.username,
        secret: Secret::new(answer.secret),
        source: program,
    })
}

/// Whether a config key (`https://index.docker.io/v1/`, `ghcr.io`,
/// `http://host:5000`) names the registry `host`.
fn same_registry(key: &str, host: &str) -> bool {
    let bare = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(key);
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    bare == host || (hub(bare) && hub(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::env_of;

    #[test]
    fn the_first_source_wins() {
        let env = env_of(&[
            ("TAGBUMP_REGISTRY_PASSWORD", "flag-pass"),
            (
                "DOCKER_AUTH_CONFIG",
                r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOmh1Yi1wYXNz"},"registry.example.com":{"username":"u","password":"p-123456"}}}"#,
            ),
            ("GITLAB_CI", "true"),
            ("CI_REGISTRY", "gitlab.example.com:5050"),
            ("CI_REGISTRY_USER", "gitlab-ci-token"),
            ("CI_REGISTRY_PASSWORD", "job-token-123"),
        ]);
        let c = Credentials::from_env(Some("me"), "TAGBUMP_REGISTRY_PASSWORD", &env);
        let found = c.find("ghcr.io").unwrap();
        assert_eq!(
            (found.user.as_str(), found.source.as_str()),
            ("me", "TAGBUMP_REGISTRY_PASSWORD")
        );

        let c = Credentials::from_env(None, "TAGBUMP_REGISTRY_PASSWORD", &env);
        let hub = c.find("docker.io").unwrap();
        assert_eq!(
            (hub.user.as_str(), hub.secret.expose()),
            ("hub", "hub-pass")
        );
        assert_eq!(hub.source, "DOCKER_AUTH_CONFIG");
        assert_eq!(c.find("registry.example.com").unwrap().user, "u");
        let ci = c.find("gitlab.example.com:5050").unwrap();
        assert_eq!(
            (ci.user.as_str(), ci.source.as_str()),
            ("gitlab-ci-token", "CI_REGISTRY_PASSWORD")
        );
        assert!(c.find("quay.io").is_none());
    }

    #[test]
    fn a_broken_config_is_a_note_without_its_content() {
        let env = env_of(&[("DOCKER_AUTH_CONFIG", "{\"auths\": secret-stuff")]);
        let c = Credentials::from_env(None, "P", &env);
        assert_eq!(c.notes.len(), 1);
        assert!(!c.notes[0].contains("secret-stuff"), "{}", c.notes[0]);
    }

    // Issue #19, class 11: an entry whose `auth` does not decode is named,
    // not silently skipped (the run then said no credentials were found).
    #[test]
    fn an_auth_that_does_not_decode_is_named() {
        let env = env_of(&[(
            "DOCKER_AUTH_CONFIG",
            r#"{"auths":{"registry.example.com":{"auth":"user:plain-secret-1"}}}"#,
        )]);
        let c = Credentials::from_env(None, "P", &env);
        assert_eq!(
            c.notes,
            [
                "DOCKER_AUTH_CONFIG: the `auth` of the entry for `registry.example.com` is not \
              base64 of `user:password`, so that entry cannot be used (write it with `printf \
              '%s' 'USER:PASSWORD' | base64 -w0`)"
            ]
        );
        assert!(c.find("registry.example.com").is_none());
    }
}
