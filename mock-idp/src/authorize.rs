//! The front channel: the login form, the session cookie and `/authorize` (RFC 6749 4.1.1,
//! OpenID Connect Core 3.1.2, PKCE of RFC 7636).

use cookie::{Cookie, SameSite};
use http::StatusCode;
use http::header::{self, HeaderValue};

use crate::clients::{self, Client};
use crate::discovery::SUPPORTED_SCOPES;
use crate::error::OAuthError;
use crate::form::Params;
use crate::http_helpers::{HttpResponse, Incoming, redirect, text_response};
use crate::pushed_authorization;
use crate::random;
use crate::state::Idp;
use crate::store::{PendingCode, Session, now_ms};

pub const SESSION_COOKIE: &str = "mock_idp_session";

/// `GET /login`: the form. The pending authorization request rides along in `return_to`.
pub fn login_form(request: &Incoming) -> HttpResponse {
    let return_to = match request.query.as_deref() {
        Some(query) if !query.is_empty() => format!("/authorize?{query}"),
        _ => String::new(),
    };
    form_page(StatusCode::OK, &return_to, None)
}

/// `POST /login`: checks the password, opens a session and sends the browser back to the
/// pending `/authorize` request.
pub fn login(idp: &Idp, request: &Incoming) -> Result<HttpResponse, OAuthError> {
    request.require_form()?;
    let params = Params::parse(&request.body)?;
    // Refused before the password is even looked at, so a bad request opens no session.
    let return_to = params.get("return_to").unwrap_or_default();
    if !return_to.is_empty() && !is_local_authorize_path(return_to) {
        return Err(OAuthError::InvalidRequest(
            "return_to must be a path on this server starting with /authorize, in visible ASCII"
                .into(),
        ));
    }
    let username = params.get("username").unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    if !clients::check_password(username, password, idp.config.users) {
        return Ok(form_page(
            StatusCode::BAD_REQUEST,
            return_to,
            Some("Unknown user or wrong password."),
        ));
    }
    let session_id = random::token();
    let now = now_ms();
    let ttl = idp.config.session_ttl;
    idp.store.open_session(
        session_id.clone(),
        Session {
            subject: username.to_owned(),
            auth_time: now / 1000,
            expires_at_ms: now + ttl.as_millis() as u64,
        },
    )?;
    idp.metrics.logins.inc();
    // Secure whenever the issuer is https: a cookie that also travels over plain http could be
    // read on the way (RFC 6265 4.1.2.5).
    let cookie = Cookie::build((SESSION_COOKIE, session_id))
        .path("/")
        .http_only(true)
        .secure(idp.urls.issuer.starts_with("https://"))
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(ttl.as_secs() as i64))
        .build();
    let mut response = if return_to.is_empty() {
        text_response(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<!doctype html><title>mock-idp</title><p>Logged in.</p>".into(),
        )
    } else {
        redirect(return_to)
    };
    if let Ok(value) = HeaderValue::from_str(&cookie.to_string()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Only a path on this server, to `/authorize`, may be returned to: anything else would make
/// the login form an open redirector. It must also be usable as a `Location` as it is: visible
/// ASCII, no control characters that would split or break the header.
fn is_local_authorize_path(path: &str) -> bool {
    (path == "/authorize" || path.starts_with("/authorize?"))
        && path.bytes().all(|byte| byte.is_ascii_graphic())
}

fn form_page(status: StatusCode, return_to: &str, error: Option<&str>) -> HttpResponse {
    let error = error
        .map(|text| format!("<p role=\"alert\">{}</p>", escape_html(text)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in - mock-idp</title></head>\n\
         <body><h1>Sign in</h1>{error}\n\
         <form method=\"post\" action=\"/login\">\n\
         <label>Username <input name=\"username\" autocomplete=\"username\" required></label>\n\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\n\
         <input type=\"hidden\" name=\"return_to\" value=\"{}\">\n\
         <button type=\"submit\">Sign in</button>\n</form></body></html>\n",
        escape_html(return_to)
    );
    let mut response = text_response(status, "text/html; charset=utf-8", body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(character),
        }
    }
    escaped
}

/// `GET` or `POST /authorize`, with the request's parameters or a pushed request's
/// `request_uri` (RFC 9126).
pub fn authorize(idp: &Idp, request: &Incoming) -> Result<HttpResponse, OAuthError> {
    let sent = if request.method == http::Method::POST {
        request.require_form()?;
        Params::parse(&request.body)?
    } else {
        Params::parse(request.query.as_deref().unwrap_or_default().as_bytes())?
    };
    let pushed = pushed_authorization::pushed_params(idp, &sent)?;
    let params = pushed.as_ref().unwrap_or(&sent);

    // Until the client and its redirect URI are known good, errors go to the user agent, never
    // to a redirect (RFC 6749 4.1.2.1).
    let client_id = params.required("client_id")?;
    let client = clients::find_client(client_id)
        .ok_or_else(|| OAuthError::InvalidRequest("unknown client_id".into()))?;
    let redirect_uri = params.required("redirect_uri")?;
    if !client.redirect_uris.contains(&redirect_uri) {
        return Err(OAuthError::InvalidRequest(
            "redirect_uri is not registered for this client".into(),
        ));
    }
    let state = params.get("state");
    let error_redirect = |error: OAuthError| -> HttpResponse {
        redirect(&redirect_uri_with(
            redirect_uri,
            &[
                ("error", error.code()),
                ("error_description", &error.description()),
                ("state", state.unwrap_or_default()),
                ("iss", &idp.urls.issuer),
            ],
        ))
    };

    let validated = match validate(client, params) {
        Ok(validated) => validated,
        Err(error) => return Ok(error_redirect(error)),
    };

    // OIDC Core 3.1.2.1: a session older than `max_age` seconds, or `prompt=login`, means the
    // user signs in again.
    let session = if validated.prompt_login {
        None
    } else {
        current_session(idp, request).filter(|session| {
            validated.max_age_s.is_none_or(|max_age_s| {
                (now_ms() / 1000).saturating_sub(session.auth_time) <= max_age_s
            })
        })
    };
    let Some(session) = session else {
        if validated.prompt_none {
            return Ok(error_redirect(OAuthError::LoginRequired(
                "no session and prompt=none".into(),
            )));
        }
        // The login form returns here with the same request, minus `prompt=login`, so a
        // successful login is not asked for again. A pushed request is pushed again without it
        // (the one sent is used up), and the login returns with the new request_uri.
        let query = match (&pushed, sent.get("request_uri")) {
            (Some(pushed), Some(request_uri)) if pushed.get("prompt").is_some() => {
                idp.store.take_pushed_request(request_uri);
                let without_prompt = pushed
                    .iter()
                    .filter(|(name, _)| *name != "prompt")
                    .map(|(name, value)| (name.to_owned(), value.to_owned()))
                    .collect();
                let request_uri = pushed_authorization::keep(idp, client.id, without_prompt)?;
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("client_id", client.id)
                    .append_pair("request_uri", &request_uri)
                    .finish()
            }
            _ => form_urlencoded::Serializer::new(String::new())
                .extend_pairs(sent.iter().filter(|(name, _)| *name != "prompt"))
                .finish(),
        };
        return Ok(redirect(&format!("/login?{query}")));
    };
    // A pushed request is used once (RFC 9126 section 4): of two uses, one gets the code.
    if pushed.is_some()
        && let Some(request_uri) = sent.get("request_uri")
        && !idp.store.take_pushed_request(request_uri)
    {
        return Err(OAuthError::InvalidRequest(
            "request_uri was used already; push the request again".into(),
        ));
    }

    let code = random::token();
    let now = now_ms();
    idp.store.issue_code(
        code.clone(),
        PendingCode {
            client_id: client.id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: validated.code_challenge,
            nonce: params.get("nonce").map(str::to_owned),
            subject: session.subject,
            scope: validated.scope,
            auth_time: session.auth_time,
            expires_at_ms: now + idp.config.code_ttl.as_millis() as u64,
        },
    )?;
    idp.metrics.codes_issued.inc();
    Ok(redirect(&redirect_uri_with(
        redirect_uri,
        &[
            ("code", &code),
            ("state", state.unwrap_or_default()),
            ("iss", &idp.urls.issuer),
        ],
    )))
}

pub(crate) struct Validated {
    scope: String,
    code_challenge: Option<String>,
    prompt_none: bool,
    prompt_login: bool,
    max_age_s: Option<u64>,
}

/// The longest `nonce` kept: it is stored with the code and repeated in every ID token of the
/// grant, so its size is bounded like everything else the server keeps.
pub const MAX_NONCE_BYTES: usize = 512;

/// The checks whose failures are reported to the client through its redirect URI.
pub(crate) fn validate(client: &Client, params: &Params) -> Result<Validated, OAuthError> {
    match params.get("response_type") {
        Some("code") => {}
        Some(other) => {
            return Err(OAuthError::UnsupportedResponseType(format!(
                "response_type {other:?} is not supported; use code"
            )));
        }
        None => return Err(OAuthError::InvalidRequest("missing response_type".into())),
    }
    let scope = params.required("scope")?;
    let mut n_scopes = 0;
    for value in scope.split(' ').filter(|value| !value.is_empty()) {
        if !SUPPORTED_SCOPES.contains(&value) {
            return Err(OAuthError::InvalidScope(format!("unknown scope {value:?}")));
        }
        n_scopes += 1;
    }
    if n_scopes == 0 || !scope.split(' ').any(|value| value == "openid") {
        return Err(OAuthError::InvalidScope(
            "an OpenID Connect request must include the openid scope".into(),
        ));
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(challenge), Some("S256")) => {
            if !is_s256_challenge(challenge) {
                return Err(OAuthError::InvalidRequest(
                    "code_challenge must be 43 base64url characters (S256)".into(),
                ));
            }
            Some(challenge.to_owned())
        }
        (Some(_), method) => {
            return Err(OAuthError::InvalidRequest(format!(
                "code_challenge_method {:?} is not supported; use S256",
                method.unwrap_or("plain")
            )));
        }
        (None, Some(_)) => {
            return Err(OAuthError::InvalidRequest(
                "code_challenge_method without code_challenge".into(),
            ));
        }
        (None, None) if client.is_public() => {
            return Err(OAuthError::InvalidRequest(
                "a public client must use PKCE (code_challenge with S256)".into(),
            ));
        }
        (None, None) => None,
    };
    if params
        .get("nonce")
        .is_some_and(|nonce| nonce.len() > MAX_NONCE_BYTES)
    {
        return Err(OAuthError::InvalidRequest(format!(
            "nonce is longer than {MAX_NONCE_BYTES} bytes"
        )));
    }
    let prompt: Vec<&str> = params
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|value| !value.is_empty())
        .collect();
    let prompt_none = prompt.contains(&"none");
    if prompt_none && prompt.len() > 1 {
        return Err(OAuthError::InvalidRequest(
            "prompt=none cannot be combined with other prompt values (OpenID Connect Core 3.1.2.1)"
                .into(),
        ));
    }
    let max_age_s = match params.get("max_age") {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            OAuthError::InvalidRequest(format!(
                "max_age must be a whole number of seconds (got {text:?})"
            ))
        })?),
    };
    Ok(Validated {
        scope: scope.to_owned(),
        code_challenge,
        prompt_none,
        prompt_login: prompt.contains(&"login"),
        max_age_s,
    })
}

/// An S256 challenge is the base64url of a SHA-256 digest: exactly 43 characters.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// The session named by the request's cookie, if it is live.
fn current_session(idp: &Idp, request: &Incoming) -> Option<Session> {
    let header = request.header(header::COOKIE)?;
    let header = std::str::from_utf8(header).ok()?;
    let session_id = Cookie::split_parse(header)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == SESSION_COOKIE)?;
    idp.store.live_session(session_id.value(), now_ms())
}

/// `redirect_uri` with `pairs` added to its query; empty values are left out.
fn redirect_uri_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (name, value) in pairs.iter().filter(|(_, value)| !value.is_empty()) {
                    query.append_pair(name, value);
                }
            }
            url.into()
        }
        // Registered redirect URIs are absolute; this cannot happen for a registered one.
        Err(_) => redirect_uri.to_owned(),
    }
}
