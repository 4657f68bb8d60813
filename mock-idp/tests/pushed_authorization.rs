//! Pushed authorization requests (RFC 9126) at mock-idp: a request pushed by an authenticated
//! client is answered with a `request_uri`, which `/authorize` takes once in place of the
//! request; a bad request is refused when pushed, and a used, unknown or foreign `request_uri`
//! at `/authorize`.

mod support;

use anyhow::{Context as _, Result};
use http::StatusCode;
use mock_idp::clients::REDIRECT_URI;
use support::{TestIdp, VERIFIER, text};

fn basic() -> String {
    mock_idp::clients::basic_authorization("loadtest-client", "loadtest-secret")
}

/// Pushes the standard request of the confidential client, with `extra` parameters.
async fn push(idp: &TestIdp, extra: &[(&str, &str)]) -> Result<support::Reply> {
    idp.post_raw(
        "/par",
        &idp.authorize_query(extra),
        &[("authorization", &basic())],
    )
    .await
}

/// A pushed request's `request_uri` gets a code at `/authorize` (with the session), once; the
/// code redeems as any other; discovery names the endpoint.
#[tokio::test]
async fn a_pushed_request_is_authorized_once_by_its_request_uri() -> Result<()> {
    let idp = TestIdp::start().await?;
    let discovery = idp
        .get("/.well-known/openid-configuration", &[])
        .await?
        .json()?;
    assert_eq!(
        discovery["pushed_authorization_request_endpoint"],
        idp.url("/par")
    );
    let pushed = push(&idp, &[]).await?;
    assert_eq!(pushed.status, StatusCode::CREATED, "{:?}", pushed.json());
    let body = pushed.json()?;
    let request_uri = text(&body, "request_uri")?;
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(body["expires_in"], 60);

    let cookie = idp.login("user-loadtest-00001").await?;
    let authorize = format!(
        "/authorize?client_id=loadtest-client&request_uri={}",
        support::encode(&[("x", &request_uri)]).trim_start_matches("x=")
    );
    let reply = idp.get(&authorize, &[("cookie", &cookie)]).await?;
    let code = reply.location_param("code")?.context("no code")?;
    assert_eq!(reply.location_param("state")?.as_deref(), Some("state-1"));
    let tokens = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ])
        .await?;
    assert_eq!(tokens.status, StatusCode::OK, "{:?}", tokens.json());

    let again = idp.get(&authorize, &[("cookie", &cookie)]).await?;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.error_code()?, "invalid_request");
    assert!(text(&again.json()?, "error_description")?.contains("push the request again"));
    Ok(())
}

/// Without a session, `/authorize` sends the user to the login form and back with the same
/// `request_uri`, which then gets the code.
#[tokio::test]
async fn a_pushed_request_survives_the_way_through_the_login_page() -> Result<()> {
    let idp = TestIdp::start().await?;
    let request_uri = text(&push(&idp, &[]).await?.json()?, "request_uri")?;
    let query = support::encode(&[
        ("client_id", "loadtest-client"),
        ("request_uri", &request_uri),
    ]);
    let reply = idp.get(&format!("/authorize?{query}"), &[]).await?;
    assert_eq!(reply.status, StatusCode::FOUND);
    let login = reply
        .header(http::header::LOCATION)
        .context("no redirect to the login page")?;
    assert!(login.starts_with("/login?"), "{login}");
    assert!(login.contains("request_uri="), "{login}");
    let cookie = idp.login("user-loadtest-00002").await?;
    let back = login.replacen("/login?", "/authorize?", 1);
    let reply = idp.get(&back, &[("cookie", &cookie)]).await?;
    assert!(
        reply.location_param("code")?.is_some(),
        "{:?}",
        reply.status
    );
    Ok(())
}

/// Refused when pushed: no client authentication, a request naming a request_uri, another
/// client's client_id, an unregistered redirect_uri, a bad response_type. Refused at
/// `/authorize`: an unknown request_uri, or one sent with another client_id.
#[tokio::test]
async fn bad_pushed_requests_and_request_uris_are_refused_in_words() -> Result<()> {
    let idp = TestIdp::start().await?;
    let unauthenticated = idp
        .post_form("/par", &[("client_id", "loadtest-client")], &[])
        .await?;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    for (what, extra, code) in [
        (
            "a request_uri",
            vec![("request_uri", "urn:x")],
            "invalid_request",
        ),
        (
            "an unregistered redirect_uri",
            vec![("redirect_uri", "https://evil.test/")],
            "invalid_request",
        ),
        (
            "a token response_type",
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            "another client's id",
            vec![("client_id", "loadtest-public")],
            "invalid_client",
        ),
    ] {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        let challenge = mock_idp::pkce_s256(VERIFIER);
        for (name, value) in [
            ("response_type", "code"),
            ("client_id", "loadtest-client"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ] {
            let replaced = extra.iter().find(|(known, _)| *known == name);
            pairs.push(replaced.copied().unwrap_or((name, value)));
        }
        let added: Vec<(&str, &str)> = extra
            .iter()
            .filter(|(name, _)| !pairs.iter().any(|(known, _)| known == name))
            .copied()
            .collect();
        pairs.extend(added);
        let reply = idp
            .post_form("/par", &pairs, &[("authorization", &basic())])
            .await?;
        let status = if code == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        assert_eq!(reply.status, status, "{what}");
        assert_eq!(reply.error_code()?, code, "{what}");
    }
    let cookie = idp.login("user-loadtest-00003").await?;
    let unknown = idp
        .get(
            "/authorize?client_id=loadtest-client&request_uri=urn:ietf:params:oauth:request_uri:nope",
            &[("cookie", &cookie)],
        )
        .await?;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let request_uri = text(&push(&idp, &[]).await?.json()?, "request_uri")?;
    let foreign = support::encode(&[
        ("client_id", "loadtest-public"),
        ("request_uri", &request_uri),
    ]);
    let reply = idp
        .get(&format!("/authorize?{foreign}"), &[("cookie", &cookie)])
        .await?;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(text(&reply.json()?, "error_description")?.contains("client"));
    Ok(())
}
