//! `cargo xtask --mix NAME [--quick]`: one of loadgen's named mixes (keycloak-sizing: sign-ins,
//! client-credentials grants and refreshes side by side), scaled to fit this machine, against the
//! provider booted on loopback: seeded for the mix (`loadgen seed --mix`), run from one start
//! (`loadgen run --mix`), and gated as one verdict over a section per scenario.

use std::ffi::OsString;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::children::{EXIT_THRESHOLD_FAILED, Profile};
use crate::flags::{Idp, PipelineArgs};
use crate::pipeline::{MAX_VUS, standard_profile};
use crate::process::{IdpProcess, run_to_completion};
use crate::run_dir::RunDir;
use crate::workspace::Workspace;

/// The share of a named mix run by default against `idp` on a 2-core machine beside loadgen.
/// Measured here with keycloak-sizing (765/s whole), --quick: mock-idp held it whole (gated p99
/// 5.8 ms for the sign-ins, 3.3 ms for the rest) and so did node-oidc-provider (19.4 ms, 7.7
/// ms); Keycloak, its JVM cold after boot, held a fifth (153/s; sign-ins' p99 123 ms).
pub fn default_mix_scale(idp: Idp) -> f64 {
    match idp {
        Idp::MockIdp | Idp::NodeOidcProvider => 1.0,
        Idp::Keycloak => 0.2,
    }
}

/// The users a mix's sign-ins take in turn.
const LOGIN_USERS: u32 = 200;

/// Boots the provider, seeds the mix, runs it and fails unless its verdict passed.
pub fn run(args: &PipelineArgs, mix: &str) -> Result<()> {
    let workspace = Workspace::find()?;
    let run_dir = workspace.new_run_dir("-mix")?;
    let scale = args
        .mix_scale
        .unwrap_or_else(|| default_mix_scale(args.idp));
    let mut profile = standard_profile(1, args.quick);
    if let Some(steady) = args.duration {
        profile.steady = steady;
    }
    println!(
        "mix {}: {mix} at {scale}x of its rates, {} s ramps, {} s steady, against {:?}; files in {}",
        run_dir.id(),
        profile.ramp.as_secs(),
        profile.steady.as_secs(),
        args.idp,
        run_dir.path().display()
    );
    workspace.build_binaries()?;
    let mut idp = match args.idp {
        Idp::MockIdp => workspace.boot_idp(&run_dir, &[])?,
        Idp::NodeOidcProvider => workspace.boot_node_oidc_provider(&run_dir, &[])?,
        Idp::Keycloak => workspace.boot_keycloak(&run_dir, MAX_VUS * 2, &[])?,
    };
    let outcome = seed_and_run(&workspace, &run_dir, &idp, mix, scale, profile);
    idp.stop();
    outcome
}

fn seed_and_run(
    workspace: &Workspace,
    run_dir: &RunDir,
    idp: &IdpProcess,
    mix: &str,
    scale: f64,
    profile: Profile,
) -> Result<()> {
    let loadgen = workspace.loadgen();
    let seeds = run_dir.seeds();
    // Every scenario follows the profile's ramps and steady time at its own rate (the profile's
    // --rate is not used by a mix).
    let mix_args: Vec<OsString> = [
        "--mix".to_owned(),
        mix.to_owned(),
        "--mix-scale".to_owned(),
        scale.to_string(),
        "--max-vus".to_owned(),
        MAX_VUS.to_string(),
    ]
    .into_iter()
    .map(OsString::from)
    .chain(profile.args())
    .collect();
    println!("\n==> seed what the mix needs, through the provider's pages");
    let status = run_to_completion(
        Command::new(loadgen.binary())
            .args(["seed", "--target", &idp.base_url, "--no-progress", "--out"])
            .arg(&seeds)
            .args(&mix_args),
    )?;
    if !status.success() {
        bail!("loadgen seed --mix {mix} failed ({status})");
    }
    println!("\n==> run the mix from one start");
    let out = run_dir.path().join("mix.json");
    let status = run_to_completion(
        Command::new(loadgen.binary())
            .args(["run", "--target", &idp.base_url, "--no-progress", "--seeds"])
            .arg(&seeds)
            .args(&mix_args)
            // The machine clients ask for a scope every provider here grants them. Sign-ins take
            // users after the seeded families' (at most 330 here), so 200 of them stay within
            // the 600 users Keycloak is booted with.
            .args(["--client-credentials-scope", "profile"])
            .args(["--login-users", &LOGIN_USERS.to_string(), "--out"])
            .arg(&out)
            .arg("--html")
            .arg(run_dir.path().join("mix.html"))
            .arg("--junit")
            .arg(run_dir.path().join("mix.junit.xml")),
    )?;
    match status.code().context("loadgen was killed by a signal")? {
        0 => {
            println!(
                "PASS: every scenario of the mix held the gate; result {}",
                out.display()
            );
            Ok(())
        }
        EXIT_THRESHOLD_FAILED => bail!("the mix failed its gate (see the summary above)"),
        code => bail!("loadgen run --mix exited with {code}"),
    }
}
