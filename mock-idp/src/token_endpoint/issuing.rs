//! Issuing tokens: a grant opened with its first tokens, access and ID tokens signed and recorded,
//! and refresh tokens minted and recorded as the newest of their family.

use crate::config::AccessTokenFormat;
use crate::error::OAuthError;
use crate::jwt::{AccessClaims, Actor, Confirmation, IdClaims, at_hash};
use crate::metrics::TokenKind;
use crate::random;
use crate::state::Idp;
use crate::store::{AccessRecord, Grant, RefreshRecord, RefreshState, now_ms};
use crate::token_endpoint::TokenResponse;

/// A grant opened and its first tokens issued.
pub(crate) struct Opened {
    pub(crate) grant_id: u64,
    pub(crate) response: TokenResponse,
}

/// Opens `grant` for a user's sign-in and issues its tokens: access token, ID token (with
/// `openid`) and the first refresh token of its family. Redeeming a code and the `/_test`
/// minting both go through here.
pub(crate) fn open_grant_and_issue(
    idp: &Idp,
    grant_id: u64,
    grant: Grant,
    dpop_jkt: Option<&str>,
) -> Result<Opened, OAuthError> {
    idp.store.open_grant_with_id(grant_id, grant.clone())?;
    let issued = Issue {
        grant_id,
        client_id: &grant.client_id,
        subject: &grant.subject,
        scope: &grant.scope,
        auth_time: grant.auth_time,
        nonce: grant.nonce.as_deref(),
        actor: None,
        audience: None,
        id_token: true,
        dpop_jkt,
    };
    let mut response = issue(idp, &issued)?;
    response.refresh_token = Some(new_refresh_token(
        idp,
        grant_id,
        &grant.subject,
        &grant.client_id,
    )?);
    Ok(Opened { grant_id, response })
}

/// What to put in the tokens of one successful request.
pub(crate) struct Issue<'a> {
    pub(crate) grant_id: u64,
    pub(crate) client_id: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) scope: &'a str,
    pub(crate) auth_time: Option<u64>,
    pub(crate) nonce: Option<&'a str>,
    pub(crate) actor: Option<Actor>,
    pub(crate) audience: Option<&'a str>,
    /// Whether the answer carries an ID token (with `openid` granted to a signed-in user). A
    /// token exchange has none (RFC 8693 2.2.1), so it must not sign or count one.
    pub(crate) id_token: bool,
    /// The thumbprint of the DPoP key the access token is bound to, when the request carried a
    /// proof: the token then says so (`cnf.jkt`) and is of type `DPoP`.
    pub(crate) dpop_jkt: Option<&'a str>,
}

/// Signs the access token (and the ID token when `openid` was granted for a user) and records
/// the access token so that it can be revoked.
pub(crate) fn issue(idp: &Idp, issued: &Issue<'_>) -> Result<TokenResponse, OAuthError> {
    let now_s = now_ms() / 1000;
    let access_ttl = idp.config.access_token_ttl.as_secs();
    let jti = random::token();
    let claims = AccessClaims {
        iss: idp.minter.issuer().to_owned(),
        sub: issued.subject.to_owned(),
        aud: issued.audience.unwrap_or(idp.minter.audience()).to_owned(),
        client_id: issued.client_id.to_owned(),
        scope: issued.scope.to_owned(),
        iat: now_s,
        exp: now_s + access_ttl,
        jti,
        auth_time: issued.auth_time,
        act: issued.actor.clone(),
        cnf: issued.dpop_jkt.map(|jkt| Confirmation {
            jkt: jkt.to_owned(),
        }),
    };
    let access_token = match idp.config.access_token_format {
        AccessTokenFormat::Jwt => idp.minter.sign_access(&claims)?,
        // The random `jti` is the opaque token: 256 bits, never sent anywhere else.
        AccessTokenFormat::Opaque => {
            idp.store
                .add_opaque_access_claims(claims.jti.clone(), claims.clone());
            claims.jti.clone()
        }
    };
    let access_expires_ms = claims.exp * 1000;
    idp.store.add_access_token(
        claims.jti,
        AccessRecord {
            grant_id: issued.grant_id,
            revoked: false,
            expires_at_ms: access_expires_ms,
        },
    )?;
    idp.store.extend_grant(issued.grant_id, access_expires_ms);
    idp.metrics.record_token(TokenKind::Access);

    let wants_id_token = issued.id_token && issued.scope.split(' ').any(|value| value == "openid");
    let id_token = match issued.auth_time {
        Some(auth_time) if wants_id_token => {
            let id_claims = IdClaims {
                iss: idp.minter.issuer().to_owned(),
                sub: issued.subject.to_owned(),
                aud: issued.client_id.to_owned(),
                azp: issued.client_id.to_owned(),
                exp: now_s + idp.config.id_token_ttl.as_secs(),
                iat: now_s,
                auth_time,
                nonce: issued.nonce.map(str::to_owned),
                at_hash: at_hash(&access_token),
            };
            idp.metrics.record_token(TokenKind::Id);
            Some(idp.minter.sign_id(&id_claims)?)
        }
        _ => None,
    };
    Ok(TokenResponse {
        access_token,
        issued_token_type: None,
        token_type: if issued.dpop_jkt.is_some() {
            "DPoP"
        } else {
            "Bearer"
        },
        expires_in: access_ttl,
        refresh_token: None,
        id_token,
        scope: issued.scope.to_owned(),
    })
}

/// A new, active refresh token of the grant's family.
pub(crate) fn new_refresh_token(
    idp: &Idp,
    grant_id: u64,
    subject: &str,
    client_id: &str,
) -> Result<String, OAuthError> {
    let minted = mint_refresh_token(idp, subject, client_id)?;
    record_refresh_token(idp, grant_id, &minted)?;
    Ok(minted.token)
}

/// A refresh token made but not yet recorded, with the expiry it carries.
pub(super) struct MintedRefresh {
    pub(super) token: String,
    pub(super) expires_at_ms: u64,
}

/// Makes a refresh token (opaque or JWT, as configured) that expires a TTL from now.
pub(super) fn mint_refresh_token(
    idp: &Idp,
    subject: &str,
    client_id: &str,
) -> Result<MintedRefresh, OAuthError> {
    let now = now_ms();
    let expires_at_ms = now + idp.config.refresh_token_ttl.as_millis() as u64;
    let token = idp
        .minter
        .refresh_token(subject, client_id, now / 1000, expires_at_ms / 1000)?;
    Ok(MintedRefresh {
        token,
        expires_at_ms,
    })
}

/// Records `minted` as the active refresh token of the grant's family, counted as issued.
pub(super) fn record_refresh_token(
    idp: &Idp,
    grant_id: u64,
    minted: &MintedRefresh,
) -> Result<(), OAuthError> {
    idp.store.add_refresh_token(
        minted.token.clone(),
        RefreshRecord {
            grant_id,
            state: RefreshState::Active,
            expires_at_ms: minted.expires_at_ms,
        },
    )?;
    idp.store.extend_grant(grant_id, minted.expires_at_ms);
    idp.metrics.record_token(TokenKind::Refresh);
    Ok(())
}
