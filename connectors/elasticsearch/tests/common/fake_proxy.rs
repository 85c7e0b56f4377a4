//! `FakeProxy`: a fake HTTP proxy (a test double, not a server the connector supports) in front
//! of a real test server, for what the real servers cannot be made to do:
//!
//! - **throttle items**: in `_bulk` requests, every `throttle_every`-th action (counted over the
//!   proxy's life, each action line at most `max_throttles_per_action` times) is taken *out* of
//!   the request before it is forwarded, and answered with a per-item
//!   `429 es_rejected_execution_exception` in its place in the answer. The server never sees a
//!   throttled action, so a sink that does not resend it loses the document — the test can
//!   count it;
//! - **fail whole requests**: the next `fail_requests` `_bulk` requests get a 503 without being
//!   forwarded;
//! - **require credentials**: requests without the expected `Authorization` header get the 401
//!   `security_exception` Elasticsearch answers, with `WWW-Authenticate`.
//!
//! Every other request is forwarded unchanged. `start_tls` serves HTTPS with a certificate of a
//! test CA generated per test (`TestCertificates`), for the client's TLS settings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value as Json};

/// What the fake proxy does.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    /// Throttle every n-th bulk action (0: none).
    pub throttle_every: u64,
    /// How often one action line may be throttled.
    pub max_throttles_per_action: u32,
    /// The `Authorization` header every request must carry, if any.
    pub require_authorization: Option<String>,
}

/// What the fake proxy saw and did.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Every request.
    pub requests: AtomicU64,
    pub bulk_requests: AtomicU64,
    pub forwarded_actions: AtomicU64,
    pub throttled_actions: AtomicU64,
    pub failed_requests: AtomicU64,
    pub rejected_credentials: AtomicU64,
    /// `Authorization` headers seen (distinct).
    pub authorizations: Mutex<Vec<String>>,
}

struct State {
    upstream: SocketAddr,
    config: ProxyConfig,
    client: Client<HttpConnector, Full<Bytes>>,
    counter: AtomicU64,
    throttled: Mutex<HashMap<String, u32>>,
    fail_requests: AtomicUsize,
    stats: Arc<ProxyStats>,
}

/// A running fake proxy; stops when dropped.
pub struct FakeProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A test certificate authority and a server certificate it signed for `localhost` and
/// `127.0.0.1`, generated per call.
pub struct TestCertificates {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl TestCertificates {
    pub fn generate() -> TestCertificates {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "weir test CA (fake)");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let certificate = params.signed_by(&key, &ca, &ca_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![certificate.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        TestCertificates {
            ca_pem: ca.pem(),
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }
    }
}

impl FakeProxy {
    /// Starts it on a free loopback port, in front of `upstream` (call inside a tokio runtime).
    pub async fn start(upstream: SocketAddr, config: ProxyConfig) -> FakeProxy {
        Self::serve(upstream, config, None).await
    }

    /// The same, serving HTTPS with `certificates` (`https://localhost:<port>`).
    pub async fn start_tls(
        upstream: SocketAddr,
        config: ProxyConfig,
        certificates: &TestCertificates,
    ) -> FakeProxy {
        Self::serve(upstream, config, Some(certificates.acceptor.clone())).await
    }

    async fn serve(
        upstream: SocketAddr,
        config: ProxyConfig,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> FakeProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            upstream,
            config,
            client: Client::builder(TokioExecutor::new()).build_http(),
            counter: AtomicU64::new(0),
            throttled: Mutex::new(HashMap::new()),
            fail_requests: AtomicUsize::new(0),
            stats: Arc::new(ProxyStats::default()),
        });
        let serving = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&serving);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, Arc::clone(&state)));
                    match tls {
                        None => {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        Some(acceptor) => {
                            // A client that refuses the certificate ends the handshake.
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        FakeProxy { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The HTTPS URL of a proxy started with [`FakeProxy::start_tls`].
    pub fn https_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.state.stats
    }

    /// Answers the next `n` bulk requests with a 503.
    pub fn fail_next_bulk_requests(&self, n: usize) {
        self.state.fail_requests.store(n, Ordering::SeqCst);
    }
}

fn respond(status: u16, body: &Json) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(body).unwrap())))
        .unwrap()
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.stats.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let authorization = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(a) = &authorization {
        let mut seen = state.stats.authorizations.lock().unwrap();
        if !seen.contains(a) {
            seen.push(a.clone());
        }
    }
    if let Some(expected) = &state.config.require_authorization {
        if authorization.as_deref() != Some(expected.as_str()) {
            state
                .stats
                .rejected_credentials
                .fetch_add(1, Ordering::Relaxed);
            let reason = format!(
                "unable to authenticate user for REST request [{}]",
                parts.uri.path()
            );
            let mut response = respond(
                401,
                &json!({
                    "error": {
                        "root_cause": [{ "type": "security_exception", "reason": reason }],
                        "type": "security_exception",
                        "reason": reason,
                    },
                    "status": 401,
                }),
            );
            response.headers_mut().insert(
                "www-authenticate",
                "Basic realm=\"security\" charset=\"UTF-8\""
                    .parse()
                    .unwrap(),
            );
            return Ok(response);
        }
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let is_bulk = parts.uri.path() == "/_bulk";
    if is_bulk {
        state.stats.bulk_requests.fetch_add(1, Ordering::Relaxed);
        let fail = state
            .fail_requests
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            state.stats.failed_requests.fetch_add(1, Ordering::Relaxed);
            return Ok(respond(
                503,
                &json!({ "error": { "type": "unavailable", "reason": "the fake proxy fails this request" }, "status": 503 }),
            ));
        }
    }
    if is_bulk && state.config.throttle_every > 0 {
        return Ok(throttle_bulk(&state, &parts, &path_and_query, body).await);
    }
    Ok(forward(&state, &parts, &path_and_query, body).await)
}

async fn forward(
    state: &State,
    parts: &hyper::http::request::Parts,
    path_and_query: &str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut request = Request::builder()
        .method(parts.method.clone())
        .uri(format!("http://{}{path_and_query}", state.upstream));
    if let Some(ct) = parts.headers.get("content-type") {
        request = request.header("content-type", ct);
    }
    let request = request.body(Full::new(body)).unwrap();
    match state.client.request(request).await {
        Ok(response) => {
            let status = response.status();
            let ct = response.headers().get("content-type").cloned();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            let mut out = Response::builder().status(status);
            if let Some(ct) = ct {
                out = out.header("content-type", ct);
            }
            out.body(Full::new(bytes)).unwrap()
        }
        Err(e) => respond(
            StatusCode::BAD_GATEWAY.as_u16(),
            &json!({ "error": { "type": "bad_gateway", "reason": e.to_string() }, "status": 502 }),
        ),
    }
}

/// One action of a bulk body: its lines, and its name (`index`, `delete`, ...).
struct Action {
    name: String,
    lines: Vec<u8>,
    key: String,
}

fn split_actions(body: &[u8]) -> Vec<Action> {
    let mut lines = body.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let mut actions = Vec::new();
    while let Some(head) = lines.next() {
        let parsed: Json = serde_json::from_slice(head).unwrap();
        let name = parsed.as_object().unwrap().keys().next().unwrap().clone();
        let mut text = head.to_vec();
        text.push(b'\n');
        if name != "delete" {
            let source = lines.next().unwrap();
            text.extend_from_slice(source);
            text.push(b'\n');
        }
        let key = String::from_utf8_lossy(&text).into_owned();
        actions.push(Action {
            name,
            lines: text,
            key,
        });
    }
    actions
}

async fn throttle_bulk(
    state: &State,
    parts: &hyper::http::request::Parts,
    path_and_query: &str,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let actions = split_actions(&body);
    let mut throttled = vec![false; actions.len()];
    {
        let mut counts = state.throttled.lock().unwrap();
        for (i, action) in actions.iter().enumerate() {
            let n = state.counter.fetch_add(1, Ordering::Relaxed) + 1;
            if n % state.config.throttle_every == 0 {
                let times = counts.entry(action.key.clone()).or_insert(0);
                if *times < state.config.max_throttles_per_action {
                    *times += 1;
                    throttled[i] = true;
                }
            }
        }
    }
    let forwarded: Vec<u8> = actions
        .iter()
        .zip(&throttled)
        .filter(|(_, t)| !**t)
        .flat_map(|(a, _)| a.lines.clone())
        .collect();
    let n_throttled = throttled.iter().filter(|t| **t).count();
    state
        .stats
        .throttled_actions
        .fetch_add(n_throttled as u64, Ordering::Relaxed);
    state
        .stats
        .forwarded_actions
        .fetch_add((actions.len() - n_throttled) as u64, Ordering::Relaxed);
    let mut upstream_items = Vec::new().into_iter();
    let mut upstream_errors = false;
    if !forwarded.is_empty() {
        let response = forward(state, parts, path_and_query, Bytes::from(forwarded)).await;
        if response.status() != 200 {
            return response;
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let answer: Json = serde_json::from_slice(&bytes).unwrap();
        upstream_errors = answer["errors"].as_bool().unwrap_or(false);
        upstream_items = answer["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter();
    }
    let items: Vec<Json> = actions
        .iter()
        .zip(&throttled)
        .map(|(action, throttled)| {
            if *throttled {
                json!({ action.name.clone(): {
                    "status": 429,
                    "error": {
                        "type": "es_rejected_execution_exception",
                        "reason": "rejected execution of the fake proxy's throttling",
                    },
                }})
            } else {
                upstream_items.next().unwrap()
            }
        })
        .collect();
    respond(
        200,
        &json!({ "took": 0, "errors": upstream_errors || n_throttled > 0, "items": items }),
    )
}
