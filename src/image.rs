//! Container image references: `[registry[:port]/]path[:tag][@sha256:<hex>]`.
//!
//! Parsing follows the distribution reference grammar (the one Docker,
//! containerd and Kubernetes use), and matching normalises names the way
//! Kubernetes does: `nginx`, `library/nginx`, `docker.io/library/nginx` and
//! `index.docker.io/library/nginx` are one image. A reference keeps its
//! spelling so an update writes the name back exactly as the file had it.

use std::fmt;
use std::sync::LazyLock;

use regex_lite::Regex;

const DEFAULT_DOMAIN: &str = "docker.io";
const MAX_NAME_LEN: usize = 255;

/// A parsed image reference, spelled as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host (and port) when the reference names one.
    pub domain: Option<String>,
    /// The repository path, e.g. `team/app`.
    pub path: String,
    pub tag: Option<String>,
    /// `algorithm:hex`, e.g. `sha256:…`.
    pub digest: Option<String>,
}

/// Why a reference, tag or digest is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError(pub String);

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImageError {}

static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    let component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    Regex::new(&format!(
        r"^(?:{component}(?:\.{component})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"
    ))
    .expect("valid domain pattern")
});

static PATH_COMPONENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").expect("valid path pattern")
});

static TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("valid tag pattern")
});

impl ImageRef {
    /// Parse a full reference: name, optional tag, optional digest.
    pub fn parse(text: &str) -> Result<ImageRef, ImageError> {
        let bad = |why: &str| ImageError(format!("invalid image reference `{text}`: {why}"));
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        if text.chars().any(char::is_whitespace) {
            return Err(bad("it contains whitespace"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                validate_digest(digest).map_err(|e| bad(&e.0))?;
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // A `:` after the last `/` starts the tag; before it, it is a port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                validate_tag(tag).map_err(|e| bad(&e.0))?;
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        let mut image = ImageRef::parse_name(name).map_err(|e| bad(&e.0))?;
        image.tag = tag;
        image.digest = digest;
        Ok(image)
    }

    /// Parse a repository name with no tag or digest (Helm's `repository`).
    pub fn parse_name(name: &str) -> Result<ImageRef, ImageError> {
        if name.is_empty() {
            return Err(ImageError("the repository name is empty".into()));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(ImageError(format!(
                "the repository name is longer than {MAX_NAME_LEN} characters"
            )));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest)) if looks_like_domain(first) => (Some(first), rest),
            _ => (None, name),
        };
        if let Some(domain) = domain {
            if !DOMAIN.is_match(domain) {
                return Err(ImageError(format!(
                    "`{domain}` is not a valid registry host"
                )));
            }
        }
        for component in path.split('/') {
            if component.is_empty() {
                return Err(ImageError(
                    "the repository path has an empty component".into(),
                ));
            }
            if !PATH_COMPONENT.is_match(component) {
                let why = if component.chars().any(|c| c.is_ascii_uppercase()) {
                    "repository names must be lowercase"
                } else {
                    "use lowercase letters, digits and single `.`, `_`, `__` or `-` separators"
                };
                return Err(ImageError(format!(
                    "`{component}` is not a valid repository path component: {why}"
                )));
            }
        }
        Ok(ImageRef {
            domain: domain.map(str::to_string),
            path: path.to_string(),
            tag: None,
            digest: None,
        })
    }

    /// The name as written: `registry.example.com/team/app`.
    pub fn name(&self) -> String {
        match &self.domain {
            Some(d) => format!("{d}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// The fully qualified name Kubernetes pulls: `docker.io/library/nginx`.
    pub fn normalized_name(&self) -> String {
        let domain = match self.domain.as_deref() {
            None | Some("index.docker.io") => DEFAULT_DOMAIN,
            Some(d) => d,
        };
        if domain == DEFAULT_DOMAIN && !self.path.contains('/') {
            format!("{domain}/library/{}", self.path)
        } else {
            format!("{domain}/{}", self.path)
        }
    }

    /// Whether two references name the same repository.
    pub fn same_image(&self, other: &ImageRef) -> bool {
        self.normalized_name() == other.normalized_name()
    }

    /// This reference's name with `new`'s tag and digest: how an update is
    /// written, so `nginx:1.0` becomes `nginx:1.1`, not `docker.io/library/nginx:1.1`.
    pub fn retagged(&self, new: &ImageRef) -> ImageRef {
        ImageRef {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: new.tag.clone(),
            digest: new.digest.clone(),
        }
    }

    /// The tag and/or digest part alone, for messages: `1.4.2`, `@sha256:…`.
    pub fn version(&self) -> String {
        let mut out = self.tag.clone().unwrap_or_default();
        if let Some(d) = &self.digest {
            out.push('@');
            out.push_str(d);
        }
        out
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<ImageRef, ImageError> {
        ImageRef::parse(s)
    }
}

/// Docker's rule: the first component is a registry when it has a `.` or a
/// `:`, is `localhost`, or has an uppercase letter (which a path cannot).
fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

/// A tag as registries accept it: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), ImageError> {
    if TAG.is_match(tag) {
        return Ok(());
    }
    let why = if tag.is_empty() {
        "it is empty".to_string()
    } else if tag.len() > 128 {
        format!("it is {} characters long; the limit is 128", tag.len())
    } else if tag.starts_with(['.', '-']) {
        "it may not start with `.` or `-`".to_string()
    } else {
        "use only letters, digits, `_`, `.` and `-`".to_string()
    };
    Err(ImageError(format!("invalid tag `{tag}`: {why}")))
}

/// A digest: `sha256:` and 64 lowercase hex digits (or `sha512:` and 128).
pub fn validate_digest(digest: &str) -> Result<(), ImageError> {
    let bad = |why: &str| Err(ImageError(format!("invalid digest `{digest}`: {why}")));
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return bad("expected `sha256:` followed by 64 hex digits");
    };
    let want = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return bad("the algorithm must be `sha256` or `sha512`"),
    };
    if hex.len() != want {
        return bad(&format!(
            "{algorithm} needs {want} hex digits, found {}",
            hex.len()
        ));
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return bad("use lowercase hex digits (0-9, a-f)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_the_parts() {
        let r = ImageRef::parse("registry.example.com:5000/team/app:1.4.2").unwrap();
        assert_eq!(r.domain.as_deref(), Some("registry.example.com:5000"));
        assert_eq!(r.path, "team/app");
        assert_eq!(r.tag.as_deref(), Some("1.4.2"));
        assert_eq!(r.digest, None);

        let r = ImageRef::parse(&format!("app@{SHA}")).unwrap();
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(SHA)));

        let r = ImageRef::parse(&format!("localhost:5000/app:v1@{SHA}")).unwrap();
        assert_eq!(r.domain.as_deref(), Some("localhost:5000"));
        assert_eq!(r.tag.as_deref(), Some("v1"));

        let r = ImageRef::parse("localhost/app").unwrap();
        assert_eq!(r.domain.as_deref(), Some("localhost"));
        let r = ImageRef::parse("[::1]:5000/app").unwrap();
        assert_eq!(r.domain.as_deref(), Some("[::1]:5000"));
    }

    #[test]
    fn normalises_like_kubernetes() {
        let n = |s: &str| ImageRef::parse(s).unwrap().normalized_name();
        assert_eq!(n("nginx"), "docker.io/library/nginx");
        assert_eq!(n("library/nginx:1"), "docker.io/library/nginx");
        assert_eq!(n("docker.io/nginx"), "docker.io/library/nginx");
        assert_eq!(
            n("index.docker.io/library/nginx"),
            "docker.io/library/nginx"
        );
        assert_eq!(n("bitnami/redis"), "docker.io/bitnami/redis");
        assert_eq!(n("ghcr.io/org/app"), "ghcr.io/org/app");
        assert!(ImageRef::parse("nginx:1")
            .unwrap()
            .same_image(&ImageRef::parse("docker.io/library/nginx:2").unwrap()));
        assert!(!ImageRef::parse("ghcr.io/a/app")
            .unwrap()
            .same_image(&ImageRef::parse("ghcr.io/b/app").unwrap()));
    }

    #[test]
    fn retagging_keeps_the_spelling() {
        let old = ImageRef::parse(&format!("nginx:1.0@{SHA}")).unwrap();
        let new = ImageRef::parse("docker.io/library/nginx:1.1").unwrap();
        assert_eq!(old.retagged(&new).to_string(), "nginx:1.1");
    }

    #[test]
    fn rejects_what_registries_reject() {
        for (text, why) in [
            ("", "empty"),
            ("team/App", "must be lowercase"),
            ("registry.example.com/Team/app", "must be lowercase"),
            ("app:", "invalid tag"),
            ("app:-x", "may not start"),
            ("app:a/b", "not a valid registry host"),
            ("app@sha256:abc", "needs 64 hex digits"),
            ("app@md5:abc", "must be `sha256`"),
            ("a b", "whitespace"),
            ("app//x", "empty component"),
            ("app__-x", "not a valid"),
            ("-app", "not a valid"),
            ("exa_mple.com/app", "not a valid registry host"),
        ] {
            let err = ImageRef::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text:?}: {err}");
        }
        let long = format!("app:{}", "x".repeat(129));
        assert!(ImageRef::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("limit is 128"));
        let upper = format!("app@sha256:{}", "A".repeat(64));
        assert!(ImageRef::parse(&upper)
            .unwrap_err()
            .to_string()
            .contains("lowercase hex"));
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "nginx",
            "nginx:1.25",
            "registry.example.com:5000/team/app:1.4.2",
            &format!("ghcr.io/o/a:v1@{SHA}"),
        ] {
            assert_eq!(ImageRef::parse(text).unwrap().to_string(), text);
        }
    }
}
