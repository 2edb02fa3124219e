//! The config file's fleet: `images:`, each image with its own policy and
//! places, and `images_from:`, the controllers whose configuration in the
//! manifest repository lists more.

use schemars::JsonSchema;
use serde::Deserialize;

use super::PinDigest;

/// One image of a fleet run.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetImage {
    /// The image without a tag (`registry.example.com/team/api`); with
    /// `latest-digest`, the tag whose digest is followed (`…/api:main`).
    pub name: String,
    /// `semver:RANGE`, `regex:EXPR` or `latest-digest`, as `--tag-policy`.
    pub policy: String,
    /// How `regex:` orders the tags it matches.
    pub tag_sort: Option<crate::registry::policy::Sort>,
    /// `true`, `false` or `tag`, as `--pin-digest`. Default: the registry section's.
    pub pin_digest: Option<PinDigest>,
    /// Where the image is scanned for, relative to the repository root.
    /// Default: the whole repository.
    #[serde(default, rename = "in")]
    pub dirs: Vec<String>,
    /// Explicit places that take the chosen version (tag, or tag@digest).
    #[serde(default)]
    pub set: Vec<FleetSet>,
    /// The review branch and merge request it goes to; images of one group
    /// share them. Default: one per image.
    pub group: Option<String>,
}

/// A place that takes a fleet image's version.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetSet {
    /// File, relative to the repository root.
    pub file: String,
    /// YAML path in it, e.g. `image.tag`.
    pub path: String,
    /// What it takes: `tag` (the default), `image` (`name:tag`, with
    /// `@digest` when pinned), `name` or `digest`.
    #[serde(default)]
    pub value: SetValue,
}

/// What a fleet image's `set` place takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SetValue {
    #[default]
    Tag,
    Image,
    Name,
    Digest,
}

/// Controllers whose configuration in the manifest repository lists images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Controller {
    /// Flux's `ImagePolicy`/`ImageRepository` and the `$imagepolicy` markers.
    Flux,
    /// Argo CD Image Updater's `ImageUpdater` resources, and its annotations
    /// on `Application`s.
    ArgocdImageUpdater,
}
