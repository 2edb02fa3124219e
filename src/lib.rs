//! tagbump: write a new image tag into a GitOps manifest repo, changing only those bytes.

pub mod yaml;
