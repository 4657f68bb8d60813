//! `loadgen seed`: seed files made through the provider's own pages.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use loadgen::plan::shard::Shard;
use loadgen::seeding::seed_files::codes_to_seed;
use loadgen::seeding::seeder::SeedConfig;

use crate::cli::mix_args::MixArgs;
use crate::cli::shared_args::{
    ClientArgs, FormArgs, ProfileArgs, TransportArgs, UserArgs, progress_mode,
};

#[derive(Debug, Args)]
pub(crate) struct SeedArgs {
    /// Base URL of the IdP.
    #[arg(long, env = "LOADGEN_TARGET")]
    pub(crate) target: String,
    /// Authorization codes to mint (TEST 1); by default as many as a TEST 1 of the profile below
    /// uses, plus a margin, in whole thousands (40,000 for the standard profile).
    #[arg(long, env = "LOADGEN_CODES", conflicts_with_all = ["mix", "preset"])]
    pub(crate) codes: Option<usize>,
    /// The profile of the TEST 1 the codes are for, when --codes is not given.
    #[command(flatten)]
    pub(crate) profile: ProfileArgs,
    /// Refresh-token families to open, one per user (TEST 2): one per virtual user, and the rest
    /// spares for VUs whose family is in doubt after a transport error.
    #[arg(
        long,
        env = "LOADGEN_REFRESH_FAMILIES",
        default_value_t = 330,
        conflicts_with_all = ["mix", "preset"]
    )]
    pub(crate) refresh_families: usize,
    /// Login sessions to record, one per user (TEST 3).
    #[arg(
        long,
        env = "LOADGEN_SESSIONS",
        default_value_t = 300,
        conflicts_with_all = ["mix", "preset"]
    )]
    pub(crate) sessions: usize,
    /// Directory for authorization_codes.json, refresh_tokens.json and sessions.json.
    #[arg(long, env = "LOADGEN_SEEDS")]
    pub(crate) out: PathBuf,
    #[command(flatten)]
    pub(crate) users: UserArgs,
    #[command(flatten)]
    pub(crate) forms: FormArgs,
    /// Seed only shard I of N (from 0): its slice of the counts above (which stay the whole
    /// run's), for users of its own, so each machine of a sharded run can seed itself. The
    /// directory records the shard (shard.json) and `loadgen run --shard` checks it.
    #[arg(long, env = "LOADGEN_SHARD", default_value = "0/1")]
    pub(crate) shard: Shard,
    /// Seed requests in flight at once.
    #[arg(long, env = "LOADGEN_CONCURRENCY", default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// Attempts per seed before the command fails.
    #[arg(long, env = "LOADGEN_ATTEMPTS", default_value_t = 3)]
    pub(crate) attempts: u32,
    /// Per-request timeout.
    #[arg(long, env = "LOADGEN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,
    /// No progress bar.
    #[arg(long, env = "LOADGEN_NO_PROGRESS")]
    pub(crate) no_progress: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
    #[command(flatten)]
    pub(crate) transport: TransportArgs,
    /// Seed what this mix (or preset) needs, sized from the profile above and --max-vus,
    /// instead of --codes, --refresh-families and --sessions.
    #[command(flatten)]
    pub(crate) mix: MixArgs,
    /// With --mix or --preset: the run's --max-vus, which each scenario's VUs (and so its
    /// families and sessions) are a share of.
    #[arg(long, env = "LOADGEN_MAX_VUS", default_value_t = 300)]
    pub(crate) max_vus: usize,
}

pub(crate) async fn execute(args: SeedArgs) -> anyhow::Result<ExitCode> {
    let profile = args.profile.profile();
    let (codes, refresh_families, sessions) = match args.mix.mix()? {
        Some((mix, _)) => {
            let counts = mix.seed_counts(&profile, args.max_vus)?;
            let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
            eprintln!(
                "seeding for the mix {mix} on {} VUs: {} codes, {} refresh-token families, {} \
                 sessions",
                args.max_vus, counts.codes, counts.refresh_families, counts.sessions
            );
            (
                count(counts.codes),
                count(counts.refresh_families),
                count(counts.sessions),
            )
        }
        None => (
            args.codes
                .unwrap_or_else(|| usize::try_from(codes_to_seed(&profile)).unwrap_or(usize::MAX)),
            args.refresh_families,
            args.sessions,
        ),
    };
    let config = SeedConfig {
        transport: args.transport.settings(),
        codes,
        refresh_families,
        sessions,
        client: args.client.credentials(&args.transport)?,
        password: args.users.password,
        user_prefix: args.users.user_prefix,
        hints: args.forms.hints(),
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
