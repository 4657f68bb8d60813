//! Shared helpers of the integration tests: mock-idp as a value driven through `App::handle` with
//! no socket (axum's testing pattern), or, for the tests of the server itself, running on
//! `127.0.0.1:0` with a small HTTP client; neither follows redirects, so every 302 can be
//! inspected. The sign-in flow is mock-idp's own in-process one (`mock_idp::in_process`).

#![allow(dead_code)]

use anyhow::{Context as _, Result, anyhow};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mock_idp::clients::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, REDIRECT_URI, basic_authorization,
};
use mock_idp::in_process::{self, AuthorizationRequest};
use mock_idp::{App, Config, RunningIdp};
use serde_json::Value;

pub const VERIFIER: &str = in_process::CODE_VERIFIER;

/// The issuer of an in-process provider (nothing listens there: requests go to `App::handle`).
const IN_PROCESS_ISSUER: &str = "http://127.0.0.1:8080";

/// One answer, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The `error` code of an RFC 6749 error body.
    pub fn error_code(&self) -> Result<String> {
        Ok(self.json()?["error"]
            .as_str()
            .ok_or_else(|| anyhow!("no error member"))?
            .to_owned())
    }

    /// The query parameters of the `Location` of a redirect.
    pub fn location_params(&self) -> Result<Vec<(String, String)>> {
        let location = self.header(header::LOCATION).context("no Location")?;
        let query = location
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or("");
        Ok(form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect())
    }

    pub fn location_param(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .location_params()?
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value))
    }
}

/// A mock-idp under test: in-process, or a server on a loopback socket with a client.
pub struct TestIdp {
    app: App,
    base_url: String,
    socket: Option<(RunningIdp, Client<HttpConnector, Full<Bytes>>)>,
}

impl TestIdp {
    /// The provider with the documented defaults, as a value.
    pub async fn start() -> Result<Self> {
        Self::with(|_| {}).await
    }

    /// The provider with a changed configuration, as a value.
    pub async fn with(configure: impl FnOnce(&mut Config)) -> Result<Self> {
        let mut config = Config::ephemeral();
        configure(&mut config);
        let app = App::new(config, IN_PROCESS_ISSUER)?;
        Ok(Self {
            base_url: app.issuer().to_owned(),
            app,
            socket: None,
        })
    }

    /// The server on `127.0.0.1:0`, for the tests of what only a socket shows.
    pub async fn over_tcp_with(configure: impl FnOnce(&mut Config)) -> Result<Self> {
        let mut config = Config::ephemeral();
        configure(&mut config);
        let server = mock_idp::spawn(config).await?;
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(Self {
            app: server.app().clone(),
            base_url: server.base_url(),
            socket: Some((server, client)),
        })
    }

    /// The provider's base URL (its issuer).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The provider itself.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The running server, for the tests over a socket.
    pub fn server(&self) -> Result<&RunningIdp> {
        self.socket
            .as_ref()
            .map(|(server, _)| server)
            .context("this test provider runs in-process; start it with over_tcp_with")
    }

    /// The running server, to shut it down.
    pub fn into_server(self) -> Result<RunningIdp> {
        self.socket
            .map(|(server, _)| server)
            .context("this test provider runs in-process; start it with over_tcp_with")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Reply> {
        let response = match &self.socket {
            Some((_, client)) => {
                let (parts, body) = client.request(request).await?.into_parts();
                (parts, body.collect().await?.to_bytes())
            }
            None => {
                let (parts, body) = self.app.handle(request).await.into_parts();
                (parts, body.collect().await?.to_bytes())
            }
        };
        let (parts, body) = response;
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Reply> {
        let mut request = Request::builder().method(Method::GET).uri(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Full::default())?).await
    }

    /// POSTs a form body as is (so tests can send malformed ones), with optional headers.
    pub async fn post_raw(
        &self,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.url(path))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Full::new(Bytes::from(body.to_owned())))?)
            .await
    }

    pub async fn post_form(
        &self,
        path: &str,
        pairs: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Reply> {
        self.post_raw(path, &encode(pairs), headers).await
    }

    /// POSTs to `/token` as the confidential client with `client_secret_basic`.
    pub async fn token(&self, pairs: &[(&str, &str)]) -> Result<Reply> {
        let authorization = basic_authorization(CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET);
        self.post_form("/token", pairs, &[("authorization", &authorization)])
            .await
    }

    /// Logs `user` in through the form and returns the session cookie (`name=value`).
    pub async fn login(&self, user: &str) -> Result<String> {
        Ok(in_process::login(&self.app, user, mock_idp::clients::USER_PASSWORD).await?)
    }

    /// The standard authorization request of the confidential client with PKCE S256.
    pub fn authorize_query(&self, extra: &[(&str, &str)]) -> String {
        let challenge = mock_idp::pkce_s256(VERIFIER);
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", CONFIDENTIAL_CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid profile email"),
            ("state", "state-1"),
            ("nonce", "nonce-1"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        for (name, value) in extra {
            pairs.retain(|(known, _)| known != name);
            if !value.is_empty() {
                pairs.push((name, value));
            }
        }
        encode(&pairs)
    }

    /// The code `/authorize` answers the session `cookie` for the standard request changed by
    /// `extra` (another `client_id`, say).
    pub async fn code_with(&self, cookie: &str, extra: &[(&str, &str)]) -> Result<String> {
        let query = self.authorize_query(extra);
        let reply = self
            .get(&format!("/authorize?{query}"), &[("cookie", cookie)])
            .await?;
        reply
            .location_param("code")?
            .ok_or_else(|| anyhow!("/authorize answered {} without a code", reply.status))
    }

    /// Logs in and gets a code for the standard request.
    pub async fn code(&self, user: &str) -> Result<String> {
        let cookie = self.login(user).await?;
        let request = AuthorizationRequest::default();
        Ok(in_process::authorization_code(&self.app, &cookie, &request).await?)
    }

    /// Redeems a fresh code of the standard request: the token response JSON.
    pub async fn tokens(&self, user: &str) -> Result<Value> {
        Ok(in_process::sign_in(&self.app, user, &AuthorizationRequest::default()).await?)
    }

    pub async fn userinfo(&self, access_token: &str) -> Result<Reply> {
        self.get(
            "/userinfo",
            &[("authorization", &format!("Bearer {access_token}"))],
        )
        .await
    }

    pub async fn introspect(&self, token: &str) -> Result<Value> {
        let authorization = basic_authorization(CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET);
        self.post_form(
            "/introspect",
            &[("token", token)],
            &[("authorization", &authorization)],
        )
        .await?
        .json()
    }

    /// The value of one counter line of `/metrics` (0 when absent).
    pub async fn metric(&self, line_prefix: &str) -> Result<u64> {
        let reply = self.get("/metrics", &[]).await?;
        let text = String::from_utf8(reply.body.to_vec())?;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(line_prefix) {
                return Ok(rest.trim().parse()?);
            }
        }
        Ok(0)
    }
}

pub fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A string field of a JSON value.
pub fn text(value: &Value, name: &str) -> Result<String> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no string {name} in {value}"))
}
