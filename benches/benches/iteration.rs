//! The client side of one TEST 2 iteration, against a canned answer of mock-idp's: building the
//! refresh request, reading and checking the token response (both tokens verified against the
//! JWKS), and recording it, each alone and together, beside the raw verification of the two
//! signatures that no generator can skip. What is above that line is loadgen's own cost per
//! iteration, a figure to track apart from the network and the provider.

use std::hint::black_box;
use std::time::Duration;

use benches::{
    ISSUER, authorization_code, authorization_code_request, json_string, login, token_response_json,
};
use criterion::{Criterion, criterion_group, criterion_main};
use loadgen::protocol::client_credentials::ClientCredentials;
use loadgen::protocol::token_request::{TokenResponse, refresh_grant_body, token_request_headers};
use loadgen::protocol::token_verifier::TokenVerifier;
use loadgen::results::names::{Check, Endpoint, RequestOutcome};
use loadgen::results::recorder::Recorder;
use mock_idp::keys::{SigningAlg, SigningKey};
use mock_idp::{App, Config};

/// What one iteration's client side reads: a real token response of mock-idp's, and the
/// verifier of its JWKS.
struct Canned {
    response: Vec<u8>,
    refresh_token: String,
    verifier: TokenVerifier,
}

fn canned() -> Canned {
    let key = SigningKey::generate(SigningAlg::Rs256).expect("an RS256 key");
    let jwks = key.jwks_json().to_string();
    let app = App::with_key(Config::default(), ISSUER, key);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime");
    let json = runtime.block_on(async {
        let cookie = login(&app).await.expect("the test user logs in");
        let code = authorization_code(&app, &cookie)
            .await
            .expect("/authorize issues a code");
        let response = app.handle(authorization_code_request(&code)).await;
        token_response_json(response)
            .await
            .expect("the code is redeemed")
    });
    let verifier = TokenVerifier::from_jwks(
        jwks.as_bytes(),
        ISSUER,
        None,
        &ClientCredentials::default().client_id,
    )
    .expect("mock-idp's JWKS");
    Canned {
        refresh_token: json_string(&json, "refresh_token").expect("a refresh token"),
        response: serde_json::to_vec(&json).expect("JSON"),
        verifier,
    }
}

/// Reads and checks a token response as a TEST 2 iteration does: the fields, then both tokens.
fn check(canned: &Canned) -> bool {
    let tokens: TokenResponse = serde_json::from_slice(&canned.response).unwrap_or_default();
    let access = tokens
        .access_token
        .as_deref()
        .is_some_and(|token| canned.verifier.verify_access_token(token).is_ok());
    let id = tokens
        .id_token
        .as_deref()
        .is_some_and(|token| canned.verifier.verify_id_token(token).is_ok());
    access && id && tokens.refresh_token.is_some()
}

/// Records one iteration as a VU does: its request, its checks, the timeline, the iteration.
fn record(recorder: &mut Recorder) {
    let latency = Duration::from_micros(900);
    recorder.record_request(
        Endpoint::Token,
        RequestOutcome::Status(200),
        latency,
        Duration::from_micros(600),
    );
    recorder
        .timeline
        .record_request(3, RequestOutcome::Status(200));
    for check in [
        Check::RequiredFields,
        Check::TokenTypeBearer,
        Check::RefreshTokenRotated,
        Check::AccessTokenVerifies,
        Check::IdTokenVerifies,
    ] {
        recorder.record_check(check, true);
    }
    recorder.record_iteration(true, latency);
    recorder.record_generator_lag(Duration::from_micros(40));
    recorder.timeline.record_iteration(3, true, latency);
    recorder
        .timeline
        .record_generator_lag(3, Duration::from_micros(40));
}

fn iteration(criterion: &mut Criterion) {
    let canned = canned();
    assert!(check(&canned), "the canned response passes its checks");
    let client = ClientCredentials::default();
    let mut group = criterion.benchmark_group("test2_iteration_client_side");
    group.bench_function("build_request", |bench| {
        bench.iter(|| {
            let headers = token_request_headers(black_box(&client));
            let body = refresh_grant_body(&client, black_box(&canned.refresh_token));
            black_box((headers, body))
        });
    });
    group.bench_function("read_and_verify_response", |bench| {
        bench.iter(|| black_box(check(black_box(&canned))));
    });
    let mut recorder = Recorder::new();
    group.bench_function("record", |bench| {
        bench.iter(|| record(black_box(&mut recorder)));
    });
    group.bench_function("whole", |bench| {
        bench.iter(|| {
            let body = refresh_grant_body(&client, black_box(&canned.refresh_token));
            black_box(body);
            black_box(check(&canned));
            record(&mut recorder);
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = iteration
}
criterion_main!(benches);
