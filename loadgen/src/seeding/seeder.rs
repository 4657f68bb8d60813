//! `loadgen seed`: makes sessions, authorization codes and refresh-token families through the
//! IdP's public endpoints, as a browser and a client would: each user signs in once through the
//! provider's own login (and consent) pages ([`crate::protocol::browser`]), and its browser then gets the
//! codes; families are codes redeemed at the token endpoint. The code of each sign-in is redeemed
//! too, so that every seed of the user records the subject its verified ID token names, which
//! the run's tokens must carry. Concurrent, with bounded retries.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use indicatif::ProgressBar;
use tokio::task::JoinSet;
use url::Url;

use crate::http::address::Address;
use crate::http::client::VuClient;
use crate::http::connection::TransportSettings;
use crate::http::target::{Target, TargetError};
use crate::plan::shard::Shard;
use crate::protocol::authorization::{AuthorizationRequest, IssuerExpectation};
use crate::protocol::browser::{Browser, Credentials, FormHints};
use crate::protocol::client_credentials::ClientCredentials;
use crate::protocol::code_flow::{
    FlowEndpoints, FlowError, SignedIn, authorization_address, redeem_code, sign_in,
};
use crate::protocol::discovery::{DiscoveryError, ProviderMetadata, fetch_provider_metadata};
use crate::protocol::jwks::{JwksSource, KeySet, REFETCH_INTERVAL};
use crate::protocol::test_users::test_user_name;
use crate::protocol::token_request::token_request_headers;
use crate::protocol::token_verifier::{JwksError, TokenVerifier};
use crate::seeding::seed_files::{
    CodeSeed, RefreshTokenSeed, SeedFileError, Seeds, SessionSeed, unix_now,
};
use crate::terminal::{ProgressMode, progress_bar};

/// What to make, and how.
#[derive(Debug, Clone)]
pub struct SeedConfig {
    /// Base URL of the IdP.
    pub target: String,
    /// How to connect: TLS trust and client certificate, HTTP/2, names resolved by hand.
    pub transport: TransportSettings,
    /// Authorization codes to mint.
    pub codes: usize,
    /// Refresh-token families to open, one per user.
    pub refresh_families: usize,
    /// Sessions to record, one per user.
    pub sessions: usize,
    /// The OAuth client.
    pub client: ClientCredentials,
    /// Password of every test user.
    pub password: String,
    /// Users are `{user_prefix}{n:05}` from 1.
    pub user_prefix: String,
    /// How to find the login form's fields and the consent page's approve button.
    pub hints: FormHints,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Attempts per seed before giving up.
    pub attempts: u32,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Progress bar on a terminal, or nothing.
    pub progress: ProgressMode,
    /// Seed only this shard's slice of the counts above, for its own users (see
    /// [`make_seeds`]); [`Shard::WHOLE`] seeds everything.
    pub shard: Shard,
}

impl SeedConfig {
    /// The mock IdP's defaults: its client, users and password; 64 requests in flight.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            transport: TransportSettings::default(),
            codes: 0,
            refresh_families: 0,
            sessions: 0,
            client: ClientCredentials::default(),
            password: "loadtest".into(),
            user_prefix: "user-loadtest-".into(),
            hints: FormHints::default(),
            concurrency: 64,
            attempts: 3,
            timeout: Duration::from_secs(10),
            progress: ProgressMode::Hidden,
            shard: Shard::WHOLE,
        }
    }

    fn user(&self, number: usize) -> String {
        test_user_name(&self.user_prefix, number)
    }
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The target URL is not usable.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Discovery failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// A seed could not be made within the allowed attempts; `detail` is what the IdP said.
    #[error("{what} failed after {attempts} attempts: {detail}")]
    Request {
        /// Which seed.
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The IdP's error text or the transport error.
        detail: String,
    },
    /// The JWKS cannot verify the ID tokens the subjects are read from.
    #[error("the provider's JWKS cannot be used to verify its ID tokens: {0}")]
    Jwks(#[from] JwksError),
    /// Writing the files failed.
    #[error(transparent)]
    Files(#[from] SeedFileError),
    /// A worker task panicked.
    #[error("seeding worker failed: {0}")]
    Worker(String),
}

#[derive(Debug, Clone, Copy)]
enum Job {
    Login(usize),
    Code(usize),
    Family(usize),
}

#[derive(Debug)]
enum Made {
    /// A signed-in user's session seed, its number and its browser.
    Session(SessionSeed, usize, Box<Browser>),
    Code(CodeSeed),
    Family(RefreshTokenSeed),
}

impl SeedContext {
    /// The subject user number `user` signed in as, when it was learnt.
    fn subject_of(&self, user: usize) -> Option<String> {
        self.signed_in
            .get(&user)
            .and_then(|signed_in| signed_in.subject.clone())
    }

    /// The user who gets the shard's `position`-th code: the shard's session users in turn.
    fn user_of_code(&self, position: usize) -> usize {
        let users = self.session_users_of_shard.max(1);
        let shard = self.config.shard;
        (position % users) * shard.count() as usize + shard.index() as usize
    }
}

/// Which users hold what: sessions and codes (TEST 3 and TEST 1) on users `0..session_users`,
/// refresh-token families (TEST 2) on users of their own from `family_base`, so that a code
/// redeemed in TEST 1 or TEST 3 can never replace a family at a provider that keeps one family
/// per user and client. `family_base` is a multiple of the shard count, so user `u` stays shard
/// `u mod N`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UserLayout {
    session_users: usize,
    family_base: usize,
}

impl UserLayout {
    fn of(config: &SeedConfig) -> Self {
        let shards = config.shard.count() as usize;
        // Codes need a signed-in user of the shard's own to be minted for.
        let session_users = config
            .sessions
            .max(if config.codes > 0 { shards } else { 0 });
        Self {
            session_users,
            family_base: session_users.div_ceil(shards) * shards,
        }
    }

    /// The user of family number `family`.
    fn family_user(self, family: usize) -> usize {
        self.family_base + family
    }
}

/// A user signed in during seeding.
#[derive(Debug, Clone)]
struct SignedInUser {
    /// Its browser, which mints each of its codes and keeps the cookies the provider sets on the
    /// way. Held while one code is minted: a user's browser asks for one code at a time, as a
    /// person's does. A provider that shows its consent page on every authorization keeps the
    /// approval in the session, and concurrent interactions of one session overwrite each
    /// other's (node-oidc-provider then shows an error page); it also gives the session a new
    /// identifier after each interaction, ending the old one.
    browser: Arc<tokio::sync::Mutex<Browser>>,
    /// The subject its ID token named, when it carried one.
    subject: Option<String>,
    /// Whether the provider showed its consent page again when this signed-in user asked for
    /// a code.
    asks_consent_every_time: Arc<AtomicBool>,
}

#[derive(Debug, Clone)]
struct SeedContext {
    config: SeedConfig,
    /// The authorization endpoint, where each user's browser starts signing in.
    authorize: Address,
    /// The token endpoint.
    token: Address,
    /// The pushed authorization request endpoint, when the provider offers one.
    par: Option<Address>,
    token_headers: Vec<(HeaderName, HeaderValue)>,
    issuer: String,
    /// Whether discovery promises an RFC 9207 `iss` on every authorization response.
    issuer_parameter_required: bool,
    /// Each signed-in user, by user number.
    signed_in: HashMap<usize, SignedInUser>,
    /// How many of this shard's users hold sessions and codes.
    session_users_of_shard: usize,
    /// Which users hold what.
    layout: UserLayout,
    /// Verifies the ID tokens the subjects are read from; fetched again when it holds no key
    /// (a provider that makes its key on first use) or not the token's.
    keys: Arc<KeySet>,
}

/// A failed attempt; `retry` is false when trying again cannot help (wrong password).
struct Attempt {
    detail: String,
    retry: bool,
}

struct Worker {
    client: VuClient,
    context: Arc<SeedContext>,
}

impl Worker {
    async fn make(&mut self, job: Job) -> Result<Made, Attempt> {
        match job {
            Job::Login(user) => {
                let (session, browser) = self.login(user).await?;
                Ok(Made::Session(session, user, Box::new(browser)))
            }
            Job::Code(number) => {
                let position = usize::try_from(self.context.config.shard.local(number as u64))
                    .unwrap_or(usize::MAX);
                let user = self.context.user_of_code(position);
                let (code, request) = self.mint_code(user).await?;
                Ok(Made::Code(CodeSeed {
                    code,
                    code_verifier: request.code_verifier,
                    redirect_uri: self.context.config.client.redirect_uri.clone(),
                    client_id: self.context.config.client.client_id.clone(),
                    user_id: self.context.config.user(user),
                    nonce: request.nonce,
                    minted_at: Some(unix_now()),
                    subject: self.context.subject_of(user),
                }))
            }
            Job::Family(family) => {
                let user = self.context.layout.family_user(family);
                self.open_family(user).await.map(Made::Family)
            }
        }
    }

    /// Signs `user` in through the provider's own pages, in a new browser: the session seed is
    /// the `Cookie` header that browser sends to the authorization endpoint.
    async fn login(&mut self, user: usize) -> Result<(SessionSeed, Browser), Attempt> {
        let context = Arc::clone(&self.context);
        let mut browser = Browser::new();
        let (signed_in, request) = self.authorize_in(&mut browser, user).await?;
        let subject = self.learn_subject(&request, &signed_in.code).await?;
        let authorize_url = Url::parse(&context.authorize.to_string()).map_err(|_| Attempt {
            detail: format!("{} is not a URL", context.authorize),
            retry: false,
        })?;
        let cookie = browser
            .cookie_header(&authorize_url)
            .ok_or_else(|| Attempt {
                detail: "the provider signed the user in but set no cookie for its authorization \
                     endpoint, so TEST 3 could not reuse the session"
                    .into(),
                retry: false,
            })?;
        let session = SessionSeed {
            user_id: context.config.user(user),
            cookie: cookie.to_str().unwrap_or_default().to_owned(),
            subject,
        };
        Ok((session, browser))
    }

    /// Redeems the code of a user's sign-in and reads the subject its verified ID token names:
    /// `None` when the provider issued no ID token (no `openid` scope); an ID token that does not
    /// verify is an error, never a seed left unchecked.
    async fn learn_subject(
        &mut self,
        request: &AuthorizationRequest,
        code: &str,
    ) -> Result<Option<String>, Attempt> {
        let context = Arc::clone(&self.context);
        // Seeds are made without DPoP: they are handed to whichever VU runs, whose own key
        // binds the tokens it gets from them.
        let tokens = redeem_code(
            &mut self.client,
            &Self::endpoints(&context),
            request,
            code,
            None,
        )
        .await
        .map_err(Attempt::from)?;
        let Some(id_token) = tokens.id_token else {
            return Ok(None);
        };
        match context.keys.verify_id_token(&id_token).await {
            Ok(verified) => Ok(Some(verified.claims.sub)),
            Err(error) => Err(Attempt {
                detail: format!(
                    "the ID token of the sign-in did not verify against the provider's JWKS \
                     ({error}{}), so the seeds could not record the user's subject",
                    context
                        .keys
                        .note()
                        .map(|note| format!("; {note}"))
                        .unwrap_or_default()
                ),
                retry: false,
            }),
        }
    }

    /// One authorization request in `browser` as `user`: the code and the request it answers.
    async fn authorize_in(
        &mut self,
        browser: &mut Browser,
        user: usize,
    ) -> Result<(SignedIn, AuthorizationRequest), Attempt> {
        let context = Arc::clone(&self.context);
        let username = context.config.user(user);
        let request = AuthorizationRequest::fresh();
        let endpoints = Self::endpoints(&context);
        let start = authorization_address(&mut self.client, &endpoints, &request)
            .await
            .map_err(Attempt::from)?;
        let signed_in = sign_in(
            browser,
            &mut self.client,
            &endpoints,
            &request,
            &start,
            Credentials {
                username: &username,
                password: &context.config.password,
            },
            &context.config.hints,
        )
        .await
        .map_err(|error| Attempt {
            retry: error.is_retryable(),
            detail: error.to_string(),
        })?;
        Ok((signed_in, request))
    }

    fn endpoints(context: &SeedContext) -> FlowEndpoints<'_> {
        FlowEndpoints {
            authorize: &context.authorize,
            token: &context.token,
            par: context.par.as_ref(),
            token_headers: &context.token_headers,
            client: &context.config.client,
            issuer: IssuerExpectation {
                issuer: &context.issuer,
                required: context.issuer_parameter_required,
            },
            timeout: context.config.timeout,
            hints: &context.config.hints,
        }
    }

    /// A code of `user`, got by its signed-in browser (one redirect, when the provider remembers
    /// the session and the consent). A provider that asks consent on every authorization may
    /// bind each code to the session's newest grant (node-oidc-provider does: a later consent in
    /// the session ends the session's earlier codes), so once a user's code needed consent, each
    /// further code of that user is minted by a sign-in of its own, in a new browser.
    async fn mint_code(&mut self, user: usize) -> Result<(String, AuthorizationRequest), Attempt> {
        let context = Arc::clone(&self.context);
        let signed_in = context.signed_in.get(&user).ok_or_else(|| Attempt {
            detail: format!("there is no session for user {}", context.config.user(user)),
            retry: false,
        })?;
        let mut browser = signed_in.browser.lock().await;
        // Read under the lock: the codes of one user wait for each other until the first says.
        if signed_in.asks_consent_every_time.load(Ordering::Relaxed) {
            drop(browser);
            let (minted, request) = self.authorize_in(&mut Browser::new(), user).await?;
            return Ok((minted.code, request));
        }
        let (minted, request) = self.authorize_in(&mut browser, user).await?;
        if minted.consents_approved > 0 {
            signed_in
                .asks_consent_every_time
                .store(true, Ordering::Relaxed);
        }
        Ok((minted.code, request))
    }

    async fn open_family(&mut self, user: usize) -> Result<RefreshTokenSeed, Attempt> {
        let context = Arc::clone(&self.context);
        let config = &context.config;
        let (code, request) = self.mint_code(user).await?;
        let tokens = redeem_code(
            &mut self.client,
            &Self::endpoints(&context),
            &request,
            &code,
            None,
        )
        .await
        .map_err(Attempt::from)?;
        let refresh_token = tokens.refresh_token.ok_or_else(|| Attempt {
            detail: "the token endpoint issued no refresh_token: allow the client the \
                     refresh_token grant (and offline access, if the provider asks for it)"
                .into(),
            retry: false,
        })?;
        Ok(RefreshTokenSeed {
            user_id: config.user(user),
            refresh_token,
            client_id: config.client.client_id.clone(),
            subject: context.subject_of(user),
        })
    }
}

impl From<FlowError> for Attempt {
    fn from(error: FlowError) -> Self {
        Attempt {
            retry: error.is_retryable(),
            detail: error.to_string(),
        }
    }
}

fn describe(job: Job, config: &SeedConfig) -> String {
    match job {
        Job::Login(user) => format!("login of {}", config.user(user)),
        Job::Code(number) => format!("authorization code #{number}"),
        Job::Family(family) => format!(
            "refresh-token family of {}",
            config.user(UserLayout::of(config).family_user(family))
        ),
    }
}

/// Runs `jobs` on `concurrency` workers; results come back in job order. Stops at the first seed
/// that fails all its attempts.
async fn run_jobs(
    context: &Arc<SeedContext>,
    target: &Arc<Target>,
    jobs: Vec<Job>,
    bar: &ProgressBar,
) -> Result<Vec<Made>, SeedError> {
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let mut workers = JoinSet::new();
    let worker_count = context.config.concurrency.clamp(1, jobs.len().max(1));
    for _ in 0..worker_count {
        let mut worker = Worker {
            client: VuClient::new(Arc::clone(target)),
            context: Arc::clone(context),
        };
        let (jobs, next, failed, bar) = (
            Arc::clone(&jobs),
            Arc::clone(&next),
            Arc::clone(&failed),
            bar.clone(),
        );
        workers.spawn(async move {
            let mut made = Vec::new();
            let attempts = worker.context.config.attempts.max(1);
            while !failed.load(Ordering::Relaxed) {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(&job) = jobs.get(index) else { break };
                let mut attempt = 0;
                let outcome = loop {
                    attempt += 1;
                    match worker.make(job).await {
                        Ok(seed) => break Ok(seed),
                        Err(error) if error.retry && attempt < attempts => {
                            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt)))
                                .await;
                        }
                        Err(error) => break Err((error.detail, attempt)),
                    }
                };
                match outcome {
                    Ok(seed) => {
                        made.push((index, seed));
                        bar.inc(1);
                    }
                    Err((detail, attempts)) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(SeedError::Request {
                            what: describe(job, &worker.context.config),
                            attempts,
                            detail,
                        });
                    }
                }
            }
            Ok(made)
        });
    }
    let mut all = Vec::with_capacity(jobs.len());
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(made)) => all.extend(made),
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            Err(panic) => {
                first_error.get_or_insert(SeedError::Worker(panic.to_string()));
            }
        }
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    all.sort_by_key(|(index, _)| *index);
    Ok(all.into_iter().map(|(_, seed)| seed).collect())
}

/// Makes the seeds in memory.
///
/// With a shard other than [`Shard::WHOLE`], the counts are the whole run's and only the shard's
/// slice is made, as [`Seeds::for_shard`] would take it from the whole run's seeds: every N-th
/// code, family and session from its index, for users of its own (user `u` belongs to shard
/// `u mod N`), so shards seeding side by side never share a user, a code or a family.
pub async fn make_seeds(config: &SeedConfig) -> Result<Seeds, SeedError> {
    let shard = config.shard;
    let target = Arc::new(Target::with_transport(
        &config.target,
        config.transport.clone(),
    )?);
    // Waits for a busy provider and endpoints taken from RFC 8414 matter to the run's result,
    // which fetches the metadata again and says so; seeds have no notes.
    let ProviderMetadata {
        discovery,
        endpoints,
        jwks,
        notes: _,
    } = fetch_provider_metadata(&target, config.timeout).await?;
    // The access-token audience plays no part here: only ID tokens (audience: the client) are
    // read. A JWKS without keys is fetched again when the first ID token comes.
    let verifier =
        match TokenVerifier::from_jwks(&jwks, &discovery.issuer, None, &config.client.client_id) {
            Err(JwksError::Empty) => TokenVerifier::empty(),
            verifier => verifier?,
        };
    let keys = Arc::new(KeySet::new(
        verifier,
        JwksSource {
            client: VuClient::new(Arc::clone(&target)),
            address: endpoints.jwks.clone(),
            issuer: discovery.issuer.clone(),
            access_token_audience: None,
            client_id: config.client.client_id.clone(),
            timeout: config.timeout,
            interval: REFETCH_INTERVAL,
        },
    ));
    let layout = UserLayout::of(config);
    let owned = |total: usize| (0..total).filter(move |&k| shard.owns(k as u64));
    let share = |total: usize| owned(total).count();
    let session_users_of_shard = share(layout.session_users);
    let total =
        (session_users_of_shard + share(config.codes) + 2 * share(config.refresh_families)) as u64;
    let bar = if config.progress == ProgressMode::Auto && std::io::stderr().is_terminal() {
        progress_bar(
            total,
            "seeding [{elapsed_precise}] {bar:30} {pos}/{len} ({per_sec}, eta {eta})",
        )
    } else {
        ProgressBar::hidden()
    };

    // Assertions (private_key_jwt) name this provider's token endpoint or issuer.
    let mut bound = config.clone();
    bound.client = config
        .client
        .for_provider(&discovery.issuer, &endpoints.token.to_string());
    let mut context = SeedContext {
        token_headers: token_request_headers(&bound.client),
        config: bound,
        authorize: endpoints.authorize,
        token: endpoints.token,
        par: endpoints.pushed_authorization,
        issuer: discovery.issuer.clone(),
        issuer_parameter_required: discovery.authorization_response_iss_parameter_supported,
        signed_in: HashMap::new(),
        session_users_of_shard,
        layout,
        keys,
    };
    let logins = owned(layout.session_users)
        .chain(owned(config.refresh_families).map(|family| layout.family_user(family)))
        .map(Job::Login)
        .collect();
    let logins = run_jobs(&Arc::new(context.clone()), &target, logins, &bar).await?;
    let mut sessions = Vec::with_capacity(session_users_of_shard);
    for made in logins {
        if let Made::Session(session, user, browser) = made {
            context.signed_in.insert(
                user,
                SignedInUser {
                    browser: Arc::new(tokio::sync::Mutex::new(*browser)),
                    subject: session.subject.clone(),
                    asks_consent_every_time: Arc::default(),
                },
            );
            if user < layout.session_users {
                sessions.push((user, session));
            }
        }
    }

    let jobs = owned(config.codes)
        .map(Job::Code)
        .chain(owned(config.refresh_families).map(Job::Family))
        .collect();
    let context = Arc::new(context);
    let made = run_jobs(&context, &target, jobs, &bar).await?;
    bar.finish_and_clear();

    // Each session as its browser holds it after minting, which may have renewed it.
    if let Ok(authorize_url) = Url::parse(&context.authorize.to_string()) {
        for (user, session) in &mut sessions {
            let Some(signed_in) = context.signed_in.get(user) else {
                continue;
            };
            if let Some(cookie) = signed_in.browser.lock().await.cookie_header(&authorize_url) {
                session.cookie = cookie.to_str().unwrap_or_default().to_owned();
            }
        }
    }
    let mut seeds = Seeds {
        sessions: sessions.into_iter().map(|(_, session)| session).collect(),
        shard: (!shard.is_whole()).then_some(shard),
        ..Seeds::default()
    };
    seeds.sessions.truncate(share(config.sessions));
    for seed in made {
        match seed {
            Made::Code(code) => seeds.authorization_codes.push(code),
            Made::Family(family) => seeds.refresh_tokens.push(family),
            Made::Session(..) => {}
        }
    }
    Ok(seeds)
}

/// Makes the seeds and writes the three files into `out` (each atomically; nothing is written
/// if any seed fails).
pub async fn seed(config: &SeedConfig, out: &Path) -> Result<Seeds, SeedError> {
    let seeds = make_seeds(config).await?;
    seeds.save(out)?;
    Ok(seeds)
}
