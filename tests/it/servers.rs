//! Real git servers for the tests, on 127.0.0.1 only, each in its own temp
//! directory and stopped when dropped:
//!
//! - [`SshServer`]: OpenSSH's sshd with a forced command that hands the
//!   repository path to git-shell (pull and push only), like a forge does;
//! - [`HttpServer`]: lighttpd running `git http-backend` (smart HTTP) with
//!   basic auth where the password is a token, over HTTP and HTTPS with a
//!   throwaway CA.
//!
//! `scripts/test.sh` installs openssh-server, lighttpd and git. When they are
//! missing, tests print why they skip, unless TAGBUMP_REQUIRE_SERVERS or CI
//! is set, in which case they fail.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether the server binaries exist; otherwise explain, or fail in CI.
pub fn available(what: &str, binaries: &[&str]) -> bool {
    let missing: Vec<&str> = binaries
        .iter()
        .copied()
        .filter(|b| !Path::new(b).exists() && which(b).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "{what}: {} not installed (scripts/test.sh installs it)",
        missing.join(", ")
    );
    crate::support::skip_or_fail(&reason);
    false
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn wait_for_port(port: u16, child: &mut Child, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "server did not listen on 127.0.0.1:{port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn keygen(path: &Path, kind: &str) {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "tagbump-test", "-f"])
        .arg(path));
}

fn user() -> String {
    run(Command::new("id").arg("-un")).trim().to_string()
}

/// A bare repository on a test server, inspected with the git CLI.
pub struct Repo {
    pub path: PathBuf,
}

impl Repo {
    /// `git -C <bare repo> args…`, stdout trimmed.
    pub fn git(&self, args: &[&str]) -> String {
        run(Command::new("git").arg("-C").arg(&self.path).args(args))
            .trim()
            .to_string()
    }

    pub fn show(&self, rev_path: &str) -> String {
        run(Command::new("git")
            .arg("-C")
            .arg(&self.path)
            .args(["show", rev_path]))
    }

    pub fn count(&self, rev: &str) -> usize {
        self.git(&["rev-list", "--count", rev])
            .parse()
            .expect("count")
    }
}

/// Create a bare repo at `bare` whose `main` holds `files` in one commit.
/// A bare repository at `bare` with one commit holding `files` (path, text).
pub fn seed(bare: &Path, files: &[(impl AsRef<str>, impl AsRef<str>)]) -> Repo {
    std::fs::create_dir_all(bare).expect("mkdir");
    run(Command::new("git")
        .args(["init", "-q", "--bare", "--initial-branch=main"])
        .arg(bare));
    run(Command::new("git")
        .arg("-C")
        .arg(bare)
        .args(["config", "http.receivepack", "true"]));
    let work = tempfile::tempdir().expect("temp");
    run(Command::new("git")
        .args(["init", "-q", "--initial-branch=main"])
        .arg(work.path()));
    for (path, text) in files {
        let p = work.path().join(path.as_ref());
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text.as_ref()).expect("write");
    }
    let git = |args: &[&str]| {
        run(Command::new("git")
            .arg("-C")
            .arg(work.path())
            .args(["-c", "user.name=seed", "-c", "user.email=seed@example.test"])
            .args(args));
    };
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "initial manifests"]);
    git(&["push", "-q", &bare.to_string_lossy(), "main"]);
    Repo {
        path: bare.to_path_buf(),
    }
}

pub struct SshServer {
    child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    /// The client's private key (OpenSSH format) and a key the server does not know.
    pub key: String,
    pub wrong_key: String,
    /// known_hosts line for this server, and its host key's fingerprint.
    pub known_hosts: String,
    pub fingerprint: String,
}

impl SshServer {
    pub fn start() -> Option<SshServer> {
        SshServer::start_with("64")
    }

    /// A server with sshd's `MaxStartups` set to `max_startups` (`start:rate:full`):
    /// `2:100:2` drops every unauthenticated connection beyond two, before the
    /// banner, as a busy stock server does under a burst of pipelines.
    pub fn start_with(max_startups: &str) -> Option<SshServer> {
        if !available(
            "ssh tests",
            &["/usr/sbin/sshd", "ssh-keygen", "git", "git-shell"],
        ) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp");
        let d = dir.path();
        let port = free_port();
        let user = user();
        std::fs::create_dir_all(d.join("repos")).expect("mkdir");
        if user == "root" {
            let _ = std::fs::create_dir_all("/run/sshd");
        }
        keygen(&d.join("host_ed25519"), "ed25519");
        keygen(&d.join("id_ed25519"), "ed25519");
        keygen(&d.join("id_wrong"), "ed25519");
        let serve = d.join("git-serve");
        // Maps "git-receive-pack '/team/m.git'" to <dir>/repos/team/m.git. With
        // a `die-on-push` file present, a push stops the whole server first:
        // "the server went away mid-run".
        std::fs::write(
            &serve,
            format!(
                "#!/bin/sh\nset -f\ncmd=${{SSH_ORIGINAL_COMMAND%% *}}\npath=${{SSH_ORIGINAL_COMMAND#* }}\n\
                 path=${{path#\\'}}; path=${{path%\\'}}; path=${{path#/}}\n\
                 case \"$cmd\" in git-upload-pack|git-receive-pack) ;; *) echo \"only git\" >&2; exit 1 ;; esac\n\
                 case \"$path\" in *..*|\"\") echo \"bad path\" >&2; exit 1 ;; esac\n\
                 if [ \"$cmd\" = git-receive-pack ] && [ -e '{dir}/die-on-push' ]; then kill $(cat '{dir}/sshd.pid'); exit 1; fi\n\
                 exec git-shell -c \"$cmd '{dir}/repos/$path'\"\n",
                dir = d.display()
            ),
        )
        .expect("write");
        run(Command::new("chmod").arg("755").arg(&serve));
        let public = std::fs::read_to_string(d.join("id_ed25519.pub")).expect("pub");
        std::fs::write(
            d.join("authorized_keys"),
            format!("command=\"{}\",restrict {public}", serve.display()),
        )
        .expect("write");
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nAllowUsers {user}\nPubkeyAuthentication yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 PermitRootLogin prohibit-password\nMaxStartups {max_startups}\nLogLevel VERBOSE\n",
                d = d.display()
            ),
        )
        .expect("write");
        let log = d.join("sshd.log");
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-f"])
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        wait_for_port(port, &mut child, &log);
        let host_pub = std::fs::read_to_string(d.join("host_ed25519.pub")).expect("host pub");
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        let fingerprint = run(Command::new("ssh-keygen")
            .arg("-lf")
            .arg(d.join("host_ed25519.pub")))
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string();
        Some(SshServer {
            port,
            known_hosts: format!("[127.0.0.1]:{port} {}", host_pub.join(" ")),
            fingerprint,
            key: std::fs::read_to_string(d.join("id_ed25519")).expect("key"),
            wrong_key: std::fs::read_to_string(d.join("id_wrong")).expect("key"),
            user,
            child,
            dir,
        })
    }

    /// A new repository on the server, and its ssh:// URL.
    pub fn repo(&self, name: &str, files: &[(impl AsRef<str>, impl AsRef<str>)]) -> (Repo, String) {
        let repo = seed(
            &self.dir.path().join("repos").join(format!("{name}.git")),
            files,
        );
        (
            repo,
            format!("ssh://{}@127.0.0.1:{}/{name}.git", self.user, self.port),
        )
    }

    /// Make the next push stop the server.
    pub fn die_on_push(&self) {
        std::fs::write(self.dir.path().join("die-on-push"), "").expect("write");
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct HttpServer {
    child: Child,
    pub dir: tempfile::TempDir,
    pub http_port: u16,
    pub https_port: u16,
    /// The CA that signed the HTTPS certificate (PEM file).
    pub ca: PathBuf,
}

impl HttpServer {
    pub fn start(token: &str) -> Option<HttpServer> {
        if !available("http tests", &["/usr/sbin/lighttpd", "git", "openssl"]) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp");
        let d = dir.path();
        let (http_port, https_port) = (free_port(), free_port());
        std::fs::create_dir_all(d.join("repos")).expect("mkdir");
        std::fs::create_dir_all(d.join("www")).expect("mkdir");
        let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(d).args(args));
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=tagbump-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        let pem = std::fs::read_to_string(d.join("server.crt")).expect("crt")
            + &std::fs::read_to_string(d.join("server.key")).expect("key");
        std::fs::write(d.join("server.pem"), pem).expect("write");
        std::fs::write(
            d.join("users"),
            format!("oauth2:{token}\nx-access-token:{token}\ngitlab-ci-token:{token}\n"),
        )
        .expect("write");
        let exec_path = run(Command::new("git").arg("--exec-path"))
            .trim()
            .to_string();
        std::fs::write(
            d.join("lighttpd.conf"),
            format!(
                r#"server.modules = ("mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv", "mod_alias", "mod_openssl")
server.bind = "127.0.0.1"
server.port = {http_port}
server.document-root = "{d}/www"
server.errorlog = "{d}/error.log"
server.max-request-size = 0
server.feature-flags = ("server.h2proto" => "disable", "auth.delay-invalid-creds" => "disable")
$SERVER["socket"] == "127.0.0.1:{https_port}" {{
  ssl.engine = "enable"
  ssl.pemfile = "{d}/server.pem"
}}
alias.url = ("/" => "{exec_path}/git-http-backend/")
cgi.assign = ("" => "")
setenv.set-environment = ("GIT_PROJECT_ROOT" => "{d}/repos", "GIT_HTTP_EXPORT_ALL" => "1")
auth.backend = "plain"
auth.backend.plain.userfile = "{d}/users"
auth.require = ("/" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
"#,
                d = d.display()
            ),
        )
        .expect("write");
        let log = d.join("error.log");
        let mut child = Command::new("/usr/sbin/lighttpd")
            .args(["-D", "-f"])
            .arg(d.join("lighttpd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start lighttpd");
        wait_for_port(http_port, &mut child, &log);
        wait_for_port(https_port, &mut child, &log);
        Some(HttpServer {
            child,
            http_port,
            https_port,
            ca: d.join("ca.pem"),
            dir,
        })
    }

    /// A new repository, and its http:// and https:// URLs (no credentials).
    pub fn repo(
        &self,
        name: &str,
        files: &[(impl AsRef<str>, impl AsRef<str>)],
    ) -> (Repo, String, String) {
        let repo = seed(
            &self.dir.path().join("repos").join(format!("{name}.git")),
            files,
        );
        (
            repo,
            format!("http://127.0.0.1:{}/{name}.git", self.http_port),
            format!("https://127.0.0.1:{}/{name}.git", self.https_port),
        )
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
