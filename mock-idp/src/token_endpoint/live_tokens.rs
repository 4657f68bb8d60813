//! Whether an access token is one this server issued and still good: it verifies (a JWT) or is
//! known (opaque), has not expired, and neither it nor its grant was revoked.

use crate::config::AccessTokenFormat;
use crate::error::OAuthError;
use crate::jwt::AccessClaims;
use crate::state::Idp;
use crate::store::now_ms;

/// The claims of an access token this server issued: a JWT that verifies, or an opaque token it
/// knows and that has not expired.
pub(crate) fn access_claims(idp: &Idp, token: &str) -> Result<AccessClaims, OAuthError> {
    match idp.config.access_token_format {
        AccessTokenFormat::Jwt => Ok(idp.minter.verify_access(token)?),
        AccessTokenFormat::Opaque => idp
            .store
            .opaque_access_claims(token)
            .filter(|claims| claims.exp > now_ms() / 1000)
            .ok_or_else(|| OAuthError::InvalidToken("the access token is not known".into())),
    }
}

pub(crate) fn live_access_token(idp: &Idp, token: &str) -> Result<(AccessClaims, u64), OAuthError> {
    let claims = access_claims(idp, token)?;
    let record = idp
        .store
        .access_record(&claims.jti)
        .ok_or_else(|| OAuthError::InvalidToken("the access token is not known".into()))?;
    if record.revoked || !idp.store.grant_is_live(record.grant_id) {
        return Err(OAuthError::InvalidToken(
            "the access token has been revoked".into(),
        ));
    }
    Ok((claims, record.grant_id))
}
