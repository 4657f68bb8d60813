//! The closed sets of names a result uses: endpoints, transport errors, checks, the rules access
//! tokens were checked under, and how a request ended. Names come from the variants (strum), so no name is spelled twice, in this crate or in
//! the ones that read results.

/// The endpoints a scenario calls; each has its own histograms in the result. Names (`as_str`,
/// `from_name`) and the list of all (`iter`) come from the variants themselves (strum).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::EnumIter,
    strum::EnumCount,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
pub enum Endpoint {
    /// `GET /authorize`.
    Authorize,
    /// `POST /token`.
    Token,
    /// `GET /userinfo`.
    Userinfo,
    /// `GET /.well-known/openid-configuration`.
    Discovery,
    /// The requests from a consent page shown where `/authorize` should have redirected with a
    /// code, to that redirect: the approval and the redirects after it (TEST 3). Inside the
    /// iteration's gated latency, as a user waits for them.
    Consent,
    /// The `login` scenario's way from `/authorize` to the provider's login page, and the page:
    /// every redirect and page before the credentials are sent.
    LoginPage,
    /// The `login` scenario's login form sent with the user's credentials (or its user-name
    /// step), and the redirects and pages it leads to until a consent page or the client.
    Login,
    /// `POST` to the introspection endpoint (RFC 7662), checking an opaque access token. It is
    /// counted apart: the gate's latency covers the scenario's own requests.
    Introspection,
    /// The requests of the `api` scenario to the API under test, with the VU's access token.
    Api,
    /// `POST` to the pushed authorization request endpoint (RFC 9126, `--par`): the sign-in's
    /// first request, inside its gated latency, before `/authorize`.
    Par,
    /// `POST /token` (or the application's own refresh URL) renewing an `api` VU's access token
    /// before it expires or after a 401: off the measured path, counted apart as introspection
    /// is, since the API's users do not wait for it.
    TokenRefresh,
}

/// Name lookups shared by the closed sets of names that appear in result files.
macro_rules! result_names {
    ($name:ident) => {
        impl $name {
            /// Every variant, in report order.
            pub fn all() -> impl Iterator<Item = $name> {
                <$name as strum::IntoEnumIterator>::iter()
            }

            /// Name used in results and reports.
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// The variant with this result name.
            pub fn from_name(name: &str) -> Option<$name> {
                name.parse().ok()
            }
        }
    };
}

result_names!(Endpoint);
result_names!(TransportErrorKind);
result_names!(Check);
result_names!(AccessTokenBasis);

impl Endpoint {
    pub(crate) fn slot(self) -> usize {
        self as usize
    }

    /// Whether the scenario calls it for itself (not to check an answer): only those count in
    /// the overall latency the gate judges.
    pub fn is_measured_by_the_gate(self) -> bool {
        !matches!(self, Endpoint::Introspection | Endpoint::TokenRefresh)
    }
}

/// Kinds of transport failure, counted apart from HTTP status codes.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumIter,
    strum::EnumCount,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
pub enum TransportErrorKind {
    /// The TCP connection could not be opened.
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// The connection was closed or reset before the response was complete.
    Reset,
    /// The peer sent something that is not valid HTTP.
    Protocol,
    /// The response body was larger than loadgen reads (1 MiB by default), declared or sent.
    BodyTooLarge,
    /// The TLS handshake failed (a certificate refused, no common protocol) or TLS could not be
    /// set up: no request was sent.
    Tls,
}

impl TransportErrorKind {
    /// Whether the request may have reached the provider and been acted on: every kind but a
    /// connection that never opened. A request that may have arrived leaves what it asked for
    /// (a rotation) in doubt.
    pub fn request_may_have_arrived(self) -> bool {
        match self {
            TransportErrorKind::Connect | TransportErrorKind::Tls => false,
            TransportErrorKind::Timeout
            | TransportErrorKind::Reset
            | TransportErrorKind::Protocol
            | TransportErrorKind::BodyTooLarge => true,
        }
    }
}

/// Every check a scenario makes on an answer that claimed success; each is tallied pass/fail.
/// An answer with an unexpected status is a failed request, not a failed check.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumIter,
    strum::EnumCount,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
pub enum Check {
    /// The body is JSON and holds the fields the response must have.
    RequiredFields,
    /// `token_type` is `Bearer` (case-insensitive, RFC 6749 section 7.1); not judged with DPoP.
    TokenTypeBearer,
    /// With `--dpop`: `token_type` is `DPoP` and the access token is bound to the VU's key: its
    /// `cnf.jkt` (a JWT's claim, or what introspection answers) is the key's thumbprint (RFC 9449
    /// sections 5 and 6).
    DpopBound,
    /// The response carries a refresh token that differs from the one sent.
    RefreshTokenRotated,
    /// The access token's signature verifies against the JWKS, with `iss`, `aud` and `exp`.
    AccessTokenVerifies,
    /// The provider's introspection (RFC 7662) says the opaque access token is active.
    AccessTokenActive,
    /// The ID token's signature verifies against the JWKS, with `iss`, `aud` = client and `exp`.
    IdTokenVerifies,
    /// The ID token's `nonce` is the one sent in the authorization request.
    IdTokenNonce,
    /// The ID token's `at_hash`, when it carries one, is the left half of the hash (the one its
    /// `alg` names) of the access token issued with it (OpenID Connect Core 3.1.3.6).
    IdTokenAtHash,
    /// The ID token's `azp`, when present, is our client; it is present when `aud` names several
    /// audiences (OpenID Connect Core 3.1.3.7).
    IdTokenAzp,
    /// The ID token's `iat` is present, a number, and not in the future beyond 60 s of skew.
    IdTokenIat,
    /// The ID token's `auth_time`, when present, is a number not in the future beyond the skew.
    IdTokenAuthTime,
    /// The `sub` of the ID token and of a JWT access token is the subject the seeds recorded for
    /// the user who signed in (counted when the seeds record one and a token names a subject).
    TokenSubject,
    /// `/authorize` redirected to the redirect URI with a `code`.
    AuthorizationCodeIssued,
    /// `state` came back unchanged on the redirect.
    StateUnchanged,
    /// The redirect's `iss` is exactly the issuer, and present when discovery sets
    /// `authorization_response_iss_parameter_supported` (RFC 9207). Counted on every redirect to
    /// the client, passed or failed.
    AuthorizationIssuer,
    /// `/userinfo` answered for the same subject as the ID token.
    UserinfoSubject,
    /// A discovery document names exactly the issuer the run targeted (OpenID Connect Discovery
    /// 4.3): judged on every document of the `discovery` scenario; the document fetched before a
    /// run is held to it too, and a run whose target is not the issuer is refused.
    DiscoveryIssuer,
    /// Replaying a rotated-away refresh token is refused with `invalid_grant`.
    ReplayRejected,
    /// After a replay, the family's newest refresh token is refused too.
    FamilyRevoked,
    /// A client-credentials access token names the client that asked for it: its `client_id`
    /// (RFC 9068) or `azp` claim, or the `client_id` its introspection answer gives.
    AccessTokenClient,
    /// The scope granted is the scope asked for: the token response's `scope` when it gives one
    /// (RFC 6749 section 5.1), and a JWT access token's `scope` claim when it carries one.
    GrantedScope,
}

/// The rules an access token was checked under, counted per run (`access_token_bases` in the
/// result), so a reader sees whether a passed `access_token_verifies` meant RFC 9068 or less.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::EnumIter,
    strum::EnumCount,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
pub enum AccessTokenBasis {
    /// A JWT with `typ: at+jwt`, checked as RFC 9068 says: signature, `iss`, `aud`, `exp`,
    /// `iat`, `sub`.
    Rfc9068,
    /// Any other JWT, with the audience given: signature, `iss`, `aud`, `exp`, `iat`, `sub`.
    Jwt,
    /// Any other JWT, no audience given: signature, `iss`, `exp`, `iat`, `sub`; not `aud`.
    JwtAudienceUnchecked,
    /// An opaque token the provider's introspection (RFC 7662) was asked about.
    Introspection,
    /// An opaque token with no introspection endpoint to ask: checked only where it is used.
    OpaqueUnchecked,
}

/// A set of checks (the ones turned off for a run), looked up without hashing on every check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckSet {
    members: [bool; <Check as strum::EnumCount>::COUNT],
}

impl CheckSet {
    /// Adds `check`.
    pub fn insert(&mut self, check: Check) {
        self.members[check as usize] = true;
    }

    /// Whether `check` is in the set.
    pub fn contains(&self, check: Check) -> bool {
        self.members[check as usize]
    }

    /// The names of the checks in the set.
    pub fn names(&self) -> Vec<String> {
        Check::all()
            .filter(|check| self.contains(*check))
            .map(|check| check.as_str().to_owned())
            .collect()
    }
}

impl FromIterator<Check> for CheckSet {
    fn from_iter<I: IntoIterator<Item = Check>>(checks: I) -> Self {
        let mut set = CheckSet::default();
        for check in checks {
            set.insert(check);
        }
        set
    }
}
/// How one request ended, as the recorder needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// A complete response with this status code.
    Status(u16),
    /// No complete response.
    Transport(TransportErrorKind),
}
