//! Flags more than one command takes: the client, the connections (TLS, HTTP/2, --resolve), the
//! test users, the arrival-rate profile, the reports besides the result file, and how checks and progress are named on the command line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use loadgen::http::connection::{Resolve, TransportSettings};
use loadgen::http::tls::{ClientCertificate, TlsSettings};
use loadgen::protocol::browser::FormHints;
use std::sync::Arc;

use loadgen::protocol::client_auth::{AssertionAudience, ClientAuth, ClientAuthMethod, ClientKey};
use loadgen::protocol::client_credentials::{
    ClientCredentials, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI,
    DEFAULT_SCOPE,
};
use loadgen::protocol::token_signing::SigningAlgorithm;
use loadgen::results::names::Check;
use loadgen::terminal::ProgressMode;
use loadgen::{LoadProfile, RunResult};

#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    /// OAuth client id.
    #[arg(long, env = "LOADGEN_CLIENT_ID", default_value = DEFAULT_CLIENT_ID)]
    pub(crate) client_id: String,
    /// Client secret for client_secret_basic.
    #[arg(long, env = "LOADGEN_CLIENT_SECRET", default_value = DEFAULT_CLIENT_SECRET, hide_env_values = true)]
    pub(crate) client_secret: String,
    /// Act as a public client (no secret; client_id in the body, PKCE only).
    #[arg(long, env = "LOADGEN_PUBLIC_CLIENT")]
    pub(crate) public_client: bool,
    /// Registered redirect URI.
    #[arg(long, env = "LOADGEN_REDIRECT_URI", default_value = DEFAULT_REDIRECT_URI)]
    pub(crate) redirect_uri: String,
    /// Scope of authorization requests.
    #[arg(long, env = "LOADGEN_SCOPE", default_value = DEFAULT_SCOPE)]
    pub(crate) scope: String,
    /// How the client authenticates at the token, introspection and revocation endpoints:
    /// client_secret_basic, client_secret_post, private_key_jwt (RFC 7523: a fresh assertion
    /// signed with --client-key for every request), or tls (RFC 8705: the certificate of
    /// --client-cert presented in every TLS handshake, its client_id in the body).
    #[arg(long, env = "LOADGEN_CLIENT_AUTH", value_enum, default_value = "basic")]
    pub(crate) client_auth: ClientAuthMethod,
    /// The algorithm of --client-key.
    #[arg(
        long,
        env = "LOADGEN_CLIENT_KEY_ALG",
        value_enum,
        default_value = "RS256"
    )]
    pub(crate) client_key_alg: SigningAlgorithm,
    /// The `kid` of --client-key, named in each assertion's header (as the provider registered
    /// it).
    #[arg(long, env = "LOADGEN_CLIENT_KEY_ID")]
    pub(crate) client_key_id: Option<String>,
    /// The `aud` of each assertion: the token endpoint's URL (OpenID Connect's advice) or the
    /// issuer, as the provider requires.
    #[arg(
        long,
        env = "LOADGEN_ASSERTION_AUDIENCE",
        value_enum,
        default_value = "token-endpoint"
    )]
    pub(crate) assertion_audience: AssertionAudience,
    /// Push every authorization request (RFC 9126: seeding, `login`, TEST 3) to the provider's
    /// pushed authorization request endpoint, authenticated as at the token endpoint, and send
    /// `/authorize` only the `request_uri` it answers; the push is an endpoint of its own (`par`)
    /// in the results.
    #[arg(long, env = "LOADGEN_PAR")]
    pub(crate) par: bool,
}

impl ClientArgs {
    /// The client, its key (`--client-key`, which also serves a TLS client certificate) read
    /// when it authenticates with one.
    pub(crate) fn credentials(
        &self,
        transport: &TransportArgs,
    ) -> anyhow::Result<ClientCredentials> {
        let key = transport.client_key.as_deref();
        let auth = match (self.client_auth, key) {
            (ClientAuthMethod::Basic, _) => ClientAuth::Basic,
            (ClientAuthMethod::Post, _) => ClientAuth::Post,
            (ClientAuthMethod::Tls, _) if transport.client_cert.is_some() => {
                ClientAuth::TlsCertificate
            }
            (ClientAuthMethod::Tls, _) => anyhow::bail!(
                "--client-auth tls authenticates with the TLS client certificate: give it with \
                 --client-cert FILE and --client-key FILE (PEM), registered with the provider"
            ),
            (ClientAuthMethod::PrivateKeyJwt, Some(path)) => ClientAuth::PrivateKeyJwt {
                key: Arc::new(ClientKey::from_pem_file(
                    path,
                    self.client_key_alg,
                    self.client_key_id.clone(),
                    self.assertion_audience,
                )?),
                audience: None,
            },
            (ClientAuthMethod::PrivateKeyJwt, None) => anyhow::bail!(
                "--client-auth private-key-jwt signs with the client's private key: give it with \
                 --client-key FILE (PEM) and --client-key-alg"
            ),
        };
        if self.public_client && auth != ClientAuth::Basic {
            anyhow::bail!(
                "--public-client authenticates with nothing but its client_id; leave out \
                 --client-auth"
            );
        }
        Ok(ClientCredentials {
            client_id: self.client_id.clone(),
            client_secret: (!self.public_client
                && matches!(
                    self.client_auth,
                    ClientAuthMethod::Basic | ClientAuthMethod::Post
                ))
            .then(|| self.client_secret.clone()),
            redirect_uri: self.redirect_uri.clone(),
            scope: self.scope.clone(),
            auth,
            pushes_requests: self.par,
        })
    }
}

/// Sender-constrained tokens, shared by `run` and `capacity` (seeds are made unbound: whichever
/// VU takes one binds what it gets from it).
#[derive(Debug, Args)]
pub(crate) struct DpopArgs {
    /// Bind tokens to keys with DPoP (RFC 9449): every VU makes a P-256 key of its own and sends
    /// a fresh proof with each token request (answering a provider's nonce challenge once) and
    /// with every bound token it presents (`Authorization: DPoP`, the proof's `ath`); tokens
    /// must come back of type DPoP and bound to the VU's key (check `dpop_bound`).
    #[arg(long, env = "LOADGEN_DPOP")]
    pub(crate) dpop: bool,
}

/// How every connection is made, shared by `seed`, `run` and `capacity`: HTTPS trust, a client
/// certificate, HTTP/2, and names resolved by hand.
#[derive(Debug, Args)]
pub(crate) struct TransportArgs {
    /// A PEM file of CA certificates to trust besides the system's (a private CA); repeat for
    /// several.
    #[arg(long = "ca-cert", env = "LOADGEN_CA_CERT", value_delimiter = ',')]
    pub(crate) ca_certs: Vec<PathBuf>,
    /// Do not verify the provider's certificates. Prints a warning and is recorded in the result,
    /// so a run never passes silently unverified.
    #[arg(long, env = "LOADGEN_INSECURE")]
    pub(crate) insecure: bool,
    /// A PEM certificate chain presented on every TLS connection (fronts that require mTLS).
    #[arg(long, env = "LOADGEN_CLIENT_CERT", requires = "client_key")]
    pub(crate) client_cert: Option<PathBuf>,
    /// The PEM private key of --client-cert, and the key that signs the assertions of
    /// --client-auth private-key-jwt.
    #[arg(long, env = "LOADGEN_CLIENT_KEY")]
    pub(crate) client_key: Option<PathBuf>,
    /// Speak HTTP/2: negotiated by ALPN over https (a provider that does not agree fails before
    /// load), with prior knowledge over plain http.
    #[arg(long, env = "LOADGEN_HTTP2")]
    pub(crate) http2: bool,
    /// HOST:PORT:ADDRESS (curl's form): connect to ADDRESS for HOST:PORT, keeping HOST for SNI,
    /// the certificate's name and Host; repeat for several.
    #[arg(long, env = "LOADGEN_RESOLVE", value_delimiter = ',')]
    pub(crate) resolve: Vec<Resolve>,
}

impl TransportArgs {
    pub(crate) fn settings(&self) -> TransportSettings {
        if self.insecure {
            eprintln!(
                "warning: --insecure: the provider's TLS certificates are not verified; the \
                 result records that this run was unverified"
            );
        }
        TransportSettings {
            tls: TlsSettings {
                ca_certs: self.ca_certs.clone(),
                insecure: self.insecure,
                client_certificate: self
                    .client_cert
                    .clone()
                    .zip(self.client_key.clone())
                    .map(|(chain, key)| ClientCertificate { chain, key }),
            },
            http2: self.http2,
            resolve: self.resolve.clone(),
        }
    }
}

/// The test users seeds sign in as, shared by `seed` and `capacity`.
#[derive(Debug, Args)]
pub(crate) struct UserArgs {
    /// Password of the test users.
    #[arg(
        long,
        env = "LOADGEN_PASSWORD",
        default_value = "loadtest",
        hide_env_values = true
    )]
    pub(crate) password: String,
    /// Users are PREFIX00001, PREFIX00002 ...
    #[arg(long, env = "LOADGEN_USER_PREFIX", default_value = "user-loadtest-")]
    pub(crate) user_prefix: String,
}

/// How to fill in the provider's pages where they do not mark their fields, shared by `seed`
/// (its sign-ins) and `run` (TEST 3's consent pages).
#[derive(Debug, Args)]
pub(crate) struct FormArgs {
    /// The `name` of the login form's user-name input, when the page does not mark it (by type
    /// email, autocomplete=username, or a name such as username, login or email).
    #[arg(long, env = "LOADGEN_USERNAME_FIELD")]
    pub(crate) username_field: Option<String>,
    /// The `name` of the login form's password input, when it is not a password-type input.
    #[arg(long, env = "LOADGEN_PASSWORD_FIELD")]
    pub(crate) password_field: Option<String>,
    /// A word of the consent page's approve button (its name, value or text), when it is not
    /// one of approve, accept, allow, authorize, continue, consent, confirm or yes.
    #[arg(long, env = "LOADGEN_APPROVE_BUTTON")]
    pub(crate) approve_button: Option<String>,
}

impl FormArgs {
    pub(crate) fn hints(&self) -> FormHints {
        FormHints {
            username_field: self.username_field.clone(),
            password_field: self.password_field.clone(),
            approve_button: self.approve_button.clone(),
        }
    }
}

/// The arrival-rate profile, shared by `run` and by `seed` (which sizes TEST 1's codes from it).
#[derive(Debug, Args)]
pub(crate) struct ProfileArgs {
    /// Steady arrival rate, iterations per second.
    #[arg(long, env = "LOADGEN_RATE", default_value_t = 300.0)]
    pub(crate) rate: f64,
    /// Linear ramp from 0 to the rate.
    #[arg(long, env = "LOADGEN_RAMP_UP", default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) ramp_up: Duration,
    /// Time at the steady rate.
    #[arg(long, env = "LOADGEN_DURATION", default_value = "120s", value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
    /// Linear ramp from the rate to 0.
    #[arg(long, env = "LOADGEN_RAMP_DOWN", default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) ramp_down: Duration,
}

impl ProfileArgs {
    pub(crate) fn profile(&self) -> LoadProfile {
        LoadProfile::new(self.rate, self.ramp_up, self.duration, self.ramp_down)
    }
}

/// Reports besides the result file, for people and for CI.
#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Also write a self-contained HTML report here: verdict, thresholds, percentiles and plots
    /// of the rate, latency and errors over time.
    #[arg(long, env = "LOADGEN_HTML")]
    pub(crate) html: Option<PathBuf>,
    /// Also write a JUnit XML report here: one test case per threshold, a failure carrying the
    /// observed value.
    #[arg(long, env = "LOADGEN_JUNIT")]
    pub(crate) junit: Option<PathBuf>,
}

impl OutputArgs {
    /// Writes the reports asked for (of one run, or of a mix's sections), and appends the
    /// summary to the GitHub Actions job summary when `GITHUB_STEP_SUMMARY` names one.
    pub(crate) fn write(
        &self,
        title: &str,
        results: &[RunResult],
        summary_text: &str,
    ) -> anyhow::Result<()> {
        if let Some(path) = &self.html {
            std::fs::write(path, loadgen::results::html_report::render(title, results))
                .with_context(|| format!("writing the HTML report to {}", path.display()))?;
        }
        if let Some(path) = &self.junit {
            std::fs::write(path, loadgen::results::junit::render("loadgen", results)?)
                .with_context(|| format!("writing the JUnit report to {}", path.display()))?;
        }
        loadgen::results::printer::append_to_github_job_summary(&format!(
            "\n```\n{}\n```",
            summary_text.trim()
        ))
        .context("appending to the GitHub job summary (GITHUB_STEP_SUMMARY)")?;
        Ok(())
    }
}

pub(crate) fn parse_check(name: &str) -> Result<Check, String> {
    Check::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Check::all().map(Check::as_str).collect();
        format!(
            "no check is called '{name}'; the checks are {}",
            known.join(", ")
        )
    })
}

pub(crate) fn progress_mode(no_progress: bool) -> ProgressMode {
    if no_progress {
        ProgressMode::Hidden
    } else {
        ProgressMode::Auto
    }
}
