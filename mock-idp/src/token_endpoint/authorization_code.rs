//! The authorization_code grant (RFC 6749 4.1.3) with PKCE (RFC 7636): a code taken, checked,
//! and its grant opened, with reuse detection.

use crate::clients::Client;
use crate::error::OAuthError;
use crate::form::Params;
use crate::jwt::pkce_s256;
use crate::random;
use crate::state::Idp;
use crate::store::{CodeRedemption, Grant, PendingCode, now_ms};
use crate::token_endpoint::TokenResponse;
use crate::token_endpoint::issuing::open_grant_and_issue;

/// RFC 6749 4.1.3 with PKCE (RFC 7636 4.6). Taking a code marks it redeemed in the same step,
/// so of concurrent uses exactly one gets it and every other is a detected reuse; a reuse
/// revokes every token the first use produced (RFC 6749 4.1.2), even while that first use is
/// still being answered.
pub(super) fn authorization_code(
    idp: &Idp,
    client: &Client,
    params: &Params,
    dpop_jkt: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let code = params.required("code")?;
    let taken = take_code(idp, client, params, code, dpop_jkt)?;
    answer_code(idp, code, taken)
}

/// A code taken for redemption and checked, with the grant it is to open.
pub(super) struct TakenCode {
    grant_id: u64,
    grant: Grant,
    /// The DPoP key the access token is bound to.
    dpop_jkt: Option<String>,
}

/// Takes `code` and checks it against the request; the first half of a redemption.
pub(super) fn take_code(
    idp: &Idp,
    client: &Client,
    params: &Params,
    code: &str,
    dpop_jkt: Option<&str>,
) -> Result<TakenCode, OAuthError> {
    let now = now_ms();
    let grant_id = random::id();
    let forget_at_ms = now + idp.config.code_ttl.as_millis() as u64;
    let pending = match idp.store.redeem_code(code, grant_id, forget_at_ms) {
        CodeRedemption::Pending(pending) => pending,
        CodeRedemption::AlreadyRedeemed { grant_id } => {
            idp.metrics.code_reuse_detected.inc();
            if idp.store.revoke_grant(grant_id) {
                idp.metrics.families_revoked.inc();
            }
            return Err(OAuthError::InvalidGrant(
                "the authorization code was already used; the tokens issued from it are revoked"
                    .into(),
            ));
        }
        CodeRedemption::Unknown => {
            return Err(OAuthError::InvalidGrant(
                "unknown or expired authorization code".into(),
            ));
        }
    };
    let checked = check_code(&pending, client, params, now);
    if checked.is_err() {
        // It opened nothing: a later use of it is simply unknown, not a reuse to punish.
        idp.store.forget_code(code);
    }
    checked?;
    Ok(TakenCode {
        grant_id,
        grant: Grant {
            client_id: pending.client_id,
            subject: pending.subject,
            scope: pending.scope,
            nonce: pending.nonce,
            auth_time: Some(pending.auth_time),
            revoked: false,
            // A confidential client's refresh tokens are bound to its authentication instead
            // (RFC 9449 section 5).
            dpop_jkt: dpop_jkt.filter(|_| client.is_public()).map(str::to_owned),
            expires_at_ms: pending.expires_at_ms,
        },
        dpop_jkt: dpop_jkt.map(str::to_owned),
    })
}

/// Whether a pending code may be redeemed by this request.
pub(super) fn check_code(
    pending: &PendingCode,
    client: &Client,
    params: &Params,
    now: u64,
) -> Result<(), OAuthError> {
    if pending.expires_at_ms <= now {
        return Err(OAuthError::InvalidGrant(
            "the authorization code has expired".into(),
        ));
    }
    if pending.client_id != client.id {
        return Err(OAuthError::InvalidGrant(
            "the authorization code was issued to another client".into(),
        ));
    }
    if params.get("redirect_uri") != Some(pending.redirect_uri.as_str()) {
        return Err(OAuthError::InvalidGrant(
            "redirect_uri does not match the authorization request".into(),
        ));
    }
    match (&pending.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            if !is_code_verifier(verifier) || pkce_s256(verifier) != *challenge {
                return Err(OAuthError::InvalidGrant(
                    "PKCE verification failed: code_verifier does not match code_challenge".into(),
                ));
            }
        }
        (Some(_), None) => {
            return Err(OAuthError::InvalidGrant(
                "the authorization request used PKCE: code_verifier is required".into(),
            ));
        }
        // RFC 9700 2.1.1: a verifier without a challenge is refused, or PKCE downgrade attacks
        // would go unnoticed.
        (None, Some(_)) => {
            return Err(OAuthError::InvalidGrant(
                "code_verifier sent, but the authorization request had no code_challenge".into(),
            ));
        }
        (None, None) => {}
    }
    Ok(())
}

/// Opens the grant of a taken code and answers its tokens; the second half of a redemption.
/// A reuse that came in meanwhile found no grant to revoke yet, so this looks again once the
/// tokens exist: they are never answered already dead.
pub(super) fn answer_code(
    idp: &Idp,
    code: &str,
    taken: TakenCode,
) -> Result<TokenResponse, OAuthError> {
    let issued = open_grant_and_issue(idp, taken.grant_id, taken.grant, taken.dpop_jkt.as_deref())?;
    if idp.store.code_reused(code) {
        if idp.store.revoke_grant(issued.grant_id) {
            idp.metrics.families_revoked.inc();
        }
        return Err(OAuthError::InvalidGrant(
            "the authorization code was used twice at once; the tokens issued from it are revoked"
                .into(),
        ));
    }
    idp.metrics.codes_redeemed.inc();
    Ok(issued.response)
}

/// RFC 7636 4.1: 43 to 128 unreserved characters.
pub(super) fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
}
