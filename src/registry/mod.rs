//! Talking to OCI registries over the distribution v2 HTTP API, before
//! anything is cloned: does a reference exist (`--verify-image`), which
//! digest does its tag resolve to (`--pin-digest`), which tags are there
//! (`--tag-policy`). Three requests answer each question: the `HEAD` of the
//! manifest (which does not count against Docker Hub's pull limit), the
//! token it asks for, and the `HEAD` again with the token.
//!
//! Auth is the registries' own: `401` with `WWW-Authenticate: Basic` (ECR,
//! a plain htpasswd) or `Bearer realm=…,service=…,scope=…` (Docker Hub, GHCR,
//! GitLab, Quay), whose token is fetched with the credentials found by
//! [`credentials`] (or none, for a public image). Plain HTTP only for
//! loopback registries and `--insecure-registry` hosts, as Docker does.
//! Missing references, refused credentials and failing registries are three
//! different errors; 429 and 5xx are retried ([`crate::http`]).

pub mod credentials;
pub mod policy;
mod verify_and_pin;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OnceCell, Semaphore};

use anyhow::Result;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::Method;
use sha2::{Digest as _, Sha256};

pub use verify_and_pin::{resolve, resolve_each, Pin, RegistrySpec, Resolved, Source};

use crate::error::{Failure, Kind};
use crate::http::{send_with_retries, Response};
use crate::image::ImageRef;
use crate::secret::Secret;
use credentials::{Credential, Credentials};

/// Every manifest type a `docker pull` accepts, so a multi-arch image
/// answers with its index (and the index's digest), not one platform's.
pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// The most tags asked for per page (registries may send fewer).
const PAGE: usize = 100;

/// Where an image's registry API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://ghcr.io`, `http://127.0.0.1:5000`.
    pub base: String,
    /// The registry as references name it: `docker.io`, `ghcr.io`.
    pub host: String,
    /// `library/nginx`, `team/app`.
    pub repository: String,
}

impl Endpoint {
    pub fn of(image: &ImageRef, insecure: &[String]) -> Endpoint {
        let name = image.normalized_name();
        let (host, repository) = name.split_once('/').unwrap_or(("docker.io", &name));
        // Docker Hub's API is not on the name references use.
        let api = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let scheme = if is_loopback(host) || insecure.iter().any(|h| h == host) {
            "http"
        } else {
            "https"
        };
        Endpoint {
            base: format!("{scheme}://{api}"),
            host: host.to_string(),
            repository: repository.to_string(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.repository)
    }
}

fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    name == "localhost" || name == "[::1]" || name.starts_with("127.")
}

/// Requests in flight to one registry host at most: a fleet run asks about
/// hundreds of images at once, and a registry sheds a client that opens
/// hundreds of connections.
const PER_HOST: usize = 8;

/// A registry client for one run: it keeps the tokens it was given, reads
/// each repository's tag list once, and keeps to [`PER_HOST`] requests and
/// to a `Retry-After` per host.
pub struct Client {
    http: reqwest::Client,
    timeout: Duration,
    credentials: Credentials,
    /// `Authorization` values by registry host and repository.
    auth: Mutex<HashMap<String, Secret>>,
    /// Tag lists by host and repository, each read once.
    tag_lists: Mutex<HashMap<String, Arc<OnceCell<Vec<String>>>>>,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    requests: AtomicUsize,
}

/// What the client keeps per registry host.
struct Host {
    permits: Semaphore,
    /// No request before this: the host answered 429 with `Retry-After`.
    paused_until: Mutex<Option<Instant>>,
}

impl Client {
    pub fn new(credentials: Credentials, timeout: Duration) -> Result<Client> {
        Ok(Client {
            http: crate::http::client()?,
            timeout,
            credentials,
            auth: Mutex::new(HashMap::new()),
            tag_lists: Mutex::new(HashMap::new()),
            hosts: Mutex::new(HashMap::new()),
            requests: AtomicUsize::new(0),
        })
    }

    /// How many HTTP requests were sent (the token requests included).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// The digest `reference` (a tag or digest) resolves to, as `docker pull`
    /// would; `None` when the registry does not have it.
    pub async fn digest(&self, ep: &Endpoint, reference: &str) -> Result<Option<String>> {
        let path = format!("manifests/{reference}");
        let head = self.send(Method::HEAD, ep, &ep.url(&path)).await?;
        if head.status == 404 {
            return Ok(None);
        }
        self.check(ep, &head, reference)?;
        if let Some(digest) = head.header("docker-content-digest") {
            return Ok(Some(digest.to_string()));
        }
        // No `Docker-Content-Digest`: the digest is the hash of the bytes.
        let get = self.send(Method::GET, ep, &ep.url(&path)).await?;
        if get.status == 404 {
            return Ok(None);
        }
        self.check(ep, &get, reference)?;
        Ok(Some(format!(
            "sha256:{:x}",
            Sha256::digest(get.body.as_bytes())
        )))
    }

    /// The digests an image index (multi-arch manifest list) at `reference`
    /// lists; empty for a single manifest.
    pub async fn index_children(&self, ep: &Endpoint, reference: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Child>,
        }
        #[derive(serde::Deserialize)]
        struct Child {
            digest: String,
        }
        let get = self
            .send(Method::GET, ep, &ep.url(&format!("manifests/{reference}")))
            .await?;
        self.check(ep, &get, reference)?;
        Ok(serde_json::from_str::<Index>(&get.body)
            .map(|index| index.manifests.into_iter().map(|c| c.digest).collect())
            .unwrap_or_default())
    }

    /// Every tag of the repository, read once per run however many images
    /// of the repository ask.
    pub async fn tags(&self, ep: &Endpoint) -> Result<Vec<String>> {
        let key = format!("{}/{}", ep.host, ep.repository);
        let cell = self
            .tag_lists
            .lock()
            .map_err(poisoned)?
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.read_tags(ep)).await.cloned()
    }

    /// Every tag of the repository, following `Link` pagination.
    async fn read_tags(&self, ep: &Endpoint) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut tags = Vec::new();
        let mut url = ep.url(&format!("tags/list?n={PAGE}"));
        loop {
            let response = self.send(Method::GET, ep, &url).await?;
            if response.status == 404 {
                return Err(missing(ep, None).into());
            }
            self.check(ep, &response, "tags/list")?;
            let page: Page = serde_json::from_str(&response.body).map_err(|e| {
                Failure::new(
                    Kind::Remote,
                    format!("{} answered a tag list tagbump cannot read: {e}", ep.host),
                )
            })?;
            tags.extend(page.tags.unwrap_or_default());
            match response.header("link").and_then(next_link) {
                Some(next) => url = join(&ep.base, &next),
                None => return Ok(tags),
            }
        }
    }

    /// A request with the auth this repository needs: sent as is (or with
    /// what an earlier challenge gave), and on `401` once more after the
    /// challenge is answered.
    async fn send(&self, method: Method, ep: &Endpoint, url: &str) -> Result<Response> {
        let key = format!("{}/{}", ep.host, ep.repository);
        let mut response = self.once(method.clone(), url, &key).await?;
        if response.status == 401 {
            let challenge = response
                .header("www-authenticate")
                .unwrap_or("")
                .to_string();
            let value = self.answer(ep, &challenge).await?;
            self.auth
                .lock()
                .map_err(poisoned)?
                .insert(key.clone(), value);
            response = self.once(method, url, &key).await?;
        }
        Ok(response)
    }

    async fn once(&self, method: Method, url: &str, key: &str) -> Result<Response> {
        let auth = self.auth.lock().map_err(poisoned)?.get(key).cloned();
        let what = format!("registry {method} {}", scrub_query(url));
        let host = self.host(key.split('/').next().unwrap_or(key))?;
        send_with_retries(
            &what,
            "check that the registry is reachable from here",
            || {
                let mut request = self
                    .http
                    .request(method.clone(), url)
                    .timeout(self.timeout)
                    .header(ACCEPT, MANIFEST_TYPES);
                if let Some(auth) = &auth {
                    request = crate::http::with_secret(request, AUTHORIZATION, auth.expose());
                }
                let host = host.clone();
                async move {
                    let _permit = host.permits.acquire().await.map_err(Box::new)?;
                    host.wait().await;
                    self.requests.fetch_add(1, Ordering::Relaxed);
                    let response = crate::http::read(request).await?;
                    if response.status == 429 {
                        host.pause(response.retry_after);
                    }
                    Ok(response)
                }
            },
        )
        .await
    }

    fn host(&self, name: &str) -> Result<Arc<Host>> {
        Ok(self
            .hosts
            .lock()
            .map_err(poisoned)?
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Host {
                    permits: Semaphore::new(PER_HOST),
                    paused_until: Mutex::new(None),
                })
            })
            .clone())
    }

    /// The `Authorization` value that answers a `WWW-Authenticate` challenge.
    async fn answer(&self, ep: &Endpoint, challenge: &str) -> Result<Secret> {
        let credential = self.credentials.find(&ep.host);
        let (scheme, params) = parse_challenge(challenge);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => match &credential {
                Some(c) => Ok(Secret::new(format!("Basic {}", c.basic()))),
                None => Err(no_credentials(ep, &self.credentials).into()),
            },
            "bearer" => self.token(ep, &params, credential.as_ref()).await,
            _ => Err(Failure::new(
                Kind::Remote,
                format!(
                    "{} asked for credentials in a way tagbump does not speak: `{challenge}`",
                    ep.host
                ),
            )
            .into()),
        }
    }

    /// A Bearer token from the challenge's realm, for pulling this repository.
    async fn token(
        &self,
        ep: &Endpoint,
        params: &HashMap<String, String>,
        credential: Option<&Credential>,
    ) -> Result<Secret> {
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let Some(realm) = params.get("realm") else {
            return Err(Failure::new(
                Kind::Remote,
                format!(
                    "{} asked for a Bearer token without saying where to get it",
                    ep.host
                ),
            )
            .into());
        };
        let mut query = vec![("scope", format!("repository:{}:pull", ep.repository))];
        if let Some(service) = params.get("service") {
            query.push(("service", service.clone()));
        }
        let url = reqwest::Url::parse_with_params(realm, &query).map_err(|e| {
            Failure::new(
                Kind::Remote,
                format!(
                    "{} named a token realm that is not a URL (`{realm}`): {e}",
                    ep.host
                ),
            )
        })?;
        let basic = credential.map(|c| Secret::new(format!("Basic {}", c.basic())));
        let what = format!("registry token for {}/{}", ep.host, ep.repository);
        let response = send_with_retries(
            &what,
            "check that the registry's token service is reachable",
            || {
                self.requests.fetch_add(1, Ordering::Relaxed);
                let mut request = self.http.get(url.clone()).timeout(self.timeout);
                if let Some(basic) = &basic {
                    request = crate::http::with_secret(request, AUTHORIZATION, basic.expose());
                }
                crate::http::read(request)
            },
        )
        .await?;
        if matches!(response.status, 401 | 403) {
            return Err(refused(ep, credential, &self.credentials).into());
        }
        if !response.ok() {
            return Err(
                Failure::new(Kind::Remote, format!("{what}: HTTP {}", response.status)).into(),
            );
        }
        let token: Token = serde_json::from_str(&response.body).map_err(|e| {
            Failure::new(
                Kind::Remote,
                format!("{what}: an answer tagbump cannot read"),
            )
            .with_source(e)
        })?;
        match token.token.or(token.access_token) {
            Some(token) if !token.is_empty() => Ok(Secret::new(format!("Bearer {token}"))),
            _ => {
                Err(Failure::new(Kind::Remote, format!("{what}: the answer holds no token")).into())
            }
        }
    }

    /// Any answer but a success, after auth: refused credentials (or none
    /// where some are needed) are auth errors; the rest are the registry's.
    fn check(&self, ep: &Endpoint, response: &Response, what: &str) -> Result<()> {
        if response.ok() {
            return Ok(());
        }
        if matches!(response.status, 401 | 403) {
            let credential = self.credentials.find(&ep.host);
            return Err(refused(ep, credential.as_ref(), &self.credentials).into());
        }
        let message = registry_message(&response.body);
        Err(Failure::new(
            Kind::Remote,
            format!(
                "{} answered HTTP {} for {}:{what}{message}",
                ep.host, response.status, ep.repository
            ),
        )
        .into())
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> Failure {
    Failure::new(Kind::Internal, "the registry client's state was poisoned")
}

impl Host {
    /// Until the host's `Retry-After` has passed.
    async fn wait(&self) {
        let until = self.paused_until.lock().ok().and_then(|u| *u);
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                tokio::time::sleep(until - now).await;
            }
        }
    }

    /// A 429: every request to the host waits as long as it asked (or the
    /// shortest backoff when it did not say).
    fn pause(&self, asked: Option<Duration>) {
        let wait = asked.unwrap_or(Duration::from_millis(500));
        if let Ok(mut until) = self.paused_until.lock() {
            let then = Instant::now() + wait.min(Duration::from_secs(60));
            *until = Some(until.map_or(then, |u| u.max(then)));
        }
    }
}

/// The reference does not exist: its own exit code.
pub fn missing(ep: &Endpoint, reference: Option<&str>) -> Failure {
    let what = match reference {
        Some(r) if r.starts_with("sha256:") => format!("{}/{}@{r}", ep.host, ep.repository),
        Some(r) => format!("{}/{}:{r}", ep.host, ep.repository),
        None => format!("{}/{}", ep.host, ep.repository),
    };
    Failure::new(
        Kind::MissingImage,
        format!("{what} does not exist on {}", ep.host),
    )
    .hint("check the tag for a typo, and that the build job pushed it; nothing was changed")
}

fn refused(ep: &Endpoint, credential: Option<&Credential>, all: &Credentials) -> Failure {
    match credential {
        Some(c) => Failure::new(
            Kind::Auth,
            format!(
                "{} refused the credentials from {} (user `{}`) for {}",
                ep.host, c.source, c.user, ep.repository
            ),
        )
        .hint("check the password or token, and that it may pull this repository"),
        None => no_credentials(ep, all),
    }
}

fn no_credentials(ep: &Endpoint, all: &Credentials) -> Failure {
    Failure::new(
        Kind::Auth,
        format!(
            "{} wants credentials to read {}, and none were found for it",
            ep.host, ep.repository
        ),
    )
    .hint(format!("searched: {}", all.searched()))
    .hint("set TAGBUMP_REGISTRY_USER and TAGBUMP_REGISTRY_PASSWORD, or log in with `docker login`")
}

/// The registry's own error message (`{"errors":[{"code","message"}]}`).
fn registry_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Error>,
    }
    #[derive(serde::Deserialize)]
    struct Error {
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|e| format!("{} ({})", e.code, e.message))
                .collect();
            format!(": {}", crate::secret::scrub(&parts.join(", ")))
        }
        _ => String::new(),
    }
}

/// `Bearer realm="…",service="…"` → (`Bearer`, {realm, service}).
pub fn parse_challenge(header: &str) -> (String, HashMap<String, String>) {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.insert(key, value.to_string());
        rest = next.trim().trim_start_matches(',').trim();
    }
    (scheme.to_string(), params)
}

/// The `rel="next"` target of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"")
            .then(|| {
                target
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// A `Link` target against the registry: absolute, or a path.
fn join(base: &str, target: &str) -> String {
    if target.starts_with("http://") || target.starts_with("https://") {
        target.to_string()
    } else {
        format!("{base}{target}")
    }
}

/// A URL for messages, without its query (a `last=` cursor says nothing).
fn scrub_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(u, _)| u)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A 429 holds every request to the host for as long as it asked; a
    // later, shorter Retry-After does not shorten it.
    #[test]
    fn a_hosts_retry_after_holds_every_request_to_it() {
        let host = Host {
            permits: Semaphore::new(PER_HOST),
            paused_until: Mutex::new(None),
        };
        host.pause(Some(Duration::from_millis(300)));
        host.pause(Some(Duration::from_millis(10)));
        let started = Instant::now();
        crate::http::block_on(async {
            host.wait().await;
            Ok(())
        })
        .unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
        let started = Instant::now();
        crate::http::block_on(async {
            host.wait().await;
            Ok(())
        })
        .unwrap();
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn endpoints() {
        let ep =
            |s: &str| Endpoint::of(&ImageRef::parse(s).unwrap(), &["registry.lan:5000".into()]);
        assert_eq!(
            ep("nginx:1"),
            Endpoint {
                base: "https://registry-1.docker.io".into(),
                host: "docker.io".into(),
                repository: "library/nginx".into()
            }
        );
        assert_eq!(ep("ghcr.io/o/app:1").base, "https://ghcr.io");
        assert_eq!(ep("127.0.0.1:5000/app:1").base, "http://127.0.0.1:5000");
        assert_eq!(ep("localhost:5000/app").base, "http://localhost:5000");
        assert_eq!(ep("registry.lan:5000/app").base, "http://registry.lan:5000");
        assert_eq!(ep("registry.lan/app").base, "https://registry.lan");
    }

    /// A registry that leaves out `Docker-Content-Digest`: the digest is
    /// the hash of the manifest a GET returns.
    #[test]
    fn without_a_digest_header_the_manifest_is_hashed() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let manifest = r#"{"schemaVersion":2}"#;
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for stream in listener.incoming().take(2).flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap() == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                let head = line.starts_with("HEAD");
                seen.push(line.split(' ').take(2).collect::<Vec<_>>().join(" "));
                let body = if head { "" } else { manifest };
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        manifest.len()
                    )
                    .as_bytes(),
                );
            }
            seen
        });
        let client = Client::new(Credentials::default(), Duration::from_secs(5)).unwrap();
        let ep = Endpoint::of(
            &ImageRef::parse(&format!("127.0.0.1:{port}/app:1")).unwrap(),
            &[],
        );
        let digest = crate::http::block_on(client.digest(&ep, "1")).unwrap();
        assert_eq!(
            digest.as_deref(),
            Some(format!("sha256:{:x}", Sha256::digest(manifest.as_bytes())).as_str())
        );
        assert_eq!(
            server.join().unwrap(),
            ["HEAD /v2/app/manifests/1", "GET /v2/app/manifests/1"]
        );
    }

    #[test]
    fn challenges_and_links() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/nginx:pull");
        let (scheme, p) = parse_challenge(r#"Basic realm="test-registry""#);
        assert_eq!(
            (scheme.as_str(), p["realm"].as_str()),
            ("Basic", "test-registry")
        );
        assert_eq!(
            next_link(r#"</v2/app/tags/list?last=t99&n=100>; rel="next""#).as_deref(),
            Some("/v2/app/tags/list?last=t99&n=100")
        );
        assert_eq!(next_link(r#"<https://x/y>; rel="prev""#), None);
        assert_eq!(join("http://h:1", "/v2/x"), "http://h:1/v2/x");
    }
}
