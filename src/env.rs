//! The process environment, read through one function type so that every
//! reader (CI facts, settings, registry credentials) can be handed a fixed
//! environment in tests instead of the process's.

/// Reads one environment variable; tests pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process's variable `name`; an empty value counts as unset, as CI
/// systems pass an unset secret or input as an empty string.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
