//! Test-only token minting (`/_test/*`, served only with `--enable-test-endpoints`): the helpers
//! that load-testing setups otherwise hand-roll, here issuing real tokens through the same path
//! as `/token`, so they verify, introspect and revoke like any other.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clients::{self, CONFIDENTIAL_CLIENT_ID};
use crate::error::OAuthError;
use crate::http_helpers::{HttpResponse, Incoming, json_response};
use crate::state::Idp;
use crate::store::{Grant, now_ms};
use crate::token_endpoint::{TokenResponse, open_grant_and_issue};

/// A batch bigger than this is refused: the endpoint is for seeding, not for exhausting memory.
const MAX_BATCH: usize = 1000;

/// A user named as in the seeds (`"user-loadtest-00001"`) or by number (`1`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum UserRef {
    Number(u32),
    Subject(String),
}

#[derive(Debug, Deserialize)]
struct MintRequest {
    user_id: UserRef,
    #[serde(default)]
    scope: Option<String>,
}

pub fn handle(idp: &Idp, request: &Incoming) -> Result<HttpResponse, OAuthError> {
    let path = request.path.as_str();
    let body = match path {
        "/_test/mint-token" => {
            let mint: MintRequest = parse_json(&request.body)?;
            serde_json::to_value(mint_for(idp, &mint.user_id, mint.scope.as_deref())?)
        }
        "/_test/mint-tokens-batch" => {
            let users: Vec<UserRef> = parse_json(&request.body)?;
            if users.len() > MAX_BATCH {
                return Err(OAuthError::InvalidRequest(format!(
                    "at most {MAX_BATCH} users per batch"
                )));
            }
            let mut tokens = serde_json::Map::new();
            for user in &users {
                let subject = subject_of(idp, user)?;
                let minted = mint_for(idp, user, None)?;
                tokens.insert(subject, json!(minted));
            }
            Ok(json!({ "tokens": tokens }))
        }
        "/_test/debug-token" => {
            let token: String = parse_json(&request.body)?;
            Ok(debug(idp, &token))
        }
        _ => {
            return Err(OAuthError::NotFound(format!("no test endpoint at {path}")));
        }
    }
    .map_err(|error| OAuthError::ServerError(error.to_string()))?;
    Ok(json_response(StatusCode::OK, body.to_string()))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, OAuthError> {
    serde_json::from_slice(body)
        .map_err(|error| OAuthError::InvalidRequest(format!("malformed JSON body: {error}")))
}

fn subject_of(idp: &Idp, user: &UserRef) -> Result<String, OAuthError> {
    let number = match user {
        UserRef::Number(number) => Some(*number).filter(|n| (1..=idp.config.users).contains(n)),
        UserRef::Subject(subject) => clients::user_number(subject, idp.config.users),
    };
    number
        .map(clients::user_subject)
        .ok_or_else(|| OAuthError::InvalidRequest("unknown user_id".into()))
}

/// Access, ID and refresh token for a user, as if the user had just logged in with the
/// confidential client.
fn mint_for(idp: &Idp, user: &UserRef, scope: Option<&str>) -> Result<TokenResponse, OAuthError> {
    let subject = subject_of(idp, user)?;
    let scope = scope.unwrap_or("openid profile email");
    let auth_time = now_ms() / 1000;
    let opened = open_grant_and_issue(
        idp,
        crate::random::id(),
        Grant {
            client_id: CONFIDENTIAL_CLIENT_ID.to_owned(),
            subject,
            scope: scope.to_owned(),
            nonce: None,
            auth_time: Some(auth_time),
            revoked: false,
            dpop_jkt: None,
            expires_at_ms: 0,
        },
        None,
    )?;
    Ok(opened.response)
}

/// What the server makes of a token: its header and claims, and whether it would be accepted.
fn debug(idp: &Idp, token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token)
        .ok()
        .and_then(|header| serde_json::to_value(header).ok());
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .ok()
        .map(|data| data.claims);
    match crate::token_endpoint::live_access_token(idp, token) {
        Ok(_) => json!({ "valid": true, "header": header, "claims": claims }),
        Err(error) => json!({
            "valid": false,
            "error": error.description(),
            "header": header,
            "claims": claims,
        }),
    }
}
