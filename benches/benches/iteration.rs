//! The client side of one TEST 1, TEST 2 and TEST 3 iteration, against canned answers of
//! mock-idp's: building the requests, reading and checking the answers (both tokens verified
//! against the JWKS; TEST 3's redirect judged for code, `state` and `iss`), and recording them.
//! Each test's `whole` line stands beside its `signatures` line, the raw aws-lc-rs verification of
//! the two signatures no generator can skip: what is above that line is loadgen's own cost per
//! iteration, a figure `cargo xtask perf` tracks (read back by `bench-ratios`). TEST 2's parts are
//! measured alone too.

use std::hint::black_box;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use benches::{
    ISSUER, RawVerifier, authorization_code, authorization_code_request, iteration_names,
    json_string, login, token_response_json,
};
use criterion::{Criterion, criterion_group, criterion_main};
use loadgen::http::address::Address;
use loadgen::protocol::authorization::{AuthorizationRequest, IssuerExpectation};
use loadgen::protocol::client_credentials::ClientCredentials;
use loadgen::protocol::token_request::{
    TokenResponse, code_grant_body, refresh_grant_body, token_request_headers,
};
use loadgen::protocol::token_verifier::TokenVerifier;
use loadgen::results::names::{Check, Endpoint, RequestOutcome};
use loadgen::results::recorder::Recorder;
use mock_idp::keys::{SigningAlg, SigningKey};
use mock_idp::{App, Config};

/// What one iteration's client side reads: a real token response of mock-idp's, and the
/// verifier of its JWKS.
struct Canned {
    response: Vec<u8>,
    code: String,
    refresh_token: String,
    verifier: TokenVerifier,
    /// The signing input and signature of the access token and of the ID token.
    signatures: [(Vec<u8>, Vec<u8>); 2],
    raw: RawVerifier,
}

fn canned() -> Canned {
    let key = SigningKey::generate(SigningAlg::Rs256).expect("an RS256 key");
    let jwks = key.jwks_json().to_string();
    let raw = RawVerifier::new(&key).expect("mock-idp's public key");
    let app = App::with_key(Config::default(), ISSUER, key);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime");
    let (code, json) = runtime.block_on(async {
        let cookie = login(&app).await.expect("the test user logs in");
        let code = authorization_code(&app, &cookie)
            .await
            .expect("/authorize issues a code");
        let response = app.handle(authorization_code_request(&code)).await;
        let json = token_response_json(response)
            .await
            .expect("the code is redeemed");
        (code, json)
    });
    let signature_of = |member: &str| {
        let token = json_string(&json, member).expect("a token");
        let (signing_input, signature) = token.rsplit_once('.').expect("a JWS");
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .expect("a base64url signature");
        (signing_input.as_bytes().to_vec(), signature)
    };
    let signatures = [signature_of("access_token"), signature_of("id_token")];
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
        code,
        verifier,
        signatures,
        raw,
    }
}

/// The floor: both signatures verified with the raw primitive, nothing else.
fn signatures(canned: &Canned) -> bool {
    canned
        .signatures
        .iter()
        .all(|(signing_input, signature)| canned.raw.verify(signing_input, signature))
}

/// Reads and checks a token response as every test's iteration does: the fields, then both
/// tokens.
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

/// Records one request as a VU does: its endpoint and the timeline.
fn record_request(recorder: &mut Recorder, endpoint: Endpoint) {
    recorder.record_request(
        endpoint,
        RequestOutcome::Status(200),
        Duration::from_micros(900),
        Duration::from_micros(600),
    );
    recorder
        .timeline
        .record_request(3, RequestOutcome::Status(200));
}

/// Records one token iteration as a VU does: its request, its checks, the timeline, the
/// iteration.
fn record(recorder: &mut Recorder) {
    let latency = Duration::from_micros(900);
    record_request(recorder, Endpoint::Token);
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

fn test1(criterion: &mut Criterion, canned: &Canned, recorder: &mut Recorder) {
    let client = ClientCredentials::default();
    let mut group = criterion.benchmark_group(iteration_names::TEST1_GROUP);
    group.bench_function(iteration_names::SIGNATURES, |bench| {
        bench.iter(|| black_box(signatures(black_box(canned))));
    });
    group.bench_function(iteration_names::WHOLE, |bench| {
        bench.iter(|| {
            let body = code_grant_body(
                &client,
                black_box(&canned.code),
                &client.redirect_uri,
                "bench-verifier-0123456789abcdefghijklmnopqrs",
            );
            black_box(body);
            black_box(check(canned));
            record(recorder);
        });
    });
    group.finish();
}

fn test2(criterion: &mut Criterion, canned: &Canned, recorder: &mut Recorder) {
    let client = ClientCredentials::default();
    let mut group = criterion.benchmark_group(iteration_names::TEST2_GROUP);
    group.bench_function(iteration_names::SIGNATURES, |bench| {
        bench.iter(|| black_box(signatures(black_box(canned))));
    });
    group.bench_function("build_request", |bench| {
        bench.iter(|| {
            let headers = token_request_headers(black_box(&client));
            let body = refresh_grant_body(&client, black_box(&canned.refresh_token));
            black_box((headers, body))
        });
    });
    group.bench_function("read_and_verify_response", |bench| {
        bench.iter(|| black_box(check(black_box(canned))));
    });
    group.bench_function("record", |bench| {
        bench.iter(|| record(black_box(recorder)));
    });
    group.bench_function(iteration_names::WHOLE, |bench| {
        bench.iter(|| {
            let body = refresh_grant_body(&client, black_box(&canned.refresh_token));
            black_box(body);
            black_box(check(canned));
            record(recorder);
        });
    });
    group.finish();
}

/// TEST 3's client side: a fresh authorization request (random `state`, `nonce`, PKCE) and its
/// address, the provider's redirect judged, the code redeemed and the tokens checked. The
/// redirect is canned for one request (its `state`), judged after each fresh request is built.
fn test3(criterion: &mut Criterion, canned: &Canned, recorder: &mut Recorder) {
    let client = ClientCredentials::default();
    let authorize = Address::parse(&format!("{ISSUER}/authorize")).expect("a URL");
    let request = AuthorizationRequest::fresh();
    let mut redirect = http::HeaderMap::new();
    redirect.insert(
        http::header::LOCATION,
        http::HeaderValue::from_str(&format!(
            "{}?code={}&state={}&iss={}",
            client.redirect_uri,
            canned.code,
            request.state,
            form_urlencoded::byte_serialize(ISSUER.as_bytes()).collect::<String>()
        ))
        .expect("a header value"),
    );
    let issuer = IssuerExpectation {
        issuer: ISSUER,
        required: true,
    };
    let judged = request.code_from(
        http::StatusCode::FOUND,
        &redirect,
        &[],
        &client.redirect_uri,
        issuer,
    );
    assert_eq!(judged.as_deref(), Ok(canned.code.as_str()));
    let mut group = criterion.benchmark_group(iteration_names::TEST3_GROUP);
    group.bench_function(iteration_names::SIGNATURES, |bench| {
        bench.iter(|| black_box(signatures(black_box(canned))));
    });
    group.bench_function(iteration_names::WHOLE, |bench| {
        bench.iter(|| {
            let fresh = AuthorizationRequest::fresh();
            black_box(fresh.address(&authorize, &client));
            record_request(recorder, Endpoint::Authorize);
            let code = request.code_from(
                http::StatusCode::FOUND,
                black_box(&redirect),
                &[],
                &client.redirect_uri,
                issuer,
            );
            let body = code_grant_body(
                &client,
                code.as_deref().unwrap_or_default(),
                &client.redirect_uri,
                &fresh.code_verifier,
            );
            black_box(body);
            black_box(check(canned));
            record(recorder);
        });
    });
    group.finish();
}

fn iteration(criterion: &mut Criterion) {
    let canned = canned();
    assert!(check(&canned), "the canned response passes its checks");
    assert!(
        signatures(&canned),
        "the raw primitive verifies both tokens"
    );
    let mut recorder = Recorder::new();
    test1(criterion, &canned, &mut recorder);
    test2(criterion, &canned, &mut recorder);
    test3(criterion, &canned, &mut recorder);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = iteration
}
criterion_main!(benches);
