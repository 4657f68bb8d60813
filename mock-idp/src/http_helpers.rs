//! Request and response helpers shared by every endpoint: the request as the handlers see it
//! (body already read and capped), and the JSON, text, redirect and error answers.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::Full;

use crate::error::OAuthError;

/// What every handler answers.
pub type HttpResponse = Response<Full<Bytes>>;

/// The parts of a request the handlers need, with the body already read (and capped).
#[derive(Debug)]
pub struct Incoming {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The certificate the client presented in the TLS handshake, if any.
    pub client_certificate: Option<Bytes>,
}

impl Incoming {
    pub fn header(&self, name: header::HeaderName) -> Option<&[u8]> {
        self.headers.get(name).map(HeaderValue::as_bytes)
    }

    /// Whether the body is declared as a form, as every POST to the OAuth endpoints must be.
    pub fn require_form(&self) -> Result<(), OAuthError> {
        let is_form = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if is_form {
            Ok(())
        } else {
            Err(OAuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded".into(),
            ))
        }
    }
}

/// The RFC 6749 5.2 error answer for `error`.
pub fn error_response(error: &OAuthError) -> HttpResponse {
    let mut response = json_response(error.status(), error.body());
    if let Some(challenge) = error
        .www_authenticate()
        .and_then(|challenge| HeaderValue::from_str(&challenge).ok())
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
    if let Some(nonce) = error
        .dpop_nonce()
        .and_then(|nonce| HeaderValue::from_str(nonce).ok())
    {
        response
            .headers_mut()
            .insert(crate::dpop::DPOP_NONCE_HEADER, nonce);
    }
    if let Some(allow) = error.allow() {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if matches!(error, OAuthError::RequestTimeout { .. }) {
        // The rest of the body may still be on its way: the connection cannot be reused.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A JSON answer that no cache may keep (RFC 6749 5.1).
pub fn json_response(status: StatusCode, body: String) -> HttpResponse {
    let mut response = text_response(status, "application/json", body);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

pub fn cached_json(body: Bytes, cache_control: &'static str) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response
}

pub fn text_response(status: StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A `302 Found` to `location`. A location that is not a valid header value cannot come from
/// this server's own URLs; it would be a bug, and answers 500 rather than a bad redirect.
pub fn redirect(location: &str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::new()));
    match HeaderValue::from_str(location) {
        Ok(value) => {
            *response.status_mut() = StatusCode::FOUND;
            response.headers_mut().insert(header::LOCATION, value);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => error_response(&OAuthError::ServerError("unencodable redirect".into())),
    }
}
