//! A real OCI registry for the tests: CNCF distribution (Debian's
//! `docker-registry`) on 127.0.0.1, in its own temp directory, stopped when
//! dropped, with one of three kinds of auth:
//!
//! - anonymous (a public registry);
//! - Basic, from an htpasswd file (ECR, a plain registry);
//! - Bearer tokens (Docker Hub, GHCR, GitLab): the registry answers 401 with
//!   a challenge naming a token issuer, which runs here as a thread: it
//!   checks Basic credentials (or grants anonymous pulls of `public/…`) and
//!   signs a JWT (RS256, its certificate in `x5c`) that the registry checks
//!   against its `rootcertbundle`.
//!
//! Images are tiny OCI layouts written here and pushed with skopeo, so every
//! tag has its own digest; a two-platform index stands for multi-arch images.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::servers::{available, free_port, run};

pub const USER: &str = "ci-user";
pub const PASSWORD: &str = "registry-pass-3f9a1c";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    Basic,
    Token,
}

pub struct Registry {
    child: Child,
    pub port: u16,
    pub auth: Auth,
    dir: tempfile::TempDir,
    /// Token requests the issuer answered (token mode).
    pub tokens: Arc<AtomicUsize>,
}

impl Registry {
    pub fn start(auth: Auth) -> Option<Registry> {
        if !available(
            "registry tests",
            &["docker-registry", "skopeo", "htpasswd", "openssl"],
        ) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let port = free_port();
        let tokens = Arc::new(AtomicUsize::new(0));
        let auth_config = match auth {
            Auth::Anonymous => String::new(),
            Auth::Basic => {
                let htpasswd = run(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
                std::fs::write(d.join("htpasswd"), htpasswd).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: test-registry\n    path: {}\n",
                    d.join("htpasswd").display()
                )
            }
            Auth::Token => {
                run(Command::new("openssl")
                    .args([
                        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    ])
                    .args(["-subj", "/CN=token-issuer", "-keyout"])
                    .arg(d.join("token.key"))
                    .arg("-out")
                    .arg(d.join("token.crt"))
                    .stderr(Stdio::null()));
                let token_port =
                    token_issuer(&d.join("token.key"), &d.join("token.crt"), tokens.clone());
                format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: test-registry\n    \
                     issuer: test-issuer\n    rootcertbundle: {}\n",
                    d.join("token.crt").display()
                )
            }
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    \
             rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_config}",
            d.join("data").display()
        );
        std::fs::write(d.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(d.join("registry.log")).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "docker-registry exited ({status}): {}",
                    std::fs::read_to_string(d.join("registry.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(Registry {
            child,
            port,
            auth,
            dir,
            tokens,
        })
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn creds(&self, flag: &str) -> Vec<String> {
        match self.auth {
            Auth::Anonymous => Vec::new(),
            _ => vec![flag.to_string(), format!("{USER}:{PASSWORD}")],
        }
    }

    /// Push a tiny single-platform image as `name:tag`; returns its digest.
    pub fn push(&self, name_tag: &str) -> String {
        self.push_kind(name_tag, false)
    }

    /// Push a two-platform image index as `name:tag`; returns its digest.
    pub fn push_index(&self, name_tag: &str) -> String {
        self.push_kind(name_tag, true)
    }

    fn push_kind(&self, name_tag: &str, index: bool) -> String {
        let layout = tempfile::tempdir().unwrap();
        oci_layout(layout.path(), name_tag, index);
        run(Command::new("skopeo")
            .args(["copy", "-q", "--all", "--dest-tls-verify=false"])
            .args(self.creds("--dest-creds"))
            .arg(format!("oci:{}", layout.path().display()))
            .arg(format!("docker://{}/{name_tag}", self.host())));
        self.inspect_digest(name_tag)
    }

    /// The digest of `name:tag` as skopeo sees it: the hash of the raw
    /// manifest (the index, for a multi-arch image).
    pub fn inspect_digest(&self, name_tag: &str) -> String {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .args(self.creds("--creds"))
            .arg(format!("docker://{}/{name_tag}", self.host()))
            .output()
            .expect("skopeo inspect");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("sha256:{:x}", Sha256::digest(&out.stdout))
    }

    /// The requests the registry logged (method and path), in order.
    pub fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                // Access log lines: `… "HEAD /v2/x/manifests/1 HTTP/1.1" 200 …`.
                let start = l.find('"')? + 1;
                let rest = &l[start..];
                let request = &rest[..rest.find('"')?];
                let mut parts = request.split(' ');
                let (method, path) = (parts.next()?, parts.next()?);
                matches!(method, "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE")
                    .then(|| format!("{method} {path}"))
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny OCI layout whose content depends on `seed`: one image, or an index
/// of two (amd64, arm64).
fn oci_layout(dir: &Path, seed: &str, index: bool) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let blob = |bytes: &[u8]| -> serde_json::Value {
        let hex = format!("{:x}", Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        serde_json::json!({"digest": format!("sha256:{hex}"), "size": bytes.len()})
    };
    let image = |arch: &str| -> serde_json::Value {
        let layer = blob(&tar_of("id.txt", format!("{seed} {arch}\n").as_bytes()));
        let config = blob(
            serde_json::json!({"architecture": arch, "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}, "config": {}})
            .to_string()
            .as_bytes(),
        );
        let mut config_desc = config.clone();
        config_desc["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
        let mut layer_desc = layer.clone();
        layer_desc["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
        let manifest = serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc, "layers": [layer_desc]});
        let mut desc = blob(manifest.to_string().as_bytes());
        desc["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
        desc["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
        desc
    };
    let top = if index {
        let idx = serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [image("amd64"), image("arm64")]});
        let mut desc = blob(idx.to_string().as_bytes());
        desc["mediaType"] = "application/vnd.oci.image.index.v1+json".into();
        desc
    } else {
        let mut desc = image("amd64");
        desc.as_object_mut().unwrap().remove("platform");
        desc
    };
    std::fs::write(
        dir.join("index.json"),
        serde_json::json!({"schemaVersion": 2, "manifests": [top]}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// A POSIX tar archive holding one file.
fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{:011o}\0", data.len()).as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

/// The token issuer: `GET /token?service=…&scope=repository:NAME:pull`.
/// Returns its port.
fn token_issuer(key: &Path, cert: &Path, count: Arc<AtomicUsize>) -> u16 {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(key).unwrap())
        .expect("token key");
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key);
    let pem = std::fs::read_to_string(cert).unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let target = line.split(' ').nth(1).unwrap_or("").to_string();
            let mut headers = HashMap::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            count.fetch_add(1, Ordering::SeqCst);
            let query: HashMap<String, String> = url::Url::parse(&format!("http://x{target}"))
                .map(|u| {
                    u.query_pairs()
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let user = match headers
                .get("authorization")
                .and_then(|a| a.strip_prefix("Basic "))
            {
                Some(basic) => {
                    let decoded = base64::engine::general_purpose::STANDARD
                        .decode(basic)
                        .ok()
                        .and_then(|d| String::from_utf8(d).ok())
                        .unwrap_or_default();
                    if decoded != format!("{USER}:{PASSWORD}") {
                        let _ = (&stream).write_all(
                            b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                        );
                        continue;
                    }
                    Some(USER)
                }
                None => None,
            };
            let scope = query.get("scope").cloned().unwrap_or_default();
            let parts: Vec<&str> = scope.split(':').collect();
            let access = if parts.len() >= 3 && parts[0] == "repository" {
                let name = parts[1..parts.len() - 1].join(":");
                let actions: Vec<&str> = parts[parts.len() - 1]
                    .split(',')
                    .filter(|a| user.is_some() || (*a == "pull" && name.starts_with("public/")))
                    .collect();
                serde_json::json!([{"type": "repository", "name": name, "actions": actions}])
            } else {
                serde_json::json!([])
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [der]});
            let claims = serde_json::json!({"iss": "test-issuer", "sub": user.unwrap_or(""),
                "aud": query.get("service").cloned().unwrap_or_default(),
                "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", count.load(Ordering::SeqCst)),
                "access": access});
            let input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let signature = signer.sign(input.as_bytes()).to_vec();
            let token = format!("{input}.{}", b64(&signature));
            let body =
                serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
                    .to_string();
            let _ = (&stream).write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    port
}
