//! Whole `POST /token` requests handled in-process by `mock_idp::App::handle` (no socket), one
//! bench per grant, with mock-idp's default RS256 key.
//!
//! Only `App::handle` is timed: minting the code an authorization_code request redeems, building
//! the request and reading the new refresh token out of a response all happen off the clock.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::{
    ISSUER, authorization_code, authorization_code_request, client_credentials_request,
    json_string, login, refresh_token_request, token_exchange_request, token_response_json,
};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::Full;
use mock_idp::keys::{SigningAlg, SigningKey};
use mock_idp::{App, Config};
use tokio::runtime::Runtime;

/// Handles `request`, returning the time `App::handle` took and the token response it answered.
fn handle_timed(
    runtime: &Runtime,
    app: &App,
    request: Request<Full<Bytes>>,
) -> (Duration, serde_json::Value) {
    let start = Instant::now();
    let response = runtime.block_on(app.handle(black_box(request)));
    let elapsed = start.elapsed();
    // Checked on every request: an error answer is much cheaper than a token, and timing it
    // would flatter the grant.
    let json = runtime
        .block_on(token_response_json(response))
        .expect("the token request succeeds");
    (elapsed, json)
}

fn token_requests(criterion: &mut Criterion) {
    // The key comes first so that mock-idp's cached jsonwebtoken provider is the one installed.
    let key = SigningKey::generate(SigningAlg::Rs256).expect("an RS256 key");
    assert!(
        mock_idp::keys::cached_provider_active(),
        "mock-idp's cached jsonwebtoken provider must be installed for these numbers to hold"
    );
    let app = App::with_key(Config::default(), ISSUER, key);
    // One thread, like one connection's task on the server; no worker hand-offs to measure.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime");
    let session_cookie = runtime
        .block_on(login(&app))
        .expect("the test user logs in");
    let first_code = runtime
        .block_on(authorization_code(&app, &session_cookie))
        .expect("/authorize issues a code");
    let (_, first_tokens) = handle_timed(&runtime, &app, authorization_code_request(&first_code));
    let subject_token =
        json_string(&first_tokens, "access_token").expect("the code grant issues an access token");
    let mut refresh_token =
        json_string(&first_tokens, "refresh_token").expect("the code grant issues a refresh token");

    let mut group = criterion.benchmark_group("token_request");
    group.bench_function("authorization_code", |bencher| {
        bencher.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let code = runtime
                    .block_on(authorization_code(&app, &session_cookie))
                    .expect("/authorize issues a code");
                total += handle_timed(&runtime, &app, authorization_code_request(&code)).0;
            }
            total
        });
    });
    group.bench_function("refresh_token", |bencher| {
        bencher.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Rotation: each response carries the next token of the family, and presenting
                // an old one would revoke it, so the requests form one chain.
                let (elapsed, json) =
                    handle_timed(&runtime, &app, refresh_token_request(&refresh_token));
                total += elapsed;
                refresh_token =
                    json_string(&json, "refresh_token").expect("a rotated refresh token");
            }
            total
        });
    });
    group.bench_function("token_exchange", |bencher| {
        bencher.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += handle_timed(&runtime, &app, token_exchange_request(&subject_token)).0;
            }
            total
        });
    });
    group.bench_function("client_credentials", |bencher| {
        bencher.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += handle_timed(&runtime, &app, client_credentials_request()).0;
            }
            total
        });
    });
    group.finish();
}

/// Short enough that the whole `cargo bench -p benches` takes a few minutes on two cores;
/// criterion's own `--quick` and `--measurement-time` flags still override it.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        // The SVG plots take longer to draw than some benchmarks take to run.
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = token_requests
}
criterion_main!(benches);
