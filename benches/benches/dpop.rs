//! DPoP (RFC 9449) proofs on both sides: loadgen signing a fresh proof for a request
//! (`loadgen-sign`, ES256 with its `jwk` in the header) beside a raw aws-lc-rs ES256 signature
//! (`raw-sign`), and mock-idp verifying one for its request, taking its key's thumbprint and
//! remembering its `jti` (`mock-idp-verify`): what binding tokens costs per request.

use std::hint::black_box;
use std::time::Duration;

use benches::RawSigner;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, Method};
use loadgen::protocol::dpop::{DPOP, DpopKey};
use mock_idp::dpop::{Dpop, ProofOutcome, ProofRequest, ProofSite};
use mock_idp::keys::{SigningAlg, SigningKey};

const TOKEN_URL: &str = "http://bench.test/token";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn dpop(criterion: &mut Criterion) {
    let key = DpopKey::generate().expect("a DPoP key");
    // Remembers every proof of the run, as a provider does within their window.
    let provider = Dpop::new(50_000_000, false);
    let request = ProofRequest {
        method: &Method::POST,
        url: TOKEN_URL,
        access_token: None,
        site: ProofSite::TokenEndpoint,
    };
    let headers_with = |proof| {
        let mut headers = HeaderMap::new();
        headers.insert(DPOP, proof);
        headers
    };
    let sample = key
        .proof(&Method::POST, TOKEN_URL, None, None)
        .expect("a proof");
    let signing_input = sample
        .to_str()
        .ok()
        .and_then(|proof| proof.rsplit_once('.'))
        .map(|(input, _)| input.to_owned())
        .expect("a JWS");
    assert_eq!(
        provider.verify(&headers_with(sample), request, now()).0,
        Some(ProofOutcome::Accepted)
    );
    let raw = RawSigner::new(&SigningKey::generate(SigningAlg::Es256).expect("an ES256 key"))
        .expect("the raw signer");

    let mut group = criterion.benchmark_group("dpop/ES256");
    group.bench_function("loadgen-sign", |bench| {
        bench.iter(|| black_box(key.proof(&Method::POST, black_box(TOKEN_URL), None, None)));
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
            || {
                headers_with(
                    key.proof(&Method::POST, TOKEN_URL, None, None)
                        .expect("a proof"),
                )
            },
            |headers| {
                let (outcome, _) = provider.verify(&headers, request, now());
                assert_eq!(outcome, Some(ProofOutcome::Accepted));
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = dpop
}
criterion_main!(benches);
