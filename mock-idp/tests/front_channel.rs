//! Discovery, JWKS, the login form and `/authorize`, driven through `App::handle`.

mod support;

use std::time::Duration;

use anyhow::{Context as _, Result};
use http::{StatusCode, header};
use jsonwebtoken::jwk::JwkSet;
use mock_idp::clients::REDIRECT_URI;
use support::{TestIdp, text};

#[tokio::test]
async fn discovery_lists_what_is_implemented() -> Result<()> {
    let idp = TestIdp::start().await?;
    let reply = idp.get("/.well-known/openid-configuration", &[]).await?;
    assert_eq!(reply.status, StatusCode::OK);
    let document = reply.json()?;
    let base = idp.base_url();
    assert_eq!(document["issuer"], base);
    for (member, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
    ] {
        assert_eq!(document[member], format!("{base}{path}"), "{member}");
    }
    assert_eq!(
        document["id_token_signing_alg_values_supported"][0],
        "RS256"
    );
    assert_eq!(
        document["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let grants = document["grant_types_supported"].to_string();
    for grant in [
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "client_credentials",
    ] {
        assert!(grants.contains(grant), "{grant}");
    }
    // Userinfo answers plain JSON, which is no signing algorithm at all, "none" included.
    assert!(
        document
            .get("userinfo_signing_alg_values_supported")
            .is_none()
    );
    // A public client revokes its own tokens with client_id only (RFC 7009 2.1), as advertised.
    assert!(
        document["revocation_endpoint_auth_methods_supported"]
            .as_array()
            .is_some_and(|methods| methods.contains(&serde_json::json!("none")))
    );
    let revoked = idp
        .post_form(
            "/revoke",
            &[("token", "unknown"), ("client_id", "loadtest-public")],
            &[],
        )
        .await?;
    assert_eq!(revoked.status, StatusCode::OK);
    // Every advertised endpoint answers something other than 404.
    for member in ["userinfo_endpoint", "jwks_uri", "token_endpoint"] {
        let url = text(&document, member)?;
        let path = url.strip_prefix(&base).context("endpoint outside issuer")?;
        assert_ne!(
            idp.get(path, &[]).await?.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn tokens_verify_against_the_published_jwks() -> Result<()> {
    for alg in [
        mock_idp::SigningAlg::Rs256,
        mock_idp::SigningAlg::Es256,
        mock_idp::SigningAlg::EdDsa,
    ] {
        let idp = TestIdp::with(|config| config.signing_alg = alg).await?;
        let jwks: JwkSet = serde_json::from_slice(&idp.get("/jwks", &[]).await?.body)?;
        let tokens = idp.tokens("user-loadtest-00001").await?;
        let access_token = text(&tokens, "access_token")?;
        let header = jsonwebtoken::decode_header(&access_token)?;
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let kid = header.kid.context("no kid")?;
        let jwk = jwks.find(&kid).context("kid not in JWKS")?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk)?;
        let mut validation = jsonwebtoken::Validation::new(alg.algorithm());
        validation.set_issuer(&[idp.base_url()]);
        validation.set_audience(&[idp.base_url()]);
        let claims =
            jsonwebtoken::decode::<serde_json::Value>(&access_token, &key, &validation)?.claims;
        for claim in [
            "iss",
            "sub",
            "aud",
            "client_id",
            "scope",
            "iat",
            "exp",
            "jti",
        ] {
            assert!(
                claims.get(claim).is_some(),
                "{alg:?} access token lacks {claim}"
            );
        }
        let id_token = text(&tokens, "id_token")?;
        let mut validation = jsonwebtoken::Validation::new(alg.algorithm());
        validation.set_audience(&["loadtest-client"]);
        let claims =
            jsonwebtoken::decode::<serde_json::Value>(&id_token, &key, &validation)?.claims;
        assert_eq!(claims["nonce"], "nonce-1");
        assert_eq!(claims["at_hash"], mock_idp::jwt::at_hash(&access_token));
        assert!(claims["auth_time"].is_u64());
    }
    Ok(())
}

#[tokio::test]
async fn login_sets_a_protected_session_cookie_and_returns_to_authorize() -> Result<()> {
    let idp = TestIdp::start().await?;
    let query = idp.authorize_query(&[]);

    let first = idp.get(&format!("/authorize?{query}"), &[]).await?;
    assert_eq!(first.status, StatusCode::FOUND);
    let login_path = first
        .header(header::LOCATION)
        .context("no Location")?
        .to_owned();
    assert!(login_path.starts_with("/login?"), "{login_path}");

    let form = idp.get(&login_path, &[]).await?;
    assert_eq!(form.status, StatusCode::OK);
    let html = String::from_utf8(form.body.to_vec())?;
    assert!(html.contains("<form method=\"post\" action=\"/login\">"));
    assert!(html.contains("name=\"return_to\""));

    let return_to = format!("/authorize?{query}");
    let reply = idp
        .post_form(
            "/login",
            &[
                ("username", "user-loadtest-00042"),
                ("password", "loadtest"),
                ("return_to", &return_to),
            ],
            &[],
        )
        .await?;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!(reply.header(header::LOCATION), Some(return_to.as_str()));
    let cookie = reply.header(header::SET_COOKIE).context("no cookie")?;
    assert!(cookie.starts_with("mock_idp_session="));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));

    let cookie = cookie.split(';').next().context("empty cookie")?;
    let reply = idp.get(&return_to, &[("cookie", cookie)]).await?;
    assert_eq!(reply.status, StatusCode::FOUND);
    let location = reply.header(header::LOCATION).context("no Location")?;
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(reply.location_param("state")?.as_deref(), Some("state-1"));
    assert!(reply.location_param("code")?.is_some());
    assert_eq!(
        reply.location_param("iss")?.as_deref(),
        Some(idp.base_url().as_str())
    );
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_gets_the_form_again() -> Result<()> {
    let idp = TestIdp::with(|config| config.users = 5).await?;
    for (user, password) in [
        ("user-loadtest-00001", "wrong"),
        ("user-loadtest-00006", "loadtest"),
        ("nobody", "loadtest"),
    ] {
        let reply = idp
            .post_form("/login", &[("username", user), ("password", password)], &[])
            .await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{user}");
        assert!(reply.header(header::SET_COOKIE).is_none());
        assert!(String::from_utf8(reply.body.to_vec())?.contains("wrong password"));
    }
    Ok(())
}

#[tokio::test]
async fn a_bad_return_to_is_refused_before_any_session_opens() -> Result<()> {
    let idp = TestIdp::start().await?;
    // Anywhere but /authorize would be an open redirect; a control character (sent raw or as
    // %01, which the form decoding turns into the byte) cannot go into a Location header.
    for return_to in [
        "https://evil.example/",
        "//evil.example/authorize",
        "/authorize?x=1\r\nSet-Cookie: a=b",
        "/authorize?x=\u{1}",
        "/authorize?x=1 2",
    ] {
        let reply = idp
            .post_form(
                "/login",
                &[
                    ("username", "user-loadtest-00001"),
                    ("password", "loadtest"),
                    ("return_to", return_to),
                ],
                &[],
            )
            .await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{return_to:?}");
        assert_eq!(reply.error_code()?, "invalid_request", "{return_to:?}");
        assert!(reply.header(header::LOCATION).is_none(), "{return_to:?}");
        assert!(reply.header(header::SET_COOKIE).is_none(), "{return_to:?}");
    }
    let raw = idp
        .post_raw(
            "/login",
            "username=user-loadtest-00001&password=loadtest&return_to=%2Fauthorize%3Fx%3D%01",
            &[],
        )
        .await?;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
    assert!(raw.header(header::SET_COOKIE).is_none());
    assert_eq!(idp.metric("mock_idp_logins_total").await?, 0);
    // Nothing broke: a good login still works.
    assert!(
        idp.login("user-loadtest-00001")
            .await?
            .starts_with("mock_idp_session=")
    );
    Ok(())
}

#[tokio::test]
async fn the_session_cookie_is_secure_with_an_https_issuer() -> Result<()> {
    for (issuer, secure) in [("https://idp.example", true), ("http://idp.example", false)] {
        let idp = TestIdp::with(|config| config.issuer = Some(issuer.into())).await?;
        let reply = idp
            .post_form(
                "/login",
                &[
                    ("username", "user-loadtest-00001"),
                    ("password", "loadtest"),
                ],
                &[],
            )
            .await?;
        let cookie = reply.header(header::SET_COOKIE).context("no cookie")?;
        assert_eq!(cookie.contains("; Secure"), secure, "{issuer}: {cookie}");
    }
    Ok(())
}

#[tokio::test]
async fn bad_client_or_redirect_uri_never_redirects() -> Result<()> {
    let idp = TestIdp::start().await?;
    let cookie = idp.login("user-loadtest-00001").await?;
    for extra in [
        [("client_id", "unknown-client")],
        [("redirect_uri", "http://127.0.0.1:3000/evil")],
        [("redirect_uri", "http://127.0.0.1:3000/callback/")],
        [("redirect_uri", "")],
        [("client_id", "")],
    ] {
        let reply = idp
            .get(
                &format!("/authorize?{}", idp.authorize_query(&extra)),
                &[("cookie", &cookie)],
            )
            .await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{extra:?}");
        assert!(reply.header(header::LOCATION).is_none());
        assert_eq!(reply.error_code()?, "invalid_request");
    }
    Ok(())
}

#[tokio::test]
async fn request_errors_go_back_to_the_client_with_state() -> Result<()> {
    let idp = TestIdp::start().await?;
    let cookie = idp.login("user-loadtest-00001").await?;
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("scope", "profile")], "invalid_scope"),
        (&[("scope", "openid admin")], "invalid_scope"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge_method", "")], "invalid_request"),
        (&[("code_challenge", "too-short")], "invalid_request"),
    ];
    for (extra, expected) in cases {
        let reply = idp
            .get(
                &format!("/authorize?{}", idp.authorize_query(extra)),
                &[("cookie", &cookie)],
            )
            .await?;
        assert_eq!(reply.status, StatusCode::FOUND, "{extra:?}");
        assert_eq!(
            reply.location_param("error")?.as_deref(),
            Some(expected),
            "{extra:?}"
        );
        assert_eq!(reply.location_param("state")?.as_deref(), Some("state-1"));
        assert!(reply.location_param("code")?.is_none());
    }
    Ok(())
}

#[tokio::test]
async fn the_public_client_must_use_pkce() -> Result<()> {
    let idp = TestIdp::start().await?;
    let cookie = idp.login("user-loadtest-00001").await?;
    let without_pkce = idp.authorize_query(&[
        ("client_id", "loadtest-public"),
        ("code_challenge", ""),
        ("code_challenge_method", ""),
    ]);
    let reply = idp
        .get(
            &format!("/authorize?{without_pkce}"),
            &[("cookie", &cookie)],
        )
        .await?;
    assert_eq!(
        reply.location_param("error")?.as_deref(),
        Some("invalid_request")
    );

    let code = idp
        .code_with(&cookie, &[("client_id", "loadtest-public")])
        .await?;
    let reply = idp
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "loadtest-public"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", support::VERIFIER),
            ],
            &[],
        )
        .await?;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    Ok(())
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() -> Result<()> {
    let idp = TestIdp::start().await?;
    let reply = idp
        .get(
            &format!("/authorize?{}", idp.authorize_query(&[("prompt", "none")])),
            &[],
        )
        .await?;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert!(
        reply
            .header(header::LOCATION)
            .is_some_and(|location| location.starts_with(REDIRECT_URI))
    );
    assert_eq!(
        reply.location_param("error")?.as_deref(),
        Some("login_required")
    );
    assert_eq!(reply.location_param("state")?.as_deref(), Some("state-1"));

    // With a session, prompt=none just answers a code.
    let cookie = idp.login("user-loadtest-00001").await?;
    let reply = idp
        .get(
            &format!("/authorize?{}", idp.authorize_query(&[("prompt", "none")])),
            &[("cookie", &cookie)],
        )
        .await?;
    assert!(reply.location_param("code")?.is_some());
    Ok(())
}

#[tokio::test]
async fn max_age_asks_a_stale_session_to_sign_in_again() -> Result<()> {
    let idp = TestIdp::start().await?;
    let cookie = idp.login("user-loadtest-00001").await?;
    // auth_time has a one-second resolution: after 1.1 s the session is at least 1 s old.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let authorize = |extra: &[(&str, &str)]| format!("/authorize?{}", idp.authorize_query(extra));

    let fresh_enough = idp
        .get(&authorize(&[("max_age", "3600")]), &[("cookie", &cookie)])
        .await?;
    assert!(fresh_enough.location_param("code")?.is_some());

    let stale = idp
        .get(&authorize(&[("max_age", "0")]), &[("cookie", &cookie)])
        .await?;
    assert_eq!(stale.status, StatusCode::FOUND);
    let location = stale.header(header::LOCATION).context("no Location")?;
    assert!(location.starts_with("/login?"), "{location}");
    assert!(location.contains("max_age=0"), "{location}");

    let stale_silent = idp
        .get(
            &authorize(&[("max_age", "0"), ("prompt", "none")]),
            &[("cookie", &cookie)],
        )
        .await?;
    assert_eq!(
        stale_silent.location_param("error")?.as_deref(),
        Some("login_required")
    );
    Ok(())
}

#[tokio::test]
async fn malformed_prompt_max_age_and_nonce_are_invalid_requests() -> Result<()> {
    let idp = TestIdp::start().await?;
    let cookie = idp.login("user-loadtest-00001").await?;
    let long_nonce = "n".repeat(mock_idp::MAX_NONCE_BYTES + 1);
    for extra in [
        [("prompt", "none login")],
        [("prompt", "consent none")],
        [("max_age", "-1")],
        [("max_age", "soon")],
        [("nonce", long_nonce.as_str())],
    ] {
        let reply = idp
            .get(
                &format!("/authorize?{}", idp.authorize_query(&extra)),
                &[("cookie", &cookie)],
            )
            .await?;
        assert_eq!(reply.status, StatusCode::FOUND, "{extra:?}");
        assert_eq!(
            reply.location_param("error")?.as_deref(),
            Some("invalid_request"),
            "{extra:?}"
        );
        assert!(reply.location_param("code")?.is_none(), "{extra:?}");
    }
    Ok(())
}

#[tokio::test]
async fn authorize_accepts_post() -> Result<()> {
    let idp = TestIdp::start().await?;
    let cookie = idp.login("user-loadtest-00001").await?;
    let reply = idp
        .post_raw(
            "/authorize",
            &idp.authorize_query(&[]),
            &[("cookie", &cookie)],
        )
        .await?;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert!(reply.location_param("code")?.is_some());
    Ok(())
}
