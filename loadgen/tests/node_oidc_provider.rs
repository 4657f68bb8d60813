//! loadgen against a real, unmodified OpenID provider: node-oidc-provider (`idps/`), mounted
//! under an issuer with a path, with its own login and consent pages and opaque access tokens.
//! Seeding goes through those pages; TEST 1-3 run clean; the refresh seeds survive a run; two
//! shards, each seeding its own users, run one TEST 2 together.
//!
//! Needs Node.js and the provider installed by `idps/node-oidc-provider/install.sh` (`.ci/run`
//! does it); without `node` on the PATH the test says so and passes.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result, bail, ensure};
use common::{assert_clean, make_seeds, run_config, steady};
use loadgen::plan::shard::Shard;
use loadgen::seeding::seeder::SeedConfig;
use loadgen::{RunConfig, ScenarioKind, Seeds, merge_results, stop_signal};

/// The provider as a child process, stopped (by its pid) when dropped.
struct NodeOidcProvider {
    child: Child,
    issuer: String,
}

impl Drop for NodeOidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../idps/node-oidc-provider")
}

/// Starts the provider on 127.0.0.1:0 under `/oidc`, or `None` when Node.js is not installed.
fn start(access_token_format: &str) -> Result<Option<NodeOidcProvider>> {
    start_with(access_token_format, "remembered")
}

/// [`start`], asking consent on every authorization when `consent` is `every`.
fn start_with(access_token_format: &str, consent: &str) -> Result<Option<NodeOidcProvider>> {
    start_with_env(access_token_format, consent, &[])
}

/// [`start_with`], with more of server.mjs's environment (`CLIENT_JWKS`).
fn start_with_env(
    access_token_format: &str,
    consent: &str,
    environment: &[(&str, &std::ffi::OsStr)],
) -> Result<Option<NodeOidcProvider>> {
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED: node is not on the PATH; install Node.js 20+ to test against node-oidc-provider"
        );
        return Ok(None);
    }
    let installed = Command::new("bash")
        .arg(folder().join("install.sh"))
        .status()
        .context("could not run install.sh")?;
    if !installed.success() {
        bail!("idps/node-oidc-provider/install.sh failed ({installed})");
    }
    let mut child = Command::new("node")
        .arg(folder().join("server.mjs"))
        .env("PORT", "0")
        .env("ISSUER_PATH", "/oidc")
        .env("ACCESS_TOKEN_FORMAT", access_token_format)
        .env("CODE_TTL_S", "600")
        .env("CONSENT", consent)
        .envs(environment.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("could not start node")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    // The provider prints notices on stdout later (its first client-credentials token, say):
    // a closed pipe would end it, so the rest is read and dropped until it exits.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("unexpected first line: {line}"))?
        .to_owned();
    Ok(Some(NodeOidcProvider {
        child,
        issuer: format!("{base}/oidc"),
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_and_test_1_to_3_against_node_oidc_provider_with_opaque_tokens() -> Result<()> {
    let Some(idp) = start("opaque")? else {
        return Ok(());
    };
    // The trailing slash is the user's; discovery is under /oidc either way.
    let seeds = make_seeds(&format!("{}/", idp.issuer), 60, 3, 3).await?;
    assert_eq!(
        (
            seeds.authorization_codes.len(),
            seeds.refresh_tokens.len(),
            seeds.sessions.len()
        ),
        (60, 3, 3)
    );
    assert!(
        seeds.sessions[0].cookie.contains("_session="),
        "{:?}",
        seeds.sessions[0]
    );
    // The subject of each user, learnt from its sign-in's ID token (this configuration's
    // subject is the user name).
    assert_eq!(
        seeds.sessions[0].subject.as_deref(),
        Some("user-loadtest-00001")
    );
    let directory = tempfile::tempdir()?;
    seeds.save(directory.path())?;

    for scenario in [
        ScenarioKind::TokenCode,
        ScenarioKind::RefreshStorm,
        ScenarioKind::FullOidc,
        ScenarioKind::RefreshStorm,
        ScenarioKind::Userinfo,
    ] {
        let mut config = run_config(scenario, &idp.issuer, steady(20.0, 2.0), 3);
        config.seeds_out = Some(directory.path().to_owned());
        let (_handle, stop) = stop_signal();
        let result = loadgen::run(&config, Seeds::load(directory.path())?, stop).await?;
        assert_clean(&result);
        if scenario == ScenarioKind::FullOidc {
            // node-oidc-provider sends an RFC 9207 iss on every redirect and says so in discovery.
            let judged = result
                .checks
                .get("authorization_issuer")
                .map(|counts| counts.passed);
            assert_eq!(
                judged,
                Some(result.iterations.completed),
                "{:#?}",
                result.checks
            );
        }
        // Every ID token is judged by iat. node-oidc-provider's ID tokens from the token
        // endpoint carry no at_hash, no auth_time (none asked for) and no azp (one audience), so
        // those rules have nothing to judge here; mock-idp's tests count them. The ID tokens name
        // the subject the seeds recorded (the access tokens are opaque).
        if scenario != ScenarioKind::Userinfo {
            for name in ["id_token_iat", "token_subject"] {
                let judged = result.checks.get(name).map_or(0, |counts| counts.passed);
                assert!(
                    judged > 0,
                    "{}: {name}: {:#?}",
                    scenario.name(),
                    result.checks
                );
            }
        }
        // Opaque tokens are checked by the provider's introspection.
        if scenario != ScenarioKind::Userinfo {
            let active = result
                .checks
                .get("access_token_active")
                .map(|counts| counts.passed);
            assert!(
                active.unwrap_or(0) > 0,
                "{}: {:#?}",
                scenario.name(),
                result.checks
            );
        }
    }
    // TEST 1 with codes minted during the run, as a 60 s code lifetime needs.
    let mut config = run_config(ScenarioKind::TokenCode, &idp.issuer, steady(20.0, 2.0), 3);
    config.mint_ahead = true;
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::load(directory.path())?, stop).await?;
    assert_clean(&result);
    assert!(
        result.notes.iter().any(|note| note.starts_with("Minted ")),
        "{:#?}",
        result.notes
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_access_tokens_of_node_oidc_provider_verify_against_its_jwks() -> Result<()> {
    let Some(idp) = start("jwt")? else {
        return Ok(());
    };
    let seeds = make_seeds(&idp.issuer, 30, 0, 0).await?;
    let mut config = run_config(ScenarioKind::TokenCode, &idp.issuer, steady(10.0, 2.0), 2);
    config.access_token_audience = Some(idp.issuer.clone());
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await?;
    assert_clean(&result);
    assert_eq!(
        result
            .checks
            .get("access_token_verifies")
            .map(|counts| counts.passed),
        Some(20),
        "{:#?}",
        result.checks
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_each_seeding_its_own_users_run_test_2_against_node_oidc_provider() -> Result<()>
{
    let Some(idp) = start("opaque")? else {
        return Ok(());
    };
    let profile = steady(10.0, 2.0);
    let config = run_config(ScenarioKind::RefreshStorm, &idp.issuer, profile, 4);
    let start_at = SystemTime::now() + Duration::from_secs(20);
    let mut runs = tokio::task::JoinSet::new();
    let mut users = BTreeSet::new();
    for index in 0..2 {
        let shard = Shard::new(index, 2)?;
        // Through the provider's own pages, as each machine of a sharded run seeds itself.
        let seeds = loadgen::seeding::seeder::make_seeds(&SeedConfig {
            refresh_families: 4,
            concurrency: 4,
            shard,
            ..SeedConfig::new(idp.issuer.clone())
        })
        .await?;
        assert_eq!(seeds.refresh_tokens.len(), 2);
        for family in &seeds.refresh_tokens {
            ensure!(
                users.insert(family.user_id.clone()),
                "{} was seeded by both shards",
                family.user_id
            );
        }
        let config = RunConfig {
            shard,
            start_at: Some(start_at),
            ..config.clone()
        };
        runs.spawn(async move {
            let (_handle, stop) = stop_signal();
            loadgen::run(&config, seeds.for_shard(shard)?, stop)
                .await
                .map_err(anyhow::Error::from)
        });
    }
    let mut shards = Vec::new();
    while let Some(joined) = runs.join_next().await {
        let result = joined??;
        shards.push((format!("shard {}", shards.len()), result));
    }
    let merged = merge_results(&shards, Duration::from_secs(1))?;
    assert_clean(&merged);
    assert_eq!(merged.iterations.scheduled, profile.scheduled_iterations());
    // A family rotated by both shards would be a replay, which the provider answers 400.
    assert_eq!(
        merged.requests.by_status.keys().collect::<Vec<_>>(),
        ["200"]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_on_every_authorization_is_approved_while_seeding_and_in_test_3() -> Result<()> {
    let Some(idp) = start_with("opaque", "every")? else {
        return Ok(());
    };
    // Every code the seeder mints meets the provider's own consent page (an /interaction
    // redirect first) and approves it. node-oidc-provider binds a code to the session's newest
    // grant, so a user's second code would end its first: once a user's code needed consent,
    // each further one comes from a sign-in of its own. The codes then run clean.
    let seeds = make_seeds(&idp.issuer, 30, 0, 3).await?;
    assert_eq!(seeds.authorization_codes.len(), 30);
    let directory = tempfile::tempdir()?;
    seeds.save(directory.path())?;
    let config = run_config(ScenarioKind::TokenCode, &idp.issuer, steady(10.0, 2.0), 3);
    let (_handle, stop) = stop_signal();
    assert_clean(&loadgen::run(&config, Seeds::load(directory.path())?, stop).await?);
    // TEST 3 approves the consent page on every iteration, several per session. The provider
    // gives the session a new identifier after each consent, ending the old one: the seeds hold
    // each session as it stood after minting, and each VU keeps the one set last.
    let config = run_config(ScenarioKind::FullOidc, &idp.issuer, steady(10.0, 2.0), 3);
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::load(directory.path())?, stop).await?;
    assert_clean(&result);
    let consents = result
        .endpoints
        .get("consent")
        .map_or(0, |consent| consent.requests.total);
    assert!(consents >= result.iterations.completed, "{consents}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_client_credentials_run_clean_against_node_oidc_provider() -> Result<()> {
    let Some(idp) = start("opaque")? else {
        return Ok(());
    };
    // Each sign-in goes through the provider's login page and, for a user's first grant, its
    // consent page.
    let mut config = run_config(ScenarioKind::Login, &idp.issuer, steady(10.0, 2.0), 3);
    config.users.count = 15;
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await?;
    assert_clean(&result);
    for endpoint in ["authorize", "login_page", "login", "consent", "token"] {
        assert!(
            result.endpoints.contains_key(endpoint),
            "{endpoint}: {:?}",
            result.endpoints.keys()
        );
    }
    assert_eq!(
        result.endpoints["token"].requests.total, 20,
        "{:#?}",
        result.notes
    );

    let mut config = run_config(
        ScenarioKind::ClientCredentials,
        &idp.issuer,
        steady(20.0, 1.0),
        3,
    );
    config.machine_clients =
        loadgen::protocol::machine_clients::MachineClients::run_client("profile");
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await?;
    assert_clean(&result);
    // Opaque tokens: introspection says they are active, issued to the client, for the scope.
    assert_eq!(common::check(&result, "access_token_active"), (20, 0));
    assert_eq!(common::check(&result, "access_token_client"), (20, 0));
    // Asked for in the response's scope and said by introspection: both judged, none failed.
    assert_eq!(common::check(&result, "granted_scope"), (40, 0));
    Ok(())
}

/// `private_key_jwt` against node-oidc-provider: the client registered with its public key only,
/// seeding, TEST 2 and the client-credentials scenario each send a fresh assertion per request,
/// and introspection of its opaque tokens authenticates the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_runs_clean_against_node_oidc_provider() -> Result<()> {
    use std::sync::Arc;

    use loadgen::protocol::client_auth::{AssertionAudience, ClientAuth, ClientKey};
    use loadgen::protocol::client_credentials::ClientCredentials;
    use loadgen::protocol::token_signing::SigningAlgorithm;
    use mock_idp::keys::{SigningAlg, SigningKey};

    let dir = tempfile::tempdir()?;
    let key_path = dir.path().join("client-key.pem");
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    std::fs::write(&key_path, pair.serialize_pem())?;
    // mock-idp's key type writes the public JWK (with its kid) the provider registers.
    let public = SigningKey::from_pem_file(SigningAlg::Es256, &key_path)?;
    let jwks_path = dir.path().join("client-jwks.json");
    std::fs::write(&jwks_path, public.jwks_json().as_bytes())?;
    let Some(idp) = start_with_env(
        "opaque",
        "remembered",
        &[("CLIENT_JWKS", jwks_path.as_os_str())],
    )?
    else {
        return Ok(());
    };
    let client = ClientCredentials {
        client_secret: None,
        auth: ClientAuth::PrivateKeyJwt {
            key: Arc::new(ClientKey::from_pem_file(
                &key_path,
                SigningAlgorithm::Es256,
                Some(public.kid().to_owned()),
                AssertionAudience::TokenEndpoint,
            )?),
            audience: None,
        },
        ..ClientCredentials::default()
    };
    let families = 3;
    let seeds = loadgen::seeding::seeder::make_seeds(&SeedConfig {
        refresh_families: families,
        client: client.clone(),
        concurrency: 3,
        ..SeedConfig::new(idp.issuer.as_str())
    })
    .await?;
    for (scenario, vus) in [
        (ScenarioKind::RefreshStorm, families),
        (ScenarioKind::ClientCredentials, 3),
    ] {
        let mut config = run_config(scenario, &idp.issuer, steady(15.0, 1.0), vus);
        config.client = client.clone();
        if scenario == ScenarioKind::ClientCredentials {
            config.machine_clients =
                loadgen::protocol::machine_clients::MachineClients::run_client("");
        }
        let (_handle, stop) = stop_signal();
        let result = loadgen::run(&config, seeds.clone(), stop).await?;
        assert_clean(&result);
        // Opaque tokens, each introspected with an assertion of its own.
        assert_eq!(common::check(&result, "access_token_active"), (15, 0));
    }
    Ok(())
}

/// DPoP against node-oidc-provider requiring nonces at its token endpoint: TEST 2, 1 and 3 run
/// clean with every VU's tokens bound to its key (its opaque tokens introspected for `cnf.jkt`),
/// each VU answering the provider's nonce challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_with_nonces_runs_clean_against_node_oidc_provider() -> Result<()> {
    let Some(idp) = start_with_env(
        "opaque",
        "remembered",
        &[("DPOP_NONCE", std::ffi::OsStr::new("1"))],
    )?
    else {
        return Ok(());
    };
    let vus = 3;
    let seeds = make_seeds(&idp.issuer, 30, vus, vus).await?;
    for scenario in [
        ScenarioKind::RefreshStorm,
        ScenarioKind::TokenCode,
        ScenarioKind::FullOidc,
    ] {
        let mut config = run_config(scenario, &idp.issuer, steady(15.0, 1.0), vus);
        config.dpop = true;
        let (_handle, stop) = stop_signal();
        let result = loadgen::run(&config, seeds.clone(), stop).await?;
        assert_clean(&result);
        assert_eq!(
            common::check(&result, "dpop_bound"),
            (15, 0),
            "{scenario:?}"
        );
        // Each VU's first token request met the provider's nonce challenge (a 400 answered by
        // sending it again with the nonce).
        let challenges = result.requests.by_status.get("400").copied().unwrap_or(0);
        assert!(
            (1..=vus as u64).contains(&challenges),
            "{scenario:?}: {challenges} challenges"
        );
    }
    Ok(())
}

/// Pushed authorization requests against node-oidc-provider (on by its default): seeding, TEST 3
/// and `login` push every authorization request and run clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_authorization_requests_run_clean_against_node_oidc_provider() -> Result<()> {
    let Some(idp) = start("opaque")? else {
        return Ok(());
    };
    let client = loadgen::protocol::client_credentials::ClientCredentials {
        pushes_requests: true,
        ..Default::default()
    };
    let vus = 3;
    let seeds = loadgen::seeding::seeder::make_seeds(&SeedConfig {
        sessions: vus,
        client: client.clone(),
        concurrency: 3,
        ..SeedConfig::new(idp.issuer.as_str())
    })
    .await?;
    for (scenario, seeds) in [
        (ScenarioKind::FullOidc, seeds),
        (ScenarioKind::Login, Seeds::default()),
    ] {
        let mut config = run_config(scenario, &idp.issuer, steady(10.0, 1.0), vus);
        config.client = client.clone();
        config.users.count = 15;
        let (_handle, stop) = stop_signal();
        let result = loadgen::run(&config, seeds, stop).await?;
        assert_clean(&result);
        assert_eq!(
            result.endpoints["par"].requests.by_status.get("201"),
            Some(&10),
            "{scenario:?}"
        );
    }
    Ok(())
}

/// `self_signed_tls_client_auth` (RFC 8705) against node-oidc-provider over HTTPS: the client's
/// certificate registered with it (`CLIENT_CERT`), seeding and TEST 2 authenticate by presenting
/// it, with no secret; the same client without its certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_certificate_authenticates_against_node_oidc_provider() -> Result<()> {
    use loadgen::http::connection::TransportSettings;
    use loadgen::http::tls::{ClientCertificate, TlsSettings};
    use loadgen::protocol::client_auth::ClientAuth;
    use loadgen::protocol::client_credentials::ClientCredentials;

    let dir = tempfile::tempdir()?;
    let server = mock_idp::tls::TestCa::new()?;
    let issued = server.issue(
        &mock_idp::tls::LOOPBACK_NAMES,
        mock_idp::tls::Validity::Current,
    )?;
    let (ca, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    std::fs::write(&ca, server.certificate_pem())?;
    std::fs::write(&cert, issued.certificate_pem)?;
    std::fs::write(&key, issued.key_pem)?;
    let client_dir = dir.path().join("client");
    mock_idp::client_assertion::write_client_key(&client_dir, mock_idp::SigningAlg::Es256)?;
    let client_cert = client_dir.join("client-cert.pem");
    let Some(idp) = start_with_env(
        "opaque",
        "remembered",
        &[
            ("TLS_CERT", cert.as_os_str()),
            ("TLS_KEY", key.as_os_str()),
            ("CLIENT_CERT", client_cert.as_os_str()),
        ],
    )?
    else {
        return Ok(());
    };
    let transport = |presented: bool| TransportSettings {
        tls: TlsSettings {
            ca_certs: vec![ca.clone()],
            client_certificate: presented.then(|| ClientCertificate {
                chain: client_cert.clone(),
                key: client_dir.join("client-key.pem"),
            }),
            ..TlsSettings::default()
        },
        ..TransportSettings::default()
    };
    let client = ClientCredentials {
        client_secret: None,
        auth: ClientAuth::TlsCertificate,
        ..ClientCredentials::default()
    };
    let seeds = loadgen::seeding::seeder::make_seeds(&SeedConfig {
        transport: transport(true),
        refresh_families: 3,
        client: client.clone(),
        concurrency: 3,
        ..SeedConfig::new(idp.issuer.as_str())
    })
    .await?;
    let mut config = run_config(
        ScenarioKind::RefreshStorm,
        &idp.issuer,
        steady(15.0, 1.0),
        3,
    );
    config.client = client.clone();
    config.transport = transport(true);
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await?;
    assert_clean(&result);
    let refused = loadgen::seeding::seeder::make_seeds(&SeedConfig {
        transport: transport(false),
        refresh_families: 1,
        client,
        ..SeedConfig::new(idp.issuer.as_str())
    })
    .await
    .expect_err("no certificate, no client");
    assert!(refused.to_string().contains("invalid_client"), "{refused}");
    Ok(())
}
