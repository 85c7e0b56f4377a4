//! The job dashboard (feature `dashboard`): pages bundled into the binary that show a running
//! job as Flink's web UI does, and the read-only JSON API they use, `/api/v1/…` (see
//! `docs/dashboard.md`), built on [`crate::monitor`]; optionally the Prometheus text at
//! `/metrics` on the same address.
//!
//! ```no_run
//! # async fn run(job: weir_runtime::Job) -> Result<(), Box<dyn std::error::Error>> {
//! use weir_runtime::dashboard::DashboardServer;
//!
//! let server = DashboardServer::bind("127.0.0.1:8081".parse()?, None).await?;
//! let handle = job.start();
//! server.attach(handle.monitor());
//! println!("dashboard at http://{}/", server.local_addr());
//! let result = handle.wait().await;
//! # Ok(()) }
//! ```
//!
//! Safe by default: nothing it serves changes the job (only `GET` and `HEAD` are answered);
//! it binds where it is told, and on a loopback address it answers only requests that name it
//! by IP address or `localhost` (so a web page cannot reach it through DNS rebinding); the pages
//! put every name, path and message from the job into the page as text, never as markup, and a
//! content security policy allows no inline script.

mod api;

use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::monitor::JobMonitor;

/// Renders the Prometheus text served at `/metrics` (e.g. a `PrometheusHandle::render`).
pub type MetricsText = Arc<dyn Fn() -> String + Send + Sync>;

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// The address could not be bound.
    #[error("cannot serve the dashboard on {addr}: {source} (is another process using it? pick another address, e.g. 127.0.0.1:0 for any free port)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The pages' content security policy: nothing but this server's own files, no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct State {
    monitor: RwLock<Option<JobMonitor>>,
    metrics: Option<MetricsText>,
    loopback: bool,
}

/// A running dashboard server; dropping it stops serving.
pub struct DashboardServer {
    state: Arc<State>,
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for DashboardServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl DashboardServer {
    /// Serves the dashboard at `addr` (port 0: any free port, see [`Self::local_addr`]), and
    /// `metrics` at `/metrics` if given. It shows no job until [`Self::attach`].
    pub async fn bind(
        addr: SocketAddr,
        metrics: Option<MetricsText>,
    ) -> Result<DashboardServer, DashboardError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| DashboardError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| DashboardError::Bind { addr, source })?;
        let state = Arc::new(State {
            monitor: RwLock::new(None),
            metrics,
            loopback: addr.ip().is_loopback(),
        });
        let task = tokio::spawn(accept(listener, Arc::clone(&state)));
        Ok(DashboardServer {
            state,
            local_addr,
            task,
        })
    }

    /// Shows `monitor`'s job (replacing the one shown before).
    pub fn attach(&self, monitor: JobMonitor) {
        *self
            .state
            .monitor
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(monitor);
    }

    /// The address it serves on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for DashboardServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!("dashboard: accepting a connection failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let response = respond(&state, &request);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("dashboard: a connection ended with an error: {e}");
            }
        });
    }
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => response(status, "application/json", body),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode: {e}"),
        ),
    }
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": message });
    response(status, "application/json", body.to_string())
}

/// Whether `host` (a Host header) names the server by IP address or `localhost`.
fn is_ip_or_localhost(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

fn respond(state: &State, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "the dashboard is read-only: only GET and HEAD",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let host = hosts
        .next()
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if hosts.next().is_some() {
        return error(StatusCode::BAD_REQUEST, "more than one Host header");
    }
    if state.loopback && !is_ip_or_localhost(host) {
        return error(
            StatusCode::FORBIDDEN,
            "on a loopback address the dashboard answers only requests to an IP address or \
             localhost",
        );
    }
    let path = request.uri().path();
    match path {
        "/" | "/index.html" => response(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML),
        "/app.js" => response(StatusCode::OK, "text/javascript; charset=utf-8", APP_JS),
        "/style.css" => response(StatusCode::OK, "text/css; charset=utf-8", STYLE_CSS),
        "/metrics" => match &state.metrics {
            Some(render) => response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                render(),
            ),
            None => error(
                StatusCode::NOT_FOUND,
                "no Prometheus metrics on this server",
            ),
        },
        "/api/v1" | "/api/v1/" => json(
            StatusCode::OK,
            &serde_json::json!({
                "api_version": api::VERSION,
                "endpoints": [
                    "/api/v1/job", "/api/v1/job/graph", "/api/v1/job/subtasks",
                    "/api/v1/job/checkpoints", "/api/v1/job/failovers", "/api/v1/job/config",
                    "/api/v1/job/metrics"
                ]
            }),
        ),
        _ if path.starts_with("/api/v1/job") => api_job(state, path),
        _ => error(
            StatusCode::NOT_FOUND,
            "no such page; the API is under /api/v1/",
        ),
    }
}

fn api_job(state: &State, path: &str) -> Response<Full<Bytes>> {
    let Some(monitor) = state
        .monitor
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
    else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "no job has started yet");
    };
    let snapshot = monitor.snapshot();
    match path.trim_end_matches('/') {
        "/api/v1/job" => json(StatusCode::OK, &api::Job::of(&snapshot)),
        "/api/v1/job/metrics" => json(StatusCode::OK, &api::Metrics::of(&snapshot)),
        other => {
            let part = other.trim_start_matches("/api/v1/job/");
            match api::part(&api::Job::of(&snapshot), part) {
                Some(value) => json(StatusCode::OK, &value),
                None => error(StatusCode::NOT_FOUND, "no such endpoint; see /api/v1"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_ip_or_localhost;

    #[test]
    fn only_addresses_and_localhost_name_a_loopback_server() {
        for ok in [
            "127.0.0.1:8081",
            "localhost:1",
            "LOCALHOST",
            "[::1]:80",
            "127.0.0.1",
        ] {
            assert!(is_ip_or_localhost(ok), "{ok}");
        }
        for bad in ["evil.example:8081", "", "localhost.evil:1", "[evil]:1"] {
            assert!(!is_ip_or_localhost(bad), "{bad}");
        }
    }
}
