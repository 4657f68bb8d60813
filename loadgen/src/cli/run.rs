//! `loadgen run`: one scenario at an arrival rate, its result written and judged.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use loadgen::plan::shard::{Shard, parse_start};
use loadgen::protocol::client_credentials::ClientCredentials;
use loadgen::protocol::token_verifier::AccessTokenFormat;
use loadgen::results::names::Check;
use loadgen::results::printer::{mix_summary, summary};
use loadgen::run::mix::run_mix;
use loadgen::{RunConfig, ScenarioKind, Seeds, ThresholdArgs, Verdict};

use crate::cli::api_args::ApiArgs;
use crate::cli::exit_for;
use crate::cli::mix_args::MixArgs;
use crate::cli::shared_args::{
    ClientArgs, DpopArgs, FormArgs, OutputArgs, ProfileArgs, TransportArgs, parse_check,
    progress_mode,
};
use crate::cli::sign_in_args::SignInArgs;

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Scenario: token-code (TEST 1), refresh-storm (TEST 2), full-oidc (TEST 3), userinfo,
    /// token-exchange, discovery, refresh-reuse, api (your API with real tokens, --api-url),
    /// login (people signing in through the pages), client-credentials (machine clients).
    #[arg(
        long,
        env = "LOADGEN_SCENARIO",
        value_enum,
        required_unless_present_any = ["mix", "preset"]
    )]
    pub(crate) scenario: Option<ScenarioKind>,
    /// Base URL of the IdP (with `--scenario api --token-source sign`, which needs none, the
    /// API's).
    #[arg(long, env = "LOADGEN_TARGET")]
    pub(crate) target: String,
    /// Directory holding the seed files.
    #[arg(long, env = "LOADGEN_SEEDS")]
    pub(crate) seeds: Option<PathBuf>,
    /// The provider's authorization-code lifetime (60s in node-oidc-provider and Keycloak by
    /// default): the run stops before sending load when codes would be older than this at their
    /// scheduled use.
    #[arg(long, env = "LOADGEN_CODE_LIFETIME", value_parser = humantime::parse_duration)]
    pub(crate) code_lifetime: Option<Duration>,
    /// Mint TEST 1's codes during the run, about half a second ahead of use, through the seeded
    /// sessions on connections of their own (not measured), for providers whose code lifetime is
    /// shorter than seeding plus the test.
    #[arg(long, env = "LOADGEN_MINT_AHEAD")]
    pub(crate) mint_ahead: bool,
    /// Open new connections for every iteration (k6's noConnectionReuse), as machine clients
    /// that keep none do: every iteration pays a connect and, over https, a TLS handshake.
    #[arg(long, env = "LOADGEN_NEW_CONNECTION_PER_ITERATION")]
    pub(crate) new_connection_per_iteration: bool,
    #[command(flatten)]
    pub(crate) dpop: DpopArgs,
    /// Where the seeds go after the run, with each refresh-token family's newest token (the
    /// --seeds directory when not given), so TEST 2 can run again on them.
    #[arg(long, env = "LOADGEN_SEEDS_OUT")]
    pub(crate) seeds_out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) profile: ProfileArgs,
    /// The p99 of loadgen's own lag (from an iteration's intended start to its start) above which
    /// the result's notes say its latency includes loadgen's delay (a machine too busy).
    #[arg(long, env = "LOADGEN_MAX_GENERATOR_LAG", default_value = "5ms", value_parser = humantime::parse_duration)]
    pub(crate) max_generator_lag: Duration,
    /// Virtual users: most iterations in flight at once, each with its own connection.
    #[arg(long, env = "LOADGEN_MAX_VUS", default_value_t = 300)]
    pub(crate) max_vus: usize,
    /// Per-request timeout; also the longest an iteration may wait for a free VU.
    #[arg(long, env = "LOADGEN_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
    /// Result file (JSON).
    #[arg(long, env = "LOADGEN_OUT")]
    pub(crate) out: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) outputs: OutputArgs,
    /// Test id recorded in the result (defaults to TEST 1/2/3 or the scenario name).
    #[arg(long, env = "LOADGEN_TEST_ID")]
    pub(crate) test_id: Option<String>,
    /// Audience access tokens must carry: RFC 9068 ones (typ at+jwt) the issuer's when not
    /// given; other JWTs (Keycloak's typ JWT) have their aud checked only when it is given.
    #[arg(long, env = "LOADGEN_ACCESS_TOKEN_AUDIENCE")]
    pub(crate) access_token_audience: Option<String>,
    /// Client id that introspects opaque access tokens (RFC 7662), when the provider lets only
    /// resource servers introspect; the test client when not given.
    #[arg(
        long,
        env = "LOADGEN_INTROSPECTION_CLIENT_ID",
        requires = "introspection_client_secret"
    )]
    pub(crate) introspection_client_id: Option<String>,
    /// Secret of --introspection-client-id (client_secret_basic).
    #[arg(
        long,
        env = "LOADGEN_INTROSPECTION_CLIENT_SECRET",
        requires = "introspection_client_id",
        hide_env_values = true
    )]
    pub(crate) introspection_client_secret: Option<String>,
    #[command(flatten)]
    pub(crate) forms: FormArgs,
    /// How access tokens are checked: auto (a JWS is verified against the JWKS, anything else
    /// is opaque), jwt, or opaque (introspection, RFC 7662, when the provider offers it).
    #[arg(long, env = "LOADGEN_ACCESS_TOKEN", value_enum, default_value_t = AccessTokenFormat::Auto)]
    pub(crate) access_token: AccessTokenFormat,
    /// A check not to make, by its name in results (repeatable), e.g. access_token_verifies.
    /// The result lists the checks skipped.
    #[arg(long = "skip-check", env = "LOADGEN_SKIP_CHECKS", value_delimiter = ',', value_parser = parse_check)]
    pub(crate) skip_checks: Vec<Check>,
    #[command(flatten)]
    pub(crate) thresholds: ThresholdArgs,
    /// No live progress output.
    #[arg(long, env = "LOADGEN_NO_PROGRESS")]
    pub(crate) no_progress: bool,
    /// Send only shard I of N (from 0; Kubernetes' JOB_COMPLETION_INDEX fits): every N-th
    /// iteration of the whole run's schedule, on its share of --max-vus and of the seeds. Every
    /// shard gets the same options and --start-at; `loadgen report --gate` merges the results.
    #[arg(long, env = "LOADGEN_SHARD", default_value = "0/1")]
    pub(crate) shard: Shard,
    /// When the schedule starts, UTC, RFC 3339 (2026-11-23T14:05:00Z): the run sets up its VUs
    /// and connections, then waits for it. Required with --shard I/N when N is above 1.
    #[arg(long, env = "LOADGEN_START_AT", value_parser = parse_start)]
    pub(crate) start_at: Option<std::time::SystemTime>,
    /// Names the run in the result (for example a CI run id); by default derived from the
    /// configuration and the start, the same on every shard.
    #[arg(long, env = "LOADGEN_RUN_ID")]
    pub(crate) run_id: Option<String>,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(flatten)]
    pub(crate) transport: TransportArgs,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) sign_in: SignInArgs,
    #[command(flatten)]
    pub(crate) mix: MixArgs,
}

pub(crate) async fn execute(args: RunArgs) -> anyhow::Result<ExitCode> {
    let seeds = match &args.seeds {
        Some(directory) => Seeds::load(directory)?,
        None => Seeds::default(),
    };
    let made_for_this_shard = seeds.shard == Some(args.shard) || args.shard.is_whole();
    let seeds = seeds.for_shard(args.shard)?;
    // A shard that took its slice of seeds shared by every shard must not write its slice over
    // them; seeds made for the shard alone are its own to update.
    let seeds_out = args.seeds_out.clone().or_else(|| {
        if made_for_this_shard {
            args.seeds.clone()
        } else {
            eprintln!(
                "note: shard {} runs on its slice of seeds made for the whole run, so the \
                 rotated refresh tokens are not written back over them; give --seeds-out to \
                 keep them, or seed each shard with `loadgen seed --shard`",
                args.shard
            );
            None
        }
    });
    let profile = args.profile.profile();
    let mix = args.mix.mix()?;
    // A mix's base configuration names its first scenario (each section names its own), and
    // the API's settings when the mix calls one.
    let scenario = match (&mix, args.scenario) {
        (Some((mix, _)), given) => {
            // --scenario may come from LOADGEN_SCENARIO (a shards job's), so it is not refused.
            if let Some(given) = given {
                eprintln!(
                    "note: the mix runs its own scenarios; --scenario {} is not used",
                    given.name()
                );
            }
            mix.entries()[0].scenario
        }
        (None, Some(scenario)) => scenario,
        (None, None) => bail!("give --scenario, --mix or --preset with --mau"),
    };
    let api = args.api.settings(scenario, &args.sign_in.users)?;
    let config = RunConfig {
        api,
        users: args.sign_in.test_users(),
        machine_clients: args.sign_in.machine_clients()?,
        transport: args.transport.settings(),
        max_vus: args.max_vus,
        max_generator_lag: args.max_generator_lag,
        timeout: args.timeout,
        client: args.client.credentials(&args.transport)?,
        access_token_audience: args.access_token_audience,
        introspection_client: args
            .introspection_client_id
            .zip(args.introspection_client_secret)
            .map(|(client_id, secret)| ClientCredentials {
                client_id,
                client_secret: Some(secret),
                ..ClientCredentials::default()
            }),
        hints: args.forms.hints(),
        access_token: args.access_token,
        seeds_out,
        code_lifetime: args.code_lifetime,
        mint_ahead: args.mint_ahead,
        new_connection_per_iteration: args.new_connection_per_iteration,
        dpop: args.dpop.dpop,
        skipped_checks: args.skip_checks.iter().copied().collect(),
        thresholds: args.thresholds.thresholds(),
        test_id: args.test_id,
        progress: progress_mode(args.no_progress),
        shard: args.shard,
        start_at: args.start_at,
        run_id: args.run_id,
        ..RunConfig::new(scenario, args.target, profile)
    };
    let (stop_handle, stop) = loadgen::stop_signal();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: finishing in-flight requests, then writing the result");
            stop_handle.stop();
        }
    });
    if let Some((mix, plan)) = mix {
        if let Some(plan) = plan {
            print!("\n{}", plan.describe());
        }
        println!("  running the mix {mix} from one start");
        let result = run_mix(&mix, &config, seeds, stop).await?;
        let out = args
            .out
            .unwrap_or_else(|| PathBuf::from("loadgen-mix.json"));
        result.write(&out)?;
        let text = mix_summary(&result);
        print!("{text}");
        println!("  result: {}", out.display());
        args.outputs
            .write(&format!("mix {}", result.mix), &result.sections, &text)?;
        return Ok(judged(args.shard, result.verdict));
    }
    let result = loadgen::run(&config, seeds, stop).await?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("loadgen-{}.json", scenario.name())));
    result.write(&out)?;
    let text = summary(&result);
    print!("{text}");
    println!("  result: {}", out.display());
    let title = format!("{} — {}", result.test_id, result.scenario);
    args.outputs
        .write(&title, std::slice::from_ref(&result), &text)?;
    Ok(judged(args.shard, result.verdict))
}

/// The exit code of a run: its verdict, or success for a shard, whose share says nothing on its
/// own about the run (the thresholds are judged once, on the merge of every shard).
fn judged(shard: Shard, verdict: Verdict) -> ExitCode {
    if shard.is_whole() {
        return exit_for(verdict);
    }
    println!("  shard {shard}: judged with the other shards by `loadgen report --gate SHARD...`");
    ExitCode::SUCCESS
}
