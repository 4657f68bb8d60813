//! The client_credentials grant (RFC 6749 4.4): a token for the client itself.

use crate::clients::Client;
use crate::discovery::SUPPORTED_SCOPES;
use crate::error::OAuthError;
use crate::form::Params;
use crate::state::Idp;
use crate::store::Grant;
use crate::token_endpoint::TokenResponse;
use crate::token_endpoint::issuing::{Issue, issue};

/// RFC 6749 4.4: a token for the client itself; no refresh token, no ID token.
pub(super) fn client_credentials(
    idp: &Idp,
    client: &Client,
    params: &Params,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let scope = params.get("scope").unwrap_or_default();
    for value in scope.split(' ').filter(|value| !value.is_empty()) {
        if !SUPPORTED_SCOPES.contains(&value) || value == "openid" || value == "offline_access" {
            return Err(OAuthError::InvalidScope(format!(
                "scope {value:?} cannot be granted to a client acting for itself"
            )));
        }
    }
    let grant_id = idp.store.open_grant(Grant {
        client_id: client.id.to_owned(),
        subject: client.id.to_owned(),
        scope: scope.to_owned(),
        nonce: None,
        auth_time: None,
        revoked: false,
        dpop_jkt: None,
        expires_at_ms: 0,
    })?;
    let issued = Issue {
        grant_id,
        client_id: client.id,
        subject: client.id,
        scope,
        auth_time: None,
        nonce: None,
        actor: None,
        audience: None,
        id_token: false,
        dpop_jkt,
    };
    issue(idp, &issued)
}
