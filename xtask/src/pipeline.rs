//! The main job, as a list of steps run in order: build, boot mock-idp, seed, TEST 1-3,
//! reconcile, benches, summary, verdict. Each step is a function over one [`Pipeline`]; the list
//! gives the numbering.
//!
//! The insta snapshots of the result format are tests (`cargo test --workspace` runs them, and
//! CI with it): they hold the code to its contract, which does not change with the IdP under test,
//! so the main job does not compile a second, test-profile tree to run them again.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use xshell::cmd;

use crate::children::{
    ClientKey, EXIT_THRESHOLD_FAILED, Loadgen, Profile, SeedCounts, TestRun, Tls,
};
use crate::flags::{ClientAuth, Idp, PipelineArgs};
use crate::process::{self, IdpProcess};
use crate::run_dir::RunDir;
use crate::workspace::Workspace;

/// What the pipeline run is for.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// The main job: fail on a broken gate.
    Gate,
    /// Performance tracking: also fail on a regression past tolerance when `strict`.
    Perf { strict: bool },
}

/// Virtual users, refresh-token families and sessions of the standard tests (one each per VU).
pub const MAX_VUS: u32 = 300;

/// Refresh-token families seeded beyond one per VU: TEST 2 moves a VU whose family is in doubt
/// after a transport error to a spare, so one lost answer fails one iteration, not the VU's rest.
pub const SPARE_FAMILIES: u32 = 30;

/// The three standard tests: id, loadgen scenario, file stem.
pub const TESTS: [(&str, &str, &str); 3] = [
    ("TEST 1", "token-code", "test1"),
    ("TEST 2", "refresh-storm", "test2"),
    ("TEST 3", "full-oidc", "test3"),
];

/// The specification's profile at `rate` (10 s ramps, 120 s steady), or the quick one (2 s, 10 s).
pub fn standard_profile(rate: u32, quick: bool) -> Profile {
    let (ramp, steady) = if quick {
        (Duration::from_secs(2), Duration::from_secs(10))
    } else {
        (Duration::from_secs(10), Duration::from_secs(120))
    };
    Profile { rate, ramp, steady }
}

/// The profile of every test of a run: the specification's, or the quick one.
pub fn profile_of(args: &PipelineArgs) -> Profile {
    let standard = standard_profile(args.rate(), args.quick);
    Profile {
        steady: args.duration.unwrap_or(standard.steady),
        ..standard
    }
}

/// How a step ended.
enum Outcome {
    Done,
    Skipped(&'static str),
}

type Step = fn(&mut Pipeline) -> Result<Outcome>;

/// The steps, in order.
const STEPS: [(&str, Step); 8] = [
    ("build mock-idp, loadgen and gate (release)", build),
    ("boot the identity provider on 127.0.0.1:0", boot),
    ("seed", seed),
    ("run TEST 1, TEST 2, TEST 3", run_tests),
    (
        "reconcile mock-idp's /metrics with what loadgen saw",
        reconcile,
    ),
    (
        "criterion benchmarks of token signing and validation",
        benches,
    ),
    ("summary", summarize),
    ("performance figures", perf_figures),
];

/// The state the steps share.
struct Pipeline {
    args: PipelineArgs,
    mode: Mode,
    workspace: Workspace,
    run_dir: RunDir,
    profile: Profile,
    idp: Option<IdpProcess>,
    /// How the children reach the provider when it serves HTTPS.
    tls: Option<Tls>,
    /// The key loadgen's client signs its assertions with, with `--client-auth private-key-jwt`.
    client_key: Option<ClientKey>,
    target: String,
    seeds: PathBuf,
    /// Failures outside any one test (a step that failed); each fails the run.
    problems: Vec<String>,
    passed: bool,
    perf_ok: bool,
}

/// Runs every step and fails when the gate (or, in strict perf mode, a tolerance) failed.
pub fn run(args: &PipelineArgs, mode: Mode) -> Result<()> {
    let workspace = Workspace::find()?;
    let run_dir = workspace.new_run_dir("")?;
    let profile = profile_of(args);
    println!(
        "pipeline {}: {} iterations/s, {} s ramps, {} s steady; results in {}",
        run_dir.id(),
        profile.rate,
        profile.ramp.as_secs(),
        profile.steady.as_secs(),
        run_dir.path().display()
    );
    let mut pipeline = Pipeline {
        args: args.clone(),
        mode,
        workspace,
        run_dir,
        profile,
        idp: None,
        tls: None,
        client_key: None,
        target: args
            .target
            .as_deref()
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_default(),
        seeds: args.seeds.clone().unwrap_or_default(),
        problems: Vec::new(),
        passed: false,
        perf_ok: true,
    };
    let mut times = Vec::with_capacity(STEPS.len());
    for (number, (name, step)) in STEPS.iter().enumerate() {
        if process::interrupted() {
            bail!("interrupted");
        }
        println!("\n==> [{}/{}] {name}", number + 1, STEPS.len());
        let started = Instant::now();
        let label = match step(&mut pipeline)? {
            Outcome::Done => (*name).to_owned(),
            Outcome::Skipped(why) => {
                println!("    skipped: {why}");
                format!("{name} (skipped: {why})")
            }
        };
        let elapsed = started.elapsed();
        println!("    {name}: {:.1} s", elapsed.as_secs_f64());
        times.push((label, elapsed));
    }
    let table = steps_table(&times);
    println!("\n{table}");
    std::fs::write(pipeline.run_dir.steps(), &table)?;
    println!("summary: {}", pipeline.run_dir.summary_markdown().display());
    if !pipeline.passed {
        bail!("the gate failed (see the summary above)");
    }
    if !pipeline.perf_ok {
        bail!("a performance figure regressed past its tolerance");
    }
    println!("PASS");
    Ok(())
}

fn steps_table(times: &[(String, Duration)]) -> String {
    let mut text = String::from("| step | time |\n| --- | ---: |\n");
    for (name, elapsed) in times {
        text.push_str(&format!("| {name} | {:.1} s |\n", elapsed.as_secs_f64()));
    }
    let total: Duration = times.iter().map(|(_, elapsed)| *elapsed).sum();
    text.push_str(&format!("| total | {:.1} s |\n", total.as_secs_f64()));
    text
}

impl Pipeline {
    /// loadgen, reaching the provider as the run does (over HTTPS with `--tls`).
    fn loadgen(&self) -> Loadgen {
        self.workspace
            .loadgen()
            .with_tls(self.tls.clone())
            .with_client_key(self.client_key.clone())
            .with_dpop(self.args.dpop)
            .with_par(self.args.par)
    }
}

fn build(pipeline: &mut Pipeline) -> Result<Outcome> {
    pipeline.workspace.build_binaries()?;
    Ok(Outcome::Done)
}

fn boot(pipeline: &mut Pipeline) -> Result<Outcome> {
    if pipeline.args.target.is_some() {
        return Ok(Outcome::Skipped("--target given"));
    }
    let tls_dir = pipeline.run_dir.tls();
    let tls_dir_text = tls_dir.display().to_string();
    // A provider other than mock-idp serves HTTPS with a CA and certificate made for the run.
    let mut provider_env = Vec::new();
    if pipeline.args.tls && pipeline.args.idp != Idp::MockIdp {
        pipeline.workspace.make_tls_certificates(&tls_dir)?;
        provider_env = vec![
            ("TLS_CERT", tls_dir.join("cert.pem").display().to_string()),
            ("TLS_KEY", tls_dir.join("key.pem").display().to_string()),
        ];
    }
    // With private_key_jwt, a key made for the run, its JWKS registered with the provider; with
    // tls, its self-signed certificate registered with mock-idp.
    if pipeline.args.client_auth == ClientAuth::Tls
        && (pipeline.args.idp == Idp::Keycloak || !pipeline.args.tls)
    {
        bail!(
            "--client-auth tls authenticates with a TLS client certificate: it runs over HTTPS \
             (add --tls) against mock-idp or node-oidc-provider, with which the pipeline \
             registers the certificate"
        );
    }
    if pipeline.args.client_auth == ClientAuth::Tls {
        let mut client_key = pipeline
            .workspace
            .make_client_key(&pipeline.run_dir.path().join("client-key"))?;
        client_key.by_certificate = true;
        provider_env.push(("CLIENT_CERT", client_key.certificate.display().to_string()));
        pipeline.client_key = Some(client_key);
    }
    if pipeline.args.client_auth == ClientAuth::PrivateKeyJwt {
        if pipeline.args.idp == Idp::Keycloak {
            bail!(
                "--client-auth private-key-jwt registers the run's key with mock-idp or \
                 node-oidc-provider; the Keycloak realm here has no client key registered"
            );
        }
        let client_key = pipeline
            .workspace
            .make_client_key(&pipeline.run_dir.path().join("client-key"))?;
        provider_env.push(("CLIENT_JWKS", client_key.jwks.display().to_string()));
        pipeline.client_key = Some(client_key);
    }
    if pipeline.args.dpop {
        provider_env.push(("DPOP_NONCE", "1".to_owned()));
    }
    let mut settings: Vec<(&str, &str)> = provider_env
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let mut mock_idp_args: Vec<String> = Vec::new();
    if pipeline.args.dpop {
        mock_idp_args.push("--dpop-nonce".to_owned());
    }
    if pipeline.args.tls {
        mock_idp_args.extend(["--tls-self-signed".to_owned(), tls_dir_text]);
    }
    if let Some(client_key) = &pipeline.client_key {
        let (flag, file) = if client_key.by_certificate {
            ("--client-certificate", &client_key.certificate)
        } else {
            ("--client-jwks", &client_key.jwks)
        };
        mock_idp_args.extend([flag.to_owned(), file.display().to_string()]);
    }
    let mock_idp_args: Vec<&str> = mock_idp_args.iter().map(String::as_str).collect();
    let idp = match pipeline.args.idp {
        Idp::MockIdp => pipeline
            .workspace
            .boot_idp(&pipeline.run_dir, &mock_idp_args)?,
        // The provider's own code lifetime is 60 s; the codes of a full TEST 1 are seeded up to
        // about three minutes before their use, so the configuration here allows ten.
        Idp::NodeOidcProvider => {
            settings.push(("CODE_TTL_S", "600"));
            pipeline
                .workspace
                .boot_node_oidc_provider(&pipeline.run_dir, &settings)?
        }
        // The realm's code lifetime is 30 minutes (idps/keycloak/loadtest-realm.json); its users
        // are the sessions' and the families', each on users of their own.
        Idp::Keycloak => pipeline.workspace.boot_keycloak(
            &pipeline.run_dir,
            MAX_VUS * 2 + SPARE_FAMILIES,
            &settings,
        )?,
    };
    if pipeline.args.tls {
        pipeline.tls = Some(Tls {
            ca_cert: tls_dir.join("ca.pem"),
            http2: pipeline.args.http2,
        });
    }
    println!("    {:?}: {}", pipeline.args.idp, idp.base_url);
    pipeline.target = idp.base_url.clone();
    pipeline.idp = Some(idp);
    Ok(Outcome::Done)
}

fn seed(pipeline: &mut Pipeline) -> Result<Outcome> {
    if pipeline.args.seeds.is_some() {
        return Ok(Outcome::Skipped("--seeds given"));
    }
    println!(
        "    authorization codes for TEST 1, {MAX_VUS} refresh-token families and \
         {SPARE_FAMILIES} spares, {MAX_VUS} sessions"
    );
    let dir = pipeline.run_dir.seeds();
    let counts = SeedCounts {
        codes_for: Some(pipeline.profile),
        refresh_families: MAX_VUS + SPARE_FAMILIES,
        sessions: MAX_VUS,
    };
    pipeline.loadgen().seed(&pipeline.target, counts, &dir)?;
    pipeline.seeds = dir;
    Ok(Outcome::Done)
}

fn run_tests(pipeline: &mut Pipeline) -> Result<Outcome> {
    let gate = pipeline.workspace.gate().with_tls(pipeline.tls.as_ref());
    let loadgen = pipeline.loadgen();
    let reconcile = pipeline.idp.is_some() && pipeline.args.idp == Idp::MockIdp;
    for (test_id, scenario, stem) in TESTS {
        println!("\n--- {test_id} ({scenario})");
        if reconcile {
            gate.snapshot_metrics(&pipeline.target, &pipeline.run_dir.metrics_before(stem))?;
        }
        let out = pipeline.run_dir.result(stem);
        let code = loadgen.run(&TestRun {
            test_id,
            scenario,
            target: &pipeline.target,
            seeds: &pipeline.seeds,
            profile: pipeline.profile,
            max_vus: MAX_VUS,
            out: &out,
        })?;
        if code != 0 && code != EXIT_THRESHOLD_FAILED {
            pipeline
                .problems
                .push(format!("{test_id}: loadgen exited with {code}"));
        }
        if reconcile {
            gate.snapshot_metrics(&pipeline.target, &pipeline.run_dir.metrics_after(stem))?;
        }
        if process::interrupted() {
            bail!("interrupted during {test_id}");
        }
    }
    Ok(Outcome::Done)
}

fn reconcile(pipeline: &mut Pipeline) -> Result<Outcome> {
    if pipeline.idp.is_none() || pipeline.args.idp != Idp::MockIdp {
        if let Some(mut idp) = pipeline.idp.take() {
            idp.stop();
        }
        return Ok(Outcome::Skipped(
            "only mock-idp exposes the counters the results are reconciled with",
        ));
    }
    let gate = pipeline.workspace.gate();
    let run_dir = &pipeline.run_dir;
    for (test_id, _, stem) in TESTS {
        let result = run_dir.result(stem);
        if !result.exists() {
            continue;
        }
        println!("  {test_id}:");
        let agrees = gate.reconcile(
            &result,
            &run_dir.metrics_before(stem),
            &run_dir.metrics_after(stem),
            &run_dir.reconciliation(stem),
        )?;
        if !agrees {
            println!("    (the mismatch fails {test_id})");
        }
    }
    // The IdP is done; stop it before the benches so it cannot disturb them.
    if let Some(mut idp) = pipeline.idp.take() {
        idp.stop();
    }
    Ok(Outcome::Done)
}

fn benches(pipeline: &mut Pipeline) -> Result<Outcome> {
    if pipeline.args.skip_benches {
        return Ok(Outcome::Skipped("--skip-benches"));
    }
    let shell = pipeline.workspace.shell()?;
    let quick: &[&str] = if pipeline.args.quick {
        &["--quick"]
    } else {
        &[]
    };
    let benches_json: PathBuf = pipeline.run_dir.benches();
    let iterations_json = pipeline.run_dir.iteration_benches();
    // Signing and validation on mock-idp's side, and loadgen's client side of an iteration.
    let measured = cmd!(
        shell,
        "cargo bench -p benches --bench signing --bench iteration -- {quick...}"
    )
    .run();
    let outputs = [
        "--json".into(),
        benches_json,
        "--iterations-json".into(),
        iterations_json,
    ];
    let ratios = measured.and_then(|()| {
        cmd!(
            shell,
            "cargo run --release -q -p benches --bin bench-ratios -- {outputs...}"
        )
        .run()
    });
    if let Err(error) = ratios {
        pipeline
            .problems
            .push(format!("the benchmarks failed: {error}"));
    }
    Ok(Outcome::Done)
}

fn summarize(pipeline: &mut Pipeline) -> Result<Outcome> {
    let benches = pipeline.run_dir.benches();
    let iteration_benches = pipeline.run_dir.iteration_benches();
    pipeline.passed = pipeline.workspace.gate().summary(
        pipeline.run_dir.path(),
        &pipeline.run_dir.id(),
        benches.exists().then_some(benches.as_path()),
        iteration_benches
            .exists()
            .then_some(iteration_benches.as_path()),
        &pipeline.problems,
    )?;
    Ok(Outcome::Done)
}

fn perf_figures(pipeline: &mut Pipeline) -> Result<Outcome> {
    let perf_dir = pipeline.workspace.xtask_dir("perf");
    std::fs::create_dir_all(&perf_dir)?;
    pipeline.perf_ok = pipeline.workspace.gate().perf(
        &pipeline.run_dir.summary_json(),
        &pipeline.workspace.path("verification/perf/baseline.json"),
        &perf_dir.join("history.jsonl"),
        &perf_dir.join("current.json"),
        matches!(pipeline.mode, Mode::Perf { strict: true }),
    )?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_and_standard_profiles() {
        let standard = profile_of(&PipelineArgs {
            quick: false,
            ..PipelineArgs::quick()
        });
        assert_eq!(standard.ramp, Duration::from_secs(10));
        assert_eq!(standard.steady, Duration::from_secs(120));
        let quick = profile_of(&PipelineArgs::quick());
        assert_eq!(
            (quick.rate, quick.ramp.as_secs(), quick.steady.as_secs()),
            (300, 2, 10)
        );
    }

    #[test]
    fn every_step_has_a_name_and_the_table_totals_them() {
        assert!(STEPS.iter().all(|(name, _)| !name.is_empty()));
        let table = steps_table(&[
            ("one".into(), Duration::from_millis(1500)),
            ("two (skipped: why)".into(), Duration::ZERO),
        ]);
        assert!(table.contains("| one | 1.5 s |"), "{table}");
        assert!(table.ends_with("| total | 1.5 s |\n"), "{table}");
    }
}
