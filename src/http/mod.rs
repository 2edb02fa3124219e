//! The HTTP plumbing the forge and registry clients share: one client set-up
//! (rustls on ring, the system's and `SSL_CERT_FILE`'s CAs), a response
//! reduced to what the clients read; the retries are [`retry`]'s.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;

use crate::error::{BoxError, Failure, Kind as ErrorKind};

mod retry;

pub use retry::{http_backoff, parse_retry_after, retry_after, send_with_retries};

/// The one HTTP client: the forge clients, the API transports, the registry
/// and git's `Retry-After` probe all share its connection pool (and so its
/// TLS sessions). Each request carries its own timeout.
pub fn client() -> Result<reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client.clone());
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .user_agent(concat!("tagbump/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failure::new(ErrorKind::Internal, "cannot set up HTTPS").with_source(e))?;
    Ok(CLIENT.get_or_init(|| client).clone())
}

/// Run `future` on the one async runtime. A client's pooled connections
/// belong to the runtime they were opened on, so there is only one; it is a
/// current-thread runtime because tagbump's requests wait on the network,
/// not the CPU: independent requests run at once as joined futures.
pub fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = match RUNTIME.get() {
        Some(runtime) => runtime,
        None => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    Failure::new(ErrorKind::Internal, "cannot start the async runtime")
                        .with_source(e)
                })?;
            RUNTIME.get_or_init(|| runtime)
        }
    };
    runtime.block_on(future)
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

    /// A header as text, if present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Send `request` and read its answer whole. Errors are the transport's,
/// without the URL (it may carry a token).
pub async fn read(request: reqwest::RequestBuilder) -> Result<Response, BoxError> {
    let response = request
        .send()
        .await
        .map_err(|e| Box::new(e.without_url()))?;
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let headers = response.headers().clone();
    let body = response
        .text()
        .await
        .map_err(|e| Box::new(e.without_url()))?;
    Ok(Response {
        status,
        retry_after,
        headers,
        body,
    })
}

/// `request` with a credential header, marked sensitive (never logged by
/// the HTTP stack). A value no header can carry is left out, and the server
/// then answers 401, which names the variable to check.
pub fn with_secret(
    request: reqwest::RequestBuilder,
    name: reqwest::header::HeaderName,
    value: &str,
) -> reqwest::RequestBuilder {
    match reqwest::header::HeaderValue::from_str(value) {
        Ok(mut value) => {
            value.set_sensitive(true);
            request.header(name, value)
        }
        Err(_) => request,
    }
}
