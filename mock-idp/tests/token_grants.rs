//! `POST /token`: each grant, code single use and reuse revocation, refresh rotation and replay
//! detection, PKCE and redirect binding, client authentication.

mod support;

use std::time::Duration;

use anyhow::{Context as _, Result};
use http::{StatusCode, header};
use mock_idp::clients::REDIRECT_URI;
use support::{TestIdp, VERIFIER, text};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

fn redeem<'a>(code: &'a str, verifier: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", verifier),
    ]
}

#[tokio::test]
async fn a_code_answers_tokens_once_without_caching() -> Result<()> {
    let idp = TestIdp::start().await?;
    let code = idp.code("user-loadtest-00001").await?;
    let reply = idp.token(&redeem(&code, VERIFIER)).await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"));
    let body = reply.json()?;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid profile email");
    for field in ["access_token", "refresh_token", "id_token"] {
        assert!(!text(&body, field)?.is_empty(), "{field}");
    }
    assert_eq!(idp.metric("mock_idp_codes_redeemed_total").await?, 1);
    Ok(())
}

#[tokio::test]
async fn reusing_a_code_revokes_every_token_issued_from_it() -> Result<()> {
    let idp = TestIdp::start().await?;
    let code = idp.code("user-loadtest-00001").await?;
    let first = idp.token(&redeem(&code, VERIFIER)).await?.json()?;
    let access_token = text(&first, "access_token")?;
    let refresh_token = text(&first, "refresh_token")?;
    assert_eq!(idp.userinfo(&access_token).await?.status, StatusCode::OK);

    let second = idp.token(&redeem(&code, VERIFIER)).await?;
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(second.error_code()?, "invalid_grant");

    let userinfo = idp.userinfo(&access_token).await?;
    assert_eq!(userinfo.status, StatusCode::UNAUTHORIZED);
    assert_eq!(idp.introspect(&access_token).await?["active"], false);
    assert_eq!(idp.introspect(&refresh_token).await?["active"], false);
    let refresh = idp
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ])
        .await?;
    assert_eq!(refresh.error_code()?, "invalid_grant");
    assert_eq!(idp.metric("mock_idp_code_reuse_detected_total").await?, 1);
    assert_eq!(idp.metric("mock_idp_families_revoked_total").await?, 1);
    Ok(())
}

#[tokio::test]
async fn pkce_and_redirect_uri_bind_the_code() -> Result<()> {
    let idp = TestIdp::start().await?;
    let wrong_verifier = "x".repeat(43);
    let cases: [(&str, Vec<(&str, String)>); 4] = [
        ("wrong verifier", vec![("code_verifier", wrong_verifier)]),
        ("missing verifier", vec![("code_verifier", String::new())]),
        (
            "other redirect",
            vec![("redirect_uri", "http://127.0.0.1:3000/other".into())],
        ),
        ("missing redirect", vec![("redirect_uri", String::new())]),
    ];
    for (name, overrides) in cases {
        let code = idp.code("user-loadtest-00001").await?;
        let mut pairs: Vec<(&str, &str)> = redeem(&code, VERIFIER).to_vec();
        for (key, value) in &overrides {
            pairs.retain(|(known, _)| known != key);
            if !value.is_empty() {
                pairs.push((key, value));
            }
        }
        let reply = idp.token(&pairs).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(reply.error_code()?, "invalid_grant", "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn a_verifier_without_a_challenge_is_refused() -> Result<()> {
    let idp = TestIdp::start().await?;
    let cookie = idp.login("user-loadtest-00001").await?;
    let query = idp.authorize_query(&[("code_challenge", ""), ("code_challenge_method", "")]);
    let reply = idp
        .get(&format!("/authorize?{query}"), &[("cookie", &cookie)])
        .await?;
    let code = reply.location_param("code")?.unwrap_or_default();
    let reply = idp.token(&redeem(&code, VERIFIER)).await?;
    assert_eq!(reply.error_code()?, "invalid_grant");
    Ok(())
}

#[tokio::test]
async fn codes_expire() -> Result<()> {
    let idp = TestIdp::with(|config| config.code_ttl = Duration::from_millis(200)).await?;
    let code = idp.code("user-loadtest-00001").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = idp.token(&redeem(&code, VERIFIER)).await?;
    assert_eq!(reply.error_code()?, "invalid_grant");
    assert!(
        reply.json()?["error_description"]
            .to_string()
            .contains("expired")
    );
    Ok(())
}

#[tokio::test]
async fn client_authentication_failures_are_401_with_a_challenge() -> Result<()> {
    let idp = TestIdp::start().await?;
    let code = idp.code("user-loadtest-00001").await?;
    let wrong = mock_idp::clients::basic_authorization("loadtest-client", "wrong-secret");
    for headers in [
        vec![("authorization", wrong.as_str())],
        vec![("authorization", "Basic bm90LWJhc2U2NA===")],
        vec![],
    ] {
        let reply = idp
            .post_form("/token", &redeem(&code, VERIFIER), &headers)
            .await?;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(reply.error_code()?, "invalid_client");
        assert!(
            reply
                .header(header::WWW_AUTHENTICATE)
                .is_some_and(|value| value.starts_with("Basic"))
        );
    }
    // The failed attempts did not consume the code; client_secret_post redeems it.
    let mut pairs = redeem(&code, VERIFIER).to_vec();
    pairs.push(("client_id", "loadtest-client"));
    pairs.push(("client_secret", "loadtest-secret"));
    let reply = idp.post_form("/token", &pairs, &[]).await?;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    Ok(())
}

#[tokio::test]
async fn refresh_rotates_and_a_replay_revokes_the_whole_family() -> Result<()> {
    let idp = TestIdp::start().await?;
    let tokens = idp.tokens("user-loadtest-00001").await?;
    let first = text(&tokens, "refresh_token")?;

    let rotated = idp
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &first)])
        .await?;
    assert_eq!(rotated.status, StatusCode::OK);
    let rotated = rotated.json()?;
    let second = text(&rotated, "refresh_token")?;
    assert_ne!(first, second, "rotation must answer a new refresh token");
    let access_token = text(&rotated, "access_token")?;
    assert_eq!(idp.userinfo(&access_token).await?.status, StatusCode::OK);
    assert!(rotated.get("id_token").is_some());

    let replay = idp
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &first)])
        .await?;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.error_code()?, "invalid_grant");

    // The newest token of the family is revoked too, and so are its access tokens.
    let newest = idp
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &second)])
        .await?;
    assert_eq!(newest.error_code()?, "invalid_grant");
    assert_eq!(
        idp.userinfo(&access_token).await?.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(idp.metric("mock_idp_refresh_rotations_total").await?, 1);
    assert_eq!(
        idp.metric("mock_idp_refresh_reuse_detected_total").await?,
        1
    );
    assert_eq!(idp.metric("mock_idp_families_revoked_total").await?, 1);
    Ok(())
}

#[tokio::test]
async fn families_are_independent() -> Result<()> {
    let idp = TestIdp::start().await?;
    let a = text(&idp.tokens("user-loadtest-00001").await?, "refresh_token")?;
    let b = text(&idp.tokens("user-loadtest-00002").await?, "refresh_token")?;
    idp.token(&[("grant_type", "refresh_token"), ("refresh_token", &a)])
        .await?;
    idp.token(&[("grant_type", "refresh_token"), ("refresh_token", &a)])
        .await?;
    let reply = idp
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &b)])
        .await?;
    assert_eq!(reply.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn a_grace_window_allows_a_concurrent_refresh() -> Result<()> {
    let idp = TestIdp::with(|config| config.refresh_grace = Duration::from_secs(30)).await?;
    let first = text(&idp.tokens("user-loadtest-00001").await?, "refresh_token")?;
    let a = idp
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &first)])
        .await?;
    let b = idp
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &first)])
        .await?;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(b.status, StatusCode::OK);
    assert_eq!(idp.metric("mock_idp_families_revoked_total").await?, 0);
    Ok(())
}

/// Concurrent refreshes of one token inside the grace window all answer the family's one
/// newest token: a retry must not fork the family into several live tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_inside_the_grace_window_do_not_fork_the_family() -> Result<()> {
    let idp = std::sync::Arc::new(
        TestIdp::with(|config| config.refresh_grace = Duration::from_secs(30)).await?,
    );
    let first = text(&idp.tokens("user-loadtest-00001").await?, "refresh_token")?;
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let idp = std::sync::Arc::clone(&idp);
            let first = first.clone();
            tokio::spawn(async move {
                idp.token(&[("grant_type", "refresh_token"), ("refresh_token", &first)])
                    .await
            })
        })
        .collect();
    let mut answered = std::collections::BTreeSet::new();
    for racer in racers {
        let reply = racer.await??;
        assert_eq!(reply.status, StatusCode::OK);
        answered.insert(text(&reply.json()?, "refresh_token")?);
    }
    assert_eq!(answered.len(), 1, "the family forked: {answered:?}");
    let newest = answered.into_iter().next().context("no answer")?;
    let next = idp
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &newest)])
        .await?;
    assert_eq!(next.status, StatusCode::OK);
    assert_eq!(idp.metric("mock_idp_families_revoked_total").await?, 0);
    Ok(())
}

/// Racing real requests: of concurrent uses of one code at most one answers tokens, every
/// other is told the code was already used (never "unknown"), and whatever was answered is
/// revoked in the end, as RFC 6749 4.1.2 asks of a code used twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uses_of_a_code_are_all_detected() -> Result<()> {
    let idp = std::sync::Arc::new(TestIdp::start().await?);
    for round in 0..40 {
        let code = idp.code("user-loadtest-00001").await?;
        let racers: Vec<_> = (0..4)
            .map(|_| {
                let idp = std::sync::Arc::clone(&idp);
                let code = code.clone();
                tokio::spawn(async move { idp.token(&redeem(&code, VERIFIER)).await })
            })
            .collect();
        let mut answered = Vec::new();
        for racer in racers {
            let reply = racer.await??;
            if reply.status == StatusCode::OK {
                answered.push(text(&reply.json()?, "access_token")?);
            } else {
                let description = reply.json()?["error_description"].to_string();
                assert!(
                    description.contains("already used") || description.contains("used twice"),
                    "round {round}: {description}"
                );
            }
        }
        assert!(answered.len() <= 1, "round {round}: {answered:?}");
        for access_token in answered {
            assert_eq!(
                idp.userinfo(&access_token).await?.status,
                StatusCode::UNAUTHORIZED,
                "round {round}: a twice-used code's token is still live"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn with_rotation_off_the_same_refresh_token_comes_back() -> Result<()> {
    let idp = TestIdp::with(|config| config.rotate_refresh_tokens = false).await?;
    let first = text(&idp.tokens("user-loadtest-00001").await?, "refresh_token")?;
    for _ in 0..3 {
        let reply = idp
            .token(&[("grant_type", "refresh_token"), ("refresh_token", &first)])
            .await?;
        assert_eq!(text(&reply.json()?, "refresh_token")?, first);
    }
    Ok(())
}

#[tokio::test]
async fn refresh_scope_may_only_narrow() -> Result<()> {
    let idp = TestIdp::start().await?;
    let first = text(&idp.tokens("user-loadtest-00001").await?, "refresh_token")?;
    let wider = idp
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first),
            ("scope", "openid offline_access"),
        ])
        .await?;
    assert_eq!(wider.error_code()?, "invalid_scope");
    // The refused request did not rotate the token.
    let narrower = idp
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first),
            ("scope", "openid"),
        ])
        .await?
        .json()?;
    assert_eq!(narrower["scope"], "openid");
    Ok(())
}

#[tokio::test]
async fn refresh_tokens_can_be_jwts() -> Result<()> {
    let idp = TestIdp::with(|config| {
        config.refresh_token_format = mock_idp::RefreshTokenFormat::Jwt;
    })
    .await?;
    let first = text(&idp.tokens("user-loadtest-00001").await?, "refresh_token")?;
    assert_eq!(
        jsonwebtoken::decode_header(&first)?.typ.as_deref(),
        Some("rt+jwt")
    );
    let reply = idp
        .token(&[("grant_type", "refresh_token"), ("refresh_token", &first)])
        .await?;
    assert_eq!(reply.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn token_exchange_answers_an_access_token() -> Result<()> {
    let idp = TestIdp::with(|config| {
        config.exchange_audiences = vec!["https://api.example".into()];
    })
    .await?;
    let subject = text(&idp.tokens("user-loadtest-00001").await?, "access_token")?;
    let actor = text(&idp.tokens("user-loadtest-00002").await?, "access_token")?;
    let reply = idp
        .token(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("actor_token", &actor),
            ("actor_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "https://api.example"),
            ("scope", "openid email"),
        ])
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let body = reply.json()?;
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("refresh_token").is_none());
    let exchanged = text(&body, "access_token")?;
    let claims = idp.introspect(&exchanged).await?;
    assert_eq!(claims["active"], true);
    assert_eq!(claims["sub"], "user-loadtest-00001");
    assert_eq!(claims["aud"], "https://api.example");
    assert_eq!(claims["scope"], "openid email");
    assert_eq!(claims["act"]["sub"], "user-loadtest-00002");
    // A token exchange answers no ID token, so none is signed or counted (RFC 8693 2.2.1):
    // two sign-ins, two ID tokens, whatever the exchange did.
    assert!(body.get("id_token").is_none());
    assert_eq!(
        idp.metric(r#"mock_idp_tokens_issued_total{kind="id_token"}"#)
            .await?,
        2
    );
    // The exchanged token is for another audience: userinfo, this server's own resource,
    // refuses it (RFC 9068 4), while the subject token still works there.
    let elsewhere = idp.userinfo(&exchanged).await?;
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED);
    assert_eq!(elsewhere.error_code()?, "invalid_token");
    assert_eq!(idp.userinfo(&subject).await?.status, StatusCode::OK);

    let bad = idp
        .token(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", "not-a-token"),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
        ])
        .await?;
    assert_eq!(bad.error_code()?, "invalid_request");
    Ok(())
}

#[tokio::test]
async fn token_exchange_refuses_an_audience_it_does_not_serve() -> Result<()> {
    let idp = TestIdp::start().await?;
    let subject = text(&idp.tokens("user-loadtest-00001").await?, "access_token")?;
    for (name, target) in [
        ("audience", "https://api.example"),
        ("resource", "https://elsewhere.example/api"),
    ] {
        let reply = idp
            .token(&[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                (name, target),
            ])
            .await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(reply.error_code()?, "invalid_target", "{name}");
    }
    // The provider's own audience is always allowed, and is the default.
    let own = idp
        .token(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", &idp.base_url()),
        ])
        .await?;
    assert_eq!(own.status, StatusCode::OK);
    let exchanged = text(&own.json()?, "access_token")?;
    assert_eq!(idp.userinfo(&exchanged).await?.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn client_credentials_answers_a_token_for_the_client() -> Result<()> {
    let idp = TestIdp::start().await?;
    let reply = idp
        .token(&[("grant_type", "client_credentials"), ("scope", "profile")])
        .await?;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json()?;
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("id_token").is_none());
    let claims = idp.introspect(&text(&body, "access_token")?).await?;
    assert_eq!(claims["sub"], "loadtest-client");

    let openid = idp
        .token(&[("grant_type", "client_credentials"), ("scope", "openid")])
        .await?;
    assert_eq!(openid.error_code()?, "invalid_scope");
    let public = idp
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "loadtest-public"),
            ],
            &[],
        )
        .await?;
    assert_eq!(public.error_code()?, "unauthorized_client");
    Ok(())
}

/// `private_key_jwt` (RFC 7523): with the client's keys registered, an assertion authenticates
/// it at the token and introspection endpoints, once; its replay is refused and counted, and so
/// is an assertion for another audience; discovery says the method is there.
#[tokio::test]
async fn a_client_assertion_authenticates_once_and_its_replay_is_refused() -> Result<()> {
    use mock_idp::clients::CONFIDENTIAL_CLIENT_ID;
    use mock_idp::keys::{SigningAlg, SigningKey};
    let client_key = SigningKey::generate(SigningAlg::Es256)?;
    let jwks = mock_idp::client_assertion::ClientJwks::parse(client_key.jwks_json().as_ref())?;
    let idp = TestIdp::with(|config| config.client_jwks = Some(jwks)).await?;
    let discovery = idp
        .get("/.well-known/openid-configuration", &[])
        .await?
        .json()?;
    assert!(
        discovery["token_endpoint_auth_methods_supported"]
            .as_array()
            .context("auth methods")?
            .contains(&serde_json::json!("private_key_jwt"))
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let assertion = |jti: &str, audience: &str| -> Result<String> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(client_key.kid().to_owned());
        let claims = serde_json::json!({
            "iss": CONFIDENTIAL_CLIENT_ID, "sub": CONFIDENTIAL_CLIENT_ID, "aud": audience,
            "jti": jti, "iat": now, "exp": now + 60,
        });
        Ok(jsonwebtoken::encode(
            &header,
            &claims,
            client_key.encoding_key(),
        )?)
    };
    let token_url = idp.url("/token");
    let shared = &idp;
    let client_credentials = |assertion: String| async move {
        shared
            .post_form(
                "/token",
                &[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                ],
                &[],
            )
            .await
    };
    let first = assertion("jti-1", &token_url)?;
    let reply = client_credentials(first.clone()).await?;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    let access_token = text(&reply.json()?, "access_token")?;
    let replayed = client_credentials(first).await?;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replayed.error_code()?, "invalid_client");
    let elsewhere = client_credentials(assertion("jti-2", "https://elsewhere.test/token")?).await?;
    assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED);
    // The issuer is an audience too, and introspection takes an assertion as the token endpoint
    // does.
    let introspection = idp
        .post_form(
            "/introspect",
            &[
                ("token", &access_token),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion("jti-3", &idp.base_url())?),
            ],
            &[],
        )
        .await?;
    assert_eq!(introspection.json()?["active"], true);
    assert_eq!(
        idp.metric("mock_idp_client_assertions_total{outcome=\"accepted\"}")
            .await?,
        2
    );
    assert_eq!(
        idp.metric("mock_idp_client_assertions_total{outcome=\"replayed\"}")
            .await?,
        1
    );
    assert_eq!(
        idp.metric("mock_idp_client_assertions_total{outcome=\"refused\"}")
            .await?,
        1
    );
    // The secret still works beside the keys.
    let by_secret = idp.token(&[("grant_type", "client_credentials")]).await?;
    assert_eq!(by_secret.status, StatusCode::OK);
    Ok(())
}

/// Without registered keys, an assertion is refused in words that say how to register them.
#[tokio::test]
async fn an_assertion_without_registered_keys_is_refused_in_words() -> Result<()> {
    let idp = TestIdp::start().await?;
    let reply = idp
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", "a.b.c"),
            ],
            &[],
        )
        .await?;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let description = reply.json()?["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(description.contains("--client-jwks"), "{description}");
    Ok(())
}

/// `self_signed_tls_client_auth` (RFC 8705): the certificate the TLS handshake presented, when
/// it is the one registered, authenticates the client named in the body; another certificate is
/// refused in words, and discovery lists the method only when one is registered.
#[tokio::test]
async fn a_registered_tls_certificate_authenticates_its_client() -> Result<()> {
    use bytes::Bytes;
    use mock_idp::client_certificate::PresentedCertificate;
    let registered = Bytes::from_static(b"the client's certificate, DER");
    let shared = registered.clone();
    let idp = TestIdp::with(move |config| config.client_certificate = Some(shared)).await?;
    let discovery = idp
        .get("/.well-known/openid-configuration", &[])
        .await?
        .json()?;
    assert!(
        discovery["token_endpoint_auth_methods_supported"]
            .as_array()
            .context("auth methods")?
            .contains(&serde_json::json!("self_signed_tls_client_auth"))
    );
    let with_certificate = |presented: &'static [u8]| {
        let mut request = mock_idp::in_process::form_post(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "loadtest-client"),
            ],
        );
        request
            .extensions_mut()
            .insert(PresentedCertificate(Bytes::from_static(presented)));
        request
    };
    let accepted = idp
        .send(with_certificate(b"the client's certificate, DER"))
        .await?;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.json());
    let refused = idp.send(with_certificate(b"somebody else's")).await?;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        text(&refused.json()?, "error_description")?.contains("not the one registered"),
        "{:?}",
        refused.json()
    );
    Ok(())
}
