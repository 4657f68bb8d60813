//! `private_key_jwt` (RFC 7523) on both sides, per algorithm: loadgen signing a fresh assertion
//! for a request (`loadgen-sign`) and mock-idp verifying it, its claims and its `jti` once
//! (`mock-idp-verify`), beside the raw aws-lc-rs signature of the same size of input (`raw-sign`).
//! What an authenticated token request costs the client and the provider above a client secret.

use std::hint::black_box;
use std::time::Duration;

use benches::RawSigner;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use loadgen::protocol::client_auth::{AssertionAudience, ClientKey};
use loadgen::protocol::token_signing::SigningAlgorithm;
use mock_idp::client_assertion::{
    AssertionOutcome, ClientAssertions, ClientJwks, write_client_key,
};
use mock_idp::keys::{SigningAlg, SigningKey};

const CLIENT: &str = "loadtest-client";
const TOKEN_URL: &str = "http://bench.test/token";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn client_assertion(criterion: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (made, algorithm) in [
        (SigningAlg::Rs256, SigningAlgorithm::Rs256),
        (SigningAlg::Es256, SigningAlgorithm::Es256),
    ] {
        let directory = dir.path().join(made.as_str());
        let (key_path, jwks_path, kid) = write_client_key(&directory, made).expect("a client key");
        let key = ClientKey::from_pem_file(
            &key_path,
            algorithm,
            Some(kid),
            AssertionAudience::TokenEndpoint,
        )
        .expect("loadgen reads the key");
        let jwks = ClientJwks::parse(&std::fs::read_to_string(jwks_path).expect("the JWKS"))
            .expect("a JWKS");
        // Remembers every jti of the run, as a provider does until they expire.
        let provider = ClientAssertions::new(CLIENT, &jwks, vec![TOKEN_URL.into()], 50_000_000);
        let raw = RawSigner::new(
            &SigningKey::from_pem_file(made, &key_path).expect("mock-idp reads the key"),
        )
        .expect("the raw signer");
        let sample = key.assertion(CLIENT, TOKEN_URL).expect("an assertion");
        let signing_input = sample
            .rsplit_once('.')
            .map(|(input, _)| input.to_owned())
            .expect("a JWS");
        assert_eq!(
            provider.verify(&sample, now()).0,
            AssertionOutcome::Accepted
        );

        let mut group = criterion.benchmark_group(format!("client_assertion/{}", made.as_str()));
        group.bench_function("loadgen-sign", |bench| {
            bench.iter(|| black_box(key.assertion(CLIENT, black_box(TOKEN_URL))));
        });
        group.bench_function("raw-sign", |bench| {
            let mut signature = Vec::new();
            bench.iter(|| {
                raw.sign(black_box(signing_input.as_bytes()), &mut signature)
                    .expect("signed");
                black_box(&signature);
            });
        });
        group.bench_function("mock-idp-verify", |bench| {
            bench.iter_batched(
                || key.assertion(CLIENT, TOKEN_URL).expect("an assertion"),
                |assertion| {
                    let (outcome, _) = provider.verify(&assertion, now());
                    assert_eq!(outcome, AssertionOutcome::Accepted);
                },
                BatchSize::SmallInput,
            );
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = client_assertion
}
criterion_main!(benches);
