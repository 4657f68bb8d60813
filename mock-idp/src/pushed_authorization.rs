//! `POST /par`: pushed authorization requests (RFC 9126). A client sends its authorization
//! request's parameters straight to the provider, authenticated as at the token endpoint, and
//! gets a `request_uri` to send to `/authorize` instead; the request is checked as `/authorize`
//! would check it, kept for a minute at most, and used once.

use http::StatusCode;
use serde_json::json;

use crate::authorize::validate;
use crate::clients;
use crate::error::OAuthError;
use crate::form::Params;
use crate::http_helpers::{HttpResponse, Incoming, json_response};
use crate::random;
use crate::state::Idp;
use crate::store::{PushedRequest, now_ms};

/// The prefix RFC 9126 section 2.2 gives every `request_uri`.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How long a pushed request may wait for its use.
pub const PUSHED_REQUEST_LIFETIME_S: u64 = 60;

/// The parameters of client authentication: never kept with the request.
const CREDENTIALS: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

/// `POST /par`: 201 with the `request_uri` of the request pushed, or an RFC 6749 error.
pub fn push(idp: &Idp, request: &Incoming) -> Result<HttpResponse, OAuthError> {
    request.require_form()?;
    let params = Params::parse(&request.body)?;
    let client = clients::authenticate_client(idp, request, &params)?;
    if params.get("request_uri").is_some() {
        return Err(OAuthError::InvalidRequest(
            "a pushed authorization request cannot itself name a request_uri".into(),
        ));
    }
    if params.get("client_id").is_some_and(|id| id != client.id) {
        return Err(OAuthError::InvalidRequest(
            "client_id differs from the client that authenticated".into(),
        ));
    }
    let redirect_uri = params.required("redirect_uri")?;
    if !client.redirect_uris.contains(&redirect_uri) {
        return Err(OAuthError::InvalidRequest(
            "redirect_uri is not registered for this client".into(),
        ));
    }
    // RFC 9126 section 2.1: checked now as the authorization endpoint would, and refused here.
    validate(client, &params)?;
    let mut kept: Vec<(String, String)> = params
        .iter()
        .filter(|(name, _)| !CREDENTIALS.contains(name))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    if params.get("client_id").is_none() {
        kept.push(("client_id".to_owned(), client.id.to_owned()));
    }
    let request_uri = keep(idp, client.id, kept)?;
    Ok(json_response(
        StatusCode::CREATED,
        json!({ "request_uri": request_uri, "expires_in": PUSHED_REQUEST_LIFETIME_S }).to_string(),
    ))
}

/// Keeps `params` of `client_id`'s request under a new `request_uri`, for the lifetime.
pub(crate) fn keep(
    idp: &Idp,
    client_id: &str,
    params: Vec<(String, String)>,
) -> Result<String, OAuthError> {
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", random::token());
    idp.store.push_request(
        request_uri.clone(),
        PushedRequest {
            client_id: client_id.to_owned(),
            params,
            expires_at_ms: now_ms() + PUSHED_REQUEST_LIFETIME_S * 1000,
        },
    )?;
    Ok(request_uri)
}

/// The authorization request `sent` names by its `request_uri`: the pushed request's own
/// parameters (RFC 9126 section 4: anything sent beside them is ignored), when `client_id` is
/// its client's and it is neither used nor expired. `None` when `sent` names no pushed request.
pub(crate) fn pushed_params(idp: &Idp, sent: &Params) -> Result<Option<Params>, OAuthError> {
    let Some(request_uri) = sent.get("request_uri") else {
        return Ok(None);
    };
    if !request_uri.starts_with(REQUEST_URI_PREFIX) {
        return Err(OAuthError::InvalidRequest(
            "request_uri names no pushed authorization request of this server".into(),
        ));
    }
    let pushed = idp
        .store
        .pushed_request(request_uri, now_ms())
        .ok_or_else(|| {
            OAuthError::InvalidRequest(
                "request_uri is unknown, used already or expired; push the request again".into(),
            )
        })?;
    if sent.get("client_id") != Some(pushed.client_id.as_str()) {
        return Err(OAuthError::InvalidRequest(
            "client_id must be sent with request_uri and be the client that pushed it".into(),
        ));
    }
    Ok(Some(Params::from_pairs(pushed.params)))
}
