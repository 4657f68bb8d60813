//! The token requests group's builders: each grant's `POST /token` as the confidential client
//! sends it, on top of mock-idp's own in-process sign-in flow (`mock_idp::in_process`).

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use mock_idp::in_process::{self, AuthorizationRequest};
use mock_idp::{App, HttpResponse};

/// A subject token's type in an RFC 8693 token-exchange request.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// A fixed PKCE verifier (43 characters, the RFC 7636 minimum): every code gets its own
/// challenge check, and the hashing cost does not depend on the verifier's value.
const CODE_VERIFIER: &str = "bench-verifier-0123456789abcdefghijklmnopqrs";
const USERNAME: &str = "user-loadtest-00001";

/// The authorization request every benchmarked code comes from.
fn authorization() -> AuthorizationRequest<'static> {
    AuthorizationRequest {
        scope: "openid profile email offline_access",
        state: "bench-state",
        nonce: "bench-nonce",
        code_verifier: CODE_VERIFIER,
    }
}

/// Logs the test user in and returns the `Cookie` header value naming the new session.
pub async fn login(app: &App) -> Result<String> {
    Ok(in_process::login(app, USERNAME, mock_idp::clients::USER_PASSWORD).await?)
}

/// Runs `/authorize` for the logged-in session `cookie` and returns the code it redirects with
/// (issued with the challenge of [`authorization_code_request`]'s verifier).
pub async fn authorization_code(app: &App, cookie: &str) -> Result<String> {
    Ok(in_process::authorization_code(app, cookie, &authorization()).await?)
}

pub fn authorization_code_request(code: &str) -> Request<Full<Bytes>> {
    in_process::code_redemption(code, CODE_VERIFIER)
}

pub fn refresh_token_request(refresh_token: &str) -> Request<Full<Bytes>> {
    in_process::token_request(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ])
}

pub fn token_exchange_request(subject_token: &str) -> Request<Full<Bytes>> {
    in_process::token_request(&[
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("subject_token", subject_token),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
    ])
}

pub fn client_credentials_request() -> Request<Full<Bytes>> {
    in_process::token_request(&[("grant_type", "client_credentials")])
}

/// The JSON body of a successful token response; any other status is an error carrying the body.
pub async fn token_response_json(response: HttpResponse) -> Result<serde_json::Value> {
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != StatusCode::OK {
        bail!(
            "the token endpoint answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(serde_json::from_slice(&body)?)
}

/// The string member `name` of a token response.
pub fn json_string(json: &serde_json::Value, name: &str) -> Result<String> {
    json.get(name)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("the token response has no {name}"))
}

#[cfg(test)]
mod tests {
    use mock_idp::keys::{SigningAlg, SigningKey};

    use super::*;
    use crate::ISSUER;

    #[tokio::test(flavor = "current_thread")]
    async fn every_grant_request_succeeds_in_process() {
        let key = SigningKey::generate(SigningAlg::Rs256).unwrap();
        let app = App::with_key(mock_idp::Config::default(), ISSUER, key);
        let cookie = login(&app).await.unwrap();
        let code = authorization_code(&app, &cookie).await.unwrap();
        let tokens = token_response_json(app.handle(authorization_code_request(&code)).await)
            .await
            .unwrap();
        let access_token = json_string(&tokens, "access_token").unwrap();
        let mut refresh_token = json_string(&tokens, "refresh_token").unwrap();
        assert!(tokens.get("id_token").is_some());
        for _ in 0..2 {
            let refreshed =
                token_response_json(app.handle(refresh_token_request(&refresh_token)).await)
                    .await
                    .unwrap();
            refresh_token = json_string(&refreshed, "refresh_token").unwrap();
        }
        let exchanged =
            token_response_json(app.handle(token_exchange_request(&access_token)).await)
                .await
                .unwrap();
        assert_eq!(exchanged["issued_token_type"], ACCESS_TOKEN_TYPE);
        token_response_json(app.handle(client_credentials_request()).await)
            .await
            .unwrap();
    }
}
