//! `loadgen capacity`: the highest rate the target holds under the gate.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use loadgen::protocol::token_verifier::AccessTokenFormat;
use loadgen::seeding::seeder::SeedConfig;
use loadgen::{LoadProfile, RunConfig, ScenarioKind, ThresholdArgs};

use crate::cli::EXIT_THRESHOLDS_FAILED;
use crate::cli::mix_args::MixArgs;
use crate::cli::shared_args::{ClientArgs, DpopArgs, TransportArgs};
use crate::cli::sign_in_args::SignInArgs;

#[derive(Debug, Args)]
pub(crate) struct CapacityArgs {
    /// Scenario: token-code (TEST 1), refresh-storm (TEST 2), full-oidc (TEST 3), login ...
    #[arg(
        long,
        env = "LOADGEN_SCENARIO",
        value_enum,
        required_unless_present_any = ["mix", "preset"]
    )]
    pub(crate) scenario: Option<ScenarioKind>,
    /// Search a mix (or preset) instead: the rates are its total, every scenario's scaled by the
    /// same factor, and a step passes when every scenario does.
    #[command(flatten)]
    pub(crate) mix: MixArgs,
    /// Base URL of the IdP.
    #[arg(long, env = "LOADGEN_TARGET")]
    pub(crate) target: String,
    /// The first rate tried, iterations per second.
    #[arg(long, default_value_t = 100.0)]
    pub(crate) start_rate: f64,
    /// Each rise multiplies the rate by this.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) factor: f64,
    /// The highest rate tried.
    #[arg(long, default_value_t = 20_000.0)]
    pub(crate) max_rate: f64,
    /// Done when the lowest failing rate is within this fraction above the highest passing one.
    #[arg(long, default_value_t = 0.05)]
    pub(crate) precision: f64,
    /// The most steps (runs).
    #[arg(long, default_value_t = 14)]
    pub(crate) max_steps: u32,
    /// The longest the search may take; no step starts after it.
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    pub(crate) max_time: Duration,
    /// The pause between steps, for the target to recover from the last one.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub(crate) cool_down: Duration,
    /// Linear ramp from 0 to each step's rate.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub(crate) ramp_up: Duration,
    /// Time at each step's rate.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) duration: Duration,
    /// Virtual users of each step.
    #[arg(long, env = "LOADGEN_MAX_VUS", default_value_t = 300)]
    pub(crate) max_vus: usize,
    /// Per-request timeout.
    #[arg(long, env = "LOADGEN_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
    /// Audience access tokens must carry: RFC 9068 ones (typ at+jwt) the issuer's when not
    /// given; other JWTs (Keycloak's typ JWT) have their aud checked only when it is given.
    #[arg(long, env = "LOADGEN_ACCESS_TOKEN_AUDIENCE")]
    pub(crate) access_token_audience: Option<String>,
    /// How access tokens are checked: auto, jwt or opaque.
    #[arg(long, env = "LOADGEN_ACCESS_TOKEN", value_enum, default_value_t = AccessTokenFormat::Auto)]
    pub(crate) access_token: AccessTokenFormat,
    #[command(flatten)]
    pub(crate) thresholds: ThresholdArgs,
    /// The test users each step's seeds (and the login scenario) sign in as, and the machine
    /// clients of client-credentials.
    #[command(flatten)]
    pub(crate) sign_in: SignInArgs,
    /// The target's process id, when it runs on this machine: each step records the CPU time it
    /// spent (Linux, /proc), so capacity.json shows its CPU per request.
    #[arg(long)]
    pub(crate) target_pid: Option<u32>,
    /// Directory for each step's result and capacity.json.
    #[arg(long, default_value = "loadgen-capacity")]
    pub(crate) out_dir: PathBuf,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(flatten)]
    pub(crate) dpop: DpopArgs,
    #[command(flatten)]
    pub(crate) transport: TransportArgs,
}

pub(crate) async fn execute(args: CapacityArgs) -> anyhow::Result<ExitCode> {
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
    let mix = args.mix.mix()?.map(|(mix, _)| mix);
    let scenario = match (&mix, args.scenario) {
        (Some(mix), _) => mix.entries()[0].scenario,
        (None, Some(scenario)) => scenario,
        (None, None) => anyhow::bail!("give --scenario, --mix or --preset with --mau"),
    };
    let transport = args.transport.settings();
    let config = RunConfig {
        transport: transport.clone(),
        max_vus: args.max_vus,
        timeout: args.timeout,
        client: args.client.credentials(&args.transport)?,
        access_token_audience: args.access_token_audience,
        access_token: args.access_token,
        dpop: args.dpop.dpop,
        thresholds: args.thresholds.thresholds(),
        users: args.sign_in.test_users(),
        machine_clients: args.sign_in.machine_clients()?,
        ..RunConfig::new(scenario, args.target.clone(), profile)
    };
    let seeding = SeedConfig {
        transport,
        client: args.client.credentials(&args.transport)?,
        password: args.sign_in.users.password.clone(),
        user_prefix: args.sign_in.users.user_prefix.clone(),
        ..SeedConfig::new(args.target)
    };
    let (stop_handle, stop) = loadgen::stop_signal();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: ending the step in flight, then reporting");
            stop_handle.stop();
        }
    });
    let searched = mix.as_ref().map_or_else(
        || scenario.name().to_owned(),
        |mix| format!("the mix {mix}"),
    );
    println!("capacity of {searched} ({}):", config.target);
    let report = loadgen::run::capacity::search(
        plan,
        &config,
        mix.as_ref(),
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
