//! Client authentication under load against mock-idp: `private_key_jwt` (RFC 7523) in seeding,
//! TEST 1, TEST 2 and the client-credentials scenario, each request with a fresh assertion the
//! provider accepts once; `client_secret_post` beside it.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{assert_clean, check, metric, run_config, spawn_idp_with, steady};
use loadgen::protocol::client_auth::{AssertionAudience, ClientAuth, ClientKey};
use loadgen::protocol::client_credentials::ClientCredentials;
use loadgen::protocol::machine_clients::MachineClients;
use loadgen::protocol::token_signing::SigningAlgorithm;
use loadgen::seeding::seeder::SeedConfig;
use loadgen::{ScenarioKind, Seeds, stop_signal};
use mock_idp::client_assertion::ClientJwks;
use mock_idp::keys::{SigningAlg, SigningKey};

/// A P-256 key written as PEM in `dir`, and the JWKS mock-idp registers for the client.
fn client_key(dir: &Path) -> (std::path::PathBuf, ClientJwks, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
    let path = dir.join("client-key.pem");
    std::fs::write(&path, pair.serialize_pem()).expect("the key written");
    let key = SigningKey::from_pem_file(SigningAlg::Es256, &path).expect("mock-idp reads it");
    let jwks = ClientJwks::parse(key.jwks_json().as_ref()).expect("its JWKS");
    (path, jwks, key.kid().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_seeds_and_runs_with_a_fresh_assertion_per_request() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (path, jwks, kid) = client_key(dir.path());
    let idp = spawn_idp_with(|config| config.client_jwks = Some(jwks))
        .await
        .expect("mock-idp starts");
    let key = ClientKey::from_pem_file(
        &path,
        SigningAlgorithm::Es256,
        Some(kid),
        AssertionAudience::TokenEndpoint,
    )
    .expect("loadgen reads the key");
    let client = ClientCredentials {
        client_secret: None,
        auth: ClientAuth::PrivateKeyJwt {
            key: Arc::new(key),
            audience: None,
        },
        ..ClientCredentials::default()
    };
    let families = 4;
    let seeds = loadgen::seeding::seeder::make_seeds(&SeedConfig {
        codes: 30,
        refresh_families: families,
        client: client.clone(),
        concurrency: 4,
        ..SeedConfig::new(idp.base_url())
    })
    .await
    .expect("seeding with assertions");

    for (scenario, rate, vus) in [
        (ScenarioKind::RefreshStorm, 40.0, families),
        (ScenarioKind::TokenCode, 20.0, 4),
        (ScenarioKind::ClientCredentials, 20.0, 4),
    ] {
        let mut config = run_config(scenario, &idp.base_url(), steady(rate, 1.0), vus);
        config.client = client.clone();
        if scenario == ScenarioKind::ClientCredentials {
            config.machine_clients = MachineClients::run_client("");
        }
        let (_handle, stop) = stop_signal();
        let result = loadgen::run(&config, seeds.clone(), stop)
            .await
            .expect("the run");
        assert_clean(&result);
        assert_eq!(check(&result, "access_token_verifies"), (rate as u64, 0));
    }
    // Every token request (the seeder's too) carried its own assertion, accepted once: none was
    // ever sent twice.
    let token_requests = metric(&idp, "mock_idp_token_requests_total{");
    assert!(token_requests >= 80 + families as u64, "{token_requests}");
    assert_eq!(
        metric(
            &idp,
            "mock_idp_client_assertions_total{outcome=\"accepted\"}"
        ),
        token_requests
    );
    assert_eq!(
        metric(
            &idp,
            "mock_idp_client_assertions_total{outcome=\"replayed\"}"
        ),
        0
    );
    assert_eq!(
        metric(
            &idp,
            "mock_idp_client_assertions_total{outcome=\"refused\"}"
        ),
        0
    );
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_post_runs_clean() {
    let idp = spawn_idp_with(|_| {}).await.expect("mock-idp starts");
    let mut config = run_config(
        ScenarioKind::ClientCredentials,
        &idp.base_url(),
        steady(20.0, 1.0),
        2,
    );
    config.client = ClientCredentials {
        auth: ClientAuth::Post,
        ..ClientCredentials::default()
    };
    config.machine_clients = MachineClients::run_client("");
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop)
        .await
        .expect("the run");
    assert_clean(&result);
    assert_eq!(check(&result, "access_token_client"), (20, 0));
    idp.shutdown().await;
}
