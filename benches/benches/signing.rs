//! Access-token signing and validation per algorithm: mock-idp's own code beside the raw
//! aws-lc-rs primitive on the same signing input and key, so one run gives the overhead ratio.
//!
//! Lines per group (`<alg>/<sign|validate>/<line>`): `mock-idp` (Minter), `raw` (the primitive
//! alone), `raw+json` (the primitive plus the JSON and base64url work a JWT needs, written
//! directly) and `jsonwebtoken-stock` (the stock provider, which parses the key on every call);
//! validate also has `jsonwebtoken-decode`, a diagnostic isolating `Minter`'s own overhead.
//! `cargo run -p benches --bin bench-ratios` prints the ratios afterwards.

use std::hint::black_box;
use std::time::Duration;

use benches::{ALGORITHMS, SigningFixture, names};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use mock_idp::jwt::AccessClaims;

fn signing(criterion: &mut Criterion) {
    // Every key is made before any other jsonwebtoken call, so that mock-idp's cached provider
    // is the one installed; `SigningFixture::new` checks it.
    let fixtures: Vec<SigningFixture> = ALGORITHMS
        .into_iter()
        .map(|alg| SigningFixture::new(alg).expect("a signing fixture for every algorithm"))
        .collect();

    for fixture in &fixtures {
        let alg = fixture.key.alg();
        let algorithm = alg.algorithm();
        let mut group = criterion.benchmark_group(alg.as_str());
        // BenchmarkId, not a "sign/raw" string: criterion turns '/' in a name into '_', and
        // `ratio_report` reads `<alg>/<operation>/<line>` directories.
        let sign = |line: &str| BenchmarkId::new(names::SIGN, line);
        let validate = |line: &str| BenchmarkId::new(names::VALIDATE, line);

        group.bench_function(sign(names::MOCK_IDP), |bencher| {
            bencher.iter(|| {
                fixture
                    .minter
                    .sign_access(black_box(&fixture.claims))
                    .expect("mock-idp signs")
            });
        });
        let mut signature = Vec::with_capacity(512);
        group.bench_function(sign(names::RAW), |bencher| {
            bencher.iter(|| {
                fixture
                    .raw_signer
                    .sign(black_box(&fixture.signing_input), &mut signature)
                    .expect("aws-lc-rs signs");
            });
        });
        group.bench_function(sign(names::RAW_WITH_JSON), |bencher| {
            bencher.iter(|| {
                fixture
                    .raw_encode(black_box(&fixture.claims), &mut signature)
                    .expect("aws-lc-rs signs")
            });
        });
        group.bench_function(sign(names::STOCK), |bencher| {
            bencher.iter(|| {
                let signer =
                    (DEFAULT_PROVIDER.signer_factory)(&algorithm, fixture.key.encoding_key())
                        .expect("the stock provider parses the key");
                signer
                    .try_sign(black_box(&fixture.signing_input))
                    .expect("the stock provider signs")
            });
        });

        group.bench_function(validate(names::MOCK_IDP), |bencher| {
            bencher.iter(|| {
                fixture
                    .minter
                    .verify_access(black_box(&fixture.token))
                    .expect("mock-idp accepts its own token")
            });
        });
        group.bench_function(validate(names::RAW), |bencher| {
            bencher.iter(|| {
                assert!(
                    fixture
                        .raw_verifier
                        .verify(black_box(&fixture.signing_input), &fixture.signature)
                );
            });
        });
        group.bench_function(validate(names::RAW_WITH_JSON), |bencher| {
            bencher.iter(|| {
                fixture
                    .raw_decode(black_box(&fixture.token))
                    .expect("the raw path accepts mock-idp's token")
            });
        });
        let mut prebuilt = fixture.key.validation();
        prebuilt.set_issuer(&[benches::ISSUER]);
        prebuilt.set_required_spec_claims(&["exp", "iss", "sub"]);
        group.bench_function(validate(names::JWT_DECODE), |bencher| {
            bencher.iter(|| {
                jsonwebtoken::decode::<AccessClaims>(
                    black_box(&fixture.token),
                    fixture.key.decoding_key(),
                    &prebuilt,
                )
                .expect("jsonwebtoken accepts mock-idp's token")
            });
        });
        group.bench_function(validate(names::STOCK), |bencher| {
            bencher.iter(|| {
                let verifier =
                    (DEFAULT_PROVIDER.verifier_factory)(&algorithm, fixture.key.decoding_key())
                        .expect("the stock provider parses the key");
                verifier
                    .verify(black_box(&fixture.signing_input), &fixture.signature)
                    .expect("the stock provider accepts mock-idp's signature");
            });
        });
        group.finish();
    }
}

/// Short enough that the whole `cargo bench -p benches` takes a few minutes on two cores;
/// criterion's own `--quick` and `--measurement-time` flags still override it.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        // The SVG plots take longer to draw than some benchmarks take to run.
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = signing
}
criterion_main!(benches);
