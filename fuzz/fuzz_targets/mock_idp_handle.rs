//! Fuzz target: mock-idp's `App::handle` on a short sequence of arbitrary requests (method, path,
//! query, headers, body) against a fresh provider of an arbitrary configuration, checking
//! ARCHITECTURE.md's invariant: no request makes it panic or answer 5xx, but an injected fault.
//!
//! Values may be the provider's own (its clients, users, PKCE pair, grant types) or what an
//! earlier answer of the same sequence gave (session cookie, code, tokens), and a step may be a
//! whole sign-in (mock-idp's `in_process` flow, through `App::handle` too), so the fuzzer reaches
//! the token grants and resource endpoints and not only the parsers in front of them: a million
//! runs of arbitrary requests alone never got a login through.

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request};
use http_body_util::{BodyExt as _, Full};
use libfuzzer_sys::fuzz_target;
use mock_idp::clients::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, PUBLIC_CLIENT_ID, REDIRECT_URI,
    USER_PASSWORD, basic_authorization,
};
use mock_idp::in_process::{self, CODE_VERIFIER};
use mock_idp::keys::SigningKey;
use mock_idp::{
    AccessTokenFormat, App, Config, Fault, FaultKind, RefreshTokenFormat, SESSION_COOKIE,
    SigningAlg,
};

/// More steps per input rarely find more: the state worth reaching takes three or four.
const MAX_STEPS: usize = 6;
/// Batches are capped so that one input cannot spend seconds signing; the endpoint's own cap
/// (1000) is still reached by raw JSON bodies.
const MAX_BATCH: usize = 8;

fuzz_target!(|input: Input| run(input));

#[derive(Debug, Arbitrary)]
struct Input {
    setup: Setup,
    steps: Vec<Step>,
}

#[derive(Debug, Arbitrary)]
enum Step {
    Request(Box<FuzzRequest>),
    /// Logs the first user in: the session cookie.
    Login,
    /// Logs in and runs `/authorize` (PKCE with `KnownValue::Verifier`): a pending code.
    Code,
    /// The whole sign-in: access, refresh and ID tokens.
    SignIn,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

/// The configuration: the knobs that change what the endpoints do. Delay faults are left out:
/// they only sleep.
#[derive(Debug, Arbitrary)]
struct Setup {
    alg: Alg,
    opaque_access_tokens: bool,
    jwt_refresh_tokens: bool,
    rotate_refresh_tokens: bool,
    refresh_grace: bool,
    test_endpoints: bool,
    zero_lifetimes: bool,
    tiny_body_limit: bool,
    few_users: bool,
    audience: Option<String>,
    fault: Option<InjectedFault>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum InjectedFault {
    Unauthorized(u8),
    ServerError(u8),
}

#[derive(Debug, Arbitrary)]
struct FuzzRequest {
    method: MethodChoice,
    path: PathChoice,
    query: Option<Params>,
    headers: Vec<HeaderChoice>,
    body: BodyChoice,
}

#[derive(Debug, Arbitrary)]
enum MethodChoice {
    Get,
    Post,
    Head,
    Put,
    Delete,
    Options,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum PathChoice {
    Discovery,
    Jwks,
    Login,
    Authorize,
    Token,
    Userinfo,
    Introspect,
    Revoke,
    Metrics,
    MintToken,
    MintTokensBatch,
    DebugToken,
    OtherTest(String),
    Raw(String),
}

#[derive(Debug, Arbitrary)]
enum Params {
    Prepared(Prepared),
    Pairs(Vec<(Name, Value)>),
    Raw(String),
}

/// A well-formed form of the provider's own, less one pair maybe, one value with arbitrary text
/// after it maybe, plus arbitrary pairs (which may repeat one): the fuzzer starts from requests
/// that pass, one change away from those that fail.
#[derive(Debug, Arbitrary)]
struct Prepared {
    form: Form,
    dropped: Option<u8>,
    extended: Option<(u8, String)>,
    extra: Vec<(Name, Value)>,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Form {
    Authorize,
    Login,
    CodeGrant,
    RefreshGrant,
    TokenExchange,
    ClientCredentials,
    Introspect(Earlier),
    Revoke(Earlier),
}

#[derive(Debug, Arbitrary)]
enum Name {
    Known(KnownName),
    Raw(String),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum KnownName {
    GrantType,
    Code,
    RedirectUri,
    CodeVerifier,
    CodeChallenge,
    CodeChallengeMethod,
    ClientId,
    ClientSecret,
    ResponseType,
    Scope,
    State,
    Nonce,
    Prompt,
    ReturnTo,
    Username,
    Password,
    RefreshToken,
    Token,
    TokenTypeHint,
    SubjectToken,
    SubjectTokenType,
    ActorToken,
    ActorTokenType,
    RequestedTokenType,
    Audience,
}

#[derive(Debug, Arbitrary)]
enum Value {
    Known(KnownValue),
    Earlier(Earlier),
    /// A value of the provider's own with arbitrary text after it: a valid prefix, a bad tail.
    Extended(KnownValue, String),
    Raw(String),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum KnownValue {
    ConfidentialClient,
    PublicClient,
    Secret,
    RedirectUri,
    /// The `return_to` of the login form: the pending authorization request.
    AuthorizeReturn,
    FirstUser,
    LastUser,
    Password,
    GrantAuthorizationCode,
    GrantRefreshToken,
    GrantTokenExchange,
    GrantClientCredentials,
    ResponseTypeCode,
    ScopeOpenid,
    ScopeOffline,
    Verifier,
    Challenge,
    S256,
    Plain,
    AccessTokenType,
    RefreshTokenType,
    IdTokenType,
    HintAccessToken,
    HintRefreshToken,
    PromptNone,
    PromptLogin,
    Empty,
}

/// What an earlier answer of the same sequence gave.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Earlier {
    Session,
    Code,
    AccessToken,
    RefreshToken,
    IdToken,
}

#[derive(Debug, Arbitrary)]
enum HeaderChoice {
    /// The confidential client's `client_secret_basic` credentials.
    ConfidentialClient,
    Basic {
        client: Value,
        secret: Value,
    },
    Bearer(Value),
    SessionCookie(Value),
    Cookie(String),
    FormContentType,
    JsonContentType,
    ContentType(String),
    ContentLength(u64),
    Raw {
        name: String,
        value: Vec<u8>,
    },
}

#[derive(Debug, Arbitrary)]
enum BodyChoice {
    Empty,
    Prepared(Prepared),
    Form(Vec<(Name, Value)>),
    MintToken {
        user: UserChoice,
        scope: Option<Value>,
    },
    MintTokensBatch(Vec<UserChoice>),
    DebugToken(Value),
    Raw(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
enum UserChoice {
    Number(i64),
    Subject(Value),
}

/// What the sequence has been given so far.
#[derive(Debug, Default)]
struct Memory {
    session: Option<String>,
    code: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread Tokio runtime")
    })
}

/// One key per algorithm for the whole process: making an RSA key takes far longer than a run.
fn key(alg: Alg) -> SigningKey {
    static KEYS: OnceLock<[SigningKey; 3]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa]
            .map(|alg| SigningKey::generate(alg).expect("a signing key"))
    });
    keys[alg as usize].clone()
}

impl Setup {
    fn config(&self) -> Config {
        let mut config = Config::ephemeral();
        config.signing_alg = key(self.alg).alg();
        if self.opaque_access_tokens {
            config.access_token_format = AccessTokenFormat::Opaque;
        }
        if self.jwt_refresh_tokens {
            config.refresh_token_format = RefreshTokenFormat::Jwt;
        }
        config.rotate_refresh_tokens = self.rotate_refresh_tokens;
        if self.refresh_grace {
            config.refresh_grace = Duration::from_secs(10);
        }
        config.enable_test_endpoints = self.test_endpoints;
        if self.zero_lifetimes {
            config.access_token_ttl = Duration::ZERO;
            config.id_token_ttl = Duration::ZERO;
            config.refresh_token_ttl = Duration::ZERO;
            config.code_ttl = Duration::ZERO;
            config.session_ttl = Duration::ZERO;
        }
        if self.tiny_body_limit {
            config.max_body_bytes = 64;
        }
        if self.few_users {
            config.users = 3;
        }
        config.audience = self.audience.clone();
        config.faults = self
            .fault
            .map(|fault| match fault {
                InjectedFault::Unauthorized(share) => Fault {
                    kind: FaultKind::Unauthorized,
                    fraction: f64::from(share) / 255.0,
                },
                InjectedFault::ServerError(share) => Fault {
                    kind: FaultKind::ServerError,
                    fraction: f64::from(share) / 255.0,
                },
            })
            .into_iter()
            .collect();
        config
    }

    fn injects_server_errors(&self) -> bool {
        matches!(self.fault, Some(InjectedFault::ServerError(share)) if share > 0)
    }
}

impl KnownName {
    fn as_str(self) -> &'static str {
        match self {
            KnownName::GrantType => "grant_type",
            KnownName::Code => "code",
            KnownName::RedirectUri => "redirect_uri",
            KnownName::CodeVerifier => "code_verifier",
            KnownName::CodeChallenge => "code_challenge",
            KnownName::CodeChallengeMethod => "code_challenge_method",
            KnownName::ClientId => "client_id",
            KnownName::ClientSecret => "client_secret",
            KnownName::ResponseType => "response_type",
            KnownName::Scope => "scope",
            KnownName::State => "state",
            KnownName::Nonce => "nonce",
            KnownName::Prompt => "prompt",
            KnownName::ReturnTo => "return_to",
            KnownName::Username => "username",
            KnownName::Password => "password",
            KnownName::RefreshToken => "refresh_token",
            KnownName::Token => "token",
            KnownName::TokenTypeHint => "token_type_hint",
            KnownName::SubjectToken => "subject_token",
            KnownName::SubjectTokenType => "subject_token_type",
            KnownName::ActorToken => "actor_token",
            KnownName::ActorTokenType => "actor_token_type",
            KnownName::RequestedTokenType => "requested_token_type",
            KnownName::Audience => "audience",
        }
    }
}

impl Name {
    fn text(&self) -> &str {
        match self {
            Name::Known(name) => name.as_str(),
            Name::Raw(text) => text,
        }
    }
}

impl KnownValue {
    fn text(self) -> String {
        match self {
            KnownValue::ConfidentialClient => CONFIDENTIAL_CLIENT_ID.into(),
            KnownValue::PublicClient => PUBLIC_CLIENT_ID.into(),
            KnownValue::Secret => CONFIDENTIAL_CLIENT_SECRET.into(),
            KnownValue::RedirectUri => REDIRECT_URI.into(),
            KnownValue::AuthorizeReturn => format!(
                "/authorize?{}",
                in_process::AuthorizationRequest::default().query()
            ),
            KnownValue::FirstUser => "user-loadtest-00001".into(),
            KnownValue::LastUser => "user-loadtest-10000".into(),
            KnownValue::Password => USER_PASSWORD.into(),
            KnownValue::GrantAuthorizationCode => "authorization_code".into(),
            KnownValue::GrantRefreshToken => "refresh_token".into(),
            KnownValue::GrantTokenExchange => {
                "urn:ietf:params:oauth:grant-type:token-exchange".into()
            }
            KnownValue::GrantClientCredentials => "client_credentials".into(),
            KnownValue::ResponseTypeCode => "code".into(),
            KnownValue::ScopeOpenid => "openid profile email".into(),
            KnownValue::ScopeOffline => "openid offline_access".into(),
            KnownValue::Verifier => CODE_VERIFIER.into(),
            KnownValue::Challenge => mock_idp::pkce_s256(CODE_VERIFIER),
            KnownValue::S256 => "S256".into(),
            KnownValue::Plain => "plain".into(),
            KnownValue::AccessTokenType => "urn:ietf:params:oauth:token-type:access_token".into(),
            KnownValue::RefreshTokenType => "urn:ietf:params:oauth:token-type:refresh_token".into(),
            KnownValue::IdTokenType => "urn:ietf:params:oauth:token-type:id_token".into(),
            KnownValue::HintAccessToken => "access_token".into(),
            KnownValue::HintRefreshToken => "refresh_token".into(),
            KnownValue::PromptNone => "none".into(),
            KnownValue::PromptLogin => "login".into(),
            KnownValue::Empty => String::new(),
        }
    }
}

impl Value {
    fn text(&self, memory: &Memory) -> String {
        match self {
            Value::Known(known) => known.text(),
            Value::Earlier(earlier) => earlier.text(memory),
            Value::Extended(known, tail) => known.text() + tail,
            Value::Raw(text) => text.clone(),
        }
    }
}

impl Earlier {
    fn text(self, memory: &Memory) -> String {
        let remembered = match self {
            Earlier::Session => &memory.session,
            Earlier::Code => &memory.code,
            Earlier::AccessToken => &memory.access_token,
            Earlier::RefreshToken => &memory.refresh_token,
            Earlier::IdToken => &memory.id_token,
        };
        remembered.clone().unwrap_or_default()
    }
}

impl Prepared {
    fn encode(&self, memory: &Memory) -> String {
        let own = |name: &str, value: &str| (name.to_owned(), value.to_owned());
        let mut pairs: Vec<(String, String)> = match self.form {
            Form::Authorize => form_urlencoded::parse(
                in_process::AuthorizationRequest::default()
                    .query()
                    .as_bytes(),
            )
            .into_owned()
            .collect(),
            // As the login form sends it: the pending authorization request rides along.
            Form::Login => vec![
                own("username", "user-loadtest-00001"),
                own("password", USER_PASSWORD),
                own("return_to", &KnownValue::AuthorizeReturn.text()),
            ],
            Form::CodeGrant => vec![
                own("grant_type", "authorization_code"),
                own("code", &Earlier::Code.text(memory)),
                own("redirect_uri", REDIRECT_URI),
                own("code_verifier", CODE_VERIFIER),
            ],
            Form::RefreshGrant => vec![
                own("grant_type", "refresh_token"),
                own("refresh_token", &Earlier::RefreshToken.text(memory)),
            ],
            Form::TokenExchange => vec![
                own(
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                own("subject_token", &Earlier::AccessToken.text(memory)),
                own(
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
            ],
            Form::ClientCredentials => vec![own("grant_type", "client_credentials")],
            Form::Introspect(earlier) | Form::Revoke(earlier) => {
                vec![own("token", &earlier.text(memory))]
            }
        };
        if let Some((position, tail)) = &self.extended {
            let position = usize::from(*position) % pairs.len().max(1);
            if let Some((_, value)) = pairs.get_mut(position) {
                value.push_str(tail);
            }
        }
        if let Some(dropped) = self.dropped {
            let position = usize::from(dropped) % pairs.len().max(1);
            if position < pairs.len() {
                pairs.remove(position);
            }
        }
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        serializer.extend_pairs(&pairs);
        for (name, value) in &self.extra {
            serializer.append_pair(name.text(), &value.text(memory));
        }
        serializer.finish()
    }
}

fn encode(pairs: &[(Name, Value)], memory: &Memory) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name.text(), &value.text(memory));
    }
    serializer.finish()
}

impl UserChoice {
    fn json(&self, memory: &Memory) -> serde_json::Value {
        match self {
            UserChoice::Number(number) => serde_json::Value::from(*number),
            UserChoice::Subject(subject) => serde_json::Value::from(subject.text(memory)),
        }
    }
}

impl FuzzRequest {
    /// The request as hyper would hand it over, or `None` when no HTTP/1.1 request looks so
    /// (a method or URI that does not parse never reaches `App::handle`).
    fn build(&self, memory: &Memory) -> Option<Request<Full<Bytes>>> {
        let method = match &self.method {
            MethodChoice::Get => Method::GET,
            MethodChoice::Post => Method::POST,
            MethodChoice::Head => Method::HEAD,
            MethodChoice::Put => Method::PUT,
            MethodChoice::Delete => Method::DELETE,
            MethodChoice::Options => Method::OPTIONS,
            MethodChoice::Other(name) => Method::from_bytes(name.as_bytes()).ok()?,
        };
        let mut uri = match &self.path {
            PathChoice::Discovery => "/.well-known/openid-configuration".to_owned(),
            PathChoice::Jwks => "/jwks".to_owned(),
            PathChoice::Login => "/login".to_owned(),
            PathChoice::Authorize => "/authorize".to_owned(),
            PathChoice::Token => "/token".to_owned(),
            PathChoice::Userinfo => "/userinfo".to_owned(),
            PathChoice::Introspect => "/introspect".to_owned(),
            PathChoice::Revoke => "/revoke".to_owned(),
            PathChoice::Metrics => "/metrics".to_owned(),
            PathChoice::MintToken => "/_test/mint-token".to_owned(),
            PathChoice::MintTokensBatch => "/_test/mint-tokens-batch".to_owned(),
            PathChoice::DebugToken => "/_test/debug-token".to_owned(),
            PathChoice::OtherTest(rest) => format!("/_test/{rest}"),
            PathChoice::Raw(path) => path.clone(),
        };
        match &self.query {
            Some(Params::Prepared(prepared)) => {
                uri.push('?');
                uri.push_str(&prepared.encode(memory));
            }
            Some(Params::Pairs(pairs)) => {
                uri.push('?');
                uri.push_str(&encode(pairs, memory));
            }
            Some(Params::Raw(query)) => {
                uri.push('?');
                uri.push_str(query);
            }
            None => {}
        }
        let body = match &self.body {
            BodyChoice::Empty => Bytes::new(),
            BodyChoice::Prepared(prepared) => Bytes::from(prepared.encode(memory)),
            BodyChoice::Form(pairs) => Bytes::from(encode(pairs, memory)),
            BodyChoice::MintToken { user, scope } => {
                let mut mint = serde_json::json!({ "user_id": user.json(memory) });
                if let Some(scope) = scope {
                    mint["scope"] = scope.text(memory).into();
                }
                Bytes::from(mint.to_string())
            }
            BodyChoice::MintTokensBatch(users) => Bytes::from(
                serde_json::Value::from(
                    users
                        .iter()
                        .take(MAX_BATCH)
                        .map(|user| user.json(memory))
                        .collect::<Vec<_>>(),
                )
                .to_string(),
            ),
            BodyChoice::DebugToken(token) => {
                Bytes::from(serde_json::Value::from(token.text(memory)).to_string())
            }
            BodyChoice::Raw(bytes) => Bytes::from(bytes.clone()),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Full::new(body))
            .ok()?;
        for choice in &self.headers {
            let (name, value) = match choice {
                HeaderChoice::ConfidentialClient => (
                    header::AUTHORIZATION,
                    basic_authorization(CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET)
                        .into_bytes(),
                ),
                HeaderChoice::Basic { client, secret } => (
                    header::AUTHORIZATION,
                    basic_authorization(&client.text(memory), &secret.text(memory)).into_bytes(),
                ),
                HeaderChoice::Bearer(token) => (
                    header::AUTHORIZATION,
                    format!("Bearer {}", token.text(memory)).into_bytes(),
                ),
                HeaderChoice::SessionCookie(value) => (
                    header::COOKIE,
                    format!("{SESSION_COOKIE}={}", value.text(memory)).into_bytes(),
                ),
                HeaderChoice::Cookie(text) => (header::COOKIE, text.clone().into_bytes()),
                HeaderChoice::FormContentType => (
                    header::CONTENT_TYPE,
                    b"application/x-www-form-urlencoded".to_vec(),
                ),
                HeaderChoice::JsonContentType => {
                    (header::CONTENT_TYPE, b"application/json".to_vec())
                }
                HeaderChoice::ContentType(text) => {
                    (header::CONTENT_TYPE, text.clone().into_bytes())
                }
                HeaderChoice::ContentLength(length) => {
                    (header::CONTENT_LENGTH, length.to_string().into_bytes())
                }
                HeaderChoice::Raw { name, value } => {
                    let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                        continue;
                    };
                    (name, value.clone())
                }
            };
            // hyper refuses such header values before any handler runs.
            let Ok(value) = HeaderValue::from_bytes(&value) else {
                continue;
            };
            request.headers_mut().append(name, value);
        }
        Some(request)
    }
}

/// Keeps what an answer gave for the next requests of the sequence.
fn remember(memory: &mut Memory, headers: &http::HeaderMap, body: &[u8]) {
    for value in headers.get_all(header::SET_COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        let pair = text.split(';').next().unwrap_or_default();
        if let Some(session) = pair
            .strip_prefix(SESSION_COOKIE)
            .and_then(|rest| rest.strip_prefix('='))
        {
            memory.session = Some(session.to_owned());
        }
    }
    if let Some(location) = headers
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
    {
        let query = location.split_once('?').map_or("", |(_, query)| query);
        if let Some((_, code)) =
            form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == "code")
        {
            memory.code = Some(code.into_owned());
        }
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let token = |name: &str| {
            json.get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        memory.access_token = token("access_token").or(memory.access_token.take());
        memory.refresh_token = token("refresh_token").or(memory.refresh_token.take());
        memory.id_token = token("id_token").or(memory.id_token.take());
    }
}

/// `FUZZ_TRACE=1` prints each request's method, path and status, then what was sent: replaying a
/// corpus with it (`-runs=0`) shows how deep the fuzzer got (logins, codes, tokens issued), and
/// replaying a failing input shows the request to keep as a test.
fn tracing() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

fn run(input: Input) {
    let app = App::with_key(
        input.setup.config(),
        "http://127.0.0.1:8080",
        key(input.setup.alg),
    );
    let injects_server_errors = input.setup.injects_server_errors();
    runtime().block_on(async {
        let mut memory = Memory::default();
        for step in input.steps.iter().take(MAX_STEPS) {
            let fuzz_request = match step {
                Step::Request(fuzz_request) => fuzz_request,
                Step::Login | Step::Code | Step::SignIn => {
                    let reached = flow(&app, step, &mut memory).await;
                    if let Err(error) = reached {
                        // A refusal is expected (few users, zero lifetimes, faults); a 5xx is not.
                        let injected = injects_server_errors && error.step == "POST /token";
                        assert!(
                            error.status < 500 || injected,
                            "the sign-in failed with a 5xx without an injected fault: {error}"
                        );
                    }
                    continue;
                }
            };
            let Some(request) = fuzz_request.build(&memory) else {
                continue;
            };
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let sent = tracing().then(|| {
                format!(
                    "{} {:?} {:?}",
                    request.uri(),
                    request.headers(),
                    request.body()
                )
            });
            let (parts, body) = app.handle(request).await.into_parts();
            // The answers' bodies are in memory: reading them cannot fail.
            let Ok(collected) = body.collect().await;
            let body = collected.to_bytes();
            let injected = injects_server_errors
                && method == Method::POST
                && path == "/token"
                && parts.status.as_u16() == 500;
            assert!(
                !parts.status.is_server_error() || injected,
                "{method} {path} answered {} without an injected fault: {}",
                parts.status,
                String::from_utf8_lossy(&body)
            );
            if let Some(sent) = sent {
                eprintln!(
                    "FUZZ_TRACE {method} {path} {} {sent}",
                    parts.status.as_u16()
                );
            }
            remember(&mut memory, &parts.headers, &body);
        }
    });
}

/// Runs a scripted step of the sign-in, keeping what it gave.
async fn flow(app: &App, step: &Step, memory: &mut Memory) -> Result<(), in_process::FlowError> {
    const USER: &str = "user-loadtest-00001";
    let authorization = in_process::AuthorizationRequest::default();
    match step {
        Step::Login => {
            let cookie = in_process::login(app, USER, USER_PASSWORD).await?;
            memory.session = cookie.split_once('=').map(|(_, value)| value.to_owned());
        }
        Step::Code => {
            let cookie = in_process::login(app, USER, USER_PASSWORD).await?;
            memory.session = cookie.split_once('=').map(|(_, value)| value.to_owned());
            memory.code = Some(in_process::authorization_code(app, &cookie, &authorization).await?);
        }
        Step::SignIn => {
            let tokens = in_process::sign_in(app, USER, &authorization).await?;
            let token = |name: &str| {
                tokens
                    .get(name)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            };
            memory.access_token = token("access_token");
            memory.refresh_token = token("refresh_token");
            memory.id_token = token("id_token");
        }
        Step::Request(_) => {}
    }
    if tracing() {
        eprintln!("FUZZ_TRACE {step:?} done");
    }
    Ok(())
}
