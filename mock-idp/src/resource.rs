//! Endpoints that take tokens back: `/userinfo` (OIDC Core 5.3, RFC 6750), `/introspect`
//! (RFC 7662) and `/revoke` (RFC 7009).

use http::header;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::clients;
use crate::dpop::ProofSite;
use crate::error::OAuthError;
use crate::form::Params;
use crate::http_helpers::{HttpResponse, Incoming, json_response, text_response};
use crate::jwt::AccessClaims;
use crate::state::Idp;
use crate::store::now_ms;
use crate::token_endpoint::{access_claims, live_access_token};

/// `GET` or `POST /userinfo` with a Bearer access token, or a DPoP-bound one with its proof.
pub fn userinfo(idp: &Idp, request: &Incoming) -> Result<HttpResponse, OAuthError> {
    let (token, scheme) = presented_token(request)?;
    let (claims, _) = live_access_token(idp, &token)?;
    check_sender(idp, request, &token, scheme, &claims)?;
    // RFC 9068 4: a resource takes only tokens meant for it. Userinfo is this server's own
    // resource, so a token exchanged for another audience is refused here.
    if claims.aud != idp.minter.audience() {
        return Err(OAuthError::InvalidToken(format!(
            "the access token is for the audience {:?}, not this userinfo endpoint",
            claims.aud
        )));
    }
    let scopes: Vec<&str> = claims.scope.split(' ').collect();
    if !scopes.contains(&"openid") {
        return Err(OAuthError::InsufficientScope(
            "userinfo needs an access token with the openid scope".into(),
        ));
    }
    let mut body = Map::new();
    body.insert("sub".into(), Value::from(claims.sub.clone()));
    if scopes.contains(&"profile") {
        let number = claims.sub.rsplit('-').next().unwrap_or_default();
        body.insert(
            "name".into(),
            Value::from(format!("Load Test User {number}")),
        );
        body.insert("preferred_username".into(), Value::from(claims.sub.clone()));
    }
    if scopes.contains(&"email") {
        body.insert(
            "email".into(),
            Value::from(format!("{}@example.com", claims.sub)),
        );
        body.insert("email_verified".into(), Value::from(true));
    }
    Ok(json_response(
        StatusCode::OK,
        Value::Object(body).to_string(),
    ))
}

/// How an access token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// RFC 6750: whoever holds it may use it.
    Bearer,
    /// RFC 9449 section 7.1: with a proof of the key it is bound to.
    Dpop,
}

/// RFC 9449 section 7: a token bound to a DPoP key is taken only with a proof of that key (and
/// never as a bearer token); a proof comes only with the `DPoP` scheme.
fn check_sender(
    idp: &Idp,
    request: &Incoming,
    token: &str,
    scheme: Scheme,
    claims: &AccessClaims,
) -> Result<(), OAuthError> {
    let bound_to = claims.cnf.as_ref().map(|cnf| cnf.jkt.as_str());
    match scheme {
        Scheme::Bearer if bound_to.is_some() => Err(OAuthError::InvalidToken(
            "the access token is bound to a DPoP key: send it as `Authorization: DPoP` with a \
             DPoP proof"
                .into(),
        )),
        Scheme::Bearer if request.headers.contains_key(crate::dpop::DPOP_HEADER) => {
            Err(OAuthError::InvalidRequest(
                "a DPoP proof came with a Bearer token; send the token as `Authorization: DPoP`"
                    .into(),
            ))
        }
        Scheme::Bearer => Ok(()),
        Scheme::Dpop => {
            let proof = crate::dpop::proof_of(
                idp,
                request,
                ProofSite::Resource,
                &idp.urls.userinfo,
                Some(token),
            )?
            .ok_or_else(|| {
                OAuthError::InvalidDpopProofAtResource(
                    "a DPoP token needs a DPoP proof header".into(),
                )
            })?;
            if bound_to != Some(proof.jkt.as_str()) {
                return Err(OAuthError::InvalidToken(
                    "the access token is not bound to the key of this DPoP proof".into(),
                ));
            }
            Ok(())
        }
    }
}

/// The access token of a resource request and how it came: in the `Authorization` header
/// (`Bearer` or `DPoP`), or as the `access_token` form parameter of a POST (RFC 6750 2.1, 2.2,
/// a bearer token), never both.
fn presented_token(request: &Incoming) -> Result<(String, Scheme), OAuthError> {
    let from_header = match request.header(header::AUTHORIZATION) {
        Some(value) => {
            let value = std::str::from_utf8(value)
                .map_err(|_| OAuthError::InvalidToken("malformed Authorization header".into()))?;
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            let token = token.trim();
            let scheme = if scheme.eq_ignore_ascii_case("bearer") {
                Scheme::Bearer
            } else if scheme.eq_ignore_ascii_case("dpop") {
                Scheme::Dpop
            } else {
                return Err(OAuthError::InvalidToken(
                    "the Authorization header is neither a Bearer nor a DPoP token".into(),
                ));
            };
            if token.is_empty() {
                return Err(OAuthError::InvalidToken(
                    "the Authorization header carries no token".into(),
                ));
            }
            Some((token.to_owned(), scheme))
        }
        None => None,
    };
    let from_body = if request.method == Method::POST && !request.body.is_empty() {
        request.require_form()?;
        Params::parse(&request.body)?
            .get("access_token")
            .map(str::to_owned)
    } else {
        None
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(OAuthError::InvalidRequest(
            "send the access token once, in the header or in the body".into(),
        )),
        (Some(presented), None) => Ok(presented),
        (None, Some(token)) => Ok((token, Scheme::Bearer)),
        (None, None) => Err(OAuthError::MissingToken(
            "send an access token as `Authorization: Bearer TOKEN`".into(),
        )),
    }
}

/// `POST /introspect`: whether a token is active, and its claims when it is.
pub fn introspect(idp: &Idp, request: &Incoming) -> Result<HttpResponse, OAuthError> {
    request.require_form()?;
    let params = Params::parse(&request.body)?;
    let caller = clients::authenticate_client(idp, request, &params)?;
    // RFC 7662 2.1: the caller must be authorized. A public client proves nothing about
    // itself, so anyone could introspect any token as it.
    if caller.is_public() {
        return Err(OAuthError::InvalidClient(
            "introspection needs the credentials of a confidential client".into(),
        ));
    }
    let token = params.required("token")?;
    let hint = params.get("token_type_hint");
    let answer = if hint == Some("refresh_token") {
        introspect_refresh(idp, token).or_else(|| introspect_access(idp, token))
    } else {
        introspect_access(idp, token).or_else(|| introspect_refresh(idp, token))
    };
    let body = answer.unwrap_or_else(|| json!({ "active": false }));
    Ok(json_response(StatusCode::OK, body.to_string()))
}

fn introspect_access(idp: &Idp, token: &str) -> Option<Value> {
    let (claims, _) = live_access_token(idp, token).ok()?;
    let mut body = json!({
        "active": true,
        "token_type": if claims.cnf.is_some() { "DPoP" } else { "Bearer" },
        "scope": claims.scope,
        "client_id": claims.client_id,
        "username": claims.sub,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "iat": claims.iat,
        "exp": claims.exp,
        "jti": claims.jti,
    });
    if let Some(actor) = claims.act {
        body["act"] = json!({ "sub": actor.sub });
    }
    // RFC 9449 section 6.2: a resource that introspects learns the key the token is bound to.
    if let Some(cnf) = claims.cnf {
        body["cnf"] = json!({ "jkt": cnf.jkt });
    }
    Some(body)
}

fn introspect_refresh(idp: &Idp, token: &str) -> Option<Value> {
    let record = idp.store.refresh_record(token)?;
    if record.expires_at_ms <= now_ms() || record.state != crate::store::RefreshState::Active {
        return None;
    }
    let grant = idp.store.grant(record.grant_id)?;
    if grant.revoked {
        return None;
    }
    Some(json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": grant.scope,
        "client_id": grant.client_id,
        "username": grant.subject,
        "sub": grant.subject,
        "iss": idp.minter.issuer(),
        "exp": record.expires_at_ms / 1000,
    }))
}

/// `POST /revoke`: revoking a refresh token revokes its family and the access tokens of the
/// same grant; revoking an access token revokes that token. Unknown tokens answer 200 too
/// (RFC 7009 2.2), so a client cannot probe which tokens exist.
pub fn revoke(idp: &Idp, request: &Incoming) -> Result<HttpResponse, OAuthError> {
    request.require_form()?;
    let params = Params::parse(&request.body)?;
    let client = clients::authenticate_client(idp, request, &params)?;
    let token = params.required("token")?;
    let not_yours =
        || OAuthError::UnauthorizedClient("the token was issued to another client".into());

    let refresh_grant = idp
        .store
        .refresh_record(token)
        .map(|record| record.grant_id);
    if let Some(grant_id) = refresh_grant {
        let owner = idp.store.grant(grant_id).map(|grant| grant.client_id);
        if owner.is_some_and(|owner| owner != client.id) {
            return Err(not_yours());
        }
        if idp.store.revoke_grant(grant_id) {
            idp.metrics.families_revoked.inc();
        }
    } else if let Ok(claims) = access_claims(idp, token) {
        if claims.client_id != client.id {
            return Err(not_yours());
        }
        idp.store.revoke_access_token(&claims.jti);
    }
    Ok(text_response(
        StatusCode::OK,
        "application/json",
        String::new(),
    ))
}
