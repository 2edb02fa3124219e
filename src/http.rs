//! The HTTP plumbing the forge and registry clients share: one client set-up
//! (rustls on ring, the system's and `SSL_CERT_FILE`'s CAs), a response
//! reduced to what the clients read, and retries with backoff on 429, 5xx
//! and transport faults.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;

use crate::error::{chain_text, BoxError, Failure, Kind as ErrorKind};
use crate::secret::scrub;

/// An HTTP client with a whole-request `timeout`.
pub fn client(timeout: Duration) -> Result<reqwest::Client> {
    // One crypto provider for rustls, shared with octocrab's connector.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("tagbump/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::new(ErrorKind::Internal, format!("cannot set up HTTPS: {e}")).into())
}

/// A response, reduced to what the clients need.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Response {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as loose JSON (`Null` when it is not JSON): only for error
    /// bodies, which vary by server and proxy; answers the code relies on
    /// go through [`Response::parse`].
    pub fn loose_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A header as text, if present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How many times a request is retried on 429, 5xx or a transport error.
pub const RETRIES: u32 = 4;

/// Send with retries: 429 and 5xx (and transport errors: timeouts, resets)
/// are retried after `Retry-After` when the server gives one (at most 60 s),
/// else after 0.5, 1, 2, 4 s.
/// A transport failure that outlasts the retries is a remote error with
/// `hint`.
pub async fn send_with_retries<F, Fut>(what: &str, hint: &str, mut send: F) -> Result<Response>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Response, BoxError>>,
{
    let mut attempt = 0;
    loop {
        let result = send().await;
        let retryable = match &result {
            Ok(r) => r.status == 429 || (500..600).contains(&r.status),
            Err(_) => true,
        };
        if !retryable || attempt >= RETRIES {
            return result.map_err(|e| {
                Failure::new(ErrorKind::Remote, what)
                    .with_source(e)
                    .hint(hint)
                    .into()
            });
        }
        let wait = match &result {
            Ok(r) => r
                .retry_after
                .unwrap_or(http_backoff(attempt))
                .min(Duration::from_secs(60)),
            Err(_) => http_backoff(attempt),
        };
        let why = match &result {
            Ok(r) => format!("HTTP {}", r.status),
            Err(e) => scrub(&chain_text(e.as_ref())),
        };
        eprintln!("{what}: {why}; retrying in {:.1} s", wait.as_secs_f32());
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

pub fn http_backoff(attempt: u32) -> Duration {
    Duration::from_millis(500 << attempt.min(6))
}

/// `Retry-After`: seconds (HTTP dates are rare on these APIs; they fall back
/// to the exponential backoff).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `Retry-After` from a response's headers (reqwest's and octocrab's are the
/// same `http` type).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    parse_retry_after(headers.get("retry-after").and_then(|v| v.to_str().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after(Some("7")), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }
}
