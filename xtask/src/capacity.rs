//! `cargo xtask capacity`: mock-idp's limits on this machine. For each signing algorithm, mock-idp
//! is booted and `loadgen capacity` finds the highest rate TEST 1 and TEST 2 hold under the gate,
//! recording mock-idp's CPU time per step; the criterion signing benches measure the raw
//! aws-lc-rs cost in the same run, and `gate capacity` writes the table of limits with each CPU
//! time per request beside its floor (signatures per request x raw signing cost).
//!
//! loadgen and mock-idp share this machine's cores, so the limits are the machine's for the
//! pair, not mock-idp's alone: the CPU per request is what tells mock-idp's own cost.
//!
//! Then TEST 2 is searched twice more with RS256, the client authenticating with `private_key_jwt`
//! (an ES256 key made for the run, registered with mock-idp), then also binding its tokens with
//! DPoP: each row shows what the feature costs mock-idp per request beside the same floor, and
//! loadgen's own CPU per iteration.
//!
//! With `--idp keycloak`, Keycloak (`idps/keycloak`) is booted instead and searched for TEST 2
//! (its realm signs with RS256), its JVM's CPU time recorded per step; there is no floor to set
//! it beside.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use xshell::cmd;

use crate::children::{CapacitySearch, EXIT_THRESHOLD_FAILED};
use crate::flags::{CapacityArgs, Idp};
use crate::pipeline::TESTS;
use crate::run_dir::RunDir;
use crate::workspace::Workspace;

/// The scenarios searched: the two the table names, TEST 1 and TEST 2.
const SEARCHED: [&str; 2] = ["token-code", "refresh-storm"];

/// Runs the searches and writes `capacity.md`; fails when RS256 misses its floor target.
pub fn run(args: &CapacityArgs) -> Result<()> {
    let workspace = Workspace::find()?;
    let run_dir = workspace.new_run_dir("-capacity")?;
    println!(
        "capacity {}: files in {}",
        run_dir.id(),
        run_dir.path().display()
    );
    workspace.build_binaries()?;
    match args.idp {
        Idp::MockIdp => {}
        Idp::Keycloak => return keycloak(args, &workspace, &run_dir),
        Idp::NodeOidcProvider => {
            bail!("capacity searches mock-idp or keycloak; node-oidc-provider is not searched")
        }
    }

    println!("\n==> the floor: criterion's raw signing cost per algorithm, in this run");
    let shell = workspace.shell()?;
    cmd!(shell, "cargo bench -p benches --bench signing -- --quick").run()?;
    let benches = run_dir.benches();
    cmd!(
        shell,
        "cargo run --release -q -p benches --bin bench-ratios -- --json {benches}"
    )
    .run()?;

    let (ramp, steady, precision, max_time) = step_shape(args.quick);
    let loadgen = workspace.loadgen();
    let mut searches: Vec<(String, PathBuf)> = Vec::new();
    for algorithm in &args.algorithms {
        let mut idp = workspace.boot_idp(&run_dir, &["--signing-alg", algorithm])?;
        let mut found = Ok(());
        for (test_id, scenario, stem) in TESTS
            .iter()
            .filter(|(_, scenario, _)| SEARCHED.contains(scenario))
        {
            println!("\n==> {algorithm}, {test_id} ({scenario}): loadgen capacity");
            let out_dir = run_dir.path().join(format!("capacity-{algorithm}-{stem}"));
            let code = loadgen.capacity(&CapacitySearch {
                scenario,
                target: &idp.base_url,
                target_pid: idp.pid(),
                start_rate: args.start_rate,
                ramp,
                steady,
                precision,
                max_time,
                out_dir: &out_dir,
            });
            match code {
                Ok(0 | EXIT_THRESHOLD_FAILED) => {
                    searches.push((algorithm.clone(), out_dir.join("capacity.json")));
                }
                Ok(code) => {
                    found = Err(anyhow::anyhow!(
                        "loadgen capacity of {test_id} with {algorithm} exited with {code}"
                    ));
                    break;
                }
                Err(error) => {
                    found = Err(error);
                    break;
                }
            }
        }
        idp.stop();
        found?;
    }
    if args.algorithms.iter().any(|algorithm| algorithm == "RS256") {
        searches.extend(client_cost_searches(args, &workspace, &run_dir)?);
    }

    println!("\n==> the table of limits (gate capacity)");
    let table = run_dir.path().join("capacity.md");
    let within = workspace.gate().capacity(&searches, &benches, &table)?;
    println!("table: {}", table.display());
    if !within {
        bail!("mock-idp's CPU per request is above its floor target (see above)");
    }
    println!("PASS");
    Ok(())
}

/// TEST 2 with RS256 searched with the client signing `private_key_jwt` assertions, then also
/// binding its tokens with DPoP (one proof per refresh): the searches' `capacity.json` files.
fn client_cost_searches(
    args: &CapacityArgs,
    workspace: &Workspace,
    run_dir: &RunDir,
) -> Result<Vec<(String, PathBuf)>> {
    let client_key = workspace.make_client_key(&run_dir.path().join("client-key"))?;
    let jwks = client_key.jwks.display().to_string();
    let mut searches = Vec::new();
    for (label, dpop) in [("private-key-jwt", false), ("private-key-jwt-dpop", true)] {
        let mut idp =
            workspace.boot_idp(run_dir, &["--signing-alg", "RS256", "--client-jwks", &jwks])?;
        println!("\n==> RS256, TEST 2 (refresh-storm), {label}: loadgen capacity");
        let out_dir = run_dir.path().join(format!("capacity-RS256-test2-{label}"));
        let code = workspace
            .loadgen()
            .with_client_key(Some(client_key.clone()))
            .with_dpop(dpop)
            .capacity(&test2_search(args, &idp.base_url, idp.pid(), &out_dir));
        idp.stop();
        searched(code, &format!("TEST 2 with {label}"))?;
        searches.push(("RS256".to_owned(), out_dir.join("capacity.json")));
    }
    Ok(searches)
}

/// The search of TEST 2 at `target` (its process `target_pid`) into `out_dir`, shaped as the
/// command was asked.
fn test2_search<'a>(
    args: &CapacityArgs,
    target: &'a str,
    target_pid: Option<u32>,
    out_dir: &'a Path,
) -> CapacitySearch<'a> {
    let (ramp, steady, precision, max_time) = step_shape(args.quick);
    CapacitySearch {
        scenario: "refresh-storm",
        target,
        target_pid,
        start_rate: args.start_rate,
        ramp,
        steady,
        precision,
        max_time,
        out_dir,
    }
}

/// Whether `loadgen capacity` searched (a rate passed, or none did) rather than failing.
fn searched(code: Result<i32>, what: &str) -> Result<()> {
    match code? {
        0 | EXIT_THRESHOLD_FAILED => Ok(()),
        code => bail!("loadgen capacity of {what} exited with {code}"),
    }
}

/// Each step's ramp and steady time, the search's precision and its longest time.
fn step_shape(quick: bool) -> (Duration, Duration, f64, Duration) {
    if quick {
        (
            Duration::from_secs(2),
            Duration::from_secs(10),
            0.1,
            Duration::from_secs(240),
        )
    } else {
        (
            Duration::from_secs(5),
            Duration::from_secs(30),
            0.05,
            Duration::from_secs(900),
        )
    }
}

/// Keycloak's limit for TEST 2 on this machine, its JVM's CPU time recorded per step.
fn keycloak(args: &CapacityArgs, workspace: &Workspace, run_dir: &RunDir) -> Result<()> {
    // Each step seeds one family per VU and 10 % spares, on users of their own: 1,000 users
    // cover the 300 VUs a step uses.
    let mut idp = workspace.boot_keycloak(run_dir, 1_000, &[])?;
    let jvm = idp.pid().and_then(java_descendant);
    let out_dir = run_dir.path().join("capacity-keycloak-test2");
    println!("\n==> Keycloak, TEST 2 (refresh-storm): loadgen capacity");
    let code = workspace
        .loadgen()
        .capacity(&test2_search(args, &idp.base_url, jvm, &out_dir));
    idp.stop();
    searched(code, "TEST 2 against Keycloak")?;
    println!("search: {}", out_dir.join("capacity.json").display());
    Ok(())
}

/// The first process named `java` under `pid` (`start.sh` runs `kc.sh`, which runs the JVM), so
/// the provider's own CPU time is read, not the scripts'. Linux's `/proc`; `None` elsewhere.
fn java_descendant(pid: u32) -> Option<u32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children
        .split_whitespace()
        .filter_map(|child| child.parse::<u32>().ok())
        .find_map(|child| {
            let name = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
            if name.trim() == "java" {
                Some(child)
            } else {
                java_descendant(child)
            }
        })
}
