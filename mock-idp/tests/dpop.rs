//! DPoP (RFC 9449) at mock-idp: tokens bound to the key of the proof that asked for them, proofs
//! checked for their request and used once, nonces handed out and required, a public client's
//! refresh tokens bound to its key, and a bound token refused as a bearer token.

mod support;

use anyhow::{Context as _, Result};
use http::StatusCode;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mock_idp::clients::REDIRECT_URI;
use mock_idp::keys::{SigningAlg, SigningKey};
use serde_json::{Value, json};
use support::{TestIdp, text};

/// A client's DPoP key and the proofs it signs.
struct Holder {
    key: SigningKey,
    jwk: Jwk,
}

impl Holder {
    fn new() -> Result<Self> {
        let key = SigningKey::generate(SigningAlg::Es256)?;
        let jwk = Jwk::from_encoding_key(key.encoding_key(), Algorithm::ES256)?;
        Ok(Self { key, jwk })
    }

    fn thumbprint(&self) -> Result<String> {
        Ok(self.jwk.thumbprint(ThumbprintHash::SHA256)?)
    }

    fn proof_with(&self, claims: &Value, key: &EncodingKey) -> Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        Ok(jsonwebtoken::encode(&header, claims, key)?)
    }

    /// A proof for `method` at `url`, fresh, with `extra` claims (`nonce`, `ath`).
    fn proof(&self, jti: &str, method: &str, url: &str, extra: &[(&str, &str)]) -> Result<String> {
        let mut claims = json!({ "jti": jti, "htm": method, "htu": url, "iat": now() });
        for (name, value) in extra {
            claims[*name] = json!(value);
        }
        self.proof_with(&claims, self.key.encoding_key())
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}

/// `ath`: base64url of the SHA-256 of the access token.
fn ath(token: &str) -> String {
    mock_idp::pkce_s256(token)
}

fn claims_of(jwt: &str) -> Result<Value> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).context("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
    Ok(serde_json::from_slice(&bytes)?)
}

async fn client_credentials(idp: &TestIdp, proof: &str) -> Result<support::Reply> {
    let authorization =
        mock_idp::clients::basic_authorization("loadtest-client", "loadtest-secret");
    idp.post_form(
        "/token",
        &[("grant_type", "client_credentials")],
        &[("authorization", &authorization), ("dpop", proof)],
    )
    .await
}

async fn userinfo(
    idp: &TestIdp,
    scheme: &str,
    token: &str,
    proof: Option<&str>,
) -> Result<support::Reply> {
    let authorization = format!("{scheme} {token}");
    let mut headers = vec![("authorization", authorization.as_str())];
    if let Some(proof) = proof {
        headers.push(("dpop", proof));
    }
    idp.get("/userinfo", &headers).await
}

/// A proof binds the token it asks for (`token_type` DPoP, `cnf.jkt` the key's thumbprint, also
/// in introspection); the same proof again is refused and counted as a replay; a proof for
/// another method or URL, or signed by another key than the one it carries, is refused.
#[tokio::test]
async fn a_proof_binds_the_token_and_is_used_once() -> Result<()> {
    let idp = TestIdp::start().await?;
    let holder = Holder::new()?;
    let token_url = idp.url("/token");
    let proof = holder.proof("jti-1", "POST", &token_url, &[])?;
    let reply = client_credentials(&idp, &proof).await?;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    let body = reply.json()?;
    assert_eq!(body["token_type"], "DPoP");
    let access_token = text(&body, "access_token")?;
    assert_eq!(
        claims_of(&access_token)?["cnf"]["jkt"],
        holder.thumbprint()?
    );
    let introspected = idp.introspect(&access_token).await?;
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"]["jkt"], holder.thumbprint()?);

    let replayed = client_credentials(&idp, &proof).await?;
    assert_eq!(replayed.status, StatusCode::BAD_REQUEST);
    assert_eq!(replayed.error_code()?, "invalid_dpop_proof");

    let wrong_method = holder.proof("jti-2", "GET", &token_url, &[])?;
    let wrong_url = holder.proof("jti-3", "POST", &idp.url("/introspect"), &[])?;
    let stranger = SigningKey::generate(SigningAlg::Es256)?;
    let forged = holder.proof_with(
        &json!({ "jti": "jti-4", "htm": "POST", "htu": token_url, "iat": now() }),
        stranger.encoding_key(),
    )?;
    let stale = holder.proof_with(
        &json!({ "jti": "jti-5", "htm": "POST", "htu": token_url, "iat": now() - 600 }),
        holder.key.encoding_key(),
    )?;
    for (what, proof) in [
        ("another method", wrong_method),
        ("another URL", wrong_url),
        ("another key", forged),
        ("an old iat", stale),
        ("not a JWT", "garbage".to_owned()),
    ] {
        let reply = client_credentials(&idp, &proof).await?;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(reply.error_code()?, "invalid_dpop_proof", "{what}");
        let description = text(&reply.json()?, "error_description")?;
        assert!(description.contains("DPoP proof"), "{what}: {description}");
    }
    assert_eq!(
        idp.metric("mock_idp_dpop_proofs_total{outcome=\"accepted\"}")
            .await?,
        1
    );
    assert_eq!(
        idp.metric("mock_idp_dpop_proofs_total{outcome=\"replayed\"}")
            .await?,
        1
    );
    assert_eq!(
        idp.metric("mock_idp_dpop_proofs_total{outcome=\"refused\"}")
            .await?,
        5
    );
    // Discovery says which algorithms a proof may use.
    let discovery = idp
        .get("/.well-known/openid-configuration", &[])
        .await?
        .json()?;
    assert!(
        discovery["dpop_signing_alg_values_supported"]
            .as_array()
            .context("DPoP algorithms")?
            .contains(&json!("ES256"))
    );
    Ok(())
}

/// At userinfo a bound token needs the `DPoP` scheme and a proof of its key carrying `ath`; as a
/// bearer token, with another key's proof, or with a proof for another token, it is refused.
#[tokio::test]
async fn a_bound_token_is_taken_only_with_a_proof_of_its_key() -> Result<()> {
    let idp = TestIdp::start().await?;
    let holder = Holder::new()?;
    let cookie = idp.login("user-loadtest-00001").await?;
    let code = idp.code_with(&cookie, &[]).await?;
    let authorization =
        mock_idp::clients::basic_authorization("loadtest-client", "loadtest-secret");
    let proof = holder.proof("redeem", "POST", &idp.url("/token"), &[])?;
    let tokens = idp
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", support::VERIFIER),
            ],
            &[("authorization", &authorization), ("dpop", &proof)],
        )
        .await?
        .json()?;
    assert_eq!(tokens["token_type"], "DPoP");
    let access_token = text(&tokens, "access_token")?;
    let userinfo_url = idp.url("/userinfo");

    let proof = holder.proof(
        "use-1",
        "GET",
        &userinfo_url,
        &[("ath", &ath(&access_token))],
    )?;
    let reply = userinfo(&idp, "DPoP", &access_token, Some(&proof)).await?;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.json());
    assert_eq!(reply.json()?["sub"], "user-loadtest-00001");

    let as_bearer = userinfo(&idp, "Bearer", &access_token, None).await?;
    assert_eq!(as_bearer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(as_bearer.error_code()?, "invalid_token");

    let without_proof = userinfo(&idp, "DPoP", &access_token, None).await?;
    assert_eq!(without_proof.status, StatusCode::UNAUTHORIZED);
    assert_eq!(without_proof.error_code()?, "invalid_dpop_proof");
    let challenge = without_proof
        .header(http::header::WWW_AUTHENTICATE)
        .context("no challenge")?;
    assert!(challenge.starts_with("DPoP "), "{challenge}");

    let other = Holder::new()?;
    let proof = other.proof(
        "use-2",
        "GET",
        &userinfo_url,
        &[("ath", &ath(&access_token))],
    )?;
    let reply = userinfo(&idp, "DPoP", &access_token, Some(&proof)).await?;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.error_code()?, "invalid_token");

    let proof = holder.proof(
        "use-3",
        "GET",
        &userinfo_url,
        &[("ath", &ath("another token"))],
    )?;
    let reply = userinfo(&idp, "DPoP", &access_token, Some(&proof)).await?;
    assert_eq!(reply.error_code()?, "invalid_dpop_proof");
    Ok(())
}

/// With `--dpop-nonce`, a proof without a nonce is answered `use_dpop_nonce` with the nonce in
/// `DPoP-Nonce`; the same request with it succeeds, and tells the nonce to use next.
#[tokio::test]
async fn a_nonce_is_asked_for_and_then_taken() -> Result<()> {
    let idp = TestIdp::with(|config| config.dpop_nonce = true).await?;
    let holder = Holder::new()?;
    let token_url = idp.url("/token");
    let challenged =
        client_credentials(&idp, &holder.proof("n-1", "POST", &token_url, &[])?).await?;
    assert_eq!(challenged.status, StatusCode::BAD_REQUEST);
    assert_eq!(challenged.error_code()?, "use_dpop_nonce");
    let nonce = challenged
        .header(http::header::HeaderName::from_static("dpop-nonce"))
        .context("no DPoP-Nonce")?
        .to_owned();
    let made_up = holder.proof("n-2", "POST", &token_url, &[("nonce", "made-up")])?;
    assert_eq!(
        client_credentials(&idp, &made_up).await?.error_code()?,
        "use_dpop_nonce"
    );
    let answered = client_credentials(
        &idp,
        &holder.proof("n-3", "POST", &token_url, &[("nonce", &nonce)])?,
    )
    .await?;
    assert_eq!(answered.status, StatusCode::OK, "{:?}", answered.json());
    assert_eq!(
        answered.header(http::header::HeaderName::from_static("dpop-nonce")),
        Some(nonce.as_str())
    );
    assert_eq!(
        idp.metric("mock_idp_dpop_proofs_total{outcome=\"nonce_required\"}")
            .await?,
        2
    );
    Ok(())
}

/// A public client's refresh tokens are bound to the key that redeemed its code: a refresh must
/// prove that key, and one without a proof or with another key's is refused without burning the
/// token, which still refreshes with the right key.
#[tokio::test]
async fn a_public_clients_refresh_token_stays_bound_to_its_key() -> Result<()> {
    let idp = TestIdp::start().await?;
    let holder = Holder::new()?;
    let token_url = idp.url("/token");
    let cookie = idp.login("user-loadtest-00002").await?;
    let code = idp
        .code_with(&cookie, &[("client_id", "loadtest-public")])
        .await?;
    let proof = holder.proof("p-1", "POST", &token_url, &[])?;
    let tokens = idp
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "loadtest-public"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", support::VERIFIER),
            ],
            &[("dpop", &proof)],
        )
        .await?
        .json()?;
    let refresh_token = text(&tokens, "refresh_token")?;
    let refresh = |proof: Option<String>| {
        let refresh_token = refresh_token.clone();
        let idp = &idp;
        async move {
            let mut headers = Vec::new();
            if let Some(proof) = &proof {
                headers.push(("dpop", proof.as_str()));
            }
            idp.post_form(
                "/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", "loadtest-public"),
                    ("refresh_token", &refresh_token),
                ],
                &headers,
            )
            .await
        }
    };
    let without = refresh(None).await?;
    assert_eq!(without.error_code()?, "invalid_grant");
    let other = Holder::new()?;
    let with_other = refresh(Some(other.proof("p-2", "POST", &token_url, &[])?)).await?;
    assert_eq!(with_other.error_code()?, "invalid_grant");
    let with_its_key = refresh(Some(holder.proof("p-3", "POST", &token_url, &[])?)).await?;
    assert_eq!(
        with_its_key.status,
        StatusCode::OK,
        "{:?}",
        with_its_key.json()
    );
    assert_eq!(with_its_key.json()?["token_type"], "DPoP");
    Ok(())
}
