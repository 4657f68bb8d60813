//! The capacity search against a target with a known edge: mock-idp behind a proxy that answers
//! 503 to every request past 100 in a wall-clock second. The search must pass below the edge,
//! fail above it, keep every step's result, and say why the failing step failed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use common::{bind_proxied_idp, run_config, serve_connections, steady};
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use loadgen::run::capacity::{Plan, Stop, search};
use loadgen::run::mix::spec::MixSpec;
use loadgen::seeding::seeder::SeedConfig;
use loadgen::{ScenarioKind, stop_signal};

/// Requests the proxy lets through in one wall-clock second.
const EDGE_PER_S: u64 = 100;

/// mock-idp behind a proxy that turns away what exceeds [`EDGE_PER_S`] in a second.
async fn spawn_limited_idp() -> Result<(String, tokio::task::JoinHandle<()>)> {
    let (listener, base_url, app) = bind_proxied_idp().await?;
    let window = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
        let (app, window) = (Arc::clone(&app), Arc::clone(&window));
        async move {
            let second = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs());
            if window.0.swap(second, Ordering::SeqCst) != second {
                window.1.store(0, Ordering::SeqCst);
            }
            if window.1.fetch_add(1, Ordering::SeqCst) >= EDGE_PER_S {
                let busy = Response::builder()
                    .status(503)
                    .body(Full::new(Bytes::from_static(b"busy")))
                    .map_err(|error| error.to_string())?;
                return Ok::<_, String>(busy);
            }
            let (parts, body) = request.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|error| error.to_string())?
                .to_bytes();
            Ok(app
                .handle(Request::from_parts(parts, Full::new(body)))
                .await)
        }
    });
    Ok((base_url, serve_connections(listener, service)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_finds_the_edge_of_a_target_that_holds_100_per_second() -> Result<()> {
    let (target, proxy) = spawn_limited_idp().await?;
    let plan = Plan {
        start_rate: 20.0,
        factor: 2.0,
        max_rate: 640.0,
        precision: 0.1,
        max_steps: 12,
        max_time: Duration::from_secs(120),
        // Past the proxy's one-second window, so each step starts on a fresh count.
        cool_down: Duration::from_millis(1100),
    };
    let config = run_config(ScenarioKind::Discovery, &target, steady(20.0, 2.0), 20);
    let directory = tempfile::tempdir()?;
    let (_handle, stop) = stop_signal();
    let mut heard = 0;
    let report = search(
        plan,
        &config,
        None,
        Some(std::process::id()),
        &SeedConfig::new(target.clone()),
        directory.path(),
        stop,
        |_| heard += 1,
    )
    .await?;
    proxy.abort();

    let rates: Vec<f64> = report.steps.iter().map(|step| step.rate_per_s).collect();
    assert_eq!(rates[..4], [20.0, 40.0, 80.0, 160.0], "{rates:?}");
    assert_eq!(report.stopped, Stop::Precise, "{rates:?}");
    assert_eq!(heard, report.steps.len());
    let pass = report.highest_pass.as_ref().context("a rate passed")?;
    let fail = report.lowest_failure.as_ref().context("a rate failed")?;
    assert!(
        (80.0..=110.0).contains(&pass.rate_per_s),
        "highest pass {}/s, steps {rates:?}",
        pass.rate_per_s
    );
    assert!(fail.rate_per_s > pass.rate_per_s && fail.rate_per_s <= pass.rate_per_s * 1.1);
    assert!(pass.p99_ms.is_some());
    // The target runs in this process here: its CPU time is measured per step.
    assert!(pass.requests > 0 && pass.target_cpu_s.is_some_and(|cpu| cpu > 0.0));
    assert!(
        fail.failures.iter().any(|why| why.contains("success rate")),
        "{:?}",
        fail.failures
    );
    for step in &report.steps {
        let file = step
            .result_file
            .as_ref()
            .context("each step keeps its result")?;
        let result = loadgen::RunResult::read(file)?;
        assert_eq!(
            (
                result.load_profile.profile.rate_per_s,
                result.verdict == loadgen::Verdict::Pass
            ),
            (step.rate_per_s, step.passed)
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mix_is_searched_by_its_total_rate_every_scenario_scaled_together() -> Result<()> {
    let (target, proxy) = spawn_limited_idp().await?;
    let plan = Plan {
        start_rate: 40.0,
        factor: 2.0,
        max_rate: 640.0,
        precision: 0.25,
        max_steps: 8,
        max_time: Duration::from_secs(120),
        cool_down: Duration::from_millis(1100),
    };
    // Three discoveries to every client-credentials grant: one request each, so the proxy's
    // 100 a second is the mix's total edge.
    let mix: MixSpec = "discovery=3,client-credentials=1".parse()?;
    let config = run_config(ScenarioKind::Discovery, &target, steady(1.0, 2.0), 20);
    let directory = tempfile::tempdir()?;
    let (_handle, stop) = stop_signal();
    let report = search(
        plan,
        &config,
        Some(&mix),
        None,
        &SeedConfig::new(target.clone()),
        directory.path(),
        stop,
        |_| {},
    )
    .await?;
    proxy.abort();
    assert_eq!(report.scenario, "mix discovery=3,client-credentials=1");
    let pass = report.highest_pass.as_ref().context("a rate passed")?;
    let fail = report.lowest_failure.as_ref().context("a rate failed")?;
    assert!((60.0..=110.0).contains(&pass.rate_per_s), "{pass:?}");
    assert!(fail.rate_per_s > pass.rate_per_s);
    // A failing step names the scenarios that failed.
    assert!(
        fail.failures
            .iter()
            .any(|why| why.starts_with("discovery: ") || why.starts_with("client-credentials: ")),
        "{:?}",
        fail.failures
    );
    let file = pass
        .result_file
        .as_ref()
        .context("the step keeps its result")?;
    let loadgen::results::mix_result::ResultFile::Mix(result) =
        loadgen::results::mix_result::ResultFile::read(file)?
    else {
        anyhow::bail!("a mix step's file is not a mix's result");
    };
    let rates: Vec<f64> = result
        .sections
        .iter()
        .map(|section| section.load_profile.profile.rate_per_s)
        .collect();
    let expected = [pass.rate_per_s * 0.75, pass.rate_per_s * 0.25];
    assert!(
        rates
            .iter()
            .zip(expected)
            .all(|(rate, expected)| (rate - expected).abs() < 1e-9),
        "{rates:?}"
    );
    Ok(())
}
