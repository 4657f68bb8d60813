//! Fuzz target: loadgen reading what a provider answers, the untrusted bytes of a run: token,
//! error, introspection and userinfo bodies, discovery documents and the paths taken from them,
//! JWKS and the tokens verified against them, authorization redirects, login and consent pages,
//! and `Set-Cookie` headers in the browser's jar. The property is that none of it panics.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use loadgen::http::target::Target;
use loadgen::protocol::authorization::{
    AuthorizationFailure, AuthorizationRequest, IssuerExpectation, read_authorization_redirect,
};
use loadgen::protocol::browser::page::{self, Credentials, FormHints};
use loadgen::protocol::browser::{Browser, is_redirect_uri};
use loadgen::protocol::client_credentials::ClientCredentials;
use loadgen::protocol::discovery::Discovery;
use loadgen::protocol::discovery::DiscoveryIssuer;
use loadgen::protocol::token_request::{ErrorResponse, TokenResponse, describe_error_body};
use loadgen::protocol::token_verifier::{TokenVerifier, looks_like_jws};
use mock_idp::jwt::{AccessClaims, IdClaims, Minter};
use mock_idp::keys::SigningKey;
use mock_idp::{RefreshTokenFormat, SigningAlg};
use url::Url;

const ISSUER: &str = "http://127.0.0.1:8080";
const REDIRECT_URI: &str = "http://127.0.0.1:3000/callback";

fuzz_target!(|answer: Answer<'_>| run(answer));

#[derive(Debug, Arbitrary)]
enum Answer<'a> {
    /// The body of a token endpoint's answer, success or error.
    Token(&'a [u8]),
    /// An introspection or userinfo body, read as JSON values.
    Json(&'a [u8]),
    Discovery(&'a [u8]),
    Jwks {
        jwks: Jwks<'a>,
        token: Token<'a>,
    },
    Authorization {
        status: u16,
        location: Option<&'a [u8]>,
        content_type: Option<&'a [u8]>,
        body: &'a [u8],
        state: &'a str,
        issuer: Option<&'a str>,
        /// Whether discovery promised `iss` on every authorization response (RFC 9207).
        issuer_required: bool,
    },
    Page {
        path: &'a str,
        html: &'a str,
        hints: Hints<'a>,
    },
    Cookies {
        path: &'a str,
        set_cookies: Vec<&'a [u8]>,
        location: &'a str,
    },
}

#[derive(Debug, Arbitrary)]
enum Jwks<'a> {
    /// mock-idp's own JWKS for one algorithm.
    Real(Alg),
    Keys(Vec<Jwk<'a>>),
    Raw(&'a [u8]),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

/// A JWK of arbitrary members, so that the fuzzer spends its time in key parsing, not in JSON.
#[derive(Debug, Arbitrary)]
struct Jwk<'a> {
    kty: &'a str,
    alg: Option<&'a str>,
    kid: Option<&'a str>,
    crv: Option<&'a str>,
    n: Option<&'a [u8]>,
    e: Option<&'a [u8]>,
    x: Option<&'a [u8]>,
    y: Option<&'a [u8]>,
    k: Option<&'a [u8]>,
}

#[derive(Debug, Arbitrary)]
enum Token<'a> {
    Raw(&'a str),
    /// A JWS of arbitrary header and claims and signature.
    Parts {
        header: &'a str,
        claims: &'a str,
        signature: &'a [u8],
    },
    /// A token mock-idp signed, with claims that may not pass, maybe tampered with.
    Signed {
        alg: Alg,
        id_token: bool,
        claims: Claims<'a>,
        tamper: Option<(u16, u8)>,
    },
}

#[derive(Debug, Arbitrary)]
struct Claims<'a> {
    iss: Option<&'a str>,
    aud: Option<&'a str>,
    sub: &'a str,
    exp: u64,
    nonce: Option<&'a str>,
}

#[derive(Debug, Arbitrary)]
struct Hints<'a> {
    username_field: Option<&'a str>,
    password_field: Option<&'a str>,
    approve_button: Option<&'a str>,
}

fn key(alg: Alg) -> &'static SigningKey {
    static KEYS: OnceLock<[SigningKey; 3]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa]
            .map(|alg| SigningKey::generate(alg).expect("a signing key"))
    });
    &keys[alg as usize]
}

fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Jwks<'_> {
    fn document(&self) -> Vec<u8> {
        match self {
            Jwks::Real(alg) => key(*alg).jwks_json().as_bytes().to_vec(),
            Jwks::Raw(bytes) => bytes.to_vec(),
            Jwks::Keys(keys) => {
                let keys: Vec<serde_json::Value> = keys
                    .iter()
                    .map(|jwk| {
                        let mut object = serde_json::Map::new();
                        object.insert("kty".into(), jwk.kty.into());
                        let mut text = |name: &str, value: Option<&str>| {
                            if let Some(value) = value {
                                object.insert(name.into(), value.into());
                            }
                        };
                        text("alg", jwk.alg);
                        text("kid", jwk.kid);
                        text("crv", jwk.crv);
                        for (name, bytes) in [
                            ("n", jwk.n),
                            ("e", jwk.e),
                            ("x", jwk.x),
                            ("y", jwk.y),
                            ("k", jwk.k),
                        ] {
                            if let Some(bytes) = bytes {
                                object.insert(name.into(), base64url(bytes).into());
                            }
                        }
                        serde_json::Value::Object(object)
                    })
                    .collect();
                serde_json::json!({ "keys": keys }).to_string().into_bytes()
            }
        }
    }
}

impl Token<'_> {
    fn text(&self) -> Option<String> {
        match self {
            Token::Raw(text) => Some((*text).to_owned()),
            Token::Parts {
                header,
                claims,
                signature,
            } => Some(format!(
                "{}.{}.{}",
                base64url(header.as_bytes()),
                base64url(claims.as_bytes()),
                base64url(signature)
            )),
            Token::Signed {
                alg,
                id_token,
                claims,
                tamper,
            } => {
                let minter = Minter::new(
                    key(*alg).clone(),
                    claims.iss.unwrap_or(ISSUER).to_owned(),
                    claims.aud.unwrap_or(ISSUER).to_owned(),
                    RefreshTokenFormat::Opaque,
                );
                let signed = if *id_token {
                    minter.sign_id(&IdClaims {
                        iss: minter.issuer().to_owned(),
                        sub: claims.sub.to_owned(),
                        aud: claims.aud.unwrap_or("loadtest-client").to_owned(),
                        azp: "loadtest-client".to_owned(),
                        exp: claims.exp,
                        iat: 0,
                        auth_time: 0,
                        nonce: claims.nonce.map(str::to_owned),
                        at_hash: String::new(),
                    })
                } else {
                    minter.sign_access(&AccessClaims {
                        iss: minter.issuer().to_owned(),
                        sub: claims.sub.to_owned(),
                        aud: minter.audience().to_owned(),
                        client_id: "loadtest-client".to_owned(),
                        scope: "openid".to_owned(),
                        iat: 0,
                        exp: claims.exp,
                        jti: "j".to_owned(),
                        auth_time: None,
                        act: None,
                        cnf: None,
                    })
                };
                let mut token = signed.ok()?.into_bytes();
                if let Some((position, byte)) = tamper {
                    let position = usize::from(*position) % token.len().max(1);
                    if let Some(slot) = token.get_mut(position) {
                        *slot = *byte;
                    }
                }
                String::from_utf8(token).ok()
            }
        }
    }
}

fn header_map(pairs: &[(http::HeaderName, Option<&[u8]>)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        if let Some(value) = value.and_then(|value| HeaderValue::from_bytes(value).ok()) {
            headers.append(name.clone(), value);
        }
    }
    headers
}

fn run(answer: Answer<'_>) {
    match answer {
        Answer::Token(body) => {
            let tokens: TokenResponse = serde_json::from_slice(body).unwrap_or_default();
            if let Some(token) = tokens.access_token.as_deref() {
                looks_like_jws(token);
            }
            let _ = serde_json::from_slice::<ErrorResponse>(body);
            describe_error_body(body);
        }
        Answer::Json(body) => {
            let value = serde_json::from_slice::<serde_json::Value>(body).ok();
            let _ = value
                .as_ref()
                .and_then(|body| body.get("active"))
                .and_then(serde_json::Value::as_bool);
            let _ = value
                .as_ref()
                .and_then(|body| body.get("sub"))
                .and_then(serde_json::Value::as_str);
        }
        Answer::Discovery(body) => {
            let _ = serde_json::from_slice::<DiscoveryIssuer<'_>>(body);
            let Ok(discovery) = serde_json::from_slice::<Discovery>(body) else {
                return;
            };
            let Ok(target) = Target::parse(ISSUER) else {
                return;
            };
            let client = ClientCredentials::default();
            // Every endpoint a document names resolves to an address or is refused in words.
            if let Ok(endpoints) = discovery.endpoints(&target) {
                let _ = AuthorizationRequest::fresh().address(&endpoints.authorize, &client);
            }
            for url in [
                &discovery.authorization_endpoint,
                &discovery.token_endpoint,
                &discovery.jwks_uri,
            ]
            .into_iter()
            .chain(discovery.userinfo_endpoint.as_ref())
            .chain(discovery.introspection_endpoint.as_ref())
            {
                let _ = target.address_of(url);
            }
        }
        Answer::Jwks { jwks, token } => {
            let Ok(verifier) =
                TokenVerifier::from_jwks(&jwks.document(), ISSUER, Some(ISSUER), "loadtest-client")
            else {
                return;
            };
            let Some(token) = token.text() else {
                return;
            };
            looks_like_jws(&token);
            let _ = verifier
                .verify_access_token(&token)
                .map_err(|error| error.to_string());
            let _ = verifier
                .verify_id_token(&token)
                .map_err(|error| error.to_string());
        }
        Answer::Authorization {
            status,
            location,
            content_type,
            body,
            state,
            issuer,
            issuer_required,
        } => {
            let Ok(status) = StatusCode::from_u16(status) else {
                return;
            };
            let headers = header_map(&[(LOCATION, location), (CONTENT_TYPE, content_type)]);
            let request = AuthorizationRequest {
                state: state.to_owned(),
                ..AuthorizationRequest::fresh()
            };
            let read = request.code_from(
                status,
                &headers,
                body,
                REDIRECT_URI,
                IssuerExpectation {
                    issuer: issuer.unwrap_or(ISSUER),
                    required: issuer_required,
                },
            );
            if let Err(failure) = read {
                let _ = failure.to_string();
            }
            if let Some(location) = headers.get(LOCATION).and_then(|value| value.to_str().ok()) {
                read_authorization_redirect(location, REDIRECT_URI);
            }
            let _ = AuthorizationFailure::not_a_redirect(status, &headers, body).to_string();
        }
        Answer::Page { path, html, hints } => {
            let Ok(page_url) = Url::parse(ISSUER).and_then(|base| base.join(path)) else {
                return;
            };
            let hints = FormHints {
                username_field: hints.username_field.map(str::to_owned),
                password_field: hints.password_field.map(str::to_owned),
                approve_button: hints.approve_button.map(str::to_owned),
            };
            let credentials = Credentials {
                username: "user-loadtest-00001",
                password: "loadtest",
            };
            match page::decide(&page_url, html, credentials, &hints) {
                Ok(action) => {
                    let form = action.form();
                    let mut url = form.action.clone();
                    url.set_query(Some(&form.encoded()));
                }
                Err(nothing) => {
                    let _ = nothing.to_string();
                }
            }
            page::complaint(html);
        }
        Answer::Cookies {
            path,
            set_cookies,
            location,
        } => {
            let Ok(url) = Url::parse(ISSUER).and_then(|base| base.join(path)) else {
                return;
            };
            let headers = header_map(
                &set_cookies
                    .iter()
                    .map(|value| (SET_COOKIE, Some(*value)))
                    .collect::<Vec<_>>(),
            );
            let mut browser = Browser::new();
            browser.keep_cookies(&url, &headers);
            browser.cookie_header(&url);
            if let Ok(next) = url.join(location) {
                is_redirect_uri(&next, REDIRECT_URI);
                browser.cookie_header(&next);
            }
        }
    }
}
