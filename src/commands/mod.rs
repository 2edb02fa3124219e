//! The subcommands, each from its arguments to its results; they sit above
//! every layer they use (settings, the update, the forge, the reports).

pub mod demo;
pub mod files;
pub mod fleet;
pub mod merge_request;
pub mod update;
