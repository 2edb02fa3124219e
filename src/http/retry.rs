//! Which HTTP answers are retried and when: 429 and 5xx (and transport
//! errors: timeouts, resets) after `Retry-After` (seconds or an HTTP date) or
//! GitHub's rate-limit reset, else after a jittered exponential backoff.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;

use super::Response;
use crate::error::{chain_text, BoxError, Failure, Kind as ErrorKind};
use crate::secret::scrub;

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
        let started = std::time::Instant::now();
        let result = send().await;
        if crate::log::verbose() {
            let outcome = match &result {
                Ok(r) => format!("HTTP {}", r.status),
                Err(e) => scrub(&chain_text(e.as_ref())),
            };
            crate::log::request(what, &outcome, started.elapsed());
        }
        let retryable = match &result {
            Ok(r) => r.status == 429 || (500..600).contains(&r.status) || rate_limited(r),
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
        crate::note!("{what}: {why}; retrying in {:.1} s", wait.as_secs_f32());
        crate::interrupt::waiting(format!("{what}: {why}"));
        tokio::time::sleep(wait).await;
        crate::interrupt::resumed();
        attempt += 1;
    }
}

/// 0.5, 1, 2, 4 s … (capped at 32 s), each between half and all of that
/// ("equal jitter"), so clients that failed together do not retry together.
pub fn http_backoff(attempt: u32) -> Duration {
    use rand::Rng as _;
    let full = 500u64 << attempt.min(6);
    Duration::from_millis(rand::thread_rng().gen_range(full / 2..=full))
}

/// `Retry-After`: seconds, or an HTTP date (how long until then; a date
/// already past is no wait).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    let value = value?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// How long to wait before retrying: `Retry-After`, else (GitHub's primary
/// rate limit) until `x-ratelimit-reset` when `x-ratelimit-remaining` is 0.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    parse_retry_after(text("retry-after")).or_else(|| {
        if text("x-ratelimit-remaining")? != "0" {
            return None;
        }
        let reset: u64 = text("x-ratelimit-reset")?.trim().parse().ok()?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs();
        Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
    })
}

/// GitHub answers its rate limits (primary and secondary) with 403 and a
/// `Retry-After` or an exhausted `x-ratelimit-remaining`: a wait, not a
/// missing permission.
fn rate_limited(response: &Response) -> bool {
    response.status == 403
        && (response.header("retry-after").is_some()
            || response.header("x-ratelimit-remaining") == Some("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_are_waits() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
        let soon = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 30;
        headers.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&soon.to_string()).unwrap(),
        );
        let wait = super::retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        let response = Response {
            status: 403,
            retry_after: Some(wait),
            headers: headers.clone(),
            body: String::new(),
        };
        assert!(rate_limited(&response));
        headers.insert("x-ratelimit-remaining", HeaderValue::from_static("4999"));
        assert_eq!(super::retry_after(&headers), None);
        let forbidden = Response {
            status: 403,
            retry_after: None,
            headers,
            body: String::new(),
        };
        assert!(
            !rate_limited(&forbidden),
            "a plain 403 is a permission error"
        );
    }

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after(Some("7")), Some(Duration::from_secs(7)));
        // An HTTP date: the time until then; one already past, no wait.
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        let soon = std::time::SystemTime::now() + Duration::from_secs(90);
        let wait = parse_retry_after(Some(&httpdate::fmt_http_date(soon))).unwrap();
        assert!(
            wait > Duration::from_secs(85) && wait <= Duration::from_secs(90),
            "{wait:?}"
        );
        assert_eq!(parse_retry_after(Some("soon")), None);
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn backoff_is_jittered_within_its_step() {
        for attempt in 0..8 {
            let full = Duration::from_millis(500 << attempt.min(6));
            let waits: std::collections::BTreeSet<Duration> =
                (0..20).map(|_| http_backoff(attempt)).collect();
            assert!(
                waits.iter().all(|w| *w >= full / 2 && *w <= full),
                "{waits:?}"
            );
            assert!(waits.len() > 1, "no jitter at attempt {attempt}");
        }
    }
}
