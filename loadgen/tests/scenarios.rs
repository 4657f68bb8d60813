//! The scenarios against the in-process mock IdP: seeding, TEST 1-3, theft detection, the other
//! endpoints, refusal of too few seeds, and merging shards.

mod common;

use common::{assert_clean, check, make_seeds, run_config, spawn_idp, spawn_idp_with, steady};
use loadgen::protocol::discovery::DiscoveryError;
use loadgen::protocol::machine_clients::MachineClients;
use loadgen::results::result::RunResult;
use loadgen::run::engine::RunError;
use loadgen::{ScenarioKind, Seeds, Verdict, merge_results, stop_signal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_makes_the_files_in_the_documented_format() {
    let idp = spawn_idp().await.unwrap();
    let seeds = make_seeds(&idp.base_url(), 50, 4, 3).await.unwrap();
    assert_eq!(seeds.authorization_codes.len(), 50);
    assert_eq!(seeds.refresh_tokens.len(), 4);
    assert_eq!(seeds.sessions.len(), 3);
    let codes: std::collections::HashSet<_> = seeds
        .authorization_codes
        .iter()
        .map(|seed| &seed.code)
        .collect();
    assert_eq!(codes.len(), 50, "codes are unique");
    let users: Vec<_> = seeds
        .refresh_tokens
        .iter()
        .map(|seed| seed.user_id.as_str())
        .collect();
    // Families on users of their own, after the sessions' and codes' users, so that a code
    // redeemed in TEST 1 or TEST 3 never replaces a family (at providers that keep one per user).
    assert_eq!(
        users,
        [
            "user-loadtest-00004",
            "user-loadtest-00005",
            "user-loadtest-00006",
            "user-loadtest-00007"
        ]
    );
    let session_users: Vec<_> = seeds
        .sessions
        .iter()
        .map(|seed| seed.user_id.as_str())
        .collect();
    assert_eq!(
        session_users,
        [
            "user-loadtest-00001",
            "user-loadtest-00002",
            "user-loadtest-00003"
        ]
    );
    assert!(
        seeds
            .authorization_codes
            .iter()
            .all(|seed| session_users.contains(&seed.user_id.as_str()))
    );
    assert!(seeds.sessions[0].cookie.starts_with("mock_idp_session="));
    let first = &seeds.authorization_codes[0];
    assert_eq!(first.redirect_uri, "http://127.0.0.1:3000/callback");
    assert_eq!(first.client_id, "loadtest-client");
    assert_eq!(first.code_verifier.len(), 64);

    let temporary = tempfile::tempdir().unwrap();
    let directory = temporary.path().join("seeds");
    seeds.save(&directory).unwrap();
    let raw: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(directory.join("authorization_codes.json")).unwrap(),
    )
    .unwrap();
    let keys: Vec<_> = raw[0].as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "client_id",
            "code",
            "code_verifier",
            "minted_at",
            "nonce",
            "redirect_uri",
            "subject",
            "user_id"
        ]
    );
    // Each seed records the subject of its user, learnt from the ID token of its sign-in
    // (mock-idp's subject is the user name).
    assert_eq!(first.subject.as_deref(), Some(first.user_id.as_str()));
    for family in &seeds.refresh_tokens {
        assert_eq!(family.subject.as_deref(), Some(family.user_id.as_str()));
    }
    assert_eq!(
        seeds.sessions[2].subject.as_deref(),
        Some("user-loadtest-00003")
    );
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_fails_with_the_idps_error_text() {
    let idp = spawn_idp().await.unwrap();
    let config = loadgen::seeding::seeder::SeedConfig {
        sessions: 1,
        password: "wrong".into(),
        ..loadgen::seeding::seeder::SeedConfig::new(idp.base_url())
    };
    let temporary = tempfile::tempdir().unwrap();
    let directory = temporary.path().join("seeds");
    let error = loadgen::seeding::seeder::seed(&config, &directory)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("login of user-loadtest-00001"), "{text}");
    assert!(text.contains("'Unknown user or wrong password.'"), "{text}");
    assert!(text.contains("check the user name and password"), "{text}");
    assert!(
        !directory.exists(),
        "no files are written when seeding fails"
    );
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_code_uses_each_code_exactly_once() {
    let idp = spawn_idp().await.unwrap();
    let profile = steady(50.0, 2.0);
    let needed = loadgen::seeding::seed_files::required_codes(&profile) as usize;
    let seeds = make_seeds(&idp.base_url(), needed, 0, 0).await.unwrap();
    let config = run_config(ScenarioKind::TokenCode, &idp.base_url(), profile, 8);
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds.clone(), stop).await.unwrap();
    assert_clean(&result);
    assert_eq!(result.iterations.scheduled, 100);
    assert_eq!(result.requests.by_status.get("200"), Some(&100));
    assert_eq!(check(&result, "id_token_nonce"), (100, 0));
    assert_eq!(check(&result, "access_token_verifies"), (100, 0));
    assert_eq!(check(&result, "id_token_verifies"), (100, 0));
    assert_eq!(check(&result, "token_subject"), (100, 0));
    // mock-idp's ID tokens carry every claim these rules judge, so each is counted every time.
    for name in [
        "id_token_at_hash",
        "id_token_azp",
        "id_token_iat",
        "id_token_auth_time",
    ] {
        assert_eq!(check(&result, name), (100, 0), "{name}");
    }
    assert_eq!(result.test_id, "TEST 1");

    // Every code was redeemed once: the same seeds again are all refused.
    let (_handle, stop) = stop_signal();
    let replay = loadgen::run(&config, seeds, stop).await.unwrap();
    assert_eq!(replay.iterations.completed, 0);
    assert_eq!(replay.requests.by_status.get("400"), Some(&100));
    assert_eq!(replay.verdict, Verdict::Fail);
    assert!(
        replay
            .notes
            .iter()
            .any(|note| note.contains("invalid_grant")),
        "{:?}",
        replay.notes
    );
    idp.shutdown().await;
}

/// TEST 1 for 1 s at 10/s on seeds whose codes all record `subject` as their user's.
async fn token_code_with_seeded_subject(subject: Option<&str>) -> anyhow::Result<RunResult> {
    let idp = spawn_idp().await?;
    let profile = steady(10.0, 1.0);
    let needed = loadgen::seeding::seed_files::required_codes(&profile) as usize;
    let mut seeds = make_seeds(&idp.base_url(), needed, 0, 0).await?;
    for code in &mut seeds.authorization_codes {
        code.subject = subject.map(str::to_owned);
    }
    let config = run_config(ScenarioKind::TokenCode, &idp.base_url(), profile, 2);
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await?;
    idp.shutdown().await;
    Ok(result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_for_another_user_than_the_seeds_fail_token_subject() {
    // The seeds say the codes are another user's: every token names the wrong subject.
    let result = token_code_with_seeded_subject(Some("user-loadtest-09999"))
        .await
        .unwrap();
    assert_eq!(check(&result, "token_subject"), (0, 10));
    assert_eq!(result.iterations.failed, 10);
    assert!(
        result.notes.iter().any(|note| note.contains(
            "names subject user-loadtest-00001, but the user who signed in is user-loadtest-09999"
        )),
        "{:#?}",
        result.notes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_without_subjects_run_and_say_token_subject_was_not_checked() {
    let result = token_code_with_seeded_subject(None).await.unwrap();
    assert_clean(&result);
    assert_eq!(check(&result, "token_subject"), (0, 0));
    assert!(
        result
            .notes
            .iter()
            .any(|note| note.starts_with("Some tokens' subjects were not checked")),
        "{:#?}",
        result.notes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_storm_rotates_each_vus_own_family() {
    let idp = spawn_idp().await.unwrap();
    let vus = 6;
    let seeds = make_seeds(&idp.base_url(), 0, vus, 0).await.unwrap();
    let config = run_config(
        ScenarioKind::RefreshStorm,
        &idp.base_url(),
        steady(60.0, 2.0),
        vus,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds.clone(), stop).await.unwrap();
    // Rotation is on and replays revoke a family: any family used by two requests at once, or
    // any stale token sent, would show up as invalid_grant here.
    assert_clean(&result);
    assert_eq!(result.iterations.completed, 120);
    assert_eq!(check(&result, "refresh_token_rotated"), (120, 0));
    assert_eq!(check(&result, "token_subject"), (120, 0));
    assert_eq!(result.test_id, "TEST 2");

    // Each VU kept its family moving: the seeded tokens are all stale now, so a second run
    // from the same seeds is refused on every family.
    let (_handle, stop) = stop_signal();
    let stale = loadgen::run(&config, seeds, stop).await.unwrap();
    assert_eq!(stale.iterations.completed, 0, "{:?}", stale.requests);
    idp.shutdown().await;
}

/// TEST 2 through a connection that loses one refresh answer in `lose_every`, after the
/// provider rotated: the run's figures, and the seeds it wrote back.
async fn refresh_storm_losing_answers(spares: usize) -> anyhow::Result<(RunResult, Seeds, usize)> {
    let vus = 4;
    let idp = common::spawn_answer_losing_idp(20).await?;
    let seeds = make_seeds(&idp.base_url, 0, vus + spares, 0).await?;
    let directory = tempfile::tempdir()?;
    let mut config = run_config(
        ScenarioKind::RefreshStorm,
        &idp.base_url,
        steady(40.0, 2.0),
        vus,
    );
    config.seeds_out = Some(directory.path().to_owned());
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await?;
    let lost = idp.lost.load(std::sync::atomic::Ordering::SeqCst);
    Ok((result, Seeds::load(directory.path())?, lost))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_refresh_answer_fails_one_iteration_and_its_vu_goes_on_with_a_spare_family() {
    let (result, written, lost) = refresh_storm_losing_answers(4).await.unwrap();
    assert_eq!(lost, 4, "the proxy lost every 20th of 80 refresh answers");
    // Each lost answer is one transport error and one failed iteration. The family it left in
    // doubt is never sent again, so the provider never sees a replay and revokes nothing.
    let transport_errors: u64 = result.requests.transport_errors.values().sum();
    assert_eq!(transport_errors, 4, "{:#?}", result.requests);
    assert_eq!(
        result.requests.by_status.get("400"),
        None,
        "{:#?}",
        result.notes
    );
    assert_eq!(result.iterations.failed, 4, "{:#?}", result.notes);
    assert_eq!(result.iterations.completed, 76);
    assert_eq!(
        result.refresh_families,
        Some(loadgen::results::result::FamilyCounts {
            lost_after_transport_error: 4,
            spares_taken: 4,
            spares_left: 0,
        })
    );
    assert!(
        result.notes.iter().any(|note| note
            .starts_with("4 refresh-token families were set aside after a transport error")),
        "{:#?}",
        result.notes
    );
    // The families in doubt are left out of the seeds written back; the 4 the VUs hold at the
    // end remain, and a second run on them starts clean.
    assert_eq!(written.refresh_tokens.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_spare_a_vu_whose_family_is_in_doubt_sends_no_replay_and_says_why() {
    let (result, written, lost) = refresh_storm_losing_answers(0).await.unwrap();
    assert!(lost >= 1, "the proxy lost no answer");
    assert_eq!(
        result.requests.by_status.get("400"),
        None,
        "{:#?}",
        result.notes
    );
    let counts = result
        .refresh_families
        .expect("TEST 2 reports its families");
    assert_eq!(counts.lost_after_transport_error, lost as u64);
    assert_eq!((counts.spares_taken, counts.spares_left), (0, 0));
    assert!(
        result.notes.iter().any(|note| note.contains(
            "lost its family after a transport error and no spare family was left; seed more \
             families than virtual users"
        )),
        "{:#?}",
        result.notes
    );
    assert_eq!(written.refresh_tokens.len(), 4 - lost);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_storm_needs_a_family_per_vu() {
    let idp = spawn_idp().await.unwrap();
    let seeds = make_seeds(&idp.base_url(), 0, 2, 0).await.unwrap();
    let config = run_config(
        ScenarioKind::RefreshStorm,
        &idp.base_url(),
        steady(10.0, 1.0),
        3,
    );
    let (_handle, stop) = stop_signal();
    let error = loadgen::run(&config, seeds, stop).await.unwrap_err();
    assert!(
        matches!(&error, RunError::Seeds(missing) if missing.needed == 3 && missing.available == 2)
    );
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_codes_are_refused_before_any_request() {
    let idp = spawn_idp().await.unwrap();
    let seeds = make_seeds(&idp.base_url(), 5, 0, 0).await.unwrap();
    let config = run_config(
        ScenarioKind::TokenCode,
        &idp.base_url(),
        steady(300.0, 120.0),
        4,
    );
    let (_handle, stop) = stop_signal();
    let error = loadgen::run(&config, seeds, stop).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("needs 36360"), "{text}");
    assert!(text.contains("hold 5"), "{text}");
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_3_is_judged_on_whole_iterations_from_their_intended_start() {
    // Every token request waits 150 ms at the provider: no single request of TEST 3's three is
    // slower than that, but the user waits for all three, and that is what the gate judges.
    let idp = spawn_idp_with(|config| {
        config.faults = vec![mock_idp::Fault {
            kind: mock_idp::FaultKind::Delay(std::time::Duration::from_millis(150)),
            fraction: 1.0,
        }];
    })
    .await
    .unwrap();
    let seeds = make_seeds(&idp.base_url(), 0, 0, 4).await.unwrap();
    let config = run_config(
        ScenarioKind::FullOidc,
        &idp.base_url(),
        steady(10.0, 1.0),
        4,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await.unwrap();
    assert_eq!(result.iterations.completed, 10, "{:#?}", result.notes);
    let authorize = &result.endpoints["authorize"].latency;
    let token = &result.endpoints["token"].latency;
    let userinfo = &result.endpoints["userinfo"].latency;
    assert!(token.p50_ms >= 150.0, "{token:?}");
    assert!(authorize.p50_ms < 150.0, "{authorize:?}");
    let iteration = &result.iteration_duration;
    assert!(
        iteration.min_ms >= authorize.min_ms + token.min_ms + userinfo.min_ms,
        "iteration {iteration:?}"
    );
    for (percentile, observed) in [("p95", iteration.p95_ms), ("p99", iteration.p99_ms)] {
        let outcome = result
            .thresholds
            .iter()
            .find(|outcome| outcome.condition.starts_with(percentile))
            .unwrap();
        assert!(
            outcome
                .condition
                .starts_with(&format!("{percentile} iteration latency < ")),
            "{outcome:?}"
        );
        assert_eq!(outcome.observed, Some(observed));
    }
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_oidc_keeps_sessions_and_checks_state_and_nonce() {
    let idp = spawn_idp().await.unwrap();
    let seeds = make_seeds(&idp.base_url(), 0, 0, 4).await.unwrap();
    let config = run_config(
        ScenarioKind::FullOidc,
        &idp.base_url(),
        steady(20.0, 2.0),
        4,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await.unwrap();
    assert_clean(&result);
    assert_eq!(result.iterations.completed, 40);
    // mock-idp sends an RFC 9207 iss on every redirect, and the check counts each one.
    for name in [
        "state_unchanged",
        "authorization_issuer",
        "authorization_code_issued",
        "id_token_nonce",
        "token_subject",
        "userinfo_subject",
    ] {
        assert_eq!(check(&result, name), (40, 0), "{name}");
    }
    let endpoints: Vec<_> = result.endpoints.keys().map(String::as_str).collect();
    assert_eq!(endpoints, ["authorize", "token", "userinfo"]);
    assert_eq!(
        result.endpoints["authorize"].requests.by_status.get("302"),
        Some(&40)
    );
    assert_eq!(result.test_id, "TEST 3");
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_reuse_detects_theft_and_revokes_the_family() {
    let idp = spawn_idp().await.unwrap();
    let seeds = make_seeds(&idp.base_url(), 0, 10, 0).await.unwrap();
    let config = run_config(
        ScenarioKind::RefreshReuse,
        &idp.base_url(),
        steady(10.0, 1.0),
        2,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await.unwrap();
    assert_clean(&result);
    assert_eq!(check(&result, "replay_rejected"), (10, 0));
    assert_eq!(check(&result, "family_revoked"), (10, 0));
    assert_eq!(
        result.endpoints["token"].requests.by_status.get("400"),
        Some(&20)
    );
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_reuse_fails_when_the_idp_does_not_revoke() {
    // Without rotation the "old" token stays valid: the theft-detection checks must fail.
    let idp = common::spawn_idp_with(|config| config.rotate_refresh_tokens = false)
        .await
        .unwrap();
    let seeds = make_seeds(&idp.base_url(), 0, 3, 0).await.unwrap();
    let config = run_config(
        ScenarioKind::RefreshReuse,
        &idp.base_url(),
        steady(3.0, 1.0),
        1,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await.unwrap();
    assert_eq!(result.verdict, Verdict::Fail);
    assert!(
        check(&result, "refresh_token_rotated").1 > 0 || check(&result, "replay_rejected").1 > 0
    );
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_token_exchange_and_discovery_run_clean() {
    let idp = spawn_idp().await.unwrap();
    let seeds = make_seeds(&idp.base_url(), 0, 0, 3).await.unwrap();
    for scenario in [
        ScenarioKind::Userinfo,
        ScenarioKind::TokenExchange,
        ScenarioKind::Discovery,
    ] {
        let config = run_config(scenario, &idp.base_url(), steady(20.0, 1.0), 3);
        let (_handle, stop) = stop_signal();
        let result = loadgen::run(&config, seeds.clone(), stop).await.unwrap();
        assert_clean(&result);
        assert_eq!(result.iterations.completed, 20, "{}", scenario.name());
    }
    idp.shutdown().await;
}

#[tokio::test]
async fn a_changed_discovery_document_fails_its_check_every_time() {
    // The metadata fetch and the first 10 iterations get the right document, the last 10 a
    // document naming another issuer. VUs compare a response with the last document they
    // verified instead of parsing it again; a changed document must still fail every time.
    let target = common::spawn_issuer_changing_target(11).await.unwrap();
    let config = run_config(
        ScenarioKind::Discovery,
        &target.base_url,
        steady(20.0, 1.0),
        2,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await.unwrap();
    assert_eq!(
        check(&result, "discovery_issuer"),
        (10, 10),
        "{:#?}",
        result.notes
    );
    // A failed check fails its iteration, here as in every scenario.
    assert_eq!(result.iterations.failed, 10, "{:?}", result.iterations);
    assert_eq!(result.verdict, Verdict::Fail);
    assert!(
        result
            .notes
            .iter()
            .any(|note| note.contains("http://elsewhere.example")),
        "{:#?}",
        result.notes
    );
}

#[tokio::test]
async fn an_oversized_body_is_a_transport_error_that_names_its_cause_and_the_run_goes_on() {
    let target = common::spawn_oversized_answering_target().await.unwrap();
    let config = run_config(
        ScenarioKind::Discovery,
        &target.base_url,
        steady(20.0, 1.0),
        2,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await.unwrap();
    assert!(result.complete);
    assert_eq!(
        result.requests.transport_errors.get("body_too_large"),
        Some(&10),
        "{:#?}",
        result.requests
    );
    // The answers after each oversized one are read on a fresh connection and pass.
    assert_eq!(check(&result, "discovery_issuer"), (10, 0));
    assert_eq!(result.iterations.failed, 10);
    assert!(
        result.notes.iter().any(|note| note
            == "First body_too_large error on discovery: the response body declares 2097152 \
                bytes (Content-Length), more than the 1048576 bytes loadgen reads; the provider \
                answered with something other than an OAuth or OpenID message."),
        "{:#?}",
        result.notes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_responses_are_counted_apart_and_fail_the_gate() {
    let idp = common::spawn_idp_with(|config| {
        config.faults = vec![mock_idp::Fault {
            kind: mock_idp::FaultKind::Unauthorized,
            fraction: 0.1,
        }];
    })
    .await
    .unwrap();
    let seeds = make_seeds(&idp.base_url(), 0, 4, 0).await.unwrap();
    let config = run_config(
        ScenarioKind::RefreshStorm,
        &idp.base_url(),
        steady(40.0, 1.0),
        4,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await.unwrap();
    assert!(result.requests.unauthorized > 0, "{:?}", result.requests);
    assert_eq!(
        result.requests.by_status.get("401").copied(),
        Some(result.requests.unauthorized)
    );
    let unauthorized = result
        .thresholds
        .iter()
        .find(|outcome| outcome.name == loadgen::ThresholdName::Unauthorized);
    assert_eq!(
        unauthorized.map(|outcome| outcome.verdict),
        Some(Verdict::Fail)
    );
    // A refused rotation leaves the VU on its token, so later rotations still succeed.
    assert!(result.iterations.completed > 30, "{:?}", result.iterations);
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_merge_into_one_result() {
    let idp = spawn_idp().await.unwrap();
    let config = run_config(
        ScenarioKind::Discovery,
        &idp.base_url(),
        steady(25.0, 2.0),
        2,
    );
    let (_first_handle, first_stop) = stop_signal();
    let (_second_handle, second_stop) = stop_signal();
    let seeds = loadgen::Seeds::default();
    let (first, second) = tokio::join!(
        loadgen::run(&config, seeds.clone(), first_stop),
        loadgen::run(&config, seeds, second_stop)
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    // Two whole runs side by side (not shards of one run): their rates add up.
    let merged = merge_results(
        &[
            ("first.json".to_owned(), first.clone()),
            ("second.json".to_owned(), second.clone()),
        ],
        std::time::Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(merged.shards, 2);
    assert_eq!(
        merged.iterations.scheduled,
        first.iterations.scheduled + second.iterations.scheduled
    );
    assert_eq!(merged.iterations.completed, 100);
    assert_eq!(
        merged.requests.total,
        first.requests.total + second.requests.total
    );
    assert_eq!(
        merged.latency.count,
        first.latency.count + second.latency.count
    );
    assert_eq!(
        check(&merged, "discovery_issuer").0,
        check(&first, "discovery_issuer").0 + check(&second, "discovery_issuer").0
    );
    assert!((merged.load_profile.profile.rate_per_s - 50.0).abs() < 1e-9);
    assert!(merged.latency.max_ms >= first.latency.max_ms.max(second.latency.max_ms) * 0.999);
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_check_fails_its_iteration_in_every_token_scenario() {
    // Tokens minted for another audience do not verify: each iteration gets its 200 and fails
    // its check, so none may count as a success, even with failed checks allowed by the gate.
    let idp = spawn_idp().await.unwrap();
    let seeds = make_seeds(&idp.base_url(), 40, 2, 2).await.unwrap();
    for scenario in [
        ScenarioKind::TokenCode,
        ScenarioKind::RefreshStorm,
        ScenarioKind::FullOidc,
        ScenarioKind::TokenExchange,
    ] {
        let mut config = run_config(scenario, &idp.base_url(), steady(10.0, 1.0), 2);
        config.access_token_audience = Some("https://another-api.example".into());
        config.thresholds.require_all_checks = false;
        let (_handle, stop) = stop_signal();
        let result = loadgen::run(&config, seeds.clone(), stop).await.unwrap();
        let name = scenario.name();
        assert_eq!(
            result.iterations.completed, 0,
            "{name}: {:?}",
            result.iterations
        );
        assert_eq!(
            result.iterations.failed, 10,
            "{name}: {:?}",
            result.iterations
        );
        assert!(check(&result, "access_token_verifies").1 > 0, "{name}");
        assert_eq!(result.verdict, Verdict::Fail, "{name}");
        assert!(
            result
                .notes
                .iter()
                .any(|note| note.contains("did not verify")),
            "{name}: {:#?}",
            result.notes
        );
    }
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_status_is_a_failed_request_not_a_failed_check() {
    // One token request in a thousand answered 500: exactly 99.9 % of the iterations succeed,
    // the 500 is a failed request and no check failed, so the run passes the gate.
    let idp = common::spawn_idp_with(|config| {
        config.faults = vec![mock_idp::Fault {
            kind: mock_idp::FaultKind::ServerError,
            fraction: 0.001,
        }];
    })
    .await
    .unwrap();
    let seeds = make_seeds(&idp.base_url(), 1_010, 0, 0).await.unwrap();
    let config = run_config(
        ScenarioKind::TokenCode,
        &idp.base_url(),
        steady(250.0, 4.0),
        16,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await.unwrap();
    assert_eq!(
        result.iterations.scheduled, 1_000,
        "{:?}",
        result.iterations
    );
    assert_eq!(
        result.requests.by_status.get("500"),
        Some(&1),
        "{:?}",
        result.requests
    );
    assert_eq!(result.iterations.failed, 1, "{:?}", result.iterations);
    assert!(
        result.checks.values().all(|counts| counts.failed == 0),
        "{:?}",
        result.checks
    );
    assert_eq!(result.verdict, Verdict::Pass, "{:#?}", result.thresholds);
    assert!(
        result
            .notes
            .iter()
            .any(|note| note.contains("answered 500 where 200 was expected")),
        "{:#?}",
        result.notes
    );
    idp.shutdown().await;
}

#[tokio::test]
async fn a_target_that_is_not_the_issuer_is_refused_in_words() {
    // Discovery must be asked of the issuer itself (OpenID Connect Discovery 4.3).
    let run_against = |issuer: fn(&str) -> String| async move {
        let target = common::spawn_target_naming_issuer(issuer).await.unwrap();
        let config = run_config(
            ScenarioKind::Discovery,
            &target.base_url,
            steady(5.0, 1.0),
            1,
        );
        let (_handle, stop) = stop_signal();
        let error = loadgen::run(&config, Seeds::default(), stop)
            .await
            .unwrap_err();
        (target.base_url.clone(), error)
    };
    let (_, error) = run_against(|_| "http://127.0.0.1:1/realms/other".to_owned()).await;
    let error = error.to_string();
    assert!(
        error.contains("names issuer http://127.0.0.1:1/realms/other, not the target"),
        "{error}"
    );
    assert!(
        error.contains("give --target the issuer's URL exactly"),
        "{error}"
    );

    // Exactly: an issuer that adds a trailing slash to the target is another issuer.
    let (base_url, error) = run_against(|base| format!("{base}/")).await;
    assert!(
        matches!(&error, RunError::Discovery(DiscoveryError::IssuerMismatch { issuer, .. }) if *issuer == format!("{base_url}/")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_seeds_survive_a_run_so_test_2_can_run_again() {
    // Rotation is on: a second run on the tokens the seeds first held would replay rotated
    // tokens and get every family revoked. The run writes the newest tokens back instead.
    let idp = spawn_idp().await.unwrap();
    let seeds = make_seeds(&idp.base_url(), 0, 3, 0).await.unwrap();
    let directory = tempfile::tempdir().unwrap();
    seeds.save(directory.path()).unwrap();
    for run in 1..=2 {
        let mut config = run_config(
            ScenarioKind::RefreshStorm,
            &idp.base_url(),
            steady(15.0, 1.0),
            3,
        );
        config.seeds_out = Some(directory.path().to_owned());
        let loaded = Seeds::load(directory.path()).unwrap();
        let (_handle, stop) = stop_signal();
        let result = loadgen::run(&config, loaded, stop).await.unwrap();
        assert_clean(&result);
        assert!(
            result
                .notes
                .iter()
                .any(|note| note.contains("newest refresh token of 3 families")),
            "run {run}: {:#?}",
            result.notes
        );
    }
    let rewritten = Seeds::load(directory.path()).unwrap();
    assert_ne!(rewritten.refresh_tokens, seeds.refresh_tokens);
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_that_would_expire_before_their_use_stop_the_run_before_any_load() {
    let idp = spawn_idp().await.unwrap();
    let profile = steady(50.0, 3.0);
    let needed = loadgen::seeding::seed_files::required_codes(&profile) as usize;
    let seeds = make_seeds(&idp.base_url(), needed, 0, 0).await.unwrap();
    // Seeding itself redeems each sign-in's code (to learn the user's subject): the run's
    // requests are what the metrics gain from here.
    let token_requests = || {
        idp.app()
            .metrics_text()
            .lines()
            .filter(|line| line.contains(r#"endpoint="token""#))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let seeded = token_requests();
    let mut config = run_config(ScenarioKind::TokenCode, &idp.base_url(), profile, 4);
    config.code_lifetime = Some(std::time::Duration::from_secs(2));
    let (_handle, stop) = stop_signal();
    let error = loadgen::run(&config, seeds, stop)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("authorization codes would be older than the code lifetime of 2 s"),
        "{error}"
    );
    assert!(
        error.contains("seed them again just before the run"),
        "{error}"
    );
    assert_eq!(token_requests(), seeded, "no token request may be sent");
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_access_tokens_are_checked_by_introspection() {
    let idp = common::spawn_idp_with(|config| {
        config.access_token_format = mock_idp::AccessTokenFormat::Opaque;
    })
    .await
    .unwrap();
    let profile = steady(20.0, 1.0);
    let needed = loadgen::seeding::seed_files::required_codes(&profile) as usize;
    let seeds = make_seeds(&idp.base_url(), needed, 2, 2).await.unwrap();
    for scenario in [
        ScenarioKind::TokenCode,
        ScenarioKind::RefreshStorm,
        ScenarioKind::Userinfo,
    ] {
        let config = run_config(scenario, &idp.base_url(), profile, 2);
        let (_handle, stop) = stop_signal();
        let result = loadgen::run(&config, seeds.clone(), stop).await.unwrap();
        assert_clean(&result);
        assert_eq!(
            check(&result, "access_token_verifies"),
            (0, 0),
            "{}",
            scenario.name()
        );
        if scenario != ScenarioKind::Userinfo {
            assert_eq!(
                check(&result, "access_token_active"),
                (20, 0),
                "{}",
                scenario.name()
            );
            // Introspection is counted apart and stays out of the gate's latency.
            assert_eq!(result.endpoints["introspection"].requests.total, 20);
            assert_eq!(result.latency.count, 20, "{}", scenario.name());
        }
    }
    // Forcing JWT verification on opaque tokens fails every check, in words.
    let mut config = run_config(ScenarioKind::TokenCode, &idp.base_url(), profile, 2);
    config.access_token = loadgen::protocol::token_verifier::AccessTokenFormat::Jwt;
    let seeds = make_seeds(&idp.base_url(), needed, 0, 0).await.unwrap();
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await.unwrap();
    assert_eq!(check(&result, "access_token_verifies"), (0, 20));
    assert!(
        result
            .notes
            .iter()
            .any(|note| note.contains("the access token did not verify")),
        "{:#?}",
        result.notes
    );
    assert!(
        result
            .notes
            .iter()
            .all(|note| !note.contains("Some(") && !note.contains("Err(")),
        "notes are sentences, not debug output: {:#?}",
        result.notes
    );
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mint_ahead_runs_test_1_against_a_short_code_lifetime() {
    // Codes live 3 s: seeded ones would expire, codes minted just ahead of use do not.
    let idp = common::spawn_idp_with(|config| {
        config.code_ttl = std::time::Duration::from_secs(3);
    })
    .await
    .unwrap();
    let seeds = make_seeds(&idp.base_url(), 0, 0, 3).await.unwrap();
    let mut config = run_config(
        ScenarioKind::TokenCode,
        &idp.base_url(),
        steady(50.0, 4.0),
        8,
    );
    config.mint_ahead = true;
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await.unwrap();
    assert_clean(&result);
    assert_eq!(result.iterations.completed, 200);
    assert!(
        result
            .notes
            .iter()
            .any(|note| note.starts_with("Minted ") && note.contains("codes ahead of use")),
        "{:#?}",
        result.notes
    );
    // Minting is not measured: the result holds TEST 1's token requests only.
    assert_eq!(result.requests.total, 200, "{:?}", result.requests);
    idp.shutdown().await;
}

#[tokio::test]
async fn a_run_whose_iterations_fail_before_any_check_reads_as_failed() {
    // Refresh tokens the provider never issued: every rotation is answered 400 and no check is
    // ever made, so "0 failed checks" must not wear a tick, and the failures are listed by cause.
    let idp = spawn_idp().await.unwrap();
    let mut seeds = make_seeds(&idp.base_url(), 0, 4, 0).await.unwrap();
    for family in &mut seeds.refresh_tokens {
        family.refresh_token = format!("never-issued-{}", family.user_id);
    }
    let config = run_config(
        ScenarioKind::RefreshStorm,
        &idp.base_url(),
        steady(20.0, 1.0),
        4,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await.unwrap();
    assert_eq!(result.iterations.failed, 20, "{:?}", result.iterations);
    assert!(
        result
            .checks
            .values()
            .all(|counts| counts.passed + counts.failed == 0),
        "{:#?}",
        result.checks
    );
    assert_eq!(
        result.failures.get("400 from token"),
        Some(&20),
        "{:#?}",
        result.failures
    );
    let printed = loadgen::results::printer::summary(&result);
    let checks_line = printed
        .lines()
        .find(|line| line.contains("checks...."))
        .expect("a checks line");
    assert!(!checks_line.contains('✓'), "{checks_line}");
    assert!(
        checks_line.contains("iterations failed before their checks"),
        "{checks_line}"
    );
    assert!(
        printed.contains("failed iterations by cause:") && printed.contains("20 400 from token"),
        "{printed}"
    );
    assert_eq!(result.verdict, Verdict::Fail);
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_signs_fresh_users_in_through_the_pages_each_step_its_own_endpoint() {
    let idp = spawn_idp().await.unwrap();
    let mut config = run_config(ScenarioKind::Login, &idp.base_url(), steady(20.0, 1.0), 3);
    config.users.count = 5;
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await.unwrap();
    assert_clean(&result);
    assert_eq!(result.iterations.completed, 20);
    let requests = |endpoint: &str| result.endpoints.get(endpoint).map(|e| e.requests.total);
    // mock-idp: /authorize redirects to its login page; the form's POST redirects back to
    // /authorize, which redirects to the client with the code.
    assert_eq!(requests("authorize"), Some(20));
    assert_eq!(requests("login_page"), Some(20));
    assert_eq!(requests("login"), Some(40));
    assert_eq!(requests("token"), Some(20));
    assert_eq!(check(&result, "id_token_nonce"), (20, 0));
    assert_eq!(check(&result, "authorization_code_issued"), (20, 0));
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_refused_fails_its_iterations_and_says_to_check_the_credentials() {
    let idp = spawn_idp().await.unwrap();
    let mut config = run_config(ScenarioKind::Login, &idp.base_url(), steady(5.0, 1.0), 2);
    config.users.password = "not-the-password".into();
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await.unwrap();
    assert_eq!(result.iterations.failed, 5);
    assert_eq!(result.verdict, Verdict::Fail);
    let notes = result.notes.join("\n");
    assert!(
        notes.contains("signing in as user-loadtest-0000")
            && notes.contains("check the user name and password"),
        "{notes}"
    );
    // The provider was not broken by it: the right password still signs in.
    config.users.password = "loadtest".into();
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await.unwrap();
    assert_clean(&result);
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_tokens_name_their_client_and_grant_the_scope_asked() {
    let idp = spawn_idp().await.unwrap();
    let mut config = run_config(
        ScenarioKind::ClientCredentials,
        &idp.base_url(),
        steady(20.0, 1.0),
        3,
    );
    config.machine_clients = MachineClients::run_client("profile");
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await.unwrap();
    assert_clean(&result);
    assert_eq!(check(&result, "access_token_verifies"), (20, 0));
    assert_eq!(check(&result, "access_token_client"), (20, 0));
    // mock-idp gives the scope both in the answer and in the token.
    assert_eq!(check(&result, "granted_scope"), (40, 0));
    // Machine clients have no user: no subject is compared, nor is one said to be missing.
    assert_eq!(check(&result, "token_subject"), (0, 0));
    assert!(
        !result.notes.iter().any(|note| note.contains("subjects")),
        "{:#?}",
        result.notes
    );
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_client_the_provider_does_not_know_is_counted_as_refused() {
    let idp = spawn_idp().await.unwrap();
    let directory = tempfile::tempdir().unwrap();
    let clients = directory.path().join("clients.txt");
    std::fs::write(
        &clients,
        "loadtest-client loadtest-secret\nunknown-machine wrong-secret\n",
    )
    .unwrap();
    let mut config = run_config(
        ScenarioKind::ClientCredentials,
        &idp.base_url(),
        steady(20.0, 1.0),
        2,
    );
    config.machine_clients = MachineClients::from_file(&clients, "").unwrap();
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await.unwrap();
    // VU 0 is the known client, VU 1 the unknown one: about half fail, each a 401.
    assert!(result.iterations.failed > 0 && result.iterations.completed > 0);
    assert_eq!(result.requests.unauthorized, result.iterations.failed);
    assert_eq!(result.verdict, Verdict::Fail);
    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generators_own_lag_is_kept_apart_and_a_late_generator_is_told() {
    let idp = spawn_idp().await.unwrap();
    let mut config = run_config(
        ScenarioKind::Discovery,
        &idp.base_url(),
        steady(50.0, 1.0),
        2,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await.unwrap();
    assert_clean(&result);
    let lag = result.generator_lag.expect("the lag is kept");
    // One value per iteration that began; none can exceed the iteration it is part of.
    assert_eq!(lag.count, result.iterations.completed);
    assert!(lag.max_ms <= result.iteration_duration.max_ms, "{lag:?}");
    let timeline = result.timeline.as_ref().expect("a timeline");
    assert!(
        timeline
            .intervals
            .iter()
            .all(|interval| interval.generator_lag_p99_ms.is_some())
    );
    assert!(
        !result
            .notes
            .iter()
            .any(|note| note.contains("started iterations late"))
    );

    // A bound no generator meets: the result says its latency includes loadgen's own delay.
    config.max_generator_lag = std::time::Duration::from_nanos(1);
    let (_handle, stop) = stop_signal();
    let late = loadgen::run(&config, Seeds::default(), stop).await.unwrap();
    assert!(
        late.notes
            .iter()
            .any(|note| note.contains("started iterations late") && note.contains("overstate")),
        "{:#?}",
        late.notes
    );
    // Shards' lags add up in a merge.
    let merged = merge_results(
        &[("a".into(), result.clone()), ("b".into(), late.clone())],
        std::time::Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(
        merged.generator_lag.map(|lag| lag.count),
        Some(lag.count + late.generator_lag.map_or(0, |lag| lag.count))
    );
    idp.shutdown().await;
}
