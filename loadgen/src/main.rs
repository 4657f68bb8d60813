//! The `loadgen` command line: `seed`, `run` and `report`. Exit codes: 0 pass, 99 a threshold
//! failed (k6's convention), 1 an error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use loadgen::plan::shard::{Shard, parse_start};
use loadgen::protocol::client_credentials::{
    ClientCredentials, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URI,
    DEFAULT_SCOPE,
};
use loadgen::protocol::token_verifier::AccessTokenFormat;
use loadgen::results::names::Check;
use loadgen::results::printer::summary;
use loadgen::seeding::browser::FormHints;
use loadgen::seeding::seed_files::codes_to_seed;
use loadgen::seeding::seeder::SeedConfig;
use loadgen::terminal::ProgressMode;
use loadgen::{LoadProfile, RunConfig, RunResult, ScenarioKind, Seeds, ThresholdArgs, Verdict};

const EXIT_THRESHOLDS_FAILED: u8 = 99;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Seeds and an open-model load generator for OIDC token endpoints"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make seed files through the IdP's own login and consent pages, /authorize and /token.
    Seed(Box<SeedArgs>),
    /// Run one scenario at an arrival rate and write its result.
    Run(Box<RunArgs>),
    /// Print the summary of result files; several shards of one run are merged first.
    Report(ReportArgs),
    /// Find the highest rate the target holds under the gate: raise the rate by a factor until
    /// a step fails, then bisect; each step is a whole run on fresh seeds, its result kept.
    Capacity(Box<CapacityArgs>),
}

#[derive(Debug, Args)]
struct ClientArgs {
    /// OAuth client id.
    #[arg(long, env = "LOADGEN_CLIENT_ID", default_value = DEFAULT_CLIENT_ID)]
    client_id: String,
    /// Client secret for client_secret_basic.
    #[arg(long, env = "LOADGEN_CLIENT_SECRET", default_value = DEFAULT_CLIENT_SECRET, hide_env_values = true)]
    client_secret: String,
    /// Act as a public client (no secret; client_id in the body, PKCE only).
    #[arg(long, env = "LOADGEN_PUBLIC_CLIENT")]
    public_client: bool,
    /// Registered redirect URI.
    #[arg(long, env = "LOADGEN_REDIRECT_URI", default_value = DEFAULT_REDIRECT_URI)]
    redirect_uri: String,
    /// Scope of authorization requests.
    #[arg(long, env = "LOADGEN_SCOPE", default_value = DEFAULT_SCOPE)]
    scope: String,
}

impl ClientArgs {
    fn credentials(&self) -> ClientCredentials {
        ClientCredentials {
            client_id: self.client_id.clone(),
            client_secret: (!self.public_client).then(|| self.client_secret.clone()),
            redirect_uri: self.redirect_uri.clone(),
            scope: self.scope.clone(),
        }
    }
}

/// The test users seeds sign in as, shared by `seed` and `capacity`.
#[derive(Debug, Args)]
struct UserArgs {
    /// Password of the test users.
    #[arg(
        long,
        env = "LOADGEN_PASSWORD",
        default_value = "loadtest",
        hide_env_values = true
    )]
    password: String,
    /// Users are PREFIX00001, PREFIX00002 ...
    #[arg(long, env = "LOADGEN_USER_PREFIX", default_value = "user-loadtest-")]
    user_prefix: String,
}

/// The arrival-rate profile, shared by `run` and by `seed` (which sizes TEST 1's codes from it).
#[derive(Debug, Args)]
struct ProfileArgs {
    /// Steady arrival rate, iterations per second.
    #[arg(long, env = "LOADGEN_RATE", default_value_t = 300.0)]
    rate: f64,
    /// Linear ramp from 0 to the rate.
    #[arg(long, env = "LOADGEN_RAMP_UP", default_value = "10s", value_parser = humantime::parse_duration)]
    ramp_up: Duration,
    /// Time at the steady rate.
    #[arg(long, env = "LOADGEN_DURATION", default_value = "120s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Linear ramp from the rate to 0.
    #[arg(long, env = "LOADGEN_RAMP_DOWN", default_value = "10s", value_parser = humantime::parse_duration)]
    ramp_down: Duration,
}

impl ProfileArgs {
    fn profile(&self) -> LoadProfile {
        LoadProfile::new(self.rate, self.ramp_up, self.duration, self.ramp_down)
    }
}

#[derive(Debug, Args)]
struct SeedArgs {
    /// Base URL of the IdP.
    #[arg(long, env = "LOADGEN_TARGET")]
    target: String,
    /// Authorization codes to mint (TEST 1); by default as many as a TEST 1 of the profile below
    /// uses, plus a margin, in whole thousands (40,000 for the standard profile).
    #[arg(long, env = "LOADGEN_CODES")]
    codes: Option<usize>,
    /// The profile of the TEST 1 the codes are for, when --codes is not given.
    #[command(flatten)]
    profile: ProfileArgs,
    /// Refresh-token families to open, one per user (TEST 2): one per virtual user, and the rest
    /// spares for VUs whose family is in doubt after a transport error.
    #[arg(long, env = "LOADGEN_REFRESH_FAMILIES", default_value_t = 330)]
    refresh_families: usize,
    /// Login sessions to record, one per user (TEST 3).
    #[arg(long, env = "LOADGEN_SESSIONS", default_value_t = 300)]
    sessions: usize,
    /// Directory for authorization_codes.json, refresh_tokens.json and sessions.json.
    #[arg(long, env = "LOADGEN_SEEDS")]
    out: PathBuf,
    #[command(flatten)]
    users: UserArgs,
    /// The `name` of the login form's user-name input, when the page does not mark it (by type
    /// email, autocomplete=username, or a name such as username, login or email).
    #[arg(long, env = "LOADGEN_USERNAME_FIELD")]
    username_field: Option<String>,
    /// The `name` of the login form's password input, when it is not a password-type input.
    #[arg(long, env = "LOADGEN_PASSWORD_FIELD")]
    password_field: Option<String>,
    /// A word of the consent page's approve button (its name, value or text), when it is not
    /// one of approve, accept, allow, authorize, continue, consent, confirm or yes.
    #[arg(long, env = "LOADGEN_APPROVE_BUTTON")]
    approve_button: Option<String>,
    /// Seed only shard I of N (from 0): its slice of the counts above (which stay the whole
    /// run's), for users of its own, so each machine of a sharded run can seed itself. The
    /// directory records the shard (shard.json) and `loadgen run --shard` checks it.
    #[arg(long, env = "LOADGEN_SHARD", default_value = "0/1")]
    shard: Shard,
    /// Seed requests in flight at once.
    #[arg(long, env = "LOADGEN_CONCURRENCY", default_value_t = 64)]
    concurrency: usize,
    /// Attempts per seed before the command fails.
    #[arg(long, env = "LOADGEN_ATTEMPTS", default_value_t = 3)]
    attempts: u32,
    /// Per-request timeout.
    #[arg(long, env = "LOADGEN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// No progress bar.
    #[arg(long, env = "LOADGEN_NO_PROGRESS")]
    no_progress: bool,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Scenario: token-code (TEST 1), refresh-storm (TEST 2), full-oidc (TEST 3), userinfo,
    /// token-exchange, discovery, refresh-reuse.
    #[arg(long, env = "LOADGEN_SCENARIO", value_enum)]
    scenario: ScenarioKind,
    /// Base URL of the IdP.
    #[arg(long, env = "LOADGEN_TARGET")]
    target: String,
    /// Directory holding the seed files.
    #[arg(long, env = "LOADGEN_SEEDS")]
    seeds: Option<PathBuf>,
    /// The provider's authorization-code lifetime (60s in node-oidc-provider and Keycloak by
    /// default): the run stops before sending load when codes would be older than this at their
    /// scheduled use.
    #[arg(long, env = "LOADGEN_CODE_LIFETIME", value_parser = humantime::parse_duration)]
    code_lifetime: Option<Duration>,
    /// Mint TEST 1's codes during the run, about half a second ahead of use, through the seeded
    /// sessions on connections of their own (not measured), for providers whose code lifetime is
    /// shorter than seeding plus the test.
    #[arg(long, env = "LOADGEN_MINT_AHEAD")]
    mint_ahead: bool,
    /// Where the seeds go after the run, with each refresh-token family's newest token (the
    /// --seeds directory when not given), so TEST 2 can run again on them.
    #[arg(long, env = "LOADGEN_SEEDS_OUT")]
    seeds_out: Option<PathBuf>,
    #[command(flatten)]
    profile: ProfileArgs,
    /// Virtual users: most iterations in flight at once, each with its own connection.
    #[arg(long, env = "LOADGEN_MAX_VUS", default_value_t = 300)]
    max_vus: usize,
    /// Per-request timeout; also the longest an iteration may wait for a free VU.
    #[arg(long, env = "LOADGEN_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Result file (JSON).
    #[arg(long, env = "LOADGEN_OUT")]
    out: Option<PathBuf>,
    #[command(flatten)]
    outputs: OutputArgs,
    /// Test id recorded in the result (defaults to TEST 1/2/3 or the scenario name).
    #[arg(long, env = "LOADGEN_TEST_ID")]
    test_id: Option<String>,
    /// Audience access tokens must carry (defaults to the issuer).
    #[arg(long, env = "LOADGEN_ACCESS_TOKEN_AUDIENCE")]
    access_token_audience: Option<String>,
    /// How access tokens are checked: auto (a JWS is verified against the JWKS, anything else
    /// is opaque), jwt, or opaque (introspection, RFC 7662, when the provider offers it).
    #[arg(long, env = "LOADGEN_ACCESS_TOKEN", value_enum, default_value_t = AccessTokenFormat::Auto)]
    access_token: AccessTokenFormat,
    /// A check not to make, by its name in results (repeatable), e.g. access_token_verifies.
    /// The result lists the checks skipped.
    #[arg(long = "skip-check", env = "LOADGEN_SKIP_CHECKS", value_delimiter = ',', value_parser = parse_check)]
    skip_checks: Vec<Check>,
    #[command(flatten)]
    thresholds: ThresholdArgs,
    /// No live progress output.
    #[arg(long, env = "LOADGEN_NO_PROGRESS")]
    no_progress: bool,
    /// Send only shard I of N (from 0; Kubernetes' JOB_COMPLETION_INDEX fits): every N-th
    /// iteration of the whole run's schedule, on its share of --max-vus and of the seeds. Every
    /// shard gets the same options and --start-at; `loadgen report --gate` merges the results.
    #[arg(long, env = "LOADGEN_SHARD", default_value = "0/1")]
    shard: Shard,
    /// When the schedule starts, UTC, RFC 3339 (2026-11-23T14:05:00Z): the run sets up its VUs
    /// and connections, then waits for it. Required with --shard I/N when N is above 1.
    #[arg(long, env = "LOADGEN_START_AT", value_parser = parse_start)]
    start_at: Option<std::time::SystemTime>,
    /// Names the run in the result (for example a CI run id); by default derived from the
    /// configuration and the start, the same on every shard.
    #[arg(long, env = "LOADGEN_RUN_ID")]
    run_id: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
struct CapacityArgs {
    /// Scenario: token-code (TEST 1), refresh-storm (TEST 2), full-oidc (TEST 3), ...
    #[arg(long, env = "LOADGEN_SCENARIO", value_enum)]
    scenario: ScenarioKind,
    /// Base URL of the IdP.
    #[arg(long, env = "LOADGEN_TARGET")]
    target: String,
    /// The first rate tried, iterations per second.
    #[arg(long, default_value_t = 100.0)]
    start_rate: f64,
    /// Each rise multiplies the rate by this.
    #[arg(long, default_value_t = 2.0)]
    factor: f64,
    /// The highest rate tried.
    #[arg(long, default_value_t = 20_000.0)]
    max_rate: f64,
    /// Done when the lowest failing rate is within this fraction above the highest passing one.
    #[arg(long, default_value_t = 0.05)]
    precision: f64,
    /// The most steps (runs).
    #[arg(long, default_value_t = 14)]
    max_steps: u32,
    /// The longest the search may take; no step starts after it.
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    max_time: Duration,
    /// The pause between steps, for the target to recover from the last one.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    cool_down: Duration,
    /// Linear ramp from 0 to each step's rate.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    ramp_up: Duration,
    /// Time at each step's rate.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Virtual users of each step.
    #[arg(long, env = "LOADGEN_MAX_VUS", default_value_t = 300)]
    max_vus: usize,
    /// Per-request timeout.
    #[arg(long, env = "LOADGEN_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Audience access tokens must carry (defaults to the issuer).
    #[arg(long, env = "LOADGEN_ACCESS_TOKEN_AUDIENCE")]
    access_token_audience: Option<String>,
    /// How access tokens are checked: auto, jwt or opaque.
    #[arg(long, env = "LOADGEN_ACCESS_TOKEN", value_enum, default_value_t = AccessTokenFormat::Auto)]
    access_token: AccessTokenFormat,
    #[command(flatten)]
    thresholds: ThresholdArgs,
    /// The test users each step's seeds sign in as.
    #[command(flatten)]
    users: UserArgs,
    /// The target's process id, when it runs on this machine: each step records the CPU time it
    /// spent (Linux, /proc), so capacity.json shows its CPU per request.
    #[arg(long)]
    target_pid: Option<u32>,
    /// Directory for each step's result and capacity.json.
    #[arg(long, default_value = "loadgen-capacity")]
    out_dir: PathBuf,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Result files. Several are merged: the shards of one run (all of them, once each), or
    /// runs made side by side.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Also write the (merged) result here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit 99 when the (merged) result fails its thresholds, as `loadgen run` does; without it
    /// the report only prints.
    #[arg(long)]
    gate: bool,
    #[command(flatten)]
    outputs: OutputArgs,
    /// The most the shards' actual starts may differ.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    max_start_skew: Duration,
}

/// Reports besides the result file, for people and for CI.
#[derive(Debug, Args)]
struct OutputArgs {
    /// Also write a self-contained HTML report here: verdict, thresholds, percentiles and plots
    /// of the rate, latency and errors over time.
    #[arg(long, env = "LOADGEN_HTML")]
    html: Option<PathBuf>,
    /// Also write a JUnit XML report here: one test case per threshold, a failure carrying the
    /// observed value.
    #[arg(long, env = "LOADGEN_JUNIT")]
    junit: Option<PathBuf>,
}

impl OutputArgs {
    /// Writes the reports asked for, and appends the summary to the GitHub Actions job summary
    /// when `GITHUB_STEP_SUMMARY` names one.
    fn write(&self, result: &RunResult, summary_text: &str) -> anyhow::Result<()> {
        let results = std::slice::from_ref(result);
        if let Some(path) = &self.html {
            let title = format!("{} — {}", result.test_id, result.scenario);
            std::fs::write(path, loadgen::results::html_report::render(&title, results))
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

fn parse_check(name: &str) -> Result<Check, String> {
    Check::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Check::all().map(Check::as_str).collect();
        format!(
            "no check is called '{name}'; the checks are {}",
            known.join(", ")
        )
    })
}

fn progress_mode(no_progress: bool) -> ProgressMode {
    if no_progress {
        ProgressMode::Hidden
    } else {
        ProgressMode::Auto
    }
}

fn exit_for(verdict: Verdict) -> ExitCode {
    match verdict {
        Verdict::Pass => ExitCode::SUCCESS,
        Verdict::Fail => ExitCode::from(EXIT_THRESHOLDS_FAILED),
    }
}

async fn seed(args: SeedArgs) -> anyhow::Result<ExitCode> {
    let codes = args.codes.unwrap_or_else(|| {
        usize::try_from(codes_to_seed(&args.profile.profile())).unwrap_or(usize::MAX)
    });
    let config = SeedConfig {
        codes,
        refresh_families: args.refresh_families,
        sessions: args.sessions,
        client: args.client.credentials(),
        password: args.users.password,
        user_prefix: args.users.user_prefix,
        hints: FormHints {
            username_field: args.username_field,
            password_field: args.password_field,
            approve_button: args.approve_button,
        },
        concurrency: args.concurrency,
        attempts: args.attempts,
        timeout: args.timeout,
        progress: progress_mode(args.no_progress),
        shard: args.shard,
        ..SeedConfig::new(args.target)
    };
    let began = Instant::now();
    let seeds = loadgen::seeding::seeder::seed(&config, &args.out).await?;
    let for_shard = if args.shard.is_whole() {
        String::new()
    } else {
        format!(" (shard {})", args.shard)
    };
    eprintln!(
        "wrote {} authorization codes, {} refresh-token families, {} sessions{for_shard} to {} in \
         {:.1} s",
        seeds.authorization_codes.len(),
        seeds.refresh_tokens.len(),
        seeds.sessions.len(),
        args.out.display(),
        began.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
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
    let config = RunConfig {
        max_vus: args.max_vus,
        timeout: args.timeout,
        client: args.client.credentials(),
        access_token_audience: args.access_token_audience,
        access_token: args.access_token,
        seeds_out,
        code_lifetime: args.code_lifetime,
        mint_ahead: args.mint_ahead,
        skipped_checks: args.skip_checks.iter().copied().collect(),
        thresholds: args.thresholds.thresholds(),
        test_id: args.test_id,
        progress: progress_mode(args.no_progress),
        shard: args.shard,
        start_at: args.start_at,
        run_id: args.run_id,
        ..RunConfig::new(args.scenario, args.target, profile)
    };
    let (stop_handle, stop) = loadgen::stop_signal();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: finishing in-flight requests, then writing the result");
            stop_handle.stop();
        }
    });
    let result = loadgen::run(&config, seeds, stop).await?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("loadgen-{}.json", args.scenario.name())));
    result.write(&out)?;
    let text = summary(&result);
    print!("{text}");
    println!("  result: {}", out.display());
    args.outputs.write(&result, &text)?;
    if !args.shard.is_whole() {
        // One shard's share says nothing on its own about the run: the thresholds are judged
        // once, on the merge of every shard, as the single run would be.
        println!(
            "  shard {}: judged with the other shards by `loadgen report --gate SHARD...`",
            args.shard
        );
        return Ok(ExitCode::SUCCESS);
    }
    Ok(exit_for(result.verdict))
}

async fn capacity(args: CapacityArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    anyhow::ensure!(
        args.factor > 1.0,
        "--factor {} would not raise the rate: give more than 1",
        args.factor
    );
    anyhow::ensure!(
        args.start_rate >= 1.0 && args.max_rate >= args.start_rate,
        "give --start-rate of at least 1 and --max-rate no lower than it"
    );
    let plan = loadgen::run::capacity::Plan {
        start_rate: args.start_rate,
        factor: args.factor,
        max_rate: args.max_rate,
        precision: args.precision,
        max_steps: args.max_steps,
        max_time: args.max_time,
        cool_down: args.cool_down,
    };
    let profile = LoadProfile::new(args.start_rate, args.ramp_up, args.duration, Duration::ZERO);
    let config = RunConfig {
        max_vus: args.max_vus,
        timeout: args.timeout,
        client: args.client.credentials(),
        access_token_audience: args.access_token_audience,
        access_token: args.access_token,
        thresholds: args.thresholds.thresholds(),
        ..RunConfig::new(args.scenario, args.target.clone(), profile)
    };
    let seeding = SeedConfig {
        client: args.client.credentials(),
        password: args.users.password,
        user_prefix: args.users.user_prefix,
        ..SeedConfig::new(args.target)
    };
    let (stop_handle, stop) = loadgen::stop_signal();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: ending the step in flight, then reporting");
            stop_handle.stop();
        }
    });
    println!("capacity of {} ({}):", args.scenario.name(), config.target);
    let report = loadgen::run::capacity::search(
        plan,
        &config,
        args.target_pid,
        &seeding,
        &args.out_dir,
        stop,
        |step| {
            println!(
                "  {:>8.0}/s  {}  achieved {:.1}/s, p99 {}{}",
                step.rate_per_s,
                if step.passed { "PASS" } else { "FAIL" },
                step.achieved_rate_per_s,
                step.p99_ms
                    .map_or_else(|| "-".to_owned(), |p99| format!("{p99:.2} ms")),
                if step.failures.is_empty() {
                    String::new()
                } else {
                    format!(": {}", step.failures.join("; "))
                }
            );
        },
    )
    .await?;
    match &report.highest_pass {
        Some(step) => println!(
            "highest rate that passed: {:.0}/s (p99 {})",
            step.rate_per_s,
            step.p99_ms
                .map_or_else(|| "-".to_owned(), |p99| format!("{p99:.2} ms"))
        ),
        None => println!("no rate passed"),
    }
    if let Some(step) = &report.lowest_failure {
        println!(
            "lowest rate that failed: {:.0}/s, because {}",
            step.rate_per_s,
            step.failures.join("; ")
        );
    }
    println!("stopped: {}", report.stopped.describe());
    let summary = args.out_dir.join("capacity.json");
    let mut text = serde_json::to_vec_pretty(&report)?;
    text.push(b'\n');
    std::fs::write(&summary, text).with_context(|| format!("writing {}", summary.display()))?;
    println!("steps and capacity.json in {}", args.out_dir.display());
    Ok(if report.highest_pass.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_THRESHOLDS_FAILED)
    })
}

fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let results = args
        .files
        .iter()
        .map(|path| Ok((path.display().to_string(), RunResult::read(path)?)))
        .collect::<Result<Vec<_>, loadgen::results::result_file::ResultError>>()?;
    let merged = loadgen::merge_results(&results, args.max_start_skew)?;
    if let Some(out) = &args.out {
        merged.write(out).context("writing the merged result")?;
    }
    let text = summary(&merged);
    print!("{text}");
    args.outputs.write(&merged, &text)?;
    if args.gate {
        Ok(exit_for(merged.verdict))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread: at these rates a generator is bound by syscalls, not compute, and a
    // work-stealing runtime spends most of its time waking threads (futex) to hand tasks
    // around. Measured with `cargo xtask wrk-compare` at 500 requests/s: 889 us of CPU per
    // request on the multi-thread runtime.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The work runs as a spawned task, not as the `block_on` future itself: on a current-thread
    // runtime every wake-up of the `block_on` future writes to the driver's eventfd and costs an
    // extra `epoll_wait`, one pair per request when the scheduler lives there.
    let work = runtime.spawn(async move {
        match cli.command {
            Command::Seed(args) => seed(*args).await,
            Command::Run(args) => run(*args).await,
            Command::Report(args) => report(&args),
            Command::Capacity(args) => capacity(*args).await,
        }
    });
    match runtime.block_on(work) {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
        Err(panic) => {
            eprintln!("error: the run stopped unexpectedly: {panic}");
            ExitCode::FAILURE
        }
    }
}
