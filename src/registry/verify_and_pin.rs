//! From the `--image` references given to the ones written: checked
//! (`--verify-image`), pinned to their digest (`--pin-digest`) or with a tag
//! chosen by policy (`--tag-policy`). Runs before the clone, so a missing
//! image leaves the manifest repository untouched.

use std::time::Duration;

use anyhow::Result;

use super::credentials::Credentials;
use super::policy::Policy;
use super::{missing, Client, Endpoint};
use crate::error::{Failure, Kind};
use crate::image::ImageRef;

/// `--pin-digest`: where a resolved digest is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pin {
    #[default]
    Off,
    /// `name:tag@sha256:…` in image strings, `digest:` keys where the file
    /// has them (a note where it has none).
    On,
    /// As `On`, and `tag@sha256:…` into a Helm `tag` with no digest key.
    Tag,
}

/// What to ask the registry, resolved from the settings.
#[derive(Debug, Clone, Default)]
pub struct RegistrySpec {
    pub verify: bool,
    pub pin: Pin,
    pub policy: Option<Policy>,
    pub credentials: Credentials,
    /// Hosts reached over plain HTTP (`--insecure-registry`).
    pub insecure: Vec<String>,
    pub timeout: Duration,
}

impl RegistrySpec {
    /// Whether the registry is asked anything at all.
    pub fn active(&self) -> bool {
        self.verify || self.pin != Pin::Off || self.policy.is_some()
    }
}

/// Where the tag and digest that were written came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// As given, not checked.
    Given,
    /// As given, and the registry has it.
    Verified,
    /// The digest was resolved from the given tag.
    Resolved,
    /// The tag was chosen by `--tag-policy` (and its digest resolved when pinning).
    Policy,
}

/// One `--image` after the registry was asked.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The reference to write.
    pub image: ImageRef,
    pub source: Source,
    /// The digest the registry answered with (or the given one it was
    /// checked against), written or not; `None` when it was not asked.
    pub digest: Option<String>,
}

/// Ask the registry about each image. With nothing to ask, the images are
/// returned as given and nothing is sent.
pub fn resolve(images: &[ImageRef], spec: &RegistrySpec) -> Result<Vec<Resolved>> {
    if !spec.active() {
        return Ok(images
            .iter()
            .map(|image| Resolved {
                image: image.clone(),
                source: Source::Given,
                digest: None,
            })
            .collect());
    }
    for note in &spec.credentials.notes {
        crate::note!("note: {note}");
    }
    let client = Client::new(spec.credentials.clone(), spec.timeout)?;
    // Every image is asked at once: the requests wait on the network, and
    // each image's answer is reported in the order the images were given.
    let answers = crate::http::block_on(async {
        Ok(
            futures_util::future::join_all(images.iter().map(|image| one(&client, image, spec)))
                .await,
        )
    })?;
    let mut out = Vec::new();
    for resolved in answers {
        let resolved = resolved?;
        let shown = match resolved.source {
            Source::Policy => format!("chosen by --tag-policy: {}", resolved.image),
            Source::Resolved => format!("resolved: {}", resolved.image),
            Source::Verified => match (&resolved.image.digest, &resolved.digest) {
                (None, Some(digest)) => format!("verified: {} exists ({digest})", resolved.image),
                _ => format!("verified: {} exists", resolved.image),
            },
            Source::Given => continue,
        };
        crate::note!("registry: {shown}");
        out.push(resolved);
    }
    Ok(out)
}

/// A fleet's images, each with its own policy, asked all at once through
/// one client (one token per repository, each tag list read once, a bound
/// per host). Each answer stands alone: one image's failure does not stop
/// the others. Also returns how many requests were sent.
pub fn resolve_each(items: &[(ImageRef, RegistrySpec)]) -> Result<(Vec<Result<Resolved>>, usize)> {
    let Some((_, first)) = items.first() else {
        return Ok((Vec::new(), 0));
    };
    for note in &first.credentials.notes {
        crate::note!("note: {note}");
    }
    let client = Client::new(first.credentials.clone(), first.timeout)?;
    let answers = crate::http::block_on(async {
        Ok(futures_util::future::join_all(
            items.iter().map(|(image, spec)| one(&client, image, spec)),
        )
        .await)
    })?;
    Ok((answers, client.requests()))
}

async fn one(client: &Client, image: &ImageRef, spec: &RegistrySpec) -> Result<Resolved> {
    let ep = Endpoint::of(image, &spec.insecure);
    let mut image = image.clone();
    let mut source = Source::Verified;
    match &spec.policy {
        Some(Policy::LatestDigest) if image.tag.is_none() => {
            return Err(Failure::new(
                Kind::Usage,
                format!("--tag-policy latest-digest pins the digest of a tag: `{image}` has none"),
            )
            .hint(format!("e.g. --image {}:main", image.name()))
            .into());
        }
        Some(Policy::LatestDigest) => {}
        Some(policy) => {
            if let Some(tag) = &image.tag {
                return Err(Failure::new(
                    Kind::Usage,
                    format!(
                        "--tag-policy chooses the tag, and `{image}` already has one (`{tag}`)"
                    ),
                )
                .hint(format!("pass --image {} without a tag", image.name()))
                .into());
            }
            let chosen = choose(client, &ep, policy).await?;
            image.tag = Some(chosen);
            source = Source::Policy;
            if spec.pin == Pin::Off {
                return Ok(Resolved {
                    image,
                    source,
                    digest: None,
                });
            }
        }
        None => {}
    }
    let pin = spec.pin != Pin::Off || matches!(spec.policy, Some(Policy::LatestDigest));
    let digest = digest_of(client, &ep, &image).await?;
    let mut resolved = Resolved {
        digest: Some(digest.clone()),
        image,
        source,
    };
    if pin && resolved.image.digest.is_none() {
        resolved.image.digest = Some(digest);
        if resolved.source == Source::Verified {
            resolved.source = Source::Resolved;
        }
    }
    Ok(resolved)
}

/// The newest tag of `ep` that `policy` allows.
async fn choose(client: &Client, ep: &Endpoint, policy: &Policy) -> Result<String> {
    let tags = client.tags(ep).await?;
    let Some(chosen) = policy.choose(&tags) else {
        if let Some(why) = policy.why_nothing(&tags) {
            return Err(Failure::new(
                Kind::Usage,
                format!("--tag-policy for {}/{}: {why}", ep.host, ep.repository),
            )
            .hint("put the number in the first group (`^main-(\\d+)$`), or use --tag-sort alphabetical")
            .into());
        }
        return Err(Failure::new(
            Kind::MissingImage,
            format!(
                "no tag of {}/{} matches the policy ({} tags looked at)",
                ep.host,
                ep.repository,
                tags.len()
            ),
        )
        .hint("check --tag-policy against the tags the registry has; nothing was changed")
        .into());
    };
    Ok(chosen.to_string())
}

/// The digest the registry has for `image`: its tag's, checked against a
/// given digest when both are given, or the given digest's own.
async fn digest_of(client: &Client, ep: &Endpoint, image: &ImageRef) -> Result<String> {
    let digest = match (&image.tag, &image.digest) {
        // Both given: the tag must exist and point at that digest, or the
        // manifest would say one version while the cluster runs another.
        (Some(tag), Some(given)) => {
            let Some(actual) = client.digest(ep, tag).await? else {
                return Err(missing(ep, Some(tag)).into());
            };
            if actual != *given && !client.index_children(ep, tag).await?.contains(given) {
                return Err(Failure::new(
                    Kind::MissingImage,
                    format!(
                        "`{}:{tag}` on {} has the digest {actual}, not the given {given}",
                        image.name(),
                        ep.host
                    ),
                )
                .hint(
                    "pass the digest the tag has now, or the tag that has this digest (the \
                 tag may have moved); nothing was changed",
                )
                .into());
            }
            given.clone()
        }
        (_, Some(given)) => {
            let Some(actual) = client.digest(ep, given).await? else {
                return Err(missing(ep, Some(given)).into());
            };
            actual
        }
        (Some(tag), None) => {
            let Some(actual) = client.digest(ep, tag).await? else {
                return Err(missing(ep, Some(tag)).into());
            };
            actual
        }
        (None, None) => {
            return Err(Failure::new(Kind::Usage, format!("`{image}` has no tag or digest")).into())
        }
    };
    Ok(digest)
}
