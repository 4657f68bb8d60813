//! The token-exchange grant (RFC 8693): an access token this server issued exchanged for another.

use crate::clients::Client;
use crate::error::OAuthError;
use crate::form::Params;
use crate::jwt::Actor;
use crate::state::Idp;
use crate::token_endpoint::issuing::{Issue, issue};
use crate::token_endpoint::live_tokens::live_access_token;
use crate::token_endpoint::narrowed_scope;
use crate::token_endpoint::{TOKEN_TYPE_ACCESS_TOKEN, TokenResponse};

/// RFC 8693: an access token this server issued is exchanged for a new one, optionally for
/// another audience, with a narrower scope, or on behalf of an actor (`act`).
pub(super) fn token_exchange(
    idp: &Idp,
    client: &Client,
    params: &Params,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let subject_token = params.required("subject_token")?;
    let subject_token_type = params.required("subject_token_type")?;
    if subject_token_type != TOKEN_TYPE_ACCESS_TOKEN {
        return Err(OAuthError::InvalidRequest(format!(
            "subject_token_type must be {TOKEN_TYPE_ACCESS_TOKEN}"
        )));
    }
    if let Some(requested) = params.get("requested_token_type")
        && requested != TOKEN_TYPE_ACCESS_TOKEN
    {
        return Err(OAuthError::InvalidRequest(format!(
            "only {TOKEN_TYPE_ACCESS_TOKEN} can be issued"
        )));
    }
    let (subject, grant_id) = live_access_token(idp, subject_token).map_err(|error| {
        OAuthError::InvalidRequest(format!("subject_token: {}", error.description()))
    })?;
    let actor = match (params.get("actor_token"), params.get("actor_token_type")) {
        (Some(actor_token), Some(TOKEN_TYPE_ACCESS_TOKEN)) => {
            let (actor, _) = live_access_token(idp, actor_token).map_err(|error| {
                OAuthError::InvalidRequest(format!("actor_token: {}", error.description()))
            })?;
            Some(Actor { sub: actor.sub })
        }
        (None, None) => None,
        _ => {
            return Err(OAuthError::InvalidRequest(format!(
                "actor_token needs actor_token_type {TOKEN_TYPE_ACCESS_TOKEN}"
            )));
        }
    };
    let scope = narrowed_scope(&subject.scope, params.get("scope"))?;
    let audience = exchange_audience(idp, params)?;
    // The new token belongs to the subject token's grant: revoking that grant revokes it too.
    let issued = Issue {
        grant_id,
        client_id: client.id,
        subject: &subject.sub,
        scope: &scope,
        auth_time: subject.auth_time,
        nonce: None,
        actor,
        audience: Some(audience),
        id_token: false,
        dpop_jkt,
    };
    let mut response = issue(idp, &issued)?;
    response.issued_token_type = Some(TOKEN_TYPE_ACCESS_TOKEN);
    Ok(response)
}

/// The audience of an exchanged token: the `audience` (or `resource`) asked for, which must be
/// one this server issues tokens for (RFC 8693 2.2.2 `invalid_target`), or by default the
/// audience of its own access tokens.
pub(super) fn exchange_audience<'a>(
    idp: &'a Idp,
    params: &'a Params,
) -> Result<&'a str, OAuthError> {
    let own = idp.minter.audience();
    let mut asked = params
        .get("audience")
        .into_iter()
        .chain(params.get("resource"));
    let Some(first) = asked.next() else {
        return Ok(own);
    };
    for target in std::iter::once(first).chain(asked) {
        let known = target == own
            || idp
                .config
                .exchange_audiences
                .iter()
                .any(|allowed| allowed == target);
        if !known {
            return Err(OAuthError::InvalidTarget(format!(
                "this server issues no tokens for {target:?}; start mock-idp with \
                 --exchange-audience {target} to allow it"
            )));
        }
    }
    Ok(first)
}
