//! GitLab, on gitlab.com or a self-managed instance: merge requests
//! ([`merge_requests`]) and the repository API as a transport
//! ([`transport`], committing through the commits API).

mod commits;
pub mod merge_requests;
pub mod transport;

/// Percent-encode a project path for the `:id` slot.
pub fn encode_project(project: &str) -> String {
    if project.bytes().all(|b| b.is_ascii_digit()) {
        return project.to_string();
    }
    crate::forge::percent_encode(project, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids_are_encoded() {
        assert_eq!(encode_project("team/manifests"), "team%2Fmanifests");
        assert_eq!(encode_project("g/sub.group/r-1"), "g%2Fsub.group%2Fr-1");
        assert_eq!(encode_project("12345"), "12345");
    }
}
