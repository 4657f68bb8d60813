//! Signing in as a browser does, against any provider with a form login: cookies kept per domain
//! and path, every redirect followed, login, two-step and consent pages filled in (see [`page`]),
//! until the provider redirects to the client's `redirect_uri` with a code.

pub mod page;

use std::time::Duration;

use bytes::Bytes;
use cookie_store::CookieStore;
use http::header::{ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderName, HeaderValue, Method, StatusCode};
use url::Url;

use crate::http::address::Address;
use crate::http::client::{HttpResponse, VuClient};
use crate::http::transport_error::TransportError;
use crate::protocol::authorization::AuthorizationFailure;
use crate::protocol::token_request::describe_error_body;
pub use page::{Credentials, FormHints, NothingToDo, PageAction};

/// Hops a sign-in may take (redirects and form submissions) before it is called stuck.
pub const MAX_HOPS: usize = 20;

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
    /// A login page where the user was to be signed in already (a seeded session).
    #[error(
        "the provider asked the user to sign in again at {url}: the seeded session has ended \
         (expired, or signed out); seed again with `loadgen seed`"
    )]
    SignInRequired { url: String },
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

/// What a request of a sign-in is, for a sender that records each kind as an endpoint of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopStage {
    /// The authorization request itself.
    Authorization,
    /// A redirect or page before any form was sent: the way to the login page, and the page.
    LoginPage,
    /// The login form (or its user-name step) sent, and the redirects and pages it led to.
    Login,
    /// A consent page approved, and the redirects it led to.
    Consent,
}

/// Sends the requests of a sign-in: unmeasured ([`Unmeasured`]: seeding, a VU's set-up), or each
/// recorded as a step of an iteration (TEST 3's consent pages, the `login` scenario).
pub trait HopSender {
    /// Sends one request of the sign-in, of `stage`.
    fn send_hop(
        &mut self,
        stage: HopStage,
        method: Method,
        address: &Address,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> + Send;
}

/// Sends every hop on a connection of the caller's, unmeasured, each within `timeout`.
#[derive(Debug)]
pub struct Unmeasured<'a> {
    /// The connection.
    pub http: &'a mut VuClient,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl HopSender for Unmeasured<'_> {
    fn send_hop(
        &mut self,
        _stage: HopStage,
        method: Method,
        address: &Address,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
    ) -> impl Future<Output = Result<HttpResponse, TransportError>> + Send {
        self.http.send(method, address, headers, body, self.timeout)
    }
}

/// Where a sign-in starts: a request to send, or the answer to one already sent.
#[derive(Debug)]
pub enum Start {
    /// Send a `GET` to this URL (the authorization request) first.
    Request(Url),
    /// `response` answered the request to `url`; go on from it.
    Answered {
        /// The URL requested.
        url: Url,
        /// Its answer.
        response: HttpResponse,
    },
}

/// The end of a sign-in: the provider's redirect to the client, and what it took.
#[derive(Debug)]
pub struct Arrival {
    /// The redirect to the client's `redirect_uri`, unread (the caller judges its code, `state`
    /// and `iss`).
    pub response: HttpResponse,
    /// Consent pages approved on the way.
    pub consents_approved: u32,
    /// The `Cookie` header the browser now sends to where it started: the session as the
    /// provider last set it. A provider that gives the session a new identifier after every
    /// interaction (node-oidc-provider does, against session fixation) has ended the old one.
    pub session_cookie: Option<HeaderValue>,
}

impl Browser {
    /// A browser with no cookies.
    pub fn new() -> Self {
        Self::default()
    }

    /// A browser holding the cookies of a `Cookie` header sent to `url` (a seeded session), as
    /// cookies of `url`'s host for every path.
    pub fn with_cookie_header(url: &Url, header: &HeaderValue) -> Self {
        let mut browser = Self::new();
        for pair in header.to_str().unwrap_or_default().split(';') {
            let pair = pair.trim();
            if !pair.is_empty() {
                let _ = browser.cookies.parse(&format!("{pair}; Path=/"), url);
            }
        }
        browser
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

    /// Goes through the provider's pages as a browser would, from `start` until the provider
    /// redirects to `redirect_uri`: every redirect followed, to whatever origin the provider names
    /// (a login host of its own, say), the login form filled in with `credentials` (without
    /// them, a login page is an error: the session has ended) and a consent page approved.
    pub async fn follow(
        &mut self,
        sender: &mut impl HopSender,
        start: Start,
        redirect_uri: &str,
        credentials: Option<Credentials<'_>>,
        hints: &FormHints,
    ) -> Result<Arrival, SignInError> {
        let (mut url, mut answered) = match start {
            Start::Request(url) => (url, None),
            Start::Answered { url, response } => (url, Some(response)),
        };
        let start_url = url.clone();
        let mut hop = Hop {
            method: Method::GET,
            url: url.clone(),
            body: None,
        };
        let mut credentials_sent = false;
        let mut consents_approved = 0;
        let mut stage = HopStage::Authorization;
        for _ in 0..MAX_HOPS {
            let response = match answered.take() {
                Some(response) => response,
                None => {
                    url = hop.url.clone();
                    self.send(sender, stage, &hop).await?
                }
            };
            if stage == HopStage::Authorization {
                stage = HopStage::LoginPage;
            }
            self.keep_cookies(&url, &response.headers);
            let location = response
                .headers
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|location| url.join(location).ok());
            if let Some(next) = location.filter(|_| response.status.is_redirection()) {
                if is_redirect_uri(&next, redirect_uri) {
                    return Ok(Arrival {
                        response,
                        consents_approved,
                        session_cookie: self.cookie_header(&start_url),
                    });
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
                    body: if repeat { hop.body } else { None },
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
                    url: url.to_string(),
                    status: response.status.as_u16(),
                    body: describe_error_body(&response.body),
                });
            }
            let html = String::from_utf8_lossy(&response.body);
            let filled_with = credentials.unwrap_or(Credentials {
                username: "",
                password: "",
            });
            let action = page::decide(&url, &html, filled_with, hints)?;
            match action {
                PageAction::Login(_) | PageAction::UsernameStep(_) if credentials.is_none() => {
                    return Err(SignInError::SignInRequired {
                        url: url.to_string(),
                    });
                }
                PageAction::Login(_) if credentials_sent => {
                    return Err(SignInError::LoginRefused {
                        url: url.to_string(),
                        page: page::complaint(&html),
                    });
                }
                PageAction::Login(_) => {
                    credentials_sent = true;
                    stage = HopStage::Login;
                }
                PageAction::Consent(_) => {
                    consents_approved += 1;
                    stage = HopStage::Consent;
                }
                PageAction::UsernameStep(_) => stage = HopStage::Login,
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

    /// Goes on from `response`, the answer of the authorization request to `address` sent with a
    /// signed-in session's `cookie`, when it was not the redirect to the client
    /// ([`leads_to_client`]): the session's cookies in a browser of its own, a consent page
    /// approved, and a login page an error (the session has ended).
    pub async fn follow_session(
        sender: &mut impl HopSender,
        address: &Address,
        cookie: &HeaderValue,
        response: HttpResponse,
        redirect_uri: &str,
        hints: &FormHints,
    ) -> Result<Arrival, SignInError> {
        let url = Url::parse(&address.to_string()).map_err(|_| SignInError::NotHttp {
            url: address.to_string(),
        })?;
        Self::with_cookie_header(&url, cookie)
            .follow(
                sender,
                Start::Answered { url, response },
                redirect_uri,
                None,
                hints,
            )
            .await
    }

    /// The `Cookie` header a browser that sent `cookie` to `address` sends there next, after an
    /// answer with `headers`; `None` when the answer changes nothing. The usual answer sets no
    /// cookie, or sets again the ones sent, and is told without a cookie jar: this runs on every
    /// authorization of TEST 3 and of minting ahead.
    pub fn session_cookie_after(
        address: &Address,
        cookie: &HeaderValue,
        headers: &http::HeaderMap,
    ) -> Option<HeaderValue> {
        let sent = cookie.as_bytes();
        let unchanged = headers.get_all(SET_COOKIE).iter().all(|value| {
            let pair = value.as_bytes().split(|&byte| byte == b';').next();
            pair.is_some_and(|pair| {
                sent.split(|&byte| byte == b';')
                    .any(|sent_pair| sent_pair.trim_ascii() == pair.trim_ascii())
            })
        });
        if unchanged {
            return None;
        }
        let url = Url::parse(&address.to_string()).ok()?;
        let mut browser = Self::with_cookie_header(&url, cookie);
        browser.keep_cookies(&url, headers);
        browser
            .cookie_header(&url)
            .filter(|updated| updated != cookie)
    }

    /// Sends `hop` with the cookies that apply to it.
    async fn send(
        &self,
        sender: &mut impl HopSender,
        stage: HopStage,
        hop: &Hop,
    ) -> Result<HttpResponse, SignInError> {
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
        let body = Bytes::from(hop.body.clone().unwrap_or_default());
        sender
            .send_hop(stage, hop.method.clone(), &address, &headers, body)
            .await
            .map_err(|error| SignInError::Transport {
                method: hop.method.clone(),
                url: hop.url.to_string(),
                error,
            })
    }
}

/// Whether `response` is the provider's redirect to the client (or an answer no browser could go
/// on from): anything else is a page or a redirect to one, for [`Browser::follow`]. Runs on every
/// authorization of TEST 3 and of minting ahead, so the usual answer, a redirect to the
/// registered URI as registered, is told without parsing a URL.
pub fn leads_to_client(response: &HttpResponse, redirect_uri: &str) -> bool {
    if !response.status.is_redirection() {
        return !response.status.is_success();
    }
    let Some(location) = response
        .headers
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
    else {
        return true;
    };
    if let Some(rest) = location.strip_prefix(redirect_uri)
        && (rest.is_empty() || rest.starts_with('?') || rest.starts_with('#'))
    {
        return true;
    }
    // The redirect URI is absolute; a relative location is a page of the provider's own.
    Url::parse(location).is_ok_and(|location| is_redirect_uri(&location, redirect_uri))
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

    fn answer(status: u16, location: Option<&str>) -> HttpResponse {
        let mut headers = http::HeaderMap::new();
        if let Some(location) = location {
            headers.insert(LOCATION, HeaderValue::from_str(location).unwrap());
        }
        HttpResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Bytes::new(),
        }
    }

    #[test]
    fn a_session_set_anew_replaces_the_cookie_sent_and_one_set_again_changes_nothing() {
        let address = Address::parse("http://127.0.0.1:9000/oidc/auth?client_id=c").unwrap();
        let sent = HeaderValue::from_static("_session=old; _session.sig=s1");
        let after = |set_cookies: &[&'static str]| {
            let mut headers = http::HeaderMap::new();
            for cookie in set_cookies {
                headers.append(SET_COOKIE, HeaderValue::from_static(cookie));
            }
            Browser::session_cookie_after(&address, &sent, &headers)
        };
        assert_eq!(after(&[]), None);
        assert_eq!(after(&["_session=old; path=/; httponly"]), None);
        // node-oidc-provider's new identifier after an interaction; an interaction cookie of
        // another path is not sent to the authorization endpoint.
        let renewed = after(&[
            "_session=new; path=/; httponly",
            "_session.sig=s2; path=/",
            "_interaction=i; path=/oidc/interaction/i",
        ]);
        assert_eq!(
            renewed,
            Some(HeaderValue::from_static("_session=new; _session.sig=s2"))
        );
    }

    #[test]
    fn only_a_page_or_a_redirect_elsewhere_is_followed_as_a_browser() {
        let client = "http://127.0.0.1:3000/callback";
        // The redirect with the code, and answers no browser could go on from, are the caller's.
        assert!(leads_to_client(
            &answer(302, Some("http://127.0.0.1:3000/callback?code=c")),
            client
        ));
        assert!(leads_to_client(&answer(400, None), client));
        assert!(leads_to_client(&answer(302, None), client));
        // A consent page, or a redirect to one (node-oidc-provider's /interaction/ID), is not.
        assert!(!leads_to_client(&answer(200, None), client));
        assert!(!leads_to_client(
            &answer(303, Some("http://127.0.0.1:9000/interaction/abc")),
            client
        ));
        assert!(!leads_to_client(
            &answer(303, Some("/oidc/interaction/abc")),
            client
        ));
        // Told by prefix only when the URI ends where the registered one does.
        assert!(!leads_to_client(
            &answer(302, Some("http://127.0.0.1:3000/callback-other?code=c")),
            client
        ));
        assert!(leads_to_client(
            &answer(302, Some("http://127.0.0.1:3000/callback#code=c")),
            client
        ));
    }

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
