//! `/userinfo`, `/introspect` and `/revoke`, and every kind of bad bearer token.

mod support;

use anyhow::{Context as _, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{StatusCode, header};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use support::{TestIdp, text};

#[tokio::test]
async fn userinfo_answers_the_user_claims_by_get_and_post() -> Result<()> {
    let idp = TestIdp::start().await?;
    let access_token = text(&idp.tokens("user-loadtest-00007").await?, "access_token")?;
    let reply = idp.userinfo(&access_token).await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json()?,
        json!({
            "sub": "user-loadtest-00007",
            "name": "Load Test User 00007",
            "preferred_username": "user-loadtest-00007",
            "email": "user-loadtest-00007@example.com",
            "email_verified": true,
        })
    );
    let by_post = idp
        .post_form("/userinfo", &[("access_token", &access_token)], &[])
        .await?;
    assert_eq!(by_post.status, StatusCode::OK);
    let bearer = format!("Bearer {access_token}");
    let by_post_header = idp
        .post_raw("/userinfo", "", &[("authorization", &bearer)])
        .await?;
    assert_eq!(by_post_header.status, StatusCode::OK);
    Ok(())
}

/// A token with the server's real key but something wrong in it.
fn forge(idp: &TestIdp, header: Header, claims: &serde_json::Value) -> Result<String> {
    let key = idp.app().signing_key().encoding_key();
    Ok(jsonwebtoken::encode(&header, claims, key)?)
}

#[tokio::test]
async fn userinfo_refuses_every_bad_token_with_401_and_a_bearer_challenge() -> Result<()> {
    let idp = TestIdp::start().await?;
    let other = TestIdp::start().await?;
    let good = text(&idp.tokens("user-loadtest-00001").await?, "access_token")?;
    let kid = idp.app().signing_key().kid().to_owned();
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "iss": idp.base_url(), "sub": "user-loadtest-00001", "aud": idp.base_url(),
        "client_id": "loadtest-client", "scope": "openid", "iat": now, "exp": now + 600, "jti": "forged",
    });
    let mut typed = Header::new(Algorithm::RS256);
    typed.typ = Some("at+jwt".into());
    typed.kid = Some(kid.clone());

    let mut expired_claims = claims.clone();
    expired_claims["exp"] = json!(now - 10);
    let expired = forge(&idp, typed.clone(), &expired_claims)?;
    let wrong_kid = forge(
        &idp,
        Header {
            kid: Some("not-our-kid".into()),
            ..typed.clone()
        },
        &claims,
    )?;
    let not_recorded = forge(&idp, typed.clone(), &claims)?;
    let wrong_typ = forge(
        &idp,
        Header {
            typ: Some("JWT".into()),
            ..typed.clone()
        },
        &claims,
    )?;
    let foreign = text(&other.tokens("user-loadtest-00001").await?, "access_token")?;
    // alg "none": a header and a payload and no signature.
    let none_header =
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#));
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let alg_none = format!("{none_header}.{payload}.");
    // Algorithm confusion: HS256 keyed with the public key.
    let public_key = idp
        .app()
        .signing_key()
        .decoding_key()
        .try_get_as_bytes()?
        .to_vec();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.typ = Some("at+jwt".into());
    hs_header.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(&hs_header, &claims, &EncodingKey::from_secret(&public_key))?;
    let mut tampered = good.clone();
    tampered.pop();
    tampered.push(if good.ends_with('A') { 'B' } else { 'A' });

    for (name, token) in [
        ("expired", expired.as_str()),
        ("wrong kid", &wrong_kid),
        ("never issued", &not_recorded),
        ("not an access token", &wrong_typ),
        ("other issuer's key", &foreign),
        ("alg none", &alg_none),
        ("HS256 with the public key", &hs256),
        ("tampered signature", &tampered),
        ("malformed", "abc.def"),
        ("garbage", "%%%"),
    ] {
        let reply = idp.userinfo(token).await?;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(reply.error_code()?, "invalid_token", "{name}");
        let challenge = reply
            .header(header::WWW_AUTHENTICATE)
            .context("no challenge")?;
        assert!(challenge.starts_with("Bearer"), "{name}: {challenge}");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{name}: {challenge}"
        );
    }
    // No token at all: a bare challenge, no error code (RFC 6750 3.1).
    let reply = idp.get("/userinfo", &[]).await?;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header(header::WWW_AUTHENTICATE),
        Some(r#"Bearer realm="mock-idp""#)
    );
    assert!(reply.json()?.get("error").is_none());
    let reply = idp
        .get("/userinfo", &[("authorization", "Basic abc")])
        .await?;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // The server keeps serving good tokens.
    assert_eq!(idp.userinfo(&good).await?.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn userinfo_needs_the_openid_scope() -> Result<()> {
    let idp = TestIdp::start().await?;
    let reply = idp.token(&[("grant_type", "client_credentials")]).await?;
    let access_token = text(&reply.json()?, "access_token")?;
    let reply = idp.userinfo(&access_token).await?;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.error_code()?, "insufficient_scope");
    Ok(())
}

#[tokio::test]
async fn introspection_reports_active_tokens_only() -> Result<()> {
    let idp = TestIdp::start().await?;
    let tokens = idp.tokens("user-loadtest-00003").await?;
    let access = idp.introspect(&text(&tokens, "access_token")?).await?;
    assert_eq!(access["active"], true);
    assert_eq!(access["sub"], "user-loadtest-00003");
    assert_eq!(access["client_id"], "loadtest-client");
    assert_eq!(access["token_type"], "Bearer");
    let refresh = idp.introspect(&text(&tokens, "refresh_token")?).await?;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");
    assert_eq!(
        idp.introspect("nonsense").await?,
        json!({ "active": false })
    );

    let unauthenticated = idp.post_form("/introspect", &[("token", "x")], &[]).await?;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    // A public client has no credentials, so it is no authorized caller (RFC 7662 2.1): it
    // would otherwise learn the claims of any token it holds or guesses.
    let public = idp
        .post_form(
            "/introspect",
            &[
                ("token", &text(&tokens, "access_token")?),
                ("client_id", "loadtest-public"),
            ],
            &[],
        )
        .await?;
    assert_eq!(public.status, StatusCode::UNAUTHORIZED);
    assert_eq!(public.error_code()?, "invalid_client");
    assert!(public.json()?.get("active").is_none());
    Ok(())
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family() -> Result<()> {
    let idp = TestIdp::start().await?;
    let tokens = idp.tokens("user-loadtest-00001").await?;
    let refresh_token = text(&tokens, "refresh_token")?;
    let access_token = text(&tokens, "access_token")?;
    let authorization =
        mock_idp::clients::basic_authorization("loadtest-client", "loadtest-secret");
    let reply = idp
        .post_form(
            "/revoke",
            &[
                ("token", &refresh_token),
                ("token_type_hint", "refresh_token"),
            ],
            &[("authorization", &authorization)],
        )
        .await?;
    assert_eq!(reply.status, StatusCode::OK);
    let refresh = idp
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ])
        .await?;
    assert_eq!(refresh.error_code()?, "invalid_grant");
    assert_eq!(
        idp.userinfo(&access_token).await?.status,
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}

#[tokio::test]
async fn revoking_an_access_token_revokes_only_it() -> Result<()> {
    let idp = TestIdp::start().await?;
    let tokens = idp.tokens("user-loadtest-00001").await?;
    let access_token = text(&tokens, "access_token")?;
    let authorization =
        mock_idp::clients::basic_authorization("loadtest-client", "loadtest-secret");
    let reply = idp
        .post_form(
            "/revoke",
            &[("token", &access_token)],
            &[("authorization", &authorization)],
        )
        .await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        idp.userinfo(&access_token).await?.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = idp
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &text(&tokens, "refresh_token")?),
        ])
        .await?;
    assert_eq!(refresh.status, StatusCode::OK);

    // Unknown tokens answer 200 too, and revocation needs client authentication.
    let unknown = idp
        .post_form(
            "/revoke",
            &[("token", "unknown")],
            &[("authorization", &authorization)],
        )
        .await?;
    assert_eq!(unknown.status, StatusCode::OK);
    let anonymous = idp
        .post_form("/revoke", &[("token", "unknown")], &[])
        .await?;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test]
async fn opaque_access_tokens_work_at_userinfo_and_introspection_until_revoked() -> Result<()> {
    let idp =
        TestIdp::with(|config| config.access_token_format = mock_idp::AccessTokenFormat::Opaque)
            .await?;
    let tokens = idp.tokens("user-loadtest-00003").await?;
    let access_token = text(&tokens, "access_token")?;
    assert!(!access_token.contains('.'), "not a JWT: {access_token}");
    assert!(access_token.len() >= 43, "256 random bits: {access_token}");
    let reply = idp.userinfo(&access_token).await?;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()?["sub"], "user-loadtest-00003");
    let introspected = idp.introspect(&access_token).await?;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["sub"], "user-loadtest-00003");
    // An unknown opaque token is refused, and revoking a known one ends it.
    assert_eq!(
        idp.userinfo("not-a-token-we-issued").await?.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        idp.introspect("not-a-token-we-issued").await?["active"],
        false
    );
    let authorization = mock_idp::clients::basic_authorization(
        mock_idp::clients::CONFIDENTIAL_CLIENT_ID,
        mock_idp::clients::CONFIDENTIAL_CLIENT_SECRET,
    );
    let revoked = idp
        .post_form(
            "/revoke",
            &[("token", &access_token)],
            &[("authorization", &authorization)],
        )
        .await?;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(
        idp.userinfo(&access_token).await?.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(idp.introspect(&access_token).await?["active"], false);
    Ok(())
}
