//! Signing in as a browser does, against any provider with a form login: cookies kept per domain
//! and path, every redirect followed, login, two-step and consent pages filled in (see [`page`]),
//! until the provider redirects to the client's `redirect_uri` with a code.

pub mod page;

use bytes::Bytes;
use cookie_store::CookieStore;
use http::header::{ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use url::Url;

use crate::http::address::Address;
use crate::http::client::VuClient;
use crate::http::transport_error::TransportError;
use crate::protocol::authorization::{AuthorizationFailure, AuthorizationRequest};
use crate::protocol::code_flow::FlowEndpoints;
use crate::protocol::token_request::describe_error_body;
pub use page::{Credentials, FormHints, NothingToDo, PageAction};

/// Hops a sign-in may take (redirects and form submissions) before it is called stuck.
const MAX_HOPS: usize = 20;

/// Why a sign-in stopped before the provider redirected to the client with a code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignInError {
    /// No complete answer.
    #[error("{method} {url} got no answer: {error}")]
    Transport {
        method: Method,
        url: String,
        error: TransportError,
    },
    /// An answer that is neither a redirect nor a page with a form.
    #[error("{url} answered {status}: {body}")]
    Unexpected {
        url: String,
        status: u16,
        body: String,
    },
    /// A page with no form to fill in.
    #[error("{0}")]
    NothingToDo(#[from] NothingToDo),
    /// The login form came back after the credentials were sent.
    #[error(
        "the login form at {url} came back after the credentials were sent; the page says \
         '{page}': check the user name and password (--user-prefix, --password)"
    )]
    LoginRefused { url: String, page: String },
    /// A redirect or form to a URL that is not http or https.
    #[error(
        "the provider sent the browser to {url}, which loadgen cannot request: only http:// and \
         https:// URLs are followed"
    )]
    NotHttp { url: String },
    /// Redirects and pages without end.
    #[error("no redirect to the client after {MAX_HOPS} redirects and forms; the last was {url}")]
    TooManyHops { url: String },
    /// The redirect to the client carried no usable code (an error, another state or issuer).
    #[error(transparent)]
    Authorization(#[from] AuthorizationFailure),
}

impl SignInError {
    /// Whether trying again may help: no answer, or a server error.
    pub fn is_retryable(&self) -> bool {
        match self {
            SignInError::Transport { .. } => true,
            SignInError::Unexpected { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// One user's browser: its cookies, kept across sign-ins so a signed-in session is reused.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    cookies: CookieStore,
}

/// The next request of a sign-in.
struct Hop {
    method: Method,
    url: Url,
    body: Option<String>,
}

impl Browser {
    /// A browser with no cookies.
    pub fn new() -> Self {
        Self::default()
    }

    /// The `Cookie` header a request to `url` carries, if any cookie applies.
    pub fn cookie_header(&self, url: &Url) -> Option<HeaderValue> {
        // Longer paths first, as RFC 6265 section 5.4 asks; then by name, so the header is the
        // same on every run (the jar's own order is a hash map's).
        let mut cookies = self.cookies.matches(url);
        cookies.sort_by(|left, right| {
            let path_length =
                |cookie: &&cookie_store::Cookie<'_>| cookie.path().map_or(0, str::len);
            path_length(right)
                .cmp(&path_length(left))
                .then_with(|| left.name().cmp(right.name()))
        });
        let header = cookies
            .iter()
            .map(|cookie| format!("{}={}", cookie.name(), cookie.value()))
            .collect::<Vec<_>>()
            .join("; ");
        HeaderValue::from_str(&header)
            .ok()
            .filter(|_| !header.is_empty())
    }

    /// Keeps the cookies that the `Set-Cookie` headers of the answer from `url` set. Public so
    /// that the fuzz target of responses (`fuzz/fuzz_targets/loadgen_responses.rs`) feeds the
    /// jar as a sign-in does.
    pub fn keep_cookies(&mut self, url: &Url, headers: &http::HeaderMap) {
        for value in headers.get_all(SET_COOKIE) {
            if let Ok(text) = value.to_str() {
                // A cookie the jar refuses (a bad domain) is one a browser would drop too.
                let _ = self.cookies.parse(text, url);
            }
        }
    }

    /// Runs the authorization request `request` as a browser would, following redirects and
    /// forms to whatever origin the provider names (a login host of its own, say), signing in with `credentials` where asked, and returns the code the
    /// provider redirects to the client with (its `state` and RFC 9207 `iss` checked).
    pub async fn authorize(
        &mut self,
        http: &mut VuClient,
        endpoints: &FlowEndpoints<'_>,
        request: &AuthorizationRequest,
        credentials: Credentials<'_>,
        hints: &FormHints,
    ) -> Result<String, SignInError> {
        let start = request
            .address(endpoints.authorize, endpoints.client)
            .to_string();
        let mut hop = Hop {
            method: Method::GET,
            url: Url::parse(&start).map_err(|_| SignInError::NotHttp { url: start.clone() })?,
            body: None,
        };
        let mut credentials_sent = false;
        for _ in 0..MAX_HOPS {
            let address = Address::from_url(&hop.url).map_err(|_| SignInError::NotHttp {
                url: hop.url.to_string(),
            })?;
            let mut headers: Vec<(HeaderName, HeaderValue)> = vec![(
                ACCEPT,
                HeaderValue::from_static("text/html,application/json"),
            )];
            if let Some(cookie) = self.cookie_header(&hop.url) {
                headers.push((COOKIE, cookie));
            }
            if hop.body.is_some() {
                headers.push((
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                ));
            }
            let body = Bytes::from(hop.body.take().unwrap_or_default());
            let response = http
                .send(
                    hop.method.clone(),
                    &address,
                    &headers,
                    body,
                    endpoints.timeout,
                )
                .await
                .map_err(|error| SignInError::Transport {
                    method: hop.method.clone(),
                    url: hop.url.to_string(),
                    error,
                })?;
            self.keep_cookies(&hop.url, &response.headers);
            let location = response
                .headers
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|location| hop.url.join(location).ok());
            if let Some(next) = location.filter(|_| response.status.is_redirection()) {
                if is_redirect_uri(&next, &endpoints.client.redirect_uri) {
                    return Ok(request.code_from(
                        response.status,
                        &response.headers,
                        &response.body,
                        &endpoints.client.redirect_uri,
                        endpoints.issuer,
                    )?);
                }
                // 307 and 308 repeat the request; the others (and any redirect after a form
                // POST, by 303's rule) continue with a GET, as browsers do.
                let repeat = matches!(
                    response.status,
                    StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
                );
                hop = Hop {
                    method: if repeat { hop.method } else { Method::GET },
                    url: next,
                    body: None,
                };
                continue;
            }
            let is_html = response
                .headers
                .get(CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with("text/html"));
            if !is_html {
                return Err(SignInError::Unexpected {
                    url: hop.url.to_string(),
                    status: response.status.as_u16(),
                    body: describe_error_body(&response.body),
                });
            }
            let html = String::from_utf8_lossy(&response.body);
            let action = page::decide(&hop.url, &html, credentials, hints)?;
            if let PageAction::Login(_) = action {
                if credentials_sent {
                    return Err(SignInError::LoginRefused {
                        url: hop.url.to_string(),
                        page: page::complaint(&html),
                    });
                }
                credentials_sent = true;
            }
            let form = action.form();
            hop = if form.method == Method::POST {
                Hop {
                    method: Method::POST,
                    url: form.action.clone(),
                    body: Some(form.encoded()),
                }
            } else {
                let mut url = form.action.clone();
                url.set_query(Some(&form.encoded()));
                Hop {
                    method: Method::GET,
                    url,
                    body: None,
                }
            };
        }
        Err(SignInError::TooManyHops {
            url: hop.url.to_string(),
        })
    }
}

/// Whether `url` is the client's `redirect_uri` (same scheme, host, port and path): the browser
/// stops there and never requests it. Public for the fuzz target of responses.
pub fn is_redirect_uri(url: &Url, redirect_uri: &str) -> bool {
    Url::parse(redirect_uri).is_ok_and(|expected| {
        url.scheme() == expected.scheme()
            && url.host_str() == expected.host_str()
            && url.port_or_known_default() == expected.port_or_known_default()
            && url.path() == expected.path()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_uri_is_recognised_by_scheme_host_port_and_path() {
        let redirect = "http://127.0.0.1:3000/callback";
        let url = |text: &str| Url::parse(text).unwrap();
        assert!(is_redirect_uri(
            &url("http://127.0.0.1:3000/callback?code=x"),
            redirect
        ));
        assert!(!is_redirect_uri(
            &url("http://127.0.0.1:3001/callback?code=x"),
            redirect
        ));
        assert!(!is_redirect_uri(
            &url("http://127.0.0.1:3000/callback/x"),
            redirect
        ));
        assert!(!is_redirect_uri(
            &url("https://127.0.0.1:3000/callback"),
            redirect
        ));
    }

    #[test]
    fn cookies_are_sent_where_their_domain_and_path_say() {
        let mut browser = Browser::new();
        let base = Url::parse("http://127.0.0.1:8080/interaction/abc").unwrap();
        let mut headers = http::HeaderMap::new();
        for cookie in [
            "_interaction=abc; path=/interaction/abc; httponly",
            "_resume=abc; path=/auth/abc",
            "_session=s1; path=/",
        ] {
            headers.append(SET_COOKIE, HeaderValue::from_static(cookie));
        }
        browser.keep_cookies(&base, &headers);
        let sent = |path: &str| {
            browser
                .cookie_header(&base.join(path).unwrap())
                .map(|value| value.to_str().unwrap_or_default().to_owned())
        };
        assert_eq!(
            sent("/interaction/abc").as_deref(),
            Some("_interaction=abc; _session=s1")
        );
        assert_eq!(
            sent("/auth/abc").as_deref(),
            Some("_resume=abc; _session=s1")
        );
        assert_eq!(sent("/auth").as_deref(), Some("_session=s1"));
    }

    #[test]
    fn a_secure_cookie_goes_back_over_https_and_to_loopback_only() {
        let mut browser = Browser::new();
        let https = Url::parse("https://idp.example.test/login").unwrap();
        let mut headers = http::HeaderMap::new();
        headers.append(
            SET_COOKIE,
            HeaderValue::from_static("_session=s1; path=/; secure; httponly"),
        );
        browser.keep_cookies(&https, &headers);
        let sent = |url: &str| browser.cookie_header(&Url::parse(url).unwrap());
        assert!(sent("https://idp.example.test/authorize").is_some());
        // As browsers do: plain http is no secure context, but loopback is.
        assert!(sent("http://idp.example.test/authorize").is_none());
        let mut loopback = Browser::new();
        let local = Url::parse("http://127.0.0.1:8080/login").unwrap();
        loopback.keep_cookies(&local, &headers);
        assert!(
            loopback
                .cookie_header(&Url::parse("http://127.0.0.1:8080/authorize").unwrap())
                .is_some()
        );
    }
}
