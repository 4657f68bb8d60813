//! The reference API's token checks and routes: in-process through `Api::handle` for the rules,
//! and on `127.0.0.1:0` for what needs a socket (the JWKS fetched from a provider, a key rotation
//! picked up by fetching it again).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{EncodingKey, Header, encode};
use mock_idp::keys::SigningKey;
use mock_idp::{Fault, FaultKind, SigningAlg};
use reference_api::{Api, Config, KeySource};
use serde_json::{Value, json};

const SECRET: &[u8] = b"a test secret of at least thirty-two bytes";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn hs256_token(claims: &Value) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("HS256 signs")
}

fn claims(sub: &str, expires_in: i64) -> Value {
    let now = now();
    json!({ "sub": sub, "iat": now, "exp": now.saturating_add_signed(expires_in), "scope": "openid" })
}

async fn call(
    api: &Api,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, Option<String>, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = api
        .handle(
            request
                .body(Bytes::from(body.to_owned()))
                .expect("a request"),
        )
        .await;
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|value| value.to_str().unwrap_or_default().to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (
        status,
        challenge,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

async fn hs256_api(configure: impl FnOnce(&mut Config)) -> Api {
    let mut config = Config::ephemeral(KeySource::Hs256(SECRET.to_vec()));
    configure(&mut config);
    Api::new(&config)
        .await
        .expect("an HS256 API needs no fetch")
}

#[tokio::test]
async fn a_valid_token_reads_the_feed_and_posts_a_message_as_its_subject() {
    let api = hs256_api(|_| {}).await;
    let token = hs256_token(&claims("user-loadtest-00007", 60));
    let (status, _, body) = call(&api, Method::GET, "/api/v1/posts/feed", Some(&token), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"], "user-loadtest-00007");
    assert_eq!(body["posts"].as_array().map(Vec::len), Some(10));
    let (status, _, body) = call(
        &api,
        Method::POST,
        "/api/chat/messages",
        Some(&token),
        r#"{"text":"hello"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (&body["from"], &body["text"], &body["id"]),
        (&json!("user-loadtest-00007"), &json!("hello"), &json!(1))
    );
    let (status, _, body) = call(&api, Method::GET, "/api/v1/me", Some(&token), "").await;
    assert_eq!((status, &body["scope"]), (StatusCode::OK, &json!("openid")));
}

#[tokio::test]
async fn each_refusal_is_rfc_6750s_and_says_why() {
    let api = hs256_api(|config| config.issuer = Some("https://idp.example".into())).await;
    let issued = |mut claims: Value| {
        claims["iss"] = json!("https://idp.example");
        hs256_token(&claims)
    };
    // No token: a challenge without an error code (RFC 6750 section 3.1).
    let (status, challenge, _) = call(&api, Method::GET, "/api/v1/posts/feed", None, "").await;
    assert_eq!(
        (status, challenge.as_deref()),
        (
            StatusCode::UNAUTHORIZED,
            Some("Bearer realm=\"reference-api\"")
        )
    );
    // Expired: how long ago is in the description.
    let (status, challenge, body) = call(
        &api,
        Method::GET,
        "/api/v1/posts/feed",
        Some(&issued(claims("u", -5))),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let challenge = challenge.unwrap_or_default();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.contains("expired 5 s ago") || challenge.contains("expired 6 s ago"),
        "{challenge}"
    );
    assert_eq!(body["error"], "invalid_token");
    // Another issuer, another key, a forged algorithm, not a JWT at all.
    let cases = [
        (
            hs256_token(&json!({ "sub": "u", "exp": now() + 60, "iss": "https://other.example" })),
            "iss",
        ),
        (
            encode(
                &Header::default(),
                &claims("u", 60),
                &EncodingKey::from_secret(b"another secret of thirty-two bytes!!"),
            )
            .expect("signs"),
            "signature",
        ),
        ("not.a.jwt".to_owned(), "not a JWT"),
        (issued(json!({ "exp": now() + 60 })), "sub"),
    ];
    for (token, reason) in cases {
        let (status, challenge, _) = call(&api, Method::GET, "/api/v1/me", Some(&token), "").await;
        let challenge = challenge.unwrap_or_default();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason}: {challenge}");
        assert!(challenge.contains(reason), "{reason}: {challenge}");
    }
    // Another scheme is no bearer token at all (RFC 6750 section 3.1: no error code); a bearer
    // header without its token is a bad request.
    for (header, status, error) in [
        ("Basic dTpw", StatusCode::UNAUTHORIZED, None),
        ("Bearer ", StatusCode::BAD_REQUEST, Some("invalid_request")),
    ] {
        let response = api
            .handle(
                Request::get("/api/v1/me")
                    .header(AUTHORIZATION, header)
                    .body(Bytes::new())
                    .expect("a request"),
            )
            .await;
        assert_eq!(response.status(), status, "{header}");
        let challenge = response.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            challenge.contains("error="),
            error.is_some(),
            "{header}: {challenge}"
        );
        let body: Value = serde_json::from_slice(
            &response
                .into_body()
                .collect()
                .await
                .expect("a body")
                .to_bytes(),
        )
        .unwrap_or_default();
        assert_eq!(body["error"].as_str(), error, "{header}: {body}");
    }
    // The API still answers a good token after all of that.
    let (status, _, _) = call(
        &api,
        Method::GET,
        "/api/v1/me",
        Some(&issued(claims("u", 60))),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_bodies_paths_and_methods_are_answered_in_words() {
    let api = hs256_api(|_| {}).await;
    let token = hs256_token(&claims("u", 60));
    let (status, _, body) = call(
        &api,
        Method::POST,
        "/api/chat/messages",
        Some(&token),
        "text=hi",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("\"text\""),
        "{body}"
    );
    let long = json!({ "text": "x".repeat(5000) }).to_string();
    let (status, _, _) = call(
        &api,
        Method::POST,
        "/api/chat/messages",
        Some(&token),
        &long,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = call(&api, Method::GET, "/api/v2/nothing", Some(&token), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response = api
        .handle(
            Request::delete("/api/v1/posts/feed")
                .body(Bytes::new())
                .expect("a request"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        response
            .headers()
            .get("allow")
            .map(|value| value.as_bytes()),
        Some(b"GET".as_slice())
    );
}

#[tokio::test]
async fn an_injected_401_refuses_exactly_its_fraction_as_invalid_token() {
    let api = hs256_api(|config| {
        config.faults = vec![Fault {
            kind: FaultKind::Unauthorized,
            fraction: 0.25,
        }];
    })
    .await;
    let token = hs256_token(&claims("u", 60));
    let mut refused = 0;
    for _ in 0..100 {
        let (status, challenge, _) =
            call(&api, Method::GET, "/api/v1/posts/feed", Some(&token), "").await;
        if status == StatusCode::UNAUTHORIZED {
            assert!(challenge.unwrap_or_default().contains("injected fault"));
            refused += 1;
        }
    }
    assert_eq!(refused, 25);
}

/// A JWKS endpoint whose document the test swaps, as a provider rotating its key does.
async fn serve_jwks(document: Arc<Mutex<String>>) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/jwks", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let document = Arc::clone(&document);
            let service = service_fn(move |_request: Request<hyper::body::Incoming>| {
                let body = document.lock().map(|text| text.clone()).unwrap_or_default();
                async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
            });
            tokio::spawn(
                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .into_owned(),
            );
        }
    });
    Ok(url)
}

fn signed_by(key: &SigningKey, sub: &str) -> String {
    let mut header = Header::new(key.alg().algorithm());
    header.kid = Some(key.kid().to_owned());
    encode(&header, &claims(sub, 60), key.encoding_key()).expect("signs")
}

#[tokio::test]
async fn a_rotated_key_is_fetched_again_and_then_accepted() -> Result<()> {
    let first = SigningKey::generate(SigningAlg::Es256)?;
    let second = SigningKey::generate(SigningAlg::Rs256)?;
    let document = Arc::new(Mutex::new(first.jwks_json().to_string()));
    let url = serve_jwks(Arc::clone(&document)).await?;
    let mut config = Config::ephemeral(KeySource::Jwks(url));
    config.jwks_refetch_interval = Duration::ZERO;
    let api = Api::new(&config).await?;
    let (status, _, _) = call(
        &api,
        Method::GET,
        "/api/v1/me",
        Some(&signed_by(&first, "u")),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(api.keys().jwks_fetches(), 1);
    // A kid the provider does not publish yet: fetched again, still unknown, refused as such.
    let (status, challenge, _) = call(
        &api,
        Method::GET,
        "/api/v1/me",
        Some(&signed_by(&second, "u")),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap_or_default().contains(second.kid()));
    assert_eq!(api.keys().jwks_fetches(), 2);
    // The provider rotates: the new key is fetched on its first token and taken from then on.
    *document.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = second.jwks_json().to_string();
    for _ in 0..3 {
        let (status, _, body) = call(
            &api,
            Method::GET,
            "/api/v1/me",
            Some(&signed_by(&second, "v")),
            "",
        )
        .await;
        assert_eq!((status, &body["sub"]), (StatusCode::OK, &json!("v")));
    }
    assert_eq!(api.keys().jwks_fetches(), 3);
    // An HMAC token naming a key of the set is the algorithm-confusion attack: refused.
    let header = Header {
        kid: Some(second.kid().to_owned()),
        ..Header::default()
    };
    let forged = encode(&header, &claims("u", 60), &EncodingKey::from_secret(SECRET))?;
    let (status, _, _) = call(&api, Method::GET, "/api/v1/me", Some(&forged), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn tokens_of_a_running_mock_idp_pass_over_http_and_an_unreachable_jwks_is_said_at_start()
-> Result<()> {
    let idp = mock_idp::spawn(mock_idp::Config {
        enable_test_endpoints: true,
        ..mock_idp::Config::ephemeral()
    })
    .await?;
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let minted = client
        .request(
            Request::post(format!("{}/_test/mint-token", idp.base_url()))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(br#"{"user_id": 3}"#)))?,
        )
        .await?;
    let minted: Value = serde_json::from_slice(&minted.into_body().collect().await?.to_bytes())?;
    let access_token = minted["access_token"]
        .as_str()
        .context("mint-token answered no access_token")?;
    let mut config = Config::ephemeral(KeySource::Jwks(format!("{}/jwks", idp.base_url())));
    config.issuer = Some(idp.base_url());
    let api = reference_api::spawn(config).await?;
    let response = client
        .request(
            Request::get(format!("{}/api/v1/me", api.base_url()))
                .header(AUTHORIZATION, format!("Bearer {access_token}"))
                .body(Full::new(Bytes::new()))?,
        )
        .await?;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = serde_json::from_slice(&response.into_body().collect().await?.to_bytes())?;
    assert_eq!(body["sub"], "user-loadtest-00003");
    api.stop().await;
    idp.shutdown().await;

    let error = reference_api::spawn(Config::ephemeral(KeySource::Jwks(
        "http://127.0.0.1:9/jwks".into(),
    )))
    .await
    .expect_err("nothing listens on port 9");
    assert!(
        error.to_string().contains("is the provider running?"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn a_jwks_served_over_https_with_a_private_ca_is_fetched_once_the_ca_is_trusted() -> Result<()>
{
    let directory = tempfile::tempdir()?;
    let idp = mock_idp::spawn(mock_idp::Config {
        tls: Some(mock_idp::tls::TlsSource::SelfSigned {
            directory: directory.path().to_owned(),
        }),
        ..mock_idp::Config::ephemeral()
    })
    .await?;
    assert!(idp.base_url().starts_with("https://"), "{}", idp.base_url());
    let tokens = mock_idp::in_process::sign_in(
        idp.app(),
        "user-loadtest-00005",
        &mock_idp::in_process::AuthorizationRequest::default(),
    )
    .await
    .map_err(|error| anyhow::anyhow!("{error:?}"))?;
    let access_token = tokens["access_token"].as_str().context("no access_token")?;
    let jwks = KeySource::Jwks(format!("{}/jwks", idp.base_url()));
    // Without the CA, the handshake fails and the API says so at start.
    let error = Api::new(&Config::ephemeral(jwks.clone()))
        .await
        .expect_err("the provider's CA is not trusted");
    assert!(
        error.to_string().contains("TLS handshake failed"),
        "{error}"
    );
    // Trusting it, the keys are fetched over https and the provider's token passes.
    let mut config = Config::ephemeral(jwks);
    config.jwks_ca_cert = Some(directory.path().join("ca.pem"));
    config.issuer = Some(idp.base_url());
    let api = Api::new(&config).await?;
    let (status, _, body) = call(&api, Method::GET, "/api/v1/me", Some(access_token), "").await;
    assert_eq!(
        (status, &body["sub"]),
        (StatusCode::OK, &json!("user-loadtest-00005"))
    );
    // A CA file that holds no certificate is refused in words.
    let bad = directory.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate")?;
    let mut config = Config::ephemeral(KeySource::Jwks(format!("{}/jwks", idp.base_url())));
    config.jwks_ca_cert = Some(bad);
    let error = Api::new(&config)
        .await
        .expect_err("no certificate in the file");
    assert!(error.to_string().contains("--jwks-ca-cert"), "{error}");
    idp.shutdown().await;
    Ok(())
}
