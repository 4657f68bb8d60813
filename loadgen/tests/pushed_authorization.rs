//! Pushed authorization requests (RFC 9126) under load against mock-idp: seeding, `login` and
//! TEST 3 push every authorization request and send `/authorize` only its `request_uri`; the push
//! is measured as an endpoint of its own.

mod common;

use common::{assert_clean, metric, run_config, spawn_idp, steady};
use loadgen::protocol::client_credentials::ClientCredentials;
use loadgen::seeding::seeder::SeedConfig;
use loadgen::{ScenarioKind, Seeds, stop_signal};

fn pushing_client() -> ClientCredentials {
    ClientCredentials {
        pushes_requests: true,
        ..ClientCredentials::default()
    }
}

/// Seeding signs its users in through pushed requests; TEST 3 and `login` push each iteration's
/// request (a `par` request per iteration, answered 201) and run clean; mock-idp counted every
/// push, and each `request_uri` was used once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_login_and_test_3_push_every_authorization_request() {
    let idp = spawn_idp().await.expect("mock-idp starts");
    let vus = 3;
    let seeds = loadgen::seeding::seeder::make_seeds(&SeedConfig {
        codes: 6,
        sessions: vus,
        client: pushing_client(),
        concurrency: 3,
        ..SeedConfig::new(idp.base_url())
    })
    .await
    .expect("seeding with pushed requests");
    let pushed_while_seeding = metric(
        &idp,
        "mock_idp_http_requests_total{endpoint=\"par\",status=\"201\"}",
    );
    assert!(pushed_while_seeding >= 6, "{pushed_while_seeding}");

    for (scenario, seeds) in [
        (ScenarioKind::FullOidc, seeds),
        (ScenarioKind::Login, Seeds::default()),
    ] {
        let mut config = run_config(scenario, &idp.base_url(), steady(15.0, 1.0), vus);
        config.client = pushing_client();
        config.users.count = 20;
        let (_handle, stop) = stop_signal();
        let result = loadgen::run(&config, seeds, stop).await.expect("the run");
        assert_clean(&result);
        let pushes = &result.endpoints["par"].requests;
        assert_eq!(pushes.total, 15, "{scenario:?}");
        assert_eq!(pushes.by_status.get("201"), Some(&15), "{scenario:?}");
    }
    assert_eq!(
        metric(
            &idp,
            "mock_idp_http_requests_total{endpoint=\"par\",status=\"201\"}"
        ),
        pushed_while_seeding + 30
    );
    // No request_uri was refused at /authorize: each was used once, by its own iteration.
    assert_eq!(
        metric(
            &idp,
            "mock_idp_http_requests_total{endpoint=\"authorize\",status=\"400\"}"
        ),
        0
    );
    idp.shutdown().await;
}
