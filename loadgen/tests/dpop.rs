//! DPoP (RFC 9449) under load against mock-idp: every VU binds its tokens to a key of its own,
//! answers the provider's nonce challenge once, and presents its bound token at userinfo with a
//! proof; a public client's refresh families stay bound to the VU that refreshes them.

mod common;

use common::{assert_clean, check, make_seeds, metric, run_config, spawn_idp_with, steady};
use loadgen::protocol::client_credentials::ClientCredentials;
use loadgen::seeding::seeder::SeedConfig;
use loadgen::{ScenarioKind, stop_signal};

/// TEST 1, 2 and 3 and userinfo with `--dpop` against a provider that requires nonces: every
/// iteration passes, every token is bound to its VU's key (`dpop_bound`), each VU is challenged
/// for a nonce once and then keeps up with it, and no proof is ever refused or replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_binds_its_tokens_and_answers_the_nonce_challenge() {
    let idp = spawn_idp_with(|config| config.dpop_nonce = true)
        .await
        .expect("mock-idp starts");
    let vus = 3;
    let seeds = make_seeds(&idp.base_url(), 30, vus, vus)
        .await
        .expect("seeding (without DPoP)");
    let mut iterations = 0;
    // Userinfo's VUs meet the token endpoint (and its nonce) only in their unmeasured set-up.
    for (scenario, checked_responses, measured_token_requests) in [
        (ScenarioKind::TokenCode, 20, true),
        (ScenarioKind::RefreshStorm, 20, true),
        (ScenarioKind::FullOidc, 20, true),
        (ScenarioKind::Userinfo, 0, false),
    ] {
        let mut config = run_config(scenario, &idp.base_url(), steady(20.0, 1.0), vus);
        config.dpop = true;
        let (_handle, stop) = stop_signal();
        let result = loadgen::run(&config, seeds.clone(), stop)
            .await
            .expect("the run");
        assert_clean(&result);
        assert_eq!(
            check(&result, "dpop_bound"),
            (checked_responses, 0),
            "{scenario:?}"
        );
        assert_eq!(check(&result, "token_type_bearer"), (0, 0), "{scenario:?}");
        // Each run's VUs are new clients, challenged once each at their first measured token
        // request; the result says so in words.
        let challenges = result.requests.by_status.get("400").copied().unwrap_or(0);
        let noted = result.notes.iter().any(|note| {
            note.starts_with(&format!(
                "{challenges} requests were answered with a DPoP nonce challenge"
            ))
        });
        if measured_token_requests {
            assert!(
                (1..=vus as u64).contains(&challenges),
                "{scenario:?}: {challenges}"
            );
            assert!(noted, "{scenario:?}: {:#?}", result.notes);
        } else {
            assert_eq!(challenges, 0, "{scenario:?}");
        }
        iterations += result.iterations.completed;
    }
    assert_eq!(iterations, 80);
    let proofs = |outcome: &str| {
        metric(
            &idp,
            &format!("mock_idp_dpop_proofs_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(proofs("refused"), 0);
    assert_eq!(proofs("replayed"), 0);
    // Each run's VUs are new clients: each is challenged once, at its first token request.
    assert!(
        proofs("nonce_required") >= 4,
        "{}",
        proofs("nonce_required")
    );
    assert!(
        proofs("nonce_required") <= 4 * vus as u64,
        "{}",
        proofs("nonce_required")
    );
    // Userinfo's proofs (one per iteration, 20 in TEST 3 and 20 in the userinfo run) came with
    // the token requests' ones.
    assert!(proofs("accepted") >= 100, "{}", proofs("accepted"));
    idp.shutdown().await;
}

/// A public client's refresh family is bound to the key of the VU that first refreshes it with
/// a proof, and every later rotation proves the same key: TEST 2 runs clean with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_clients_families_stay_bound_to_their_vus() {
    let idp = spawn_idp_with(|_| {}).await.expect("mock-idp starts");
    let public = ClientCredentials {
        client_id: "loadtest-public".into(),
        client_secret: None,
        ..ClientCredentials::default()
    };
    let families = 3;
    let seeds = loadgen::seeding::seeder::make_seeds(&SeedConfig {
        refresh_families: families,
        client: public.clone(),
        concurrency: 3,
        ..SeedConfig::new(idp.base_url())
    })
    .await
    .expect("seeding");
    let mut config = run_config(
        ScenarioKind::RefreshStorm,
        &idp.base_url(),
        steady(30.0, 1.0),
        families,
    );
    config.client = public;
    config.dpop = true;
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await.expect("the run");
    assert_clean(&result);
    assert_eq!(check(&result, "dpop_bound"), (30, 0));
    idp.shutdown().await;
}

/// The `api` scenario with `--dpop`: each VU presents its provider token as a DPoP token with a
/// fresh proof per call (to mock-idp's userinfo here, which holds the token to the key), having
/// got it through its own family with a proof too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_scenario_presents_bound_tokens_with_a_proof_per_call() {
    use loadgen::RunConfig;
    use loadgen::run::scenario::api::settings::{ApiSettings, TokenSource};

    let idp = spawn_idp_with(|_| {}).await.expect("mock-idp starts");
    let seeds = make_seeds(&idp.base_url(), 0, 3, 0)
        .await
        .expect("a family per VU");
    let settings = ApiSettings {
        routes: vec![
            format!("{}/userinfo", idp.base_url())
                .parse()
                .expect("a route"),
        ],
        method: http::Method::GET,
        body: None,
        expect: Some(http::StatusCode::OK),
        token_source: TokenSource::Oidc,
        refresh_before: std::time::Duration::from_secs(60),
        user_prefix: "user-loadtest-".into(),
    };
    let mut config = RunConfig {
        api: Some(settings),
        ..run_config(ScenarioKind::Api, &idp.base_url(), steady(15.0, 1.0), 3)
    };
    config.dpop = true;
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await.expect("the run");
    assert_clean(&result);
    assert_eq!(
        result.endpoints["api"].requests.by_status.get("200"),
        Some(&15)
    );
    // 15 calls and the 3 VUs' first tokens, each with a proof of its own; none refused.
    let proofs = |outcome: &str| {
        metric(
            &idp,
            &format!("mock_idp_dpop_proofs_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(proofs("accepted"), 18);
    assert_eq!(proofs("refused") + proofs("replayed"), 0);
    idp.shutdown().await;
}
