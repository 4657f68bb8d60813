//! The refresh_token grant (RFC 6749 6) with rotation and reuse detection (RFC 9700 4.14.2).

use crate::clients::Client;
use crate::error::OAuthError;
use crate::form::Params;
use crate::state::Idp;
use crate::store::{Grant, RefreshDecision, now_ms};
use crate::token_endpoint::TokenResponse;
use crate::token_endpoint::issuing::{
    Issue, MintedRefresh, issue, mint_refresh_token, record_refresh_token,
};
use crate::token_endpoint::narrowed_scope;

/// RFC 6749 6 with rotation and reuse detection (RFC 9700 4.14.2): each use of the newest token
/// rotates it; a replay of an older one revokes the whole family, newest token included.
pub(super) fn refresh_token(
    idp: &Idp,
    client: &Client,
    params: &Params,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let decided = decide_refresh(idp, client, params, dpop_jkt)?;
    answer_refresh(idp, client, decided)
}

/// A refresh the state machine allowed, with what its answer needs.
pub(super) struct DecidedRefresh {
    grant_id: u64,
    grant: Grant,
    scope: String,
    /// The refresh token to answer: the successor it was rotated to, the family's newest (in
    /// the grace window) or, without rotation, the presented one.
    refresh_token: MintedRefresh,
    rotated: bool,
    /// The DPoP key the new access token is bound to.
    dpop_jkt: Option<String>,
}

/// Checks a presented refresh token and takes the rotation decision; the first half of a
/// refresh.
pub(super) fn decide_refresh(
    idp: &Idp,
    client: &Client,
    params: &Params,
    dpop_jkt: Option<&str>,
) -> Result<DecidedRefresh, OAuthError> {
    let presented = params.required("refresh_token")?;
    let unknown = || OAuthError::InvalidGrant("unknown or expired refresh token".into());
    let now = now_ms();

    // Look first, without changing anything, so that a wrong client cannot burn a token.
    let record = idp.store.refresh_record(presented).ok_or_else(unknown)?;
    if record.expires_at_ms <= now {
        return Err(unknown());
    }
    let grant_id = record.grant_id;
    let grant = idp.store.grant(grant_id).ok_or_else(unknown)?;
    if grant.client_id != client.id {
        return Err(OAuthError::InvalidGrant(
            "the refresh token was issued to another client".into(),
        ));
    }
    if grant.revoked {
        return Err(OAuthError::InvalidGrant(
            "the refresh token has been revoked".into(),
        ));
    }
    let scope = narrowed_scope(&grant.scope, params.get("scope"))?;
    check_key_binding(idp, client, grant_id, &grant, dpop_jkt)?;

    // The successor is made before the decision, so that the rotation names it in the same
    // step: a use inside the grace window can then answer it instead of forking the family.
    let rotate = idp.config.rotate_refresh_tokens;
    let successor = if rotate {
        mint_refresh_token(idp, &grant.subject, client.id)?
    } else {
        MintedRefresh {
            token: presented.to_owned(),
            expires_at_ms: record.expires_at_ms,
        }
    };
    // The store decides and marks in one step: of two concurrent uses of the same token,
    // exactly one sees it active.
    let grace_ms = idp.config.refresh_grace.as_millis() as u64;
    let decision = idp
        .store
        .use_refresh_token(presented, now, rotate, grace_ms, &successor.token)
        .ok_or_else(unknown)?;
    let (refresh_token, rotated) = match decision {
        RefreshDecision::Use => (successor, rotate),
        RefreshDecision::UseInGrace { newest } => (
            MintedRefresh {
                token: newest.to_string(),
                expires_at_ms: record.expires_at_ms,
            },
            false,
        ),
        RefreshDecision::Replay => {
            idp.metrics.refresh_reuse_detected.inc();
            if idp.store.revoke_grant(grant_id) {
                idp.metrics.families_revoked.inc();
            }
            return Err(OAuthError::InvalidGrant(
                "the refresh token was already used; its whole family is revoked".into(),
            ));
        }
    };
    Ok(DecidedRefresh {
        grant_id,
        grant,
        scope,
        refresh_token,
        rotated,
        dpop_jkt: dpop_jkt.map(str::to_owned),
    })
}

/// RFC 9449 section 5: a public client's refresh tokens are bound to the DPoP key of the
/// request that first used a proof (issued the family, or refreshed it first), and every later
/// refresh must prove the same key. Checked before the token is used, so a request without the
/// key burns nothing.
fn check_key_binding(
    idp: &Idp,
    client: &Client,
    grant_id: u64,
    grant: &Grant,
    dpop_jkt: Option<&str>,
) -> Result<(), OAuthError> {
    if !client.is_public() {
        return Ok(());
    }
    let bound = match (&grant.dpop_jkt, dpop_jkt) {
        (None, None) => return Ok(()),
        (None, Some(jkt)) => idp.store.bind_grant_to_key(grant_id, jkt),
        (Some(bound), _) => Some(bound.clone()),
    };
    match (bound, dpop_jkt) {
        (Some(bound), Some(jkt)) if bound == jkt => Ok(()),
        (Some(_), Some(_)) => Err(OAuthError::InvalidGrant(
            "the refresh token is bound to another DPoP key than this proof's".into(),
        )),
        (Some(_), None) => Err(OAuthError::InvalidGrant(
            "the refresh token is bound to a DPoP key: send a DPoP proof of it".into(),
        )),
        (None, _) => Err(OAuthError::InvalidGrant(
            "unknown or expired refresh token".into(),
        )),
    }
}

/// Issues the tokens of an allowed refresh; the second half. A replay of an older token that
/// came in meanwhile revoked the family, so this looks again once the tokens exist: they are
/// never answered already dead.
pub(super) fn answer_refresh(
    idp: &Idp,
    client: &Client,
    decided: DecidedRefresh,
) -> Result<TokenResponse, OAuthError> {
    let issued = Issue {
        grant_id: decided.grant_id,
        client_id: client.id,
        subject: &decided.grant.subject,
        scope: &decided.scope,
        auth_time: decided.grant.auth_time,
        nonce: decided.grant.nonce.as_deref(),
        actor: None,
        audience: None,
        id_token: true,
        dpop_jkt: decided.dpop_jkt.as_deref(),
    };
    let mut response = issue(idp, &issued)?;
    if decided.rotated {
        idp.metrics.refresh_rotations.inc();
        record_refresh_token(idp, decided.grant_id, &decided.refresh_token)?;
    }
    if !idp.store.grant_is_live(decided.grant_id) {
        return Err(OAuthError::InvalidGrant(
            "the refresh token's family was revoked while this refresh was answered (an older \
             token of it was replayed)"
                .into(),
        ));
    }
    response.refresh_token = Some(decided.refresh_token.token);
    Ok(response)
}
