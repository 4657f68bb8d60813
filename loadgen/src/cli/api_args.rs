//! The flags of `loadgen run --scenario api`: the API's URLs, method, body and status, and where
//! the VUs' tokens come from.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use http::{Method, StatusCode};
use loadgen::ScenarioKind;
use loadgen::http::address::Address;
use loadgen::protocol::app_tokens::{JsonLogin, MintEndpoint, TokenFields};
use loadgen::protocol::token_signing::{SigningAlgorithm, TokenSigner};
use loadgen::run::scenario::api::settings::{ApiRoute, ApiSettings, TokenSource};

use crate::cli::shared_args::UserArgs;

/// Where the `api` scenario's access tokens come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TokenSourceKind {
    /// The provider at --target: each VU renews its own seeded refresh-token family.
    Oidc,
    /// Signed by loadgen with the application's test key (--sign-key or --sign-secret-env); no
    /// provider is needed.
    Sign,
    /// The application's own JSON login (--login-url) and refresh (--refresh-url) API.
    Json,
    /// The application's test-only mint endpoint (--mint-url).
    Mint,
}

#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// A URL of the API to call (`--scenario api`), absolute; `URL=WEIGHT` gives it a share of
    /// the iterations (1 by default). Repeat for several.
    #[arg(long = "api-url", env = "LOADGEN_API_URL")]
    pub(crate) api_urls: Vec<ApiRoute>,
    /// The method of every API call.
    #[arg(long, env = "LOADGEN_API_METHOD", default_value = "GET")]
    pub(crate) api_method: Method,
    /// A file holding the body of every API call (JSON), `{{user}}` (the VU's user) and `{{n}}`
    /// (its number from 1) filled in.
    #[arg(long, env = "LOADGEN_API_BODY")]
    pub(crate) api_body: Option<PathBuf>,
    /// The status every API call must answer; any 2xx when not given.
    #[arg(long, env = "LOADGEN_API_EXPECT")]
    pub(crate) api_expect: Option<u16>,
    /// Where the access tokens come from.
    #[arg(long, env = "LOADGEN_TOKEN_SOURCE", value_enum, default_value_t = TokenSourceKind::Oidc)]
    pub(crate) token_source: TokenSourceKind,
    /// Renew a token this long before it expires (or at half its lifetime, when that comes
    /// first), after the call that finds it due: off the measured path.
    #[arg(long, env = "LOADGEN_REFRESH_BEFORE", value_parser = humantime::parse_duration, default_value = "60s")]
    pub(crate) refresh_before: Duration,
    /// `--token-source sign`: the PEM private key to sign with (see --sign-alg).
    #[arg(long, env = "LOADGEN_SIGN_KEY", conflicts_with = "sign_secret_env")]
    pub(crate) sign_key: Option<PathBuf>,
    /// `--token-source sign`: the environment variable holding an HS256 secret.
    #[arg(long, env = "LOADGEN_SIGN_SECRET_ENV")]
    pub(crate) sign_secret_env: Option<String>,
    /// `--token-source sign`: the algorithm of --sign-key.
    #[arg(long, env = "LOADGEN_SIGN_ALG", value_enum, default_value_t = SigningAlgorithm::Rs256)]
    pub(crate) sign_alg: SigningAlgorithm,
    /// `--token-source sign`: a claim of every token, `name=value` (a string) or `name:=JSON`,
    /// `{{user}}` and `{{n}}` filled in; `sub={{user}}` unless one is given. Repeatable.
    #[arg(long = "claim", env = "LOADGEN_CLAIMS")]
    pub(crate) claims: Vec<String>,
    /// `--token-source sign`: how long each token is valid (`exp` is `iat` plus this).
    #[arg(long, env = "LOADGEN_TOKEN_TTL", value_parser = humantime::parse_duration, default_value = "15m")]
    pub(crate) token_ttl: Duration,
    /// `--token-source sign`: the `kid` every token's header names, when the API wants one.
    #[arg(long, env = "LOADGEN_KID")]
    pub(crate) kid: Option<String>,
    /// `--token-source json`: the login URL, `POST`ed `{"username": ..., "password": ...}`.
    #[arg(long, env = "LOADGEN_LOGIN_URL")]
    pub(crate) login_url: Option<String>,
    /// `--token-source json`: the refresh URL, `POST`ed `{"refresh_token": ...}`; without it a
    /// token is renewed by signing in again.
    #[arg(long, env = "LOADGEN_REFRESH_URL")]
    pub(crate) refresh_url: Option<String>,
    /// `--token-source json`: the login body's user-name field.
    #[arg(long, env = "LOADGEN_LOGIN_USERNAME_FIELD", default_value = "username")]
    pub(crate) login_username_field: String,
    /// `--token-source json`: the login body's password field.
    #[arg(long, env = "LOADGEN_LOGIN_PASSWORD_FIELD", default_value = "password")]
    pub(crate) login_password_field: String,
    /// `--token-source json`: the refresh body's field.
    #[arg(
        long,
        env = "LOADGEN_REFRESH_REQUEST_FIELD",
        default_value = "refresh_token"
    )]
    pub(crate) refresh_request_field: String,
    /// `--token-source mint`: the mint URL, `POST`ed the --mint-body for each VU's user.
    #[arg(long, env = "LOADGEN_MINT_URL")]
    pub(crate) mint_url: Option<String>,
    /// `--token-source mint`: get the VUs' first tokens from this batch endpoint instead, in
    /// batches of up to 1,000: `POST`ed a JSON list of user names, answering `{"tokens": {user:
    /// answer}}` (mock-idp's /_test/mint-tokens-batch); renewals use --mint-url.
    #[arg(long, env = "LOADGEN_MINT_BATCH_URL")]
    pub(crate) mint_batch_url: Option<String>,
    /// `--token-source mint`: the body of a mint request, `{{user}}` and `{{n}}` filled in
    /// (mock-idp's /_test/mint-token takes the default).
    #[arg(
        long,
        env = "LOADGEN_MINT_BODY",
        default_value = r#"{"user_id": "{{user}}"}"#
    )]
    pub(crate) mint_body: String,
    /// `json` and `mint`: the answer's access-token field (dotted for a nested one: data.token).
    #[arg(
        long,
        env = "LOADGEN_ACCESS_TOKEN_FIELD",
        default_value = "access_token"
    )]
    pub(crate) access_token_field: String,
    /// `json` and `mint`: the answer's refresh-token field.
    #[arg(
        long,
        env = "LOADGEN_REFRESH_TOKEN_FIELD",
        default_value = "refresh_token"
    )]
    pub(crate) refresh_token_field: String,
    /// `json` and `mint`: the answer's lifetime field, in seconds.
    #[arg(long, env = "LOADGEN_EXPIRES_IN_FIELD", default_value = "expires_in")]
    pub(crate) expires_in_field: String,
}

impl ApiArgs {
    /// The settings of an `api` run; `None` for the other scenarios, which take none of these.
    pub(crate) fn settings(
        &self,
        scenario: ScenarioKind,
        users: &UserArgs,
    ) -> anyhow::Result<Option<ApiSettings>> {
        if scenario != ScenarioKind::Api {
            if !self.api_urls.is_empty() {
                bail!(
                    "--api-url is for --scenario api; {} calls the provider only",
                    scenario.name()
                );
            }
            return Ok(None);
        }
        if self.api_urls.is_empty() {
            bail!(
                "--scenario api needs at least one --api-url, the API's URL to call with each VU's token"
            );
        }
        let body = self
            .api_body
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path)
                    .with_context(|| format!("could not read --api-body {}", path.display()))
            })
            .transpose()?;
        let expect = self
            .api_expect
            .map(|status| {
                StatusCode::from_u16(status)
                    .map_err(|_| anyhow::anyhow!("--api-expect {status} is not an HTTP status"))
            })
            .transpose()?;
        let token_source = match self.token_source {
            TokenSourceKind::Oidc => TokenSource::Oidc,
            TokenSourceKind::Sign => TokenSource::Sign(Arc::new(self.signer()?)),
            TokenSourceKind::Json => TokenSource::Json(Arc::new(self.json_login(users)?)),
            TokenSourceKind::Mint => TokenSource::Mint(Arc::new(MintEndpoint {
                url: address(
                    "--mint-url",
                    self.mint_url.as_deref().context(
                        "--token-source mint needs --mint-url, the application's mint endpoint",
                    )?,
                )?,
                batch_url: self
                    .mint_batch_url
                    .as_deref()
                    .map(|url| address("--mint-batch-url", url))
                    .transpose()?,
                body: self.mint_body.clone(),
                fields: self.fields(),
            })),
        };
        Ok(Some(ApiSettings {
            routes: self.api_urls.clone(),
            method: self.api_method.clone(),
            body,
            expect,
            token_source,
            refresh_before: self.refresh_before,
            user_prefix: users.user_prefix.clone(),
        }))
    }

    fn fields(&self) -> TokenFields {
        TokenFields {
            access_token: self.access_token_field.clone(),
            refresh_token: self.refresh_token_field.clone(),
            expires_in: self.expires_in_field.clone(),
        }
    }

    fn json_login(&self, users: &UserArgs) -> anyhow::Result<JsonLogin> {
        let login = self
            .login_url
            .as_deref()
            .context("--token-source json needs --login-url, the application's login endpoint")?;
        Ok(JsonLogin {
            login: address("--login-url", login)?,
            refresh: self
                .refresh_url
                .as_deref()
                .map(|url| address("--refresh-url", url))
                .transpose()?,
            username_field: self.login_username_field.clone(),
            password_field: self.login_password_field.clone(),
            refresh_field: self.refresh_request_field.clone(),
            password: users.password.clone(),
            fields: self.fields(),
        })
    }

    fn signer(&self) -> anyhow::Result<TokenSigner> {
        let signer = match (&self.sign_key, &self.sign_secret_env) {
            (Some(path), None) => TokenSigner::from_pem_file(path, self.sign_alg)?,
            (None, Some(name)) => {
                let secret = std::env::var(name).with_context(|| {
                    format!("--sign-secret-env names {name}, which is not set in the environment")
                })?;
                TokenSigner::hs256(secret.as_bytes())?
            }
            _ => bail!(
                "--token-source sign needs the application's test key: --sign-key FILE (PEM, with \
                 --sign-alg) or --sign-secret-env NAME (HS256)"
            ),
        };
        Ok(signer
            .with_kid(self.kid.clone())
            .with_lifetime(self.token_ttl)
            .with_claims(&self.claims)?)
    }
}

fn address(flag: &str, url: &str) -> anyhow::Result<Address> {
    Address::parse(url)
        .map_err(|error| anyhow::anyhow!("{flag} {url} cannot be requested: {error}"))
}
