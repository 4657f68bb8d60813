//! What the virtual users of one run share: the target, the client, the endpoints' paths, the
//! key set, the seeds, the recorder, the live counters and the first note of each failure.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tokio::time::Instant;

use crate::http::target::Target;
use crate::protocol::authorization::IssuerExpectation;
use crate::protocol::browser::FormHints;
use crate::protocol::client_credentials::ClientCredentials;
use crate::protocol::code_flow::FlowEndpoints;
use crate::protocol::jwks::KeySet;
use crate::protocol::machine_clients::MachineClients;
use crate::protocol::test_users::TestUsers;
use crate::protocol::token_request::token_request_headers;
use crate::protocol::token_verifier::AccessTokenFormat;
use crate::results::names::{AccessTokenBasis, CheckSet};
use crate::results::recorder::ShardedRecorder;
use crate::run::scenario::ScenarioKind;
use crate::run::scenario::api::settings::{ApiSettings, ApiTally};
use crate::run::scenario::families::Families;
use crate::run::stop::{StopHandle, StopSignal, stop_signal};
use crate::seeding::mint_ahead::MintedCodes;
use crate::seeding::seed_files::Seeds;

/// Where the VUs' requests go, as discovery names the endpoints.
pub type EndpointPaths = crate::protocol::discovery::ProviderEndpoints;

/// Counters the progress line reads while the run goes on.
#[derive(Debug, Default)]
pub struct LiveCounters {
    /// Requests finished (answered or failed).
    pub requests: AtomicU64,
    /// Requests that failed (transport error or unexpected status).
    pub failed_requests: AtomicU64,
    /// Iterations running now.
    pub in_flight: AtomicU64,
    /// Iterations started.
    pub started: AtomicU64,
    /// Iterations dropped for want of a free VU.
    pub dropped: AtomicU64,
}

/// One due iteration handed to a virtual user.
#[derive(Debug, Clone, Copy)]
pub struct Iteration {
    /// 0-based, unique within the run (TEST 1 uses code number `index`).
    pub index: u64,
    /// When the schedule meant it to start; latency is measured from here.
    pub intended_start: Instant,
    /// The second of the schedule it was due in ([`crate::results::timeline`]).
    pub interval: u32,
}

/// Everything the virtual users of one run share.
#[derive(Debug)]
pub struct RunContext {
    /// Scenario being run.
    pub scenario: ScenarioKind,
    /// Where requests go.
    pub target: Arc<Target>,
    /// The OAuth client.
    pub client: ClientCredentials,
    /// Headers of every token request: the form content type and the client's Basic credentials.
    token_headers: Vec<(HeaderName, HeaderValue)>,
    /// Request paths.
    pub paths: EndpointPaths,
    /// The issuer discovery named.
    pub issuer: String,
    /// Whether discovery promises an RFC 9207 `iss` on every authorization response.
    pub issuer_parameter_required: bool,
    /// Checks the signatures and claims of tokens against the JWKS, fetched again on an unknown
    /// `kid`.
    pub keys: KeySet,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The seeds of the run.
    pub seeds: Seeds,
    /// Which refresh-token family each VU holds (TEST 2), and the spares.
    pub families: Families,
    /// Where measurements go.
    pub recorder: ShardedRecorder,
    /// Live counters.
    pub live: LiveCounters,
    /// How access tokens are checked.
    pub access_token: AccessTokenFormat,
    /// Whether the audience of access tokens was given (`--access-token-audience`): a JWT that
    /// is not RFC 9068's has its `aud` checked only then.
    pub access_token_audience_given: bool,
    /// Checks not made.
    pub skipped_checks: CheckSet,
    /// TEST 1's codes when they are minted during the run (`--mint-ahead`).
    pub minted_codes: Option<Arc<MintedCodes>>,
    /// The `api` scenario's settings and the tally of its tokens.
    pub api: Option<Arc<ApiTally>>,
    /// Every iteration opens new connections (`--new-connection-per-iteration`).
    pub new_connection_per_iteration: bool,
    /// Every VU binds its tokens to a DPoP key of its own (`--dpop`).
    pub dpop: bool,
    /// How to fill in the provider's pages (TEST 3's consent pages).
    pub hints: FormHints,
    /// The users the `login` scenario signs in as.
    pub users: TestUsers,
    /// The clients of the `client-credentials` scenario, and the scope they ask for.
    pub machine_clients: MachineClients,
    /// Iterations that approved a consent page on their way to a code.
    consents_approved: AtomicU64,
    /// Headers of every introspection request: the form content type and the introspecting
    /// client's Basic credentials (the test client's unless another was given).
    introspection_headers: Vec<(HeaderName, HeaderValue)>,
    /// The client that introspects, whose credentials go in the body when its method says so.
    introspection_client: ClientCredentials,
    /// Set by the first introspection of the run; when it called the token inactive, what that
    /// means and what to do, and the stop that ends the run at once.
    first_introspection_done: AtomicBool,
    introspection_refusal: OnceLock<String>,
    introspection_refused: (StopHandle, StopSignal),
    /// Whether another client than the test client introspects.
    pub introspection_client_given: bool,
    /// Access tokens checked, by the rules they were checked under.
    access_token_bases: [AtomicU64; <AccessTokenBasis as strum::EnumCount>::COUNT],
    /// Set when a token's subject could not be checked: its seed records none.
    subject_unknown: AtomicBool,
    /// Requests answered with a DPoP nonce challenge, and so sent again.
    dpop_nonce_challenges: AtomicU64,
    /// The explanation of the first occurrence of each kind of failure.
    first_failures: Mutex<BTreeMap<String, String>>,
    /// Failed iterations by the first failure each met.
    failed_iterations: Mutex<BTreeMap<String, u64>>,
}

impl RunContext {
    /// Assembles the shared state of a run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scenario: ScenarioKind,
        target: Arc<Target>,
        client: ClientCredentials,
        paths: EndpointPaths,
        issuer: String,
        keys: KeySet,
        timeout: Duration,
        seeds: Seeds,
        vus: usize,
        recorder_shards: usize,
    ) -> Self {
        // Assertions (private_key_jwt) name this provider's token endpoint or issuer.
        let client = client.for_provider(&issuer, &paths.token.to_string());
        Self {
            scenario,
            target,
            token_headers: token_request_headers(&client),
            introspection_headers: token_request_headers(&client),
            introspection_client_given: false,
            first_introspection_done: AtomicBool::new(false),
            introspection_refusal: OnceLock::new(),
            introspection_refused: stop_signal(),
            introspection_client: client.clone(),
            hints: FormHints::default(),
            users: TestUsers::default(),
            machine_clients: MachineClients::default(),
            consents_approved: AtomicU64::new(0),
            client,
            paths,
            issuer,
            issuer_parameter_required: false,
            keys,
            timeout,
            families: Families::new(vus, seeds.refresh_tokens.len()),
            seeds,
            recorder: ShardedRecorder::new(recorder_shards),
            live: LiveCounters::default(),
            access_token: AccessTokenFormat::Auto,
            access_token_audience_given: false,
            skipped_checks: CheckSet::default(),
            minted_codes: None,
            api: None,
            new_connection_per_iteration: false,
            dpop: false,
            access_token_bases: Default::default(),
            subject_unknown: AtomicBool::new(false),
            dpop_nonce_challenges: AtomicU64::new(0),
            first_failures: Mutex::new(BTreeMap::new()),
            failed_iterations: Mutex::new(BTreeMap::new()),
        }
    }

    /// The same context, checking access tokens as `format` says (their audience too when
    /// `audience_given`) and skipping `skipped`.
    pub fn with_token_checks(
        mut self,
        format: AccessTokenFormat,
        audience_given: bool,
        skipped: CheckSet,
    ) -> Self {
        self.access_token = format;
        self.access_token_audience_given = audience_given;
        self.skipped_checks = skipped;
        self
    }

    /// The same context, introspecting as `client` when one is given (a resource server's
    /// credentials), and filling in the provider's pages with `hints`.
    pub fn with_introspection_and_pages(
        mut self,
        client: Option<&ClientCredentials>,
        hints: FormHints,
    ) -> Self {
        if let Some(client) = client {
            let client = client.for_provider(&self.issuer, &self.paths.token.to_string());
            self.introspection_headers = token_request_headers(&client);
            self.introspection_client_given = true;
            self.introspection_client = client;
        }
        self.hints = hints;
        self
    }

    /// Whether this is the run's first introspection answer (true once).
    pub fn is_first_introspection(&self) -> bool {
        !self.first_introspection_done.swap(true, Ordering::Relaxed)
    }

    /// The provider called the first token introspected inactive: remembers why, and stops the
    /// run at once, before its load.
    pub fn refuse_introspection(&self, advice: String) {
        let _ = self.introspection_refusal.set(advice);
        self.introspection_refused.0.stop();
    }

    /// Why the run stopped at its first introspection, if it did.
    pub fn introspection_refusal(&self) -> Option<&str> {
        self.introspection_refusal.get().map(String::as_str)
    }

    /// Resolves when the first introspection called its token inactive.
    pub fn introspection_refused_signal(&self) -> StopSignal {
        self.introspection_refused.1.clone()
    }

    /// The headers of every introspection request.
    pub fn introspection_headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.introspection_headers
    }

    /// The client that introspects.
    pub fn introspection_client(&self) -> &ClientCredentials {
        &self.introspection_client
    }

    /// Counts an iteration that approved a consent page.
    pub fn count_consent_approved(&self) {
        self.consents_approved.fetch_add(1, Ordering::Relaxed);
    }

    /// Iterations that approved a consent page.
    pub fn consents_approved(&self) -> u64 {
        self.consents_approved.load(Ordering::Relaxed)
    }

    /// The same context, refusing authorization responses without an RFC 9207 `iss` when
    /// `required` (discovery promises one).
    pub fn with_issuer_parameter(mut self, required: bool) -> Self {
        self.issuer_parameter_required = required;
        self
    }

    /// What the RFC 9207 `iss` of an authorization response must be.
    pub fn issuer_expectation(&self) -> IssuerExpectation<'_> {
        IssuerExpectation {
            issuer: &self.issuer,
            required: self.issuer_parameter_required,
        }
    }

    /// Where and how the unmeasured authorization-code flow runs against this run's provider.
    pub fn flow_endpoints(&self) -> FlowEndpoints<'_> {
        FlowEndpoints {
            authorize: &self.paths.authorize,
            par: self.paths.pushed_authorization.as_ref(),
            token: &self.paths.token,
            token_headers: self.token_headers(),
            client: &self.client,
            issuer: self.issuer_expectation(),
            timeout: self.timeout,
            hints: &self.hints,
        }
    }

    /// The same context, running the `api` scenario with `settings` on `vus` virtual users.
    pub fn with_api(mut self, settings: Option<ApiSettings>, vus: usize) -> Self {
        self.api = settings.map(|settings| Arc::new(ApiTally::new(settings, vus)));
        self
    }

    /// The same context, signing in as `users` (`login`) and asking for tokens as
    /// `machine_clients` (`client-credentials`).
    pub fn with_users_and_clients(
        mut self,
        users: TestUsers,
        machine_clients: MachineClients,
    ) -> Self {
        self.users = users;
        self.machine_clients = machine_clients;
        self
    }

    /// The same context, taking TEST 1's codes from `minted` instead of the seeds.
    pub fn with_minted_codes(mut self, minted: Option<Arc<MintedCodes>>) -> Self {
        self.minted_codes = minted;
        self
    }

    /// The same context, with every iteration opening new connections when `fresh`.
    pub fn with_new_connection_per_iteration(mut self, fresh: bool) -> Self {
        self.new_connection_per_iteration = fresh;
        self
    }

    /// The same context, every VU binding its tokens to a DPoP key of its own when `dpop`.
    pub fn with_dpop(mut self, dpop: bool) -> Self {
        self.dpop = dpop;
        self
    }

    /// Counts an access token checked under `basis`.
    pub fn count_access_token(&self, basis: AccessTokenBasis) {
        self.access_token_bases[basis as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// How many access tokens were checked under `basis`.
    pub fn access_tokens_checked(&self, basis: AccessTokenBasis) -> u64 {
        self.access_token_bases[basis as usize].load(Ordering::Relaxed)
    }

    /// Access tokens checked, by the name of each basis used (for the result).
    pub fn access_token_bases(&self) -> BTreeMap<String, u64> {
        AccessTokenBasis::all()
            .map(|basis| (basis.as_str().to_owned(), self.access_tokens_checked(basis)))
            .filter(|(_, count)| *count > 0)
            .collect()
    }

    /// Remembers that a token's subject could not be checked: its seed records none.
    pub fn note_subject_unknown(&self) {
        self.subject_unknown.store(true, Ordering::Relaxed);
    }

    /// Counts a request answered with a DPoP nonce challenge.
    pub fn count_dpop_nonce_challenge(&self) {
        self.dpop_nonce_challenges.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered with a DPoP nonce challenge so far.
    pub fn dpop_nonce_challenges(&self) -> u64 {
        self.dpop_nonce_challenges.load(Ordering::Relaxed)
    }

    /// Whether some token's subject could not be checked for want of a subject in its seed.
    pub fn subjects_unknown(&self) -> bool {
        self.subject_unknown.load(Ordering::Relaxed)
    }

    /// The headers of every token request.
    pub fn token_headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.token_headers
    }

    /// Keeps the first explanation of each kind of failure, for the result's notes.
    pub fn note_failure(&self, what: &str, detail: impl FnOnce() -> String) {
        let mut first = self
            .first_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !first.contains_key(what) {
            first.insert(what.to_owned(), detail());
        }
    }

    /// One sentence per kind of failure seen, with its first occurrence.
    pub fn failure_notes(&self) -> Vec<String> {
        let first = self
            .first_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        first
            .iter()
            .map(|(what, detail)| format!("First {what}: {detail}."))
            .collect()
    }

    /// Counts a failed iteration under `cause`, the first failure it met.
    pub fn count_failed_iteration(&self, cause: &str) {
        let mut causes = self
            .failed_iterations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match causes.get_mut(cause) {
            Some(count) => *count += 1,
            None => {
                causes.insert(cause.to_owned(), 1);
            }
        }
    }

    /// Failed iterations by the first failure each met.
    pub fn failed_iterations_by_cause(&self) -> BTreeMap<String, u64> {
        self.failed_iterations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The seed of iteration `iteration` (each is used once), `None` when the seeds ran out.
    pub fn seed_of<'a, T>(&self, seeds: &'a [T], iteration: Iteration) -> Option<&'a T> {
        usize::try_from(iteration.index)
            .ok()
            .and_then(|index| seeds.get(index))
    }
}
