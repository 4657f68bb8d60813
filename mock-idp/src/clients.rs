//! The registered clients and users, and client authentication at the token, introspection and
//! revocation endpoints (RFC 6749 2.3.1: `client_secret_basic` and `client_secret_post`; RFC 7523
//! `private_key_jwt` for a client that registered keys, verified by [`crate::client_assertion`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use crate::client_assertion::JWT_BEARER_ASSERTION;
use crate::error::OAuthError;
use crate::form::Params;
use crate::http_helpers::Incoming;
use crate::state::Idp;

pub const CONFIDENTIAL_CLIENT_ID: &str = "loadtest-client";
pub const CONFIDENTIAL_CLIENT_SECRET: &str = "loadtest-secret";
pub const PUBLIC_CLIENT_ID: &str = "loadtest-public";
pub const REDIRECT_URI: &str = "http://127.0.0.1:3000/callback";
pub const USER_PASSWORD: &str = "loadtest";
const USER_PREFIX: &str = "user-loadtest-";

/// A registered OAuth client.
#[derive(Debug)]
pub struct Client {
    pub id: &'static str,
    /// `None` for a public client, which must use PKCE instead.
    pub secret: Option<&'static str>,
    pub redirect_uris: &'static [&'static str],
    pub grant_types: &'static [&'static str],
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret.is_none()
    }

    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.contains(&grant_type)
    }
}

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";

static CLIENTS: [Client; 2] = [
    Client {
        id: CONFIDENTIAL_CLIENT_ID,
        secret: Some(CONFIDENTIAL_CLIENT_SECRET),
        redirect_uris: &[REDIRECT_URI],
        grant_types: &[
            GRANT_AUTHORIZATION_CODE,
            GRANT_REFRESH_TOKEN,
            GRANT_TOKEN_EXCHANGE,
            GRANT_CLIENT_CREDENTIALS,
        ],
    },
    Client {
        id: PUBLIC_CLIENT_ID,
        secret: None,
        redirect_uris: &[REDIRECT_URI],
        grant_types: &[GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN],
    },
];

/// The registered client with this id.
pub fn find_client(client_id: &str) -> Option<&'static Client> {
    CLIENTS.iter().find(|client| client.id == client_id)
}

/// Authenticates the client of a token, introspection, revocation or pushed authorization
/// request: by its assertion when it sends one (`client_assertion_type` and `client_assertion`),
/// by the TLS certificate it presented when it sends no secret and registered one (RFC 8705
/// `self_signed_tls_client_auth`), otherwise as [`authenticate`] does. An assertion is counted
/// in the metrics by outcome.
pub fn authenticate_client(
    idp: &Idp,
    request: &Incoming,
    params: &Params,
) -> Result<&'static Client, OAuthError> {
    let authorization = request.header(http::header::AUTHORIZATION);
    let (Some(assertion_type), assertion) = (
        params.get("client_assertion_type"),
        params.get("client_assertion"),
    ) else {
        if authorization.is_none()
            && params.get("client_secret").is_none()
            && let Some(client) = by_certificate(idp, request, params)?
        {
            return Ok(client);
        }
        return authenticate(authorization, params);
    };
    if assertion_type != JWT_BEARER_ASSERTION {
        return Err(OAuthError::InvalidClient(format!(
            "client_assertion_type {assertion_type:?} is not supported; use {JWT_BEARER_ASSERTION}"
        )));
    }
    if authorization.is_some() || params.get("client_secret").is_some() {
        return Err(OAuthError::InvalidRequest(
            "use one client authentication method, not an assertion and a secret".into(),
        ));
    }
    let assertion = assertion.ok_or_else(|| {
        OAuthError::InvalidClient("client_assertion_type was sent without client_assertion".into())
    })?;
    let Some(assertions) = &idp.client_assertions else {
        return Err(OAuthError::InvalidClient(
            "no client here authenticates with private_key_jwt (start mock-idp with \
             --client-jwks to register the client's keys)"
                .into(),
        ));
    };
    let (outcome, verified) = assertions.verify(assertion, crate::store::now_ms() / 1000);
    idp.metrics.record_client_assertion(outcome);
    let client_id = verified?;
    if params
        .get("client_id")
        .is_some_and(|body_id| body_id != client_id)
    {
        return Err(OAuthError::InvalidClient(
            "client_id differs from the client the assertion authenticates".into(),
        ));
    }
    find_client(client_id).ok_or_else(|| OAuthError::InvalidClient("unknown client".into()))
}

/// The client that registered the certificate presented in the TLS handshake, when the request
/// names that client; an error when it names it with another certificate; `None` when either
/// is missing (the request is then authenticated otherwise).
fn by_certificate(
    idp: &Idp,
    request: &Incoming,
    params: &Params,
) -> Result<Option<&'static Client>, OAuthError> {
    let (Some(registered), Some(presented)) = (
        idp.config.client_certificate.as_ref(),
        request.client_certificate.as_ref(),
    ) else {
        return Ok(None);
    };
    if params.get("client_id") != Some(CONFIDENTIAL_CLIENT_ID) {
        return Ok(None);
    }
    if registered != presented {
        return Err(OAuthError::InvalidClient(
            "the TLS client certificate is not the one registered for the client".into(),
        ));
    }
    Ok(find_client(CONFIDENTIAL_CLIENT_ID))
}

/// Authenticates the client of a token, introspection or revocation request by its secret.
///
/// A client uses one method only (RFC 6749 2.3). A public client identifies itself with
/// `client_id` in the body and no secret. Every failure is `invalid_client`, and secrets are
/// compared in constant time.
pub fn authenticate(
    authorization: Option<&[u8]>,
    params: &Params,
) -> Result<&'static Client, OAuthError> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let (client_id, secret) = match authorization {
        Some(header) => {
            if body_secret.is_some() {
                return Err(OAuthError::InvalidRequest(
                    "use one client authentication method, not both".into(),
                ));
            }
            let (id, secret) = parse_basic(header)?;
            if body_id.is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::InvalidClient(
                    "client_id differs from the authenticated client".into(),
                ));
            }
            (id, Some(secret))
        }
        None => {
            let id = body_id.ok_or_else(|| {
                OAuthError::InvalidClient("no client authentication was sent".into())
            })?;
            (id.to_owned(), body_secret.map(str::to_owned))
        }
    };
    let client = find_client(&client_id)
        .ok_or_else(|| OAuthError::InvalidClient("unknown client".into()))?;
    match (client.secret, secret) {
        (Some(expected), Some(given))
            if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) =>
        {
            Ok(client)
        }
        (Some(_), _) => Err(OAuthError::InvalidClient(
            "client authentication failed".into(),
        )),
        (None, None) => Ok(client),
        (None, Some(_)) => Err(OAuthError::InvalidClient(
            "a public client has no secret".into(),
        )),
    }
}

/// Decodes `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
///
/// RFC 6749 2.3.1 encodes each part with `application/x-www-form-urlencoded` before joining
/// them with a colon, so each part is decoded on its own (`+` is a space, `%XX` a byte) and
/// nothing in it (`&`, `=`) has any other meaning.
fn parse_basic(header: &[u8]) -> Result<(String, String), OAuthError> {
    let malformed = || OAuthError::InvalidClient("malformed Basic authorization header".into());
    let header = std::str::from_utf8(header).map_err(|_| malformed())?;
    let (scheme, encoded) = header.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |part: &str| -> Result<String, OAuthError> {
        let plus_as_space = part.replace('+', " ");
        percent_encoding::percent_decode_str(&plus_as_space)
            .decode_utf8()
            .map(|decoded| decoded.into_owned())
            .map_err(|_| malformed())
    };
    Ok((unescape(id)?, unescape(secret)?))
}

/// The `Authorization` value a client sends for `client_secret_basic`.
pub fn basic_authorization(client_id: &str, secret: &str) -> String {
    let escape = |part: &str| form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", escape(client_id), escape(secret)))
    )
}

/// The subject of test user number `number` (1-based): `user-loadtest-00001`.
pub fn user_subject(number: u32) -> String {
    format!("{USER_PREFIX}{number:05}")
}

/// The number of a test user, when `subject` names one of the first `n_users`.
pub fn user_number(subject: &str, n_users: u32) -> Option<u32> {
    let digits = subject.strip_prefix(USER_PREFIX)?;
    if digits.len() < 5 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    let number: u32 = digits.parse().ok()?;
    (1..=n_users).contains(&number).then_some(number)
}

/// Checks a login: a known user and the shared password, compared in constant time.
pub fn check_password(username: &str, password: &str, n_users: u32) -> bool {
    let known = user_number(username, n_users).is_some();
    let password_ok = bool::from(password.as_bytes().ct_eq(USER_PASSWORD.as_bytes()));
    known & password_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(body: &str) -> Params {
        Params::parse(body.as_bytes()).unwrap()
    }

    #[test]
    fn basic_and_post_authenticate() {
        let header = basic_authorization(CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET);
        let client = authenticate(Some(header.as_bytes()), &params("")).unwrap();
        assert_eq!(client.id, CONFIDENTIAL_CLIENT_ID);
        let client = authenticate(
            None,
            &params("client_id=loadtest-client&client_secret=loadtest-secret"),
        )
        .unwrap();
        assert_eq!(client.id, CONFIDENTIAL_CLIENT_ID);
        let client = authenticate(None, &params("client_id=loadtest-public")).unwrap();
        assert!(client.is_public());
    }

    #[test]
    fn failures_are_invalid_client() {
        let wrong = basic_authorization(CONFIDENTIAL_CLIENT_ID, "nope");
        for (header, body) in [
            (Some(wrong.as_str()), ""),
            (Some("Basic !!!"), ""),
            (Some("Bearer abc"), ""),
            (Some("Basic"), ""),
            (None, "client_id=loadtest-client"),
            (None, "client_id=someone-else&client_secret=x"),
            (None, ""),
            (None, "client_id=loadtest-public&client_secret=x"),
        ] {
            let error = authenticate(header.map(str::as_bytes), &params(body)).unwrap_err();
            assert_eq!(error.code(), "invalid_client", "{header:?} {body:?}");
        }
        let header = basic_authorization(CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET);
        let error = authenticate(
            Some(header.as_bytes()),
            &params("client_secret=loadtest-secret"),
        )
        .unwrap_err();
        assert_eq!(error.code(), "invalid_request");
    }

    #[test]
    fn basic_parts_are_decoded_each_on_its_own_and_compared_exactly() {
        let raw_basic =
            |id: &str, secret: &str| format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        // Query-string syntax inside a part is data, not structure.
        for header in [
            raw_basic(CONFIDENTIAL_CLIENT_ID, "loadtest-secret&x"),
            raw_basic("&v=loadtest-client", CONFIDENTIAL_CLIENT_SECRET),
            raw_basic("x&v=loadtest-client", CONFIDENTIAL_CLIENT_SECRET),
            raw_basic(CONFIDENTIAL_CLIENT_ID, "loadtest-secret%00"),
            raw_basic(CONFIDENTIAL_CLIENT_ID, "loadtest+secret"),
            raw_basic(CONFIDENTIAL_CLIENT_ID, "%ff%fe"),
        ] {
            let error = authenticate(Some(header.as_bytes()), &params("")).unwrap_err();
            assert_eq!(error.code(), "invalid_client", "{header}");
        }
        // Percent-encoded characters decode to the registered values.
        let header = raw_basic("loadtest%2Dclient", "loadtest%2dsecret");
        let client = authenticate(Some(header.as_bytes()), &params("")).unwrap();
        assert_eq!(client.id, CONFIDENTIAL_CLIENT_ID);
    }

    #[test]
    fn users_are_numbered_from_one() {
        assert_eq!(user_subject(1), "user-loadtest-00001");
        assert_eq!(user_number("user-loadtest-00001", 10), Some(1));
        assert_eq!(user_number("user-loadtest-00011", 10), None);
        assert_eq!(user_number("user-loadtest-00000", 10), None);
        assert_eq!(user_number("user-loadtest-1", 10), None);
        assert!(check_password("user-loadtest-00002", "loadtest", 10));
        assert!(!check_password("user-loadtest-00002", "loadtesT", 10));
    }
}
