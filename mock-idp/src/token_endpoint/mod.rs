//! `POST /token`: the request read and answered, dispatched to one module per grant
//! (authorization_code, refresh_token with rotation and reuse detection, token exchange,
//! client_credentials); `issuing` makes the tokens they answer and `live_tokens` recognises
//! the access tokens this server issued.

mod authorization_code;
mod client_credentials;
mod issuing;
mod live_tokens;
mod refresh_token;
mod token_exchange;

pub(crate) use issuing::open_grant_and_issue;
pub(crate) use live_tokens::{access_claims, live_access_token};

use http::StatusCode;
use serde::Serialize;

use crate::clients::{
    self, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN,
    GRANT_TOKEN_EXCHANGE,
};
use crate::dpop::ProofSite;
use crate::error::OAuthError;
use crate::form::Params;
use crate::http_helpers::{HttpResponse, Incoming, json_response};
use crate::state::Idp;
use crate::token_endpoint::authorization_code::authorization_code;
use crate::token_endpoint::client_credentials::client_credentials;
use crate::token_endpoint::refresh_token::refresh_token;
use crate::token_endpoint::token_exchange::token_exchange;

pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The successful answer of RFC 6749 5.1 (and RFC 8693 2.2.1 for token exchange).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
    pub token_type: &'static str,
    pub expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// Handles one token request and counts it by grant type and outcome.
pub fn token(idp: &Idp, request: &Incoming) -> Result<HttpResponse, OAuthError> {
    let mut grant_label = "unknown";
    let result = grant(idp, request, &mut grant_label);
    idp.metrics
        .record_token_request(grant_label, result.is_ok());
    let response = result?;
    let body = serde_json::to_string(&response)
        .map_err(|error| OAuthError::ServerError(error.to_string()))?;
    let mut answer = json_response(StatusCode::OK, body);
    // RFC 9449 section 8.2: the nonce may move on; a client that uses DPoP is told the one to
    // use next with every answer.
    if request.headers.contains_key(crate::dpop::DPOP_HEADER)
        && let Some(nonce) = idp.dpop.current_nonce(crate::store::now_ms() / 1000)
        && let Ok(value) = http::HeaderValue::from_str(&nonce)
    {
        answer
            .headers_mut()
            .insert(crate::dpop::DPOP_NONCE_HEADER, value);
    }
    Ok(answer)
}

pub(super) fn grant(
    idp: &Idp,
    request: &Incoming,
    grant_label: &mut &'static str,
) -> Result<TokenResponse, OAuthError> {
    request.require_form()?;
    let params = Params::parse(&request.body)?;
    let client = clients::authenticate_client(idp, request, &params)?;
    let grant_type = params.required("grant_type")?;
    *grant_label = match grant_type {
        GRANT_AUTHORIZATION_CODE => "authorization_code",
        GRANT_REFRESH_TOKEN => "refresh_token",
        GRANT_TOKEN_EXCHANGE => "token_exchange",
        GRANT_CLIENT_CREDENTIALS => "client_credentials",
        _ => {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "grant_type {grant_type:?} is not supported"
            )));
        }
    };
    // After the grant is named, so that a nonce challenge is counted under its grant type.
    let proof = crate::dpop::proof_of(
        idp,
        request,
        ProofSite::TokenEndpoint,
        &idp.urls.token,
        None,
    )?;
    let dpop_jkt = proof.as_ref().map(|proof| proof.jkt.as_str());
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::UnauthorizedClient(format!(
            "client {} may not use {grant_type}",
            client.id
        )));
    }
    match grant_type {
        GRANT_AUTHORIZATION_CODE => authorization_code(idp, client, &params, dpop_jkt),
        GRANT_REFRESH_TOKEN => refresh_token(idp, client, &params, dpop_jkt),
        GRANT_TOKEN_EXCHANGE => token_exchange(idp, client, &params, dpop_jkt),
        _ => client_credentials(idp, client, &params, dpop_jkt),
    }
}

/// The scope of a refresh or exchange: the requested one, which may only narrow `granted`.
pub(super) fn narrowed_scope(granted: &str, requested: Option<&str>) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        return Ok(granted.to_owned());
    };
    for value in requested.split(' ').filter(|value| !value.is_empty()) {
        if !granted.split(' ').any(|held| held == value) {
            return Err(OAuthError::InvalidScope(format!(
                "scope {value:?} was not granted; a scope may only narrow"
            )));
        }
    }
    Ok(requested.to_owned())
}

#[cfg(test)]
mod tests {
    use super::authorization_code::{answer_code, authorization_code, is_code_verifier, take_code};
    use super::refresh_token::{answer_refresh, decide_refresh};
    use super::*;
    use crate::clients::{CONFIDENTIAL_CLIENT_ID, REDIRECT_URI, find_client};
    use crate::store::{Grant, PendingCode, now_ms};

    fn app() -> crate::App {
        crate::App::new(crate::Config::ephemeral(), "http://idp.test").unwrap()
    }

    fn user_grant() -> Grant {
        Grant {
            client_id: CONFIDENTIAL_CLIENT_ID.into(),
            subject: "user-loadtest-00001".into(),
            scope: "openid offline_access".into(),
            nonce: None,
            auth_time: Some(now_ms() / 1000),
            revoked: false,
            dpop_jkt: None,
            expires_at_ms: 0,
        }
    }

    fn form(pairs: &[(&str, &str)]) -> Params {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Params::parse(body.as_bytes()).unwrap()
    }

    /// A replay of an older token that lands between a refresh's decision and its answer
    /// revokes the family: the refresh must then fail, not answer tokens already dead.
    #[test]
    fn a_refresh_overtaken_by_a_replay_answers_no_dead_tokens() {
        let app = app();
        let idp = app.idp();
        let client = find_client(CONFIDENTIAL_CLIENT_ID).unwrap();
        let opened = open_grant_and_issue(idp, 1, user_grant(), None).unwrap();
        let first = opened.response.refresh_token.unwrap();
        let refresh =
            |token: &str| form(&[("grant_type", "refresh_token"), ("refresh_token", token)]);
        let second = refresh_token(idp, client, &refresh(&first), None)
            .unwrap()
            .refresh_token
            .unwrap();

        let decided = decide_refresh(idp, client, &refresh(&second), None).unwrap();
        let replay = refresh_token(idp, client, &refresh(&first), None);
        assert_eq!(replay.unwrap_err().code(), "invalid_grant");
        let answered = answer_refresh(idp, client, decided);
        assert_eq!(answered.unwrap_err().code(), "invalid_grant");
    }

    /// A second use of a code that lands while the first is being answered finds no grant to
    /// revoke yet: the first use must notice and answer no tokens.
    #[test]
    fn a_redemption_overtaken_by_a_reuse_answers_no_tokens() {
        let app = app();
        let idp = app.idp();
        let client = find_client(CONFIDENTIAL_CLIENT_ID).unwrap();
        idp.store
            .issue_code(
                "code".into(),
                PendingCode {
                    client_id: CONFIDENTIAL_CLIENT_ID.into(),
                    redirect_uri: REDIRECT_URI.into(),
                    code_challenge: None,
                    nonce: None,
                    subject: "user-loadtest-00001".into(),
                    scope: "openid".into(),
                    auth_time: 0,
                    expires_at_ms: u64::MAX,
                },
            )
            .unwrap();
        let redeem = form(&[
            ("grant_type", "authorization_code"),
            ("code", "code"),
            ("redirect_uri", REDIRECT_URI),
        ]);
        let taken = take_code(idp, client, &redeem, "code", None).unwrap();
        let reuse = authorization_code(idp, client, &redeem, None);
        assert!(
            reuse.unwrap_err().description().contains("already used"),
            "a concurrent reuse must be recognised as one"
        );
        let answered = answer_code(idp, "code", taken);
        assert_eq!(answered.unwrap_err().code(), "invalid_grant");
    }

    #[test]
    fn scope_may_only_narrow() {
        assert_eq!(
            narrowed_scope("openid profile email", Some("openid email")).unwrap(),
            "openid email"
        );
        assert_eq!(narrowed_scope("openid", None).unwrap(), "openid");
        assert_eq!(
            narrowed_scope("openid", Some("openid email"))
                .unwrap_err()
                .code(),
            "invalid_scope"
        );
    }

    #[test]
    fn code_verifiers_follow_rfc7636() {
        assert!(is_code_verifier(&"a".repeat(43)));
        assert!(is_code_verifier(&"a-._~".repeat(20)));
        assert!(!is_code_verifier(&"a".repeat(42)));
        assert!(!is_code_verifier(&"a".repeat(129)));
        assert!(!is_code_verifier(&format!("{}+", "a".repeat(43))));
    }
}
