//! `POST /token`: the authorization_code, refresh_token (rotation with reuse detection),
//! token-exchange and client_credentials grants, and the issuing of the tokens they answer.

use http::StatusCode;
use http::header;
use serde::Serialize;

use crate::clients::{
    self, Client, GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN,
    GRANT_TOKEN_EXCHANGE,
};
use crate::config::AccessTokenFormat;
use crate::discovery::SUPPORTED_SCOPES;
use crate::error::OAuthError;
use crate::form::Params;
use crate::http_helpers::{HttpResponse, Incoming, json_response};
use crate::jwt::{AccessClaims, Actor, IdClaims, at_hash, pkce_s256};
use crate::metrics::TokenKind;
use crate::random;
use crate::state::Idp;
use crate::store::{
    AccessRecord, CodeRedemption, Grant, PendingCode, RefreshDecision, RefreshRecord, RefreshState,
    now_ms,
};

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
    Ok(json_response(StatusCode::OK, body))
}

fn grant(
    idp: &Idp,
    request: &Incoming,
    grant_label: &mut &'static str,
) -> Result<TokenResponse, OAuthError> {
    request.require_form()?;
    let params = Params::parse(&request.body)?;
    let client = clients::authenticate(request.header(header::AUTHORIZATION), &params)?;
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
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::UnauthorizedClient(format!(
            "client {} may not use {grant_type}",
            client.id
        )));
    }
    match grant_type {
        GRANT_AUTHORIZATION_CODE => authorization_code(idp, client, &params),
        GRANT_REFRESH_TOKEN => refresh_token(idp, client, &params),
        GRANT_TOKEN_EXCHANGE => token_exchange(idp, client, &params),
        _ => client_credentials(idp, client, &params),
    }
}

/// RFC 6749 4.1.3 with PKCE (RFC 7636 4.6). Taking a code marks it redeemed in the same step,
/// so of concurrent uses exactly one gets it and every other is a detected reuse; a reuse
/// revokes every token the first use produced (RFC 6749 4.1.2), even while that first use is
/// still being answered.
fn authorization_code(
    idp: &Idp,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let code = params.required("code")?;
    let taken = take_code(idp, client, params, code)?;
    answer_code(idp, code, taken)
}

/// A code taken for redemption and checked, with the grant it is to open.
struct TakenCode {
    grant_id: u64,
    grant: Grant,
}

/// Takes `code` and checks it against the request; the first half of a redemption.
fn take_code(
    idp: &Idp,
    client: &Client,
    params: &Params,
    code: &str,
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
            expires_at_ms: pending.expires_at_ms,
        },
    })
}

/// Whether a pending code may be redeemed by this request.
fn check_code(
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
fn answer_code(idp: &Idp, code: &str, taken: TakenCode) -> Result<TokenResponse, OAuthError> {
    let issued = open_grant_and_issue(idp, taken.grant_id, taken.grant)?;
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

/// RFC 7636 4.1: 43 to 128 unreserved characters.
fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte))
}

/// RFC 6749 6 with rotation and reuse detection (RFC 9700 4.14.2): each use of the newest token
/// rotates it; a replay of an older one revokes the whole family, newest token included.
fn refresh_token(idp: &Idp, client: &Client, params: &Params) -> Result<TokenResponse, OAuthError> {
    let decided = decide_refresh(idp, client, params)?;
    answer_refresh(idp, client, decided)
}

/// A refresh the state machine allowed, with what its answer needs.
struct DecidedRefresh {
    grant_id: u64,
    grant: Grant,
    scope: String,
    /// The refresh token to answer: the successor it was rotated to, the family's newest (in
    /// the grace window) or, without rotation, the presented one.
    refresh_token: MintedRefresh,
    rotated: bool,
}

/// Checks a presented refresh token and takes the rotation decision; the first half of a
/// refresh.
fn decide_refresh(
    idp: &Idp,
    client: &Client,
    params: &Params,
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
    })
}

/// Issues the tokens of an allowed refresh; the second half. A replay of an older token that
/// came in meanwhile revoked the family, so this looks again once the tokens exist: they are
/// never answered already dead.
fn answer_refresh(
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

/// RFC 8693: an access token this server issued is exchanged for a new one, optionally for
/// another audience, with a narrower scope, or on behalf of an actor (`act`).
fn token_exchange(
    idp: &Idp,
    client: &Client,
    params: &Params,
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
    };
    let mut response = issue(idp, &issued)?;
    response.issued_token_type = Some(TOKEN_TYPE_ACCESS_TOKEN);
    Ok(response)
}

/// The audience of an exchanged token: the `audience` (or `resource`) asked for, which must be
/// one this server issues tokens for (RFC 8693 2.2.2 `invalid_target`), or by default the
/// audience of its own access tokens.
fn exchange_audience<'a>(idp: &'a Idp, params: &'a Params) -> Result<&'a str, OAuthError> {
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

/// RFC 6749 4.4: a token for the client itself; no refresh token, no ID token.
fn client_credentials(
    idp: &Idp,
    client: &Client,
    params: &Params,
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
    };
    issue(idp, &issued)
}

/// The scope of a refresh or exchange: the requested one, which may only narrow `granted`.
fn narrowed_scope(granted: &str, requested: Option<&str>) -> Result<String, OAuthError> {
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

/// The claims and grant of an access token that verifies and is neither revoked nor from a
/// revoked grant.
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
        token_type: "Bearer",
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
struct MintedRefresh {
    token: String,
    expires_at_ms: u64,
}

/// Makes a refresh token (opaque or JWT, as configured) that expires a TTL from now.
fn mint_refresh_token(
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
fn record_refresh_token(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::{CONFIDENTIAL_CLIENT_ID, REDIRECT_URI, find_client};

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
        let opened = open_grant_and_issue(idp, 1, user_grant()).unwrap();
        let first = opened.response.refresh_token.unwrap();
        let refresh =
            |token: &str| form(&[("grant_type", "refresh_token"), ("refresh_token", token)]);
        let second = refresh_token(idp, client, &refresh(&first))
            .unwrap()
            .refresh_token
            .unwrap();

        let decided = decide_refresh(idp, client, &refresh(&second)).unwrap();
        let replay = refresh_token(idp, client, &refresh(&first));
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
        let taken = take_code(idp, client, &redeem, "code").unwrap();
        let reuse = authorization_code(idp, client, &redeem);
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
