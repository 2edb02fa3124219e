//! What to ask the image registry: the tag policy, digest pinning and the
//! registry's credentials.

use anyhow::Result;

use super::{first, first_list};
use crate::cli::UpdateArgs;
use crate::config::Layer;
use crate::env::Env;
use crate::error::{Failure, Kind};
use crate::registry::credentials::Credentials;
use crate::registry::policy::Policy as TagPolicy;
use crate::registry::RegistrySpec;

/// What to ask the image registry: each field from the flag, then the
/// config file; credentials from the environment ([`Credentials`]).
pub(super) fn registry_spec(
    args: &UpdateArgs,
    config: &Layer,
    env: Env<'_>,
) -> Result<RegistrySpec> {
    let sort = first(&args.tag_sort, &config.tag_sort).unwrap_or_default();
    let policy = match first(&args.tag_policy, &config.tag_policy) {
        Some(text) => Some(
            TagPolicy::parse(&text, sort)
                .map_err(|e| Failure::new(Kind::Usage, format!("--tag-policy: {e}")))?,
        ),
        None => None,
    };
    let mut spec = RegistrySpec {
        verify: first(&args.verify_image, &config.verify_image).unwrap_or(false),
        pin: first(&args.pin_digest, &config.pin_digest).unwrap_or_default(),
        policy,
        credentials: Credentials::default(),
        insecure: first_list(&args.insecure_registry, &config.insecure_registry).to_vec(),
        timeout: std::time::Duration::from_secs(30),
    };
    // Docker's config files are read (and their secrets held) only when the
    // registry will be asked.
    if spec.active() {
        spec.credentials = Credentials::from_env(
            args.registry_user.as_deref(),
            &args.registry_password_env,
            env,
        );
    }
    if spec.active() && args.images.is_empty() {
        return Err(Failure::new(
            Kind::Usage,
            "--verify-image, --pin-digest and --tag-policy apply to --image",
        )
        .into());
    }
    let chooses_tags = matches!(
        spec.policy,
        Some(TagPolicy::Semver(_) | TagPolicy::Regex(..))
    );
    if args.tag_sort.is_some() && !matches!(spec.policy, Some(TagPolicy::Regex(..))) {
        return Err(Failure::new(
            Kind::Usage,
            "--tag-sort orders the tags a `regex:` --tag-policy matches; there is none",
        )
        .hint("pass --tag-policy 'regex:EXPR', or drop --tag-sort")
        .into());
    }
    if let (true, Some(image)) = (chooses_tags, args.images.iter().find(|i| i.tag.is_some())) {
        return Err(Failure::new(
            Kind::Usage,
            format!(
                "--tag-policy chooses the tag, and `{image}` already has one (`{}`)",
                image.tag.as_deref().unwrap_or_default()
            ),
        )
        .hint(format!(
            "pass --image {} without a tag, or run it without --tag-policy",
            image.name()
        ))
        .into());
    }
    if let Some(image) = args
        .images
        .iter()
        .find(|i| i.tag.is_none() && i.digest.is_none())
    {
        if !chooses_tags {
            return Err(Failure::new(
                Kind::Usage,
                format!(
                    "`{image}` has no tag or digest; write e.g. `{image}:1.4.2` or \
                     `{image}@sha256:<64 hex>`"
                ),
            )
            .hint("or let the registry choose: --tag-policy semver:RANGE")
            .into());
        }
    }
    Ok(spec)
}
