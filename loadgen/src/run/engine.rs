//! The open-model engine: the scheduler hands each due iteration to a free virtual user, waits
//! (within the timeout) when none is free, drops the iteration when it cannot start in time, and
//! ends the run on schedule whatever the target does.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::http::client::VuClient;
use crate::http::target::{Target, TargetError};
use crate::plan::schedule::{Schedule, ScheduleError};
use crate::plan::shard::{RunIdentity, Shard, format_start, hash_hex};
use crate::protocol::discovery::{DiscoveryError, ProviderMetadata, fetch_provider_metadata};
use crate::protocol::jwks::{JwksSource, KeySet, REFETCH_INTERVAL};
use crate::protocol::test_users::TestUsers;
use crate::protocol::token_verifier::{JwksError, TokenVerifier};
use crate::results::histogram::HistogramCodecError;
use crate::results::names::AccessTokenBasis;
use crate::results::recorder::Recorder;
use crate::results::result::{ConnectionReport, RunMeta, RunResult};
use crate::results::thresholds::LatencyBasis;
use crate::results::timeline::Timeline;
use crate::run::config::RunConfig;
use crate::run::precise_timer::PreciseTimer;
use crate::run::progress::spawn_progress;
use crate::run::scenario::{
    Iteration, RunContext, Scenario, VirtualUser, VuSetupError, with_scenario,
};
use crate::run::stop::StopSignal;
use crate::run::timer_wheel_anchor::TimerWheelAnchor;
use crate::run::write_back::{describe_family_losses, write_back_refresh_tokens};
use crate::seeding::mint_ahead::{self, MintingPlan};
use crate::seeding::seed_files::{CodesTooOld, NotEnoughSeeds, Seeds, check_code_ages, unix_now};
/// Why a run could not be carried out (as opposed to a run that failed its thresholds).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The target URL is not usable.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The profile is not schedulable.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// Not enough seeds for this run.
    #[error(transparent)]
    Seeds(#[from] NotEnoughSeeds),
    /// `--mint-ahead` asked of a scenario that uses no codes.
    #[error("--mint-ahead mints authorization codes, which only token-code uses, not {0}")]
    MintAheadWithoutCodes(&'static str),
    /// Codes would expire before their use.
    #[error(transparent)]
    CodesTooOld(#[from] CodesTooOld),
    /// Discovery or the JWKS could not be fetched, or names another issuer.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The JWKS is not usable.
    #[error(transparent)]
    Jwks(#[from] JwksError),
    /// A virtual user could not be set up.
    #[error(transparent)]
    VuSetup(#[from] VuSetupError),
    /// `max_vus` is 0, or leaves this shard none.
    #[error("max VUs must be at least 1, and at least the shard count ({0}) when sharded")]
    NoVus(u32),
    /// Shards without a common start would not send the planned schedule together.
    #[error(
        "--shard {0} needs --start-at: give every shard the same UTC start time, far enough \
         ahead for all of them to be ready, so that together they send the planned schedule"
    )]
    ShardWithoutStart(Shard),
    /// The result could not be built.
    #[error(transparent)]
    Result(#[from] HistogramCodecError),
    /// The provider's introspection called the first token it was asked about, one just issued,
    /// inactive: the run stopped at once, before its load.
    #[error("{0}. The run stopped at its first introspection, before its load.")]
    IntrospectionRefused(String),
    /// A scenario of a mix could not be carried out; the others were stopped.
    #[error("the mix's {scenario} scenario could not run, so the mix stopped: {source}")]
    MixSection {
        /// The scenario.
        scenario: &'static str,
        /// Why.
        source: Box<RunError>,
    },
    /// The mix cannot be run as asked.
    #[error(transparent)]
    Mix(#[from] crate::run::mix::spec::MixError),
    /// A scenario's task ended in a panic: a bug of loadgen's.
    #[error("a scenario's task failed ({0}); this is a bug in loadgen, please report it")]
    Panicked(String),
}

/// The users a run's sign-ins (the `login` scenario) take: the configured range, moved past the
/// users whose families and sessions the seeds hold.
fn login_users(config: &RunConfig, seeds: &Seeds) -> TestUsers {
    let users = config.users.clone();
    if config.scenario != crate::run::scenario::ScenarioKind::Login {
        return users;
    }
    let seeded = seeds
        .refresh_tokens
        .iter()
        .map(|seed| seed.user_id.as_str());
    users.after(seeded.chain(seeds.sessions.iter().map(|seed| seed.user_id.as_str())))
}

/// Sets up `max_vus` virtual users of scenario `S`, a bounded number at a time.
async fn set_up_vus<S: Scenario>(
    max_vus: usize,
    context: &Arc<RunContext>,
) -> Result<Vec<VirtualUser<S>>, VuSetupError> {
    // Bounded so that setting up hundreds of VUs does not open hundreds of connections at once.
    const PARALLEL_SETUPS: usize = 32;
    let mut ready = Vec::with_capacity(max_vus);
    let mut pending = 0..max_vus;
    let mut setups = JoinSet::new();
    loop {
        while setups.len() < PARALLEL_SETUPS {
            let Some(id) = pending.next() else { break };
            setups.spawn(VirtualUser::<S>::set_up(id, Arc::clone(context)));
        }
        let Some(joined) = setups.join_next().await else {
            break;
        };
        match joined {
            Ok(Ok(vu)) => ready.push(vu),
            Ok(Err(error)) => return Err(error),
            Err(panic) => {
                return Err(VuSetupError {
                    vu: usize::MAX,
                    reason: format!("its set-up task failed: {panic}"),
                });
            }
        }
    }
    ready.sort_by_key(VirtualUser::id);
    Ok(ready)
}

/// Runs the iterations handed to `vu` until the run ends, then gives the VU back (its state
/// holds what the seeds should keep, such as a family's newest refresh token).
async fn vu_loop<S: Scenario>(
    mut vu: VirtualUser<S>,
    mut iterations: mpsc::Receiver<Iteration>,
    free: mpsc::UnboundedSender<usize>,
    context: Arc<RunContext>,
) -> VirtualUser<S> {
    let id = vu.id();
    while let Some(iteration) = iterations.recv().await {
        context.live.in_flight.fetch_add(1, Ordering::Relaxed);
        vu.run_iteration(iteration).await;
        context.live.in_flight.fetch_sub(1, Ordering::Relaxed);
        if free.send(id).is_err() {
            break;
        }
    }
    vu
}

/// What the VUs' connections cost, over the whole run (their set-up included).
fn connection_report<S: Scenario>(
    config: &RunConfig,
    ended: &[VirtualUser<S>],
) -> ConnectionReport {
    let mut report = ConnectionReport {
        http_version: if config.transport.http2 {
            "HTTP/2"
        } else {
            "HTTP/1.1"
        }
        .to_owned(),
        tls_unverified: config.transport.tls.insecure,
        ..ConnectionReport::default()
    };
    let mut set_up = Duration::ZERO;
    for vu in ended {
        let counts = vu.connection_counts();
        report.opened += counts.opened;
        report.tls_full_handshakes += counts.tls_full;
        report.tls_resumed_handshakes += counts.tls_resumed;
        report.requests_resent += counts.resent;
        set_up += counts.set_up;
    }
    report.set_up_ms = set_up.as_secs_f64() * 1000.0;
    report
}

/// Sentences for access tokens checked under less than RFC 9068 or introspection: which checks
/// were left out, and how to make them.
fn access_token_notes(context: &RunContext) -> Vec<String> {
    let mut notes = Vec::new();
    let without_audience = context.access_tokens_checked(AccessTokenBasis::JwtAudienceUnchecked);
    if without_audience > 0 {
        notes.push(format!(
            "{without_audience} access tokens were JWTs without RFC 9068's `typ: at+jwt` (as \
             Keycloak issues by default): their signature, iss, exp, iat and sub were checked, \
             their audience (aud) was not. Pass --access-token-audience with the audience your \
             APIs expect to check it too."
        ));
    }
    if context.access_tokens_checked(AccessTokenBasis::OpaqueUnchecked) > 0 {
        notes.push(
            "Opaque access tokens were not checked where they were issued: the provider offers no \
             introspection endpoint (RFC 7662) in its metadata. They are checked where they are \
             used (TEST 3's userinfo)."
                .to_owned(),
        );
    }
    notes
}

/// A sentence when the generator's own lag (intended start to the start of the iteration) had a
/// p99 above `bound`: its latency figures then include the generator's delay, on a machine too
/// busy to keep the schedule, and are no measure of the provider alone.
fn generator_lag_note(recorder: &Recorder, bound: Duration) -> Option<String> {
    let lag = &recorder.generator_lag;
    if lag.is_empty() {
        return None;
    }
    let p99 = Duration::from_micros(lag.value_at_quantile(0.99));
    (p99 > bound).then(|| {
        format!(
            "The generator itself started iterations late: its lag from intended start to the \
             start of an iteration had p99 {:.2} ms, above --max-generator-lag {:.2} ms. The \
             latency figures include that delay of loadgen's (the machine was too busy to keep \
             the schedule), so they overstate the provider's: run loadgen on a machine of its \
             own, with fewer VUs, or at a lower rate.",
            p99.as_secs_f64() * 1000.0,
            bound.as_secs_f64() * 1000.0
        )
    })
}

/// Runs one scenario against the target and returns its judged result. Fails only when the run
/// cannot be carried out (bad target, too few seeds, no discovery); a run whose requests fail
/// returns a result that says so.
pub async fn run(
    config: &RunConfig,
    seeds: Seeds,
    stop: StopSignal,
) -> Result<RunResult, RunError> {
    with_scenario!(config.scenario, S => run_scenario::<S>(config, seeds, stop).await)
}

/// [`run`] with the scenario's implementation known, so every iteration is dispatched statically.
async fn run_scenario<S: Scenario>(
    config: &RunConfig,
    seeds: Seeds,
    mut stop: StopSignal,
) -> Result<RunResult, RunError> {
    let shard = config.shard;
    // This process's virtual users: its share of the run's, like its share of the iterations.
    let vus = usize::try_from(shard.share(config.max_vus as u64)).unwrap_or(usize::MAX);
    if vus == 0 {
        return Err(RunError::NoVus(shard.count()));
    }
    if !shard.is_whole() && config.start_at.is_none() {
        return Err(RunError::ShardWithoutStart(shard));
    }
    let target = Arc::new(Target::with_transport(
        &config.target,
        config.transport.clone(),
    )?);
    let schedule = Arc::new(Schedule::new(&config.profile.stages())?);
    let owned_iterations = shard.share(schedule.total_iterations());
    let uses_codes = S::seed_need(schedule.total_iterations(), config.max_vus as u64)
        .is_some_and(|need| need.kind == crate::run::scenario::SeedKind::AuthorizationCodes);
    if config.mint_ahead && !uses_codes {
        return Err(RunError::MintAheadWithoutCodes(config.scenario.name()));
    }
    if config.mint_ahead {
        // The codes come from the sessions during the run: one session is enough.
        if seeds.sessions.is_empty() {
            return Err(NotEnoughSeeds {
                kind: "sessions",
                needed: 1,
                available: 0,
                why: "--mint-ahead mints the codes through the seeded sessions".to_owned(),
            }
            .into());
        }
    } else {
        config
            .scenario
            .check_seeds(&seeds, schedule.total_iterations(), config.max_vus, shard)?;
    }
    // The api scenario's provider tokens spend each VU's family at set-up: too few families
    // must stop the run before any is spent, not after some.
    if config.scenario == crate::run::scenario::ScenarioKind::Api
        && config
            .api
            .as_ref()
            .is_some_and(|api| api.token_source.needs_provider())
        && seeds.refresh_tokens.len() < vus
    {
        return Err(NotEnoughSeeds {
            kind: "refresh-token families",
            needed: vus as u64,
            available: seeds.refresh_tokens.len() as u64,
            why: "the api scenario's oidc token source renews each VU's token through a family \
                  of its own (`loadgen seed --refresh-families N`, N at least --max-vus)"
                .to_owned(),
        }
        .into());
    }
    if let Some(lifetime) = config
        .code_lifetime
        .filter(|_| uses_codes && !config.mint_ahead)
    {
        check_code_ages(
            &seeds.authorization_codes,
            &schedule,
            shard,
            unix_now(),
            lifetime,
        )?;
    }

    let ProviderMetadata {
        discovery,
        endpoints: paths,
        jwks,
        notes: metadata_notes,
    } = if config.needs_provider() {
        fetch_provider_metadata(&target, config.timeout).await?
    } else {
        ProviderMetadata::without_provider(&target)?
    };
    let audience = config.access_token_audience.clone();
    let verifier = match TokenVerifier::from_jwks(
        &jwks,
        &discovery.issuer,
        audience.as_deref(),
        &config.client.client_id,
    ) {
        // A provider that makes its key on first use: the set is fetched again on the first token.
        Err(JwksError::Empty) => TokenVerifier::empty(),
        verifier => verifier?,
    };
    let keys = KeySet::new(
        verifier,
        JwksSource {
            client: VuClient::new(Arc::clone(&target)),
            address: paths.jwks.clone(),
            issuer: discovery.issuer.clone(),
            access_token_audience: audience,
            client_id: config.client.client_id.clone(),
            timeout: config.timeout,
            interval: REFETCH_INTERVAL,
        },
    );
    // Shards only pay off when VUs record from several threads at once; on a current-thread
    // runtime (the `loadgen` binary's) one shard saves allocating, zeroing and merging the
    // histograms of the others.
    let shards = match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => 1,
        _ => std::thread::available_parallelism().map_or(2, |cores| cores.get() * 2),
    };
    // With --mint-ahead, minting starts now, on its own connections, and keeps about half a
    // second of codes ready; it stops when the run ends.
    let minters = config.mint_ahead.then(|| {
        mint_ahead::start(MintingPlan {
            target: Arc::clone(&target),
            authorize: paths.authorize.clone(),
            token: paths.token.clone(),
            par: paths.pushed_authorization.clone(),
            client: config
                .client
                .for_provider(&discovery.issuer, &paths.token.to_string()),
            issuer: discovery.issuer.clone(),
            issuer_parameter_required: discovery.authorization_response_iss_parameter_supported,
            sessions: seeds.sessions.clone(),
            total: owned_iterations,
            ahead: ((config.profile.rate_per_s * 0.5).ceil() as usize).max(10),
            timeout: config.timeout,
            hints: config.hints.clone(),
        })
    });
    let users = login_users(config, &seeds);
    let context = Arc::new(
        RunContext::new(
            config.scenario,
            Arc::clone(&target),
            config.client.clone(),
            paths,
            discovery.issuer.clone(),
            keys,
            config.timeout,
            seeds,
            vus,
            shards,
        )
        .with_token_checks(
            config.access_token,
            config.access_token_audience.is_some(),
            config.skipped_checks,
        )
        .with_issuer_parameter(discovery.authorization_response_iss_parameter_supported)
        .with_introspection_and_pages(config.introspection_client.as_ref(), config.hints.clone())
        .with_minted_codes(minters.as_ref().map(|(codes, _)| Arc::clone(codes)))
        .with_new_connection_per_iteration(config.new_connection_per_iteration)
        .with_dpop(config.dpop)
        .with_api(config.api.clone(), vus)
        .with_users_and_clients(users, config.machine_clients.clone()),
    );

    let ready_vus = set_up_vus::<S>(vus, &context).await?;

    let (free_sender, mut free_vus) = mpsc::unbounded_channel::<usize>();
    let mut vu_inboxes = Vec::with_capacity(ready_vus.len());
    let mut vu_tasks = JoinSet::new();
    for vu in ready_vus {
        let (inbox, iterations) = mpsc::channel::<Iteration>(1);
        vu_inboxes.push(inbox);
        // Every VU starts free; FIFO hand-out spreads iterations over all VUs (all families).
        let _ = free_sender.send(vu.id());
        vu_tasks.spawn(vu_loop(
            vu,
            iterations,
            free_sender.clone(),
            Arc::clone(&context),
        ));
    }
    drop(free_sender);

    // A short lead so the first due iteration is not already late when the loop starts; with a
    // planned start, the VUs (connections open) wait for it. One already past starts now: the
    // result records both, and a merge refuses shards that started too far apart.
    // The scenarios of a mix wait for each other at their start line and share its start.
    let lead = Duration::from_millis(20);
    let until_planned = || {
        config
            .start_at
            .and_then(|planned| planned.duration_since(SystemTime::now()).ok())
            .unwrap_or_default()
    };
    let start = match &config.start_line {
        Some(line) => line.ready(lead).await.max(Instant::now() + until_planned()),
        None => Instant::now() + until_planned().max(lead),
    };
    // Each iteration is woken at its intended start to the microsecond (Tokio's own timer would
    // wake it up to a millisecond late).
    let mut timer = PreciseTimer::new();
    let _anchor = TimerWheelAnchor::hold();
    timer.sleep_until(start).await;
    let actual_start = SystemTime::now();
    let started_at = humantime::format_rfc3339_seconds(actual_start).to_string();
    let progress = spawn_progress(
        config.progress,
        Arc::clone(&context),
        Arc::clone(&schedule),
        start,
    );
    let steady_from = Duration::from_secs_f64(config.profile.ramp_up_s);
    let steady_until = steady_from + Duration::from_secs_f64(config.profile.steady_s);

    let mut scheduled = 0_u64;
    let mut dropped = 0_u64;
    let mut steady_state_started = 0_u64;
    let mut incomplete_reason = None;
    // A dropped iteration never started, so the user it stands for waited at least the timeout
    // (wrk2's rule): it is recorded at the timeout, never left out of the latency judged.
    // Each due iteration takes the recorder's lock once, when it is started or dropped.
    let record_dropped = |interval: u32| {
        context.live.dropped.fetch_add(1, Ordering::Relaxed);
        context.recorder.with_shard(0, |recorder| {
            recorder.record_dropped_iteration(config.timeout);
            recorder.timeline.record_due(interval);
            recorder.timeline.record_dropped(interval, config.timeout);
        });
    };
    let hand_out = async {
        // Every shard walks the whole schedule and takes its own iterations, so the shards
        // together send exactly the single machine's schedule. The VU gets the shard's own count
        // of the iteration, which is also the seed it uses.
        for due in schedule.iter().filter(|due| shard.owns(due.index)) {
            let intended_start = start + due.offset;
            timer.sleep_until(intended_start).await;
            let give_up_at = intended_start + config.timeout;
            let free = tokio::time::timeout_at(give_up_at, free_vus.recv()).await;
            scheduled += 1;
            let interval = Timeline::interval_of(due.offset);
            match free {
                Ok(Some(vu)) => {
                    let iteration = Iteration {
                        index: shard.local(due.index),
                        intended_start,
                        interval,
                    };
                    let since_start = Instant::now().saturating_duration_since(start);
                    if since_start >= steady_from && since_start < steady_until {
                        steady_state_started += 1;
                    }
                    context.live.started.fetch_add(1, Ordering::Relaxed);
                    // The VU announced itself free, so its inbox of one is empty.
                    if vu_inboxes[vu].try_send(iteration).is_err() {
                        context.live.started.fetch_sub(1, Ordering::Relaxed);
                        dropped += 1;
                        record_dropped(interval);
                    } else {
                        context.recorder.with_shard(0, |recorder| {
                            recorder.timeline.record_due(interval);
                            recorder.timeline.record_started(interval);
                        });
                    }
                }
                Ok(None) => {
                    incomplete_reason = Some("every virtual user ended unexpectedly".to_owned());
                    dropped += 1;
                    record_dropped(interval);
                    return;
                }
                Err(_) => {
                    dropped += 1;
                    record_dropped(interval);
                }
            }
        }
    };
    // One stop future for the whole run, not one per iteration: registering and dropping a
    // watch waiter twice per iteration showed in the generator's CPU profile. The hand-out may
    // be cancelled only at its two waits, before an iteration is counted or handed over.
    let mut refused = context.introspection_refused_signal();
    tokio::select! {
        biased;
        () = stop.requested() => {}
        () = refused.requested() => {}
        () = hand_out => {}
    }
    if stop.is_requested() || refused.is_requested() {
        incomplete_reason = Some(format!(
            "stopped early after {:.1} s of {:.1} s",
            start.elapsed().as_secs_f64(),
            schedule.total_duration().as_secs_f64()
        ));
    }

    // No more work: VUs finish what they hold, each step bounded by the request timeout.
    drop(vu_inboxes);
    let grace = config.timeout * config.scenario.requests_per_iteration() + Duration::from_secs(1);
    let mut ended = Vec::with_capacity(vus);
    let all_ended = tokio::time::timeout(grace, async {
        while let Some(joined) = vu_tasks.join_next().await {
            ended.extend(joined.ok());
        }
    })
    .await
    .is_ok();
    let abandoned = if all_ended {
        0
    } else {
        let cut_off = context.live.in_flight.load(Ordering::Relaxed);
        vu_tasks.abort_all();
        while vu_tasks.join_next().await.is_some() {}
        cut_off
    };
    let duration = start.elapsed();
    if let Some(progress) = progress {
        progress.finish().await;
    }

    // Counted before the write-back sets aside the families of VUs cut off at the end: those are
    // in doubt because the run ended, not because of a transport error.
    let refresh_families = S::holds_families(&context).then(|| context.families.counts());
    let access_token_bases = context.access_token_bases();
    let mut failures = context.failed_iterations_by_cause();
    if dropped > 0 {
        failures.insert("dropped: no virtual user free in time".to_owned(), dropped);
    }
    if abandoned > 0 {
        failures.insert("cut off at the end of the run".to_owned(), abandoned);
    }
    let mut notes = metadata_notes;
    notes.extend(context.failure_notes());
    notes.extend(refresh_families.and_then(describe_family_losses));
    if let Some((codes, mut tasks)) = minters {
        tasks.abort_all();
        notes.push(codes.note());
    }
    if let Some(note) = write_back_refresh_tokens(config, &context, vus, &ended) {
        notes.push(note);
    }
    // After the write-back: the few iterations before the stop rotated their families.
    if let Some(advice) = context.introspection_refusal() {
        return Err(RunError::IntrospectionRefused(advice.to_owned()));
    }
    notes.extend(access_token_notes(&context));
    let consents = context.consents_approved();
    if consents > 0 {
        notes.push(format!(
            "The provider showed its consent page where /authorize should have redirected with a \
             code, in {consents} iterations; each was approved as a user would, its requests \
             counted as the `consent` endpoint, inside the iteration's latency."
        ));
    }
    notes.extend(context.keys.note());
    let challenges = context.dpop_nonce_challenges();
    if challenges > 0 {
        notes.push(format!(
            "{challenges} requests were answered with a DPoP nonce challenge (use_dpop_nonce: 400 \
             at the token endpoint, 401 at a resource) and sent again with the nonce the provider \
             gave: they are in the counts by status, and each iteration was judged on the answer \
             to its retry."
        ));
    }
    if context.subjects_unknown() {
        notes.push(
            "Some tokens' subjects were not checked (token_subject): their seeds do not record \
             the subject of their user, as seeds made by an older loadgen or elsewhere do not. \
             Seed again with `loadgen seed` to check them."
                .to_owned(),
        );
    }
    if config.transport.tls.insecure {
        notes.push(
            "The provider's TLS certificates were not verified (--insecure): clients that verify \
             them, as every real one does, were not shown to get through."
                .to_owned(),
        );
    }
    if dropped > 0 {
        notes.push(format!(
            "{dropped} iterations were dropped: no virtual user was free within {}; raise \
             --max-vus, or the target is too slow for this rate",
            humantime::format_duration(config.timeout)
        ));
    }
    if abandoned > 0 {
        notes.push(format!(
            "{abandoned} iterations still running at the end were cut off (counted as failed)"
        ));
    }
    let recorder = context.recorder.merged();
    notes.extend(generator_lag_note(&recorder, config.max_generator_lag));
    let planned_start = config.start_at.map(format_start);
    let config_hash = config.hash();
    let identity = RunIdentity {
        run_id: config.run_id.clone().unwrap_or_else(|| {
            // Shards given the same configuration and start derive the same id; a run without a
            // planned start is told apart by its actual one.
            let start = planned_start
                .clone()
                .unwrap_or_else(|| format_start(actual_start));
            hash_hex(format!("{config_hash} {start}").as_bytes())[..16].to_owned()
        }),
        config_hash,
        shard: Some(shard),
        planned_start,
        actual_start: format_start(actual_start),
        start_skew_ms: None,
    };
    let connections = connection_report(config, &ended);
    let meta = RunMeta {
        test_id: config
            .test_id
            .clone()
            .unwrap_or_else(|| config.scenario.test_id().to_owned()),
        scenario: config.scenario.name().to_owned(),
        target: target.base_url().to_owned(),
        profile: config.profile,
        max_vus: vus as u64,
        timeout_ms: u64::try_from(config.timeout.as_millis()).unwrap_or(u64::MAX),
        started_at,
        duration_s: duration.as_secs_f64(),
        complete: incomplete_reason.is_none(),
        incomplete_reason,
        shards: 1,
        scheduled,
        dropped,
        abandoned,
        steady_state_started,
        notes,
        skipped_checks: config.skipped_checks.names(),
        refresh_families,
        api_tokens: context.api.as_ref().map(|tally| tally.figures()),
        access_token_bases,
        failures,
        connections: Some(connections),
        gated_latency: LatencyBasis::Iterations,
        run: Some(identity),
    };
    Ok(RunResult::from_recorder(
        meta,
        &recorder,
        &config.thresholds,
    )?)
}
