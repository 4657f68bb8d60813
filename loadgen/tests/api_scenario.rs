//! `--scenario api` against the reference API on `127.0.0.1:0`: tokens signed by loadgen and
//! tokens of mock-idp renewed through seeded families, renewed before they expire with no 401,
//! a 401 recovered by one renewal and retry (and still failing the strict gate), and a refusal
//! explained with the state of the token refused.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use common::{assert_clean, make_seeds, run_config, spawn_idp_with, steady};
use http::{Method, StatusCode};
use loadgen::http::address::Address;
use loadgen::protocol::app_tokens::{JsonLogin, MintEndpoint, TokenFields};
use loadgen::protocol::token_signing::TokenSigner;
use loadgen::run::scenario::api::settings::{ApiSettings, TokenSource};
use loadgen::{RunConfig, ScenarioKind, Seeds, Verdict, stop_signal};
use mock_idp::keys::SigningKey;
use mock_idp::{Fault, FaultKind, SigningAlg};
use reference_api::{Config, KeySource};
use serde_json::{Value, json};

const SECRET: &[u8] = b"the reference API's test secret, 32+ bytes";

fn settings(api: &str, token_source: TokenSource, refresh_before: Duration) -> ApiSettings {
    ApiSettings {
        routes: vec![
            format!("{api}/api/v1/posts/feed=3")
                .parse()
                .expect("a route"),
            format!("{api}/api/v1/me").parse().expect("a route"),
        ],
        method: Method::GET,
        body: None,
        expect: Some(StatusCode::OK),
        token_source,
        refresh_before,
        user_prefix: "user-loadtest-".into(),
    }
}

fn signing(lifetime: Duration) -> TokenSource {
    let signer = TokenSigner::hs256(SECRET)
        .expect("a long secret")
        .with_lifetime(lifetime);
    TokenSource::Sign(Arc::new(signer))
}

fn api_run(api: &str, settings: ApiSettings, rate: f64, seconds: f64) -> RunConfig {
    RunConfig {
        api: Some(settings),
        ..run_config(ScenarioKind::Api, api, steady(rate, seconds), 3)
    }
}

async fn hs256_api(faults: Vec<Fault>) -> Result<reference_api::RunningApi> {
    let mut config = Config::ephemeral(KeySource::Hs256(SECRET.to_vec()));
    config.faults = faults;
    Ok(reference_api::spawn(config).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_tokens_that_expire_during_the_run_are_renewed_before_with_no_401() -> Result<()> {
    let api = hs256_api(Vec::new()).await?;
    // 3 s tokens over a 7 s run: each VU renews at half their lifetime, after the call that
    // finds them due, so no call goes out with an expired token.
    let config = api_run(
        &api.base_url(),
        settings(
            &api.base_url(),
            signing(Duration::from_secs(3)),
            Duration::from_secs(60),
        ),
        15.0,
        7.0,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await?;
    assert_clean(&result);
    let tokens = result.api_tokens.as_ref().expect("api token figures");
    assert_eq!(tokens.token_source, "sign");
    assert!(tokens.refreshes >= 3, "{tokens:#?}");
    assert_eq!((tokens.refresh_failures, tokens.recovered_401), (0, 0));
    assert!(tokens.refusals.is_empty(), "{tokens:#?}");
    // The API's calls are the gated endpoint, and each URL is its own endpoint beside it,
    // taking its weight's share; a signed token needs no token endpoint.
    assert_eq!(
        result.endpoints.keys().collect::<Vec<_>>(),
        ["api", "api GET /api/v1/me", "api GET /api/v1/posts/feed"],
        "{:#?}",
        result.endpoints.keys()
    );
    let calls = |name: &str| result.endpoints[name].requests.total;
    assert_eq!(calls("api"), result.iterations.completed);
    assert_eq!(
        calls("api GET /api/v1/posts/feed") + calls("api GET /api/v1/me"),
        calls("api")
    );
    assert!(calls("api GET /api/v1/posts/feed") >= 2 * calls("api GET /api/v1/me"));
    // The totals count each call once: the routes are a breakdown of `api`.
    assert_eq!(result.requests.total, calls("api"));
    // Two runs side by side, merged, keep the breakdown.
    let merged = loadgen::merge_results(
        &[
            ("a".to_owned(), result.clone()),
            ("b".to_owned(), result.clone()),
        ],
        Duration::from_secs(3600),
    )?;
    assert_eq!(
        merged.endpoints["api GET /api/v1/me"].requests.total,
        2 * calls("api GET /api/v1/me")
    );
    api.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_tokens_are_renewed_through_each_vus_family_off_the_measured_path() -> Result<()> {
    // mock-idp's access tokens live 4 s here; the API checks them against its JWKS and issuer.
    let idp = spawn_idp_with(|config| config.access_token_ttl = Duration::from_secs(4)).await?;
    let mut api_config = Config::ephemeral(KeySource::Jwks(format!("{}/jwks", idp.base_url())));
    api_config.issuer = Some(idp.base_url());
    let api = reference_api::spawn(api_config).await?;
    let seeds = make_seeds(&idp.base_url(), 0, 3, 0).await?;
    let directory = tempfile::tempdir()?;
    seeds.save(directory.path())?;
    let mut config = api_run(
        &idp.base_url(),
        settings(&api.base_url(), TokenSource::Oidc, Duration::from_secs(60)),
        15.0,
        6.0,
    );
    config.seeds_out = Some(directory.path().to_owned());
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::load(directory.path())?, stop).await?;
    assert_clean(&result);
    let tokens = result.api_tokens.as_ref().expect("api token figures");
    assert_eq!(tokens.token_source, "oidc");
    assert!(tokens.refreshes >= 3, "{tokens:#?}");
    // The renewals went to the token endpoint, counted apart from the API's calls and checked
    // as any token response is.
    let refreshes = &result.endpoints["token_refresh"].requests;
    assert_eq!(refreshes.total, tokens.refreshes);
    assert!(common::check(&result, "access_token_verifies").0 >= tokens.refreshes);
    // The families' newest tokens were written back, so the next run starts from them.
    let rotated = Seeds::load(directory.path())?;
    assert_ne!(
        rotated.refresh_tokens[0].refresh_token,
        seeds.refresh_tokens[0].refresh_token
    );
    // Without a family for each VU, the run says so before its load.
    let config = api_run(
        &idp.base_url(),
        settings(&api.base_url(), TokenSource::Oidc, Duration::from_secs(60)),
        15.0,
        1.0,
    );
    let (_handle, stop) = stop_signal();
    let error = loadgen::run(&config, Seeds::default(), stop)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("--refresh-families"), "{error}");
    api.stop().await;
    idp.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_is_recovered_by_one_renewal_and_retry_and_still_fails_the_strict_gate() -> Result<()>
{
    // The API refuses 1 call in 10 as invalid_token, as it would a revoked key.
    let api = hs256_api(vec![Fault {
        kind: FaultKind::Unauthorized,
        fraction: 0.1,
    }])
    .await?;
    let config = api_run(
        &api.base_url(),
        settings(
            &api.base_url(),
            signing(Duration::from_secs(900)),
            Duration::from_secs(60),
        ),
        20.0,
        3.0,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await?;
    let tokens = result.api_tokens.as_ref().expect("api token figures");
    // Every refused call was renewed and retried, and the retry passed: no iteration failed.
    assert_eq!(result.iterations.failed, 0, "{:#?}", result.failures);
    assert!(tokens.recovered_401 > 0, "{tokens:#?}");
    assert_eq!(result.requests.unauthorized, tokens.recovered_401);
    assert_eq!(tokens.refreshes, tokens.recovered_401);
    let refusal = &tokens.refusals[0];
    assert_eq!(
        (
            refusal.status,
            refusal.error.as_deref(),
            refusal.description.as_deref()
        ),
        (
            401,
            Some("invalid_token"),
            Some("refused by an injected fault")
        )
    );
    assert!(
        refusal.expires_in_s.is_some_and(|left| left > 800),
        "{refusal:#?}"
    );
    assert_eq!(refusal.recovered, refusal.count);
    // The 401s themselves still fail the gate, which allows none.
    assert_eq!(result.verdict, Verdict::Fail);
    api.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_api_cannot_verify_fails_with_the_apis_reason_kept() -> Result<()> {
    let api = hs256_api(Vec::new()).await?;
    // Signed with another secret: the renewal signs another token the API refuses too.
    let wrong = TokenSigner::hs256(b"not the secret the API holds, 32+ bytes!")?
        .with_kid(Some("test-key-2".into()));
    let config = api_run(
        &api.base_url(),
        settings(
            &api.base_url(),
            TokenSource::Sign(Arc::new(wrong)),
            Duration::from_secs(60),
        ),
        10.0,
        1.0,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await?;
    assert_eq!(result.iterations.completed, 0);
    assert_eq!(result.verdict, Verdict::Fail);
    let tokens = result.api_tokens.as_ref().expect("api token figures");
    assert_eq!(tokens.recovered_401, 0);
    let refusal = &tokens.refusals[0];
    assert_eq!(
        refusal.description.as_deref(),
        Some("the token's signature does not verify")
    );
    assert_eq!(refusal.kid.as_deref(), Some("test-key-2"));
    assert_eq!(refusal.count, result.requests.unauthorized);
    assert_eq!(refusal.recovered, 0);
    let text = loadgen::results::printer::summary(&result);
    // A route's name is a line of its own, its figures under it.
    assert!(
        text.contains("\n  api GET /api/v1/me:\n    requests"),
        "{text}"
    );
    assert!(
        text.contains("401 invalid_token \"the token's signature does not verify\""),
        "{text}"
    );
    api.stop().await;
    Ok(())
}

/// A small JSON auth app, as in a migration from sessions to JWTs: `POST /auth/login` with a user
/// name and password, `POST /auth/refresh` with the newest refresh token (a rotated one is
/// refused and counted), both answering a 3 s HS256 access token and a new refresh token.
#[derive(Debug)]
struct JsonAuthApp {
    newest: Mutex<std::collections::HashMap<String, String>>,
    issued: AtomicU64,
    replays: AtomicU64,
    /// Signs with this key (and serves its JWKS at /jwks) when set, with the HS256 secret
    /// otherwise; replaced by [`Self::rotate_to`].
    key: Mutex<Option<Arc<SigningKey>>>,
    /// Seconds each access token lives.
    lifetime_s: u64,
}

impl JsonAuthApp {
    /// A hard key rotation: tokens are signed with `key` from now on, and the JWKS names only it.
    fn rotate_to(&self, key: SigningKey) {
        if let Ok(mut held) = self.key.lock() {
            *held = Some(Arc::new(key));
        }
    }

    fn answer(&self, path: &str, body: &[u8]) -> (StatusCode, Value) {
        let key = self.key.lock().ok().and_then(|key| key.clone());
        if path == "/jwks" {
            let jwks = key
                .map(|key| key.jwks_json().to_string())
                .unwrap_or_default();
            return (
                StatusCode::OK,
                serde_json::from_str(&jwks).unwrap_or_default(),
            );
        }
        let body: Value = serde_json::from_slice(body).unwrap_or_default();
        let user = match path {
            "/auth/login" if body["password"] == "loadtest" => {
                body["username"].as_str().map(str::to_owned)
            }
            "/auth/refresh" => {
                let sent = body["refresh_token"].as_str().unwrap_or_default();
                let newest = self.newest.lock().map(|newest| {
                    newest
                        .iter()
                        .find(|(_, token)| token.as_str() == sent)
                        .map(|(user, _)| user.clone())
                });
                let user = newest.ok().flatten();
                if user.is_none() {
                    self.replays.fetch_add(1, Ordering::Relaxed);
                }
                user
            }
            _ => None,
        };
        let Some(user) = user else {
            return (
                StatusCode::UNAUTHORIZED,
                json!({ "error": "invalid_grant" }),
            );
        };
        let number = self.issued.fetch_add(1, Ordering::Relaxed);
        let refresh_token = format!("rt-{user}-{number}");
        if let Ok(mut newest) = self.newest.lock() {
            newest.insert(user.clone(), refresh_token.clone());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = json!({ "sub": user, "iat": now, "exp": now + self.lifetime_s });
        let access_token = match key {
            Some(key) => {
                let mut header = jsonwebtoken::Header::new(key.alg().algorithm());
                header.kid = Some(key.kid().to_owned());
                jsonwebtoken::encode(&header, &claims, key.encoding_key())
            }
            None => jsonwebtoken::encode(
                &jsonwebtoken::Header::default(),
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(SECRET),
            ),
        }
        .unwrap_or_default();
        (
            StatusCode::OK,
            json!({
                "data": { "token": access_token },
                "refresh_token": refresh_token,
                "expires_in": self.lifetime_s,
            }),
        )
    }
}

async fn spawn_json_auth_app(
    key: Option<SigningKey>,
    lifetime_s: u64,
) -> Result<(Arc<JsonAuthApp>, String)> {
    let app = Arc::new(JsonAuthApp {
        newest: Mutex::default(),
        issued: AtomicU64::default(),
        replays: AtomicU64::default(),
        key: Mutex::new(key.map(Arc::new)),
        lifetime_s,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let serving = Arc::clone(&app);
    common::serve_connections(
        listener,
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let app = Arc::clone(&serving);
            async move {
                let path = request.uri().path().to_owned();
                let body = http_body_util::BodyExt::collect(request.into_body())
                    .await?
                    .to_bytes();
                let (status, answer) = app.answer(&path, &body);
                let mut response = hyper::Response::new(http_body_util::Full::new(
                    bytes::Bytes::from(answer.to_string()),
                ));
                *response.status_mut() = status;
                Ok::<_, hyper::Error>(response)
            }
        }),
    );
    Ok((app, url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applications_json_login_and_rotating_refresh_give_the_tokens() -> Result<()> {
    let api = hs256_api(Vec::new()).await?;
    let (app, auth) = spawn_json_auth_app(None, 3).await?;
    let login = json_login(&auth)?;
    let config = api_run(
        &api.base_url(),
        settings(
            &api.base_url(),
            TokenSource::Json(Arc::new(login)),
            Duration::from_secs(60),
        ),
        15.0,
        6.0,
    );
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await?;
    assert_clean(&result);
    let tokens = result.api_tokens.as_ref().expect("api token figures");
    assert_eq!(tokens.token_source, "json");
    assert!(tokens.refreshes >= 3, "{tokens:#?}");
    // Each renewal sent the newest refresh token: the app saw no rotated one come back.
    assert_eq!(app.replays.load(Ordering::Relaxed), 0);
    assert_eq!(
        result.endpoints["token_refresh"].requests.total,
        tokens.refreshes
    );
    api.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_mint_endpoint_gives_each_vu_a_token_for_its_user() -> Result<()> {
    let idp = spawn_idp_with(|config| {
        config.enable_test_endpoints = true;
        config.access_token_ttl = Duration::from_secs(4);
    })
    .await?;
    let mut api_config = Config::ephemeral(KeySource::Jwks(format!("{}/jwks", idp.base_url())));
    api_config.issuer = Some(idp.base_url());
    let api = reference_api::spawn(api_config).await?;
    // The first tokens come from the batch endpoint, renewals from the single one.
    let mint = MintEndpoint {
        url: Address::parse(&format!("{}/_test/mint-token", idp.base_url()))?,
        batch_url: Some(Address::parse(&format!(
            "{}/_test/mint-tokens-batch",
            idp.base_url()
        ))?),
        body: MintEndpoint::default_body(),
        fields: TokenFields::default(),
    };
    let mut settings = settings(
        &api.base_url(),
        TokenSource::Mint(Arc::new(mint)),
        Duration::from_secs(60),
    );
    // The API says whose token it checked: each VU's own user.
    settings.routes = vec![format!("{}/api/v1/me", api.base_url()).parse()?];
    let config = api_run(&api.base_url(), settings, 15.0, 6.0);
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await?;
    assert_clean(&result);
    let tokens = result.api_tokens.as_ref().expect("api token figures");
    assert_eq!(tokens.token_source, "mint");
    assert!(tokens.refreshes >= 3, "{tokens:#?}");
    // mock-idp counted one batch for the three VUs' first tokens, and one mint per renewal.
    let metrics = get_text(&format!("{}/metrics", idp.base_url())).await?;
    let series = mock_idp::metrics::series::http_requests("test", 200);
    let minted: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{series} ")))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_default();
    assert_eq!(minted as u64, 1 + tokens.refreshes);
    api.stop().await;
    idp.shutdown().await;
    Ok(())
}

fn json_login(auth: &str) -> Result<JsonLogin> {
    Ok(JsonLogin {
        login: Address::parse(&format!("{auth}/auth/login"))?,
        refresh: Some(Address::parse(&format!("{auth}/auth/refresh"))?),
        username_field: "username".into(),
        password_field: "password".into(),
        refresh_field: "refresh_token".into(),
        password: "loadtest".into(),
        fields: TokenFields {
            access_token: "data.token".into(),
            ..TokenFields::default()
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_mid_run_is_recovered_by_one_renewal_per_vu() -> Result<()> {
    // The application signs hour-long tokens with one key, then rotates hard mid-run: new tokens
    // carry the new key, and its JWKS names only that one. The API's copy of the JWKS lives a
    // second; once fetched again, the tokens the VUs hold name a key no longer published, so
    // each VU's next call is refused once, renewed and retried.
    let (app, auth) =
        spawn_json_auth_app(Some(SigningKey::generate(SigningAlg::Es256)?), 3600).await?;
    let mut api_config = Config::ephemeral(KeySource::Jwks(format!("{auth}/jwks")));
    api_config.jwks_refetch_interval = Duration::ZERO;
    api_config.jwks_max_age = Duration::from_secs(1);
    let api = reference_api::spawn(api_config).await?;
    let config = api_run(
        &api.base_url(),
        settings(
            &api.base_url(),
            TokenSource::Json(Arc::new(json_login(&auth)?)),
            Duration::from_secs(60),
        ),
        15.0,
        5.0,
    );
    let rotating = Arc::clone(&app);
    let rotation = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        rotating.rotate_to(SigningKey::generate(SigningAlg::Es256).expect("a key"));
    });
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await?;
    rotation.await?;
    let tokens = result.api_tokens.as_ref().expect("api token figures");
    // No iteration failed: each refusal was recovered, at most one per VU (3 VUs).
    assert_eq!(result.iterations.failed, 0, "{:#?}", result.failures);
    assert!((1..=3).contains(&tokens.recovered_401), "{tokens:#?}");
    assert_eq!(result.requests.unauthorized, tokens.recovered_401);
    let refusal = &tokens.refusals[0];
    assert!(
        refusal
            .description
            .as_deref()
            .is_some_and(|text| text.contains("no key with kid")),
        "{refusal:#?}"
    );
    // The token refused was a fresh one by its expiry: the cause was the key, not the clock.
    assert!(
        refusal.expires_in_s.is_some_and(|left| left > 3000),
        "{refusal:#?}"
    );
    assert!(refusal.kid.is_some());
    assert_eq!(app.replays.load(Ordering::Relaxed), 0);
    api.stop().await;
    Ok(())
}

/// The body of a GET, as text.
async fn get_text(url: &str) -> Result<String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let response = client.get(url.parse()?).await?;
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}
