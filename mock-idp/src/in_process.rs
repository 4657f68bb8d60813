//! The sign-in flow (login form, `/authorize`, `/token`) driven through [`App::handle`] with no
//! socket: the one in-process implementation that mock-idp's tests and the benches share.
//! (loadgen has the over-the-wire one, as a client of any provider.)

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};

use crate::App;
use crate::clients::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, REDIRECT_URI, basic_authorization,
};

/// The PKCE verifier of [`AuthorizationRequest::default`] (RFC 7636 appendix B's).
pub const CODE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// Why an in-process step did not give what the flow needs, with what the provider answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step} answered {status}: {body}")]
pub struct FlowError {
    /// The request, for example `POST /login`.
    pub step: &'static str,
    /// The status it got.
    pub status: u16,
    /// The body (or what was missing from the answer).
    pub body: String,
}

/// The confidential client's authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest<'a> {
    pub scope: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    pub code_verifier: &'a str,
}

impl Default for AuthorizationRequest<'_> {
    fn default() -> Self {
        Self {
            scope: "openid profile email",
            state: "state-1",
            nonce: "nonce-1",
            code_verifier: CODE_VERIFIER,
        }
    }
}

impl AuthorizationRequest<'_> {
    /// The query of `/authorize` for this request (PKCE S256).
    pub fn query(&self) -> String {
        let challenge = crate::pkce_s256(self.code_verifier);
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", CONFIDENTIAL_CLIENT_ID),
                ("redirect_uri", REDIRECT_URI),
                ("scope", self.scope),
                ("state", self.state),
                ("nonce", self.nonce),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .finish()
    }
}

/// A form POST to `path`, as a browser or an OAuth client sends it.
pub fn form_post(path: &str, form: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = Request::new(Full::new(Bytes::from(body)));
    *request.method_mut() = Method::POST;
    if let Ok(uri) = path.parse() {
        *request.uri_mut() = uri;
    }
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    request
}

/// A `POST /token` by the confidential client (`client_secret_basic`) with `form`.
pub fn token_request(form: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut request = form_post("/token", form);
    let authorization = basic_authorization(CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET);
    if let Ok(value) = HeaderValue::from_str(&authorization) {
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    request
}

/// The `POST /token` redeeming `code` of a request made with `code_verifier`.
pub fn code_redemption(code: &str, code_verifier: &str) -> Request<Full<Bytes>> {
    token_request(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", code_verifier),
    ])
}

/// Logs `user` in with `password` and returns the `Cookie` header value of the new session.
pub async fn login(app: &App, user: &str, password: &str) -> Result<String, FlowError> {
    let response = app
        .handle(form_post(
            "/login",
            &[("username", user), ("password", password)],
        ))
        .await;
    let status = response.status();
    let session = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .find(|pair| pair.starts_with(crate::SESSION_COOKIE))
        .map(str::to_owned);
    session.ok_or(FlowError {
        step: "POST /login",
        status: status.as_u16(),
        body: "no session cookie was set".into(),
    })
}

/// Runs `/authorize` for the session `cookie` and returns the code it redirects with.
pub async fn authorization_code(
    app: &App,
    cookie: &str,
    authorization: &AuthorizationRequest<'_>,
) -> Result<String, FlowError> {
    let failure = |status: StatusCode, body: String| FlowError {
        step: "GET /authorize",
        status: status.as_u16(),
        body,
    };
    let mut request = Request::new(Full::new(Bytes::new()));
    *request.uri_mut() = format!("/authorize?{}", authorization.query())
        .parse()
        .map_err(|_| failure(StatusCode::BAD_REQUEST, "unusable query".into()))?;
    let cookie = HeaderValue::from_str(cookie)
        .map_err(|_| failure(StatusCode::BAD_REQUEST, "unusable cookie".into()))?;
    request.headers_mut().insert(header::COOKIE, cookie);
    let response = app.handle(request).await;
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let Some(location) = location.filter(|_| status == StatusCode::FOUND) else {
        return Err(failure(status, body_text(response).await));
    };
    let query = location
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .ok_or_else(|| failure(status, format!("no code in the redirect to {location}")))
}

/// Logs `user` in, gets a code for `authorization` and redeems it: the token response JSON.
pub async fn sign_in(
    app: &App,
    user: &str,
    authorization: &AuthorizationRequest<'_>,
) -> Result<serde_json::Value, FlowError> {
    let cookie = login(app, user, crate::clients::USER_PASSWORD).await?;
    let code = authorization_code(app, &cookie, authorization).await?;
    let response = app
        .handle(code_redemption(&code, authorization.code_verifier))
        .await;
    let status = response.status();
    let body = body_text(response).await;
    if status != StatusCode::OK {
        return Err(FlowError {
            step: "POST /token",
            status: status.as_u16(),
            body,
        });
    }
    serde_json::from_str(&body).map_err(|error| FlowError {
        step: "POST /token",
        status: status.as_u16(),
        body: format!("not a token response ({error}): {body}"),
    })
}

async fn body_text(response: crate::HttpResponse) -> String {
    match response.into_body().collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(error) => format!("(unreadable body: {error})"),
    }
}
