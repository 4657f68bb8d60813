//! What `loadgen run` is asked to do besides the seeds, and the hash that tells whether shards
//! were given the same run.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::http::connection::TransportSettings;
use crate::plan::schedule::LoadProfile;
use crate::plan::shard::{Shard, format_start, hash_hex};
use crate::protocol::browser::FormHints;
use crate::protocol::client_credentials::ClientCredentials;
use crate::protocol::machine_clients::MachineClients;
use crate::protocol::test_users::TestUsers;
use crate::protocol::token_verifier::AccessTokenFormat;
use crate::results::names::CheckSet;
use crate::results::thresholds::Thresholds;
use crate::run::scenario::ScenarioKind;
use crate::run::scenario::api::settings::ApiSettings;
use crate::run::start_line::StartLine;
use crate::terminal::ProgressMode;

/// Everything `loadgen run` needs besides the seeds.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Scenario to run.
    pub scenario: ScenarioKind,
    /// The issuer URL of the IdP, `http[s]://host[:port][/path]`.
    pub target: String,
    /// How to connect: TLS trust and client certificate, HTTP/2, names resolved by hand.
    pub transport: TransportSettings,
    /// Arrival-rate profile.
    pub profile: LoadProfile,
    /// Virtual users of the whole run (most iterations in flight at once); a shard sets up its
    /// share of them.
    pub max_vus: usize,
    /// Per-request timeout, also the longest an iteration may wait for a free VU.
    pub timeout: Duration,
    /// The OAuth client.
    pub client: ClientCredentials,
    /// Audience access tokens must carry: RFC 9068 ones the issuer's when `None` (the mock IdP's
    /// default), other JWTs then none.
    pub access_token_audience: Option<String>,
    /// The client that introspects opaque access tokens (a resource server's credentials, as
    /// RFC 7662 deployments usually require); the test client when `None`.
    pub introspection_client: Option<ClientCredentials>,
    /// How to fill in the provider's pages where they do not mark their fields (TEST 3's consent
    /// pages).
    pub hints: FormHints,
    /// How access tokens are checked.
    pub access_token: AccessTokenFormat,
    /// The provider's authorization-code lifetime: a run refuses, before sending load, codes
    /// that would be older than this at their scheduled use. `None` checks nothing.
    pub code_lifetime: Option<Duration>,
    /// Open new connections for every iteration (k6's `noConnectionReuse`), as machine clients
    /// that keep no connection do: each iteration pays a TCP connect and a TLS handshake.
    pub new_connection_per_iteration: bool,
    /// Bind tokens to a DPoP key of each VU's own (RFC 9449).
    pub dpop: bool,
    /// Mint TEST 1's codes during the run, just ahead of use, through the seeded sessions,
    /// instead of taking them from the seeds.
    pub mint_ahead: bool,
    /// Where the seeds go back after the run, with each family's newest refresh token (the
    /// seed directory itself, for `loadgen run`); `None` keeps them as they were.
    pub seeds_out: Option<std::path::PathBuf>,
    /// Checks not made.
    pub skipped_checks: CheckSet,
    /// The gate.
    pub thresholds: Thresholds,
    /// Test id for the result; the scenario's when `None`.
    pub test_id: Option<String>,
    /// How to show progress.
    pub progress: ProgressMode,
    /// Which shard of the run this process sends ([`Shard::WHOLE`] on one machine).
    pub shard: Shard,
    /// When the schedule starts (wall clock): every shard sets up its VUs, then waits for it.
    /// `None` starts as soon as the VUs are ready.
    pub start_at: Option<SystemTime>,
    /// Names the run in its result; derived from the configuration when `None`.
    pub run_id: Option<String>,
    /// The `api` scenario's settings (`--api-url` ...).
    pub api: Option<ApiSettings>,
    /// The users the `login` scenario signs in as.
    pub users: TestUsers,
    /// The clients of the `client-credentials` scenario and the scope they ask for.
    pub machine_clients: MachineClients,
    /// The p99 of the generator's own lag (intended start to the start of an iteration) above
    /// which the result says that its latency figures include loadgen's delay.
    pub max_generator_lag: Duration,
    /// The start line this run shares with the other scenarios of its mix: its clock starts
    /// when all of theirs do. `None` for a run on its own.
    pub start_line: Option<Arc<StartLine>>,
}

impl RunConfig {
    /// A configuration with the mock IdP's client, the gate's thresholds and no progress output.
    pub fn new(scenario: ScenarioKind, target: impl Into<String>, profile: LoadProfile) -> Self {
        Self {
            scenario,
            target: target.into(),
            transport: TransportSettings::default(),
            profile,
            max_vus: 300,
            timeout: Duration::from_secs(5),
            client: ClientCredentials::default(),
            access_token_audience: None,
            introspection_client: None,
            hints: FormHints::default(),
            access_token: AccessTokenFormat::Auto,
            seeds_out: None,
            mint_ahead: false,
            new_connection_per_iteration: false,
            dpop: false,
            code_lifetime: None,
            skipped_checks: CheckSet::default(),
            thresholds: Thresholds::default(),
            test_id: None,
            progress: ProgressMode::Hidden,
            shard: Shard::WHOLE,
            start_at: None,
            run_id: None,
            api: None,
            users: TestUsers::default(),
            machine_clients: MachineClients::default(),
            start_line: None,
            max_generator_lag: Duration::from_millis(5),
        }
    }

    /// Whether the run talks to an OpenID provider: every scenario does, but the `api` one
    /// with tokens from elsewhere (signed by loadgen, the application's own login or mint).
    pub fn needs_provider(&self) -> bool {
        !(self.scenario == ScenarioKind::Api
            && self
                .api
                .as_ref()
                .is_some_and(|api| !api.token_source.needs_provider()))
    }

    /// SHA-256 of everything the shards of one run must share: two shards whose hashes differ
    /// were not sending parts of the same run. The shard's own index and file paths are left out.
    pub fn hash(&self) -> String {
        let canonical = serde_json::json!({
            "scenario": self.scenario.name(),
            "test_id": self.test_id,
            "target": self.target,
            "insecure": self.transport.tls.insecure,
            "http2": self.transport.http2,
            "profile": self.profile,
            "max_vus": self.max_vus,
            "timeout_ms": self.timeout.as_millis().to_string(),
            "client_id": self.client.client_id,
            "public_client": self.client.is_public(),
            "client_auth": self.client.auth.metadata_name(),
            "redirect_uri": self.client.redirect_uri,
            "scope": self.client.scope,
            "access_token_audience": self.access_token_audience,
            "introspection_client_id": self
                .introspection_client
                .as_ref()
                .map(|client| &client.client_id),
            "access_token": format!("{:?}", self.access_token),
            "code_lifetime_s": self.code_lifetime.map(|lifetime| lifetime.as_secs()),
            "mint_ahead": self.mint_ahead,
            "new_connection_per_iteration": self.new_connection_per_iteration,
            "skipped_checks": self.skipped_checks.names(),
            "thresholds": self.thresholds,
            "shards": self.shard.count(),
            "planned_start": self.start_at.map(format_start),
        });
        // Added only for the scenarios they concern, so the hashes of the other runs stay what
        // they were.
        let mut canonical = canonical;
        if let Some(fields) = canonical.as_object_mut() {
            if let Some(api) = &self.api {
                fields.insert("api".into(), api.canonical());
            }
            if self.dpop {
                fields.insert("dpop".into(), true.into());
            }
            if self.scenario == ScenarioKind::Login {
                fields.insert(
                    "users".into(),
                    serde_json::json!({"prefix": self.users.prefix, "count": self.users.count}),
                );
            }
            if self.scenario == ScenarioKind::ClientCredentials {
                fields.insert(
                    "machine_clients".into(),
                    serde_json::json!({
                        "ids": self.machine_clients.ids(),
                        "scope": self.machine_clients.scope,
                    }),
                );
            }
        }
        // serde_json's maps are sorted by key, so the text is canonical.
        hash_hex(canonical.to_string().as_bytes())
    }
}
