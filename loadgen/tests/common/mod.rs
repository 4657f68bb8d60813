//! Shared helpers of the integration tests: an in-process mock IdP, small seed sets, run
//! configurations, and a tiny hyper target that can stall, change its answer or die on cue.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use loadgen::seeding::seeder::SeedConfig;
use loadgen::{LoadProfile, RunConfig, ScenarioKind, Seeds};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Asserts a run went clean: every iteration succeeded, none dropped, no 401, no failed check,
/// complete, and the gate passed.
pub fn assert_clean(result: &loadgen::RunResult) {
    assert_eq!(result.iterations.failed, 0, "{:#?}", result.notes);
    assert_eq!(result.iterations.dropped, 0, "{:#?}", result.notes);
    assert_eq!(result.success_rate, 1.0, "{:#?}", result.notes);
    assert_eq!(result.requests.unauthorized, 0, "{:#?}", result.requests);
    for (name, counts) in &result.checks {
        assert_eq!(counts.failed, 0, "check {name} failed: {:#?}", result.notes);
    }
    assert!(result.complete);
    assert_eq!(
        result.verdict,
        loadgen::Verdict::Pass,
        "{:#?}",
        result.thresholds
    );
}

/// The passed and failed counts of check `name` (0, 0 when it was never made).
pub fn check(result: &loadgen::RunResult, name: &str) -> (u64, u64) {
    result
        .checks
        .get(name)
        .map_or((0, 0), |counts| (counts.passed, counts.failed))
}

/// Serves every connection `listener` accepts with a clone of `service`, HTTP/1.1, until the
/// returned task is aborted or dropped with its target; aborting it drops every connection too.
pub fn serve_connections<S, B>(listener: TcpListener, service: S) -> JoinHandle<()>
where
    S: hyper::service::Service<Request<hyper::body::Incoming>, Response = Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            connections.spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// A mock IdP on an ephemeral loopback port with the documented defaults.
pub async fn spawn_idp() -> anyhow::Result<mock_idp::RunningIdp> {
    Ok(mock_idp::spawn(mock_idp::Config::ephemeral()).await?)
}

/// A mock IdP with a changed configuration.
pub async fn spawn_idp_with(
    change: impl FnOnce(&mut mock_idp::Config),
) -> anyhow::Result<mock_idp::RunningIdp> {
    let mut config = mock_idp::Config::ephemeral();
    change(&mut config);
    Ok(mock_idp::spawn(config).await?)
}

/// The sum of the lines of mock-idp's `/metrics` that start with `line_prefix` (0 when none).
pub fn metric(idp: &mock_idp::RunningIdp, line_prefix: &str) -> u64 {
    idp.app()
        .metrics_text()
        .lines()
        .filter_map(|line| line.strip_prefix(line_prefix))
        .filter_map(|rest| rest.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A profile held at `rate` for `steady_s` seconds, no ramps.
pub fn steady(rate: f64, steady_s: f64) -> LoadProfile {
    LoadProfile {
        rate_per_s: rate,
        ramp_up_s: 0.0,
        steady_s,
        ramp_down_s: 0.0,
    }
}

/// Seeds made through the IdP's public endpoints.
pub async fn make_seeds(
    target: &str,
    codes: usize,
    refresh_families: usize,
    sessions: usize,
) -> anyhow::Result<Seeds> {
    let config = SeedConfig {
        codes,
        refresh_families,
        sessions,
        concurrency: 8,
        ..SeedConfig::new(target)
    };
    Ok(loadgen::seeding::seeder::make_seeds(&config).await?)
}

/// A run configuration with few VUs and a short timeout.
pub fn run_config(
    scenario: ScenarioKind,
    target: &str,
    profile: LoadProfile,
    max_vus: usize,
) -> RunConfig {
    RunConfig {
        max_vus,
        timeout: Duration::from_secs(3),
        ..RunConfig::new(scenario, target, profile)
    }
}

/// A tiny hyper target for the engine's tests: it answers every request with the body its
/// answer function gives for the path, and can be killed mid-run.
pub struct StubTarget {
    pub base_url: String,
    task: JoinHandle<()>,
}

impl StubTarget {
    /// Stops the target: the listener closes and open connections are dropped.
    pub fn kill(&self) {
        self.task.abort();
    }
}

impl Drop for StubTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The body for one request path; may wait before answering.
pub type Answer = Arc<dyn Fn(&str) -> Pin<Box<dyn Future<Output = Bytes> + Send>> + Send + Sync>;

// RFC 8037 appendix A.2's public key: any well-formed key will do, the target signs nothing.
const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

/// A discovery document naming `issuer`, with the endpoints of the target at `base_url`.
pub fn discovery_document(base_url: &str, issuer: &str) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base_url}/authorize"),
            "token_endpoint": format!("{base_url}/token"),
            "jwks_uri": format!("{base_url}/jwks"),
        })
        .to_string(),
    )
}

/// Starts a stub target; `answers` gets the target's base URL and returns how it answers.
pub async fn spawn_stub_target(answers: impl FnOnce(&str) -> Answer) -> anyhow::Result<StubTarget> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let answer = answers(&base_url);
    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
        let body = answer(request.uri().path());
        async move { Ok::<_, Infallible>(Response::new(Full::new(body.await))) }
    });
    let task = serve_connections(listener, service);
    Ok(StubTarget { base_url, task })
}

/// A target whose discovery document, served on every path, names the issuer `issuer` makes of
/// the target's base URL.
pub async fn spawn_target_naming_issuer(
    issuer: impl FnOnce(&str) -> String,
) -> anyhow::Result<StubTarget> {
    spawn_stub_target(|base_url| {
        let document = discovery_document(base_url, &issuer(base_url));
        Arc::new(move |_path: &str| {
            let document = document.clone();
            Box::pin(async move { document }) as Pin<Box<dyn Future<Output = Bytes> + Send>>
        })
    })
    .await
}

/// A target that serves a discovery document (and a static JWKS) instantly, except that every
/// request arriving in `[stall_from, stall_from + stall_for)` after start is held until the end
/// of that window, like a stop-the-world pause.
pub async fn spawn_stalling_target(
    stall_from: Duration,
    stall_for: Duration,
) -> anyhow::Result<StubTarget> {
    let started = Instant::now();
    let (stall_start, stall_end) = (started + stall_from, started + stall_from + stall_for);
    spawn_stub_target(|base_url| {
        let discovery = discovery_document(base_url, base_url);
        Arc::new(move |path: &str| {
            let body = if path == "/jwks" {
                Bytes::from_static(JWKS.as_bytes())
            } else {
                discovery.clone()
            };
            Box::pin(async move {
                let now = Instant::now();
                if now >= stall_start && now < stall_end {
                    tokio::time::sleep_until(stall_end).await;
                }
                body
            })
        })
    })
    .await
}

/// A target whose discovery document names it as issuer for the first `right_answers`
/// requests, and another issuer after that.
pub async fn spawn_issuer_changing_target(right_answers: usize) -> anyhow::Result<StubTarget> {
    let served = Arc::new(AtomicUsize::new(0));
    spawn_stub_target(|base_url| {
        let right = discovery_document(base_url, base_url);
        let wrong = discovery_document(base_url, "http://elsewhere.example");
        Arc::new(move |path: &str| {
            let body = if path == "/jwks" {
                Bytes::from_static(JWKS.as_bytes())
            } else if path.starts_with("/.well-known/oauth-authorization-server") {
                // The RFC 8414 metadata, asked for what discovery lacks (introspection) before
                // the run: not one of the discovery answers counted.
                right.clone()
            } else if served.fetch_add(1, Ordering::SeqCst) < right_answers {
                right.clone()
            } else {
                wrong.clone()
            };
            Box::pin(std::future::ready(body))
        })
    })
    .await
}

/// A target whose discovery document is right for the first request (the run's metadata fetch)
/// and then alternately 2 MiB of padding and right again.
pub async fn spawn_oversized_answering_target() -> anyhow::Result<StubTarget> {
    let served = Arc::new(AtomicUsize::new(0));
    spawn_stub_target(|base_url| {
        let right = discovery_document(base_url, base_url);
        let oversized = Bytes::from(vec![b' '; 2 * 1024 * 1024]);
        Arc::new(move |path: &str| {
            let body = if path == "/jwks" {
                Bytes::from_static(JWKS.as_bytes())
            } else if served.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                right.clone()
            } else {
                oversized.clone()
            };
            Box::pin(std::future::ready(body))
        })
    })
    .await
}

/// mock-idp behind a connection that loses answers: every `lose_every`-th refresh request is
/// handled by the provider (which rotates the family), then its connection is closed before the
/// answer is sent, as a proxy or a network that drops the answer would.
pub struct AnswerLosingIdp {
    pub base_url: String,
    /// Refresh answers lost so far.
    pub lost: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for AnswerLosingIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why [`AnswerLosingIdp`] closed a connection unanswered.
#[derive(Debug)]
pub struct LostAnswer(String);

impl std::fmt::Display for LostAnswer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for LostAnswer {}

/// A listener on 127.0.0.1:0, its base URL, and a mock-idp `App` issuing for that URL, for tests
/// that put a service of their own (a proxy with faults) in front of the provider.
pub async fn bind_proxied_idp() -> anyhow::Result<(TcpListener, String, Arc<mock_idp::App>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let app = Arc::new(mock_idp::App::new(
        mock_idp::Config::ephemeral(),
        &base_url,
    )?);
    Ok((listener, base_url, app))
}

/// Starts an [`AnswerLosingIdp`].
pub async fn spawn_answer_losing_idp(lose_every: usize) -> anyhow::Result<AnswerLosingIdp> {
    use http_body_util::BodyExt as _;

    let (listener, base_url, app) = bind_proxied_idp().await?;
    let refreshes = Arc::new(AtomicUsize::new(0));
    let lost = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&lost);
    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
        let (app, refreshes, lost) = (
            Arc::clone(&app),
            Arc::clone(&refreshes),
            Arc::clone(&counted),
        );
        async move {
            let (parts, body) = request.into_parts();
            let body = match body.collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) => return Err(LostAnswer(error.to_string())),
            };
            let is_refresh = body
                .windows(b"grant_type=refresh_token".len())
                .any(|window| window == b"grant_type=refresh_token");
            let answer = app
                .handle(Request::from_parts(parts, Full::new(body)))
                .await;
            if is_refresh
                && (refreshes.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(lose_every)
            {
                lost.fetch_add(1, Ordering::SeqCst);
                // An error from the service makes hyper close the connection unanswered.
                return Err(LostAnswer("answer lost".to_owned()));
            }
            Ok::<_, LostAnswer>(answer)
        }
    });
    let task = serve_connections(listener, service);
    Ok(AnswerLosingIdp {
        base_url,
        lost,
        task,
    })
}
