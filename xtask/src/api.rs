//! `cargo xtask api [--quick]`: the `api` scenario against the reference API, as a user load-tests
//! their own API with real tokens. mock-idp issues 20 s access tokens, so every VU renews its
//! token during even the quick run; the API checks them against mock-idp's JWKS. A second API
//! trusts an HS256 test secret, and loadgen signs its tokens itself. Both runs must pass the gate;
//! a third, against an API that refuses 1 % of calls as `invalid_token`, must fail it.

use std::path::Path;

use anyhow::{Result, bail};

use crate::children::{EXIT_THRESHOLD_FAILED, SeedCounts, TestRun};
use crate::flags::ApiArgs;
use crate::pipeline::{MAX_VUS, SPARE_FAMILIES, standard_profile};
use crate::process::interrupted;
use crate::workspace::Workspace;

/// The HS256 secret the second API trusts and loadgen signs with: a test key, shared through the
/// environment as an application's would be.
const TEST_SECRET: &str = "reference-api test secret: for load tests on loopback only";
/// The variable that carries it to both processes.
const SECRET_VARIABLE: &str = "REFERENCE_API_TEST_SECRET";
/// mock-idp's access-token lifetime for the run: short enough that every VU renews during it.
const ACCESS_TOKEN_TTL: &str = "20s";

/// Runs the three API runs; fails when a clean one fails its gate or the fault run passes it.
pub fn run(args: ApiArgs) -> Result<()> {
    let workspace = Workspace::find()?;
    let run_dir = workspace.new_run_dir("-api")?;
    let profile = standard_profile(args.rate, args.quick);
    println!(
        "api {}: the api scenario at {}/s ({} s ramps, {} s steady) against the reference API; \
         files in {}",
        run_dir.id(),
        profile.rate,
        profile.ramp.as_secs(),
        profile.steady.as_secs(),
        run_dir.path().display()
    );
    workspace.build_binaries()?;
    let mut idp = workspace.boot_idp(&run_dir, &["--access-token-ttl", ACCESS_TOKEN_TTL])?;
    let outcome = run_against(&workspace, run_dir.path(), &idp.base_url, args);
    idp.stop();
    outcome
}

fn run_against(workspace: &Workspace, directory: &Path, idp: &str, args: ApiArgs) -> Result<()> {
    let profile = standard_profile(args.rate, args.quick);
    let loadgen = workspace.loadgen();
    let seeds = directory.join("seeds");
    println!("\n==> seed: a refresh-token family per VU, through mock-idp's pages");
    loadgen.seed(
        idp,
        SeedCounts {
            codes_for: None,
            refresh_families: MAX_VUS + SPARE_FAMILIES,
            sessions: 0,
        },
        &seeds,
    )?;
    let secret = [(SECRET_VARIABLE, TEST_SECRET)];
    let mut failures = Vec::new();
    for case in CASES {
        if interrupted() {
            bail!("interrupted before {}", case.stem);
        }
        println!("\n==> {}: {}", case.stem, case.label);
        let log = directory.join(format!("{}.api.log", case.stem));
        let mut api = workspace.boot_reference_api(&case.api_args(idp), &secret, &log)?;
        let out = directory.join(format!("{}.json", case.stem));
        let code = loadgen.run_with(
            &TestRun {
                test_id: case.stem,
                scenario: "api",
                target: idp,
                seeds: &seeds,
                profile,
                max_vus: MAX_VUS,
                out: &out,
            },
            &case.loadgen_args(&api.base_url),
            &secret,
        );
        api.stop();
        match (code?, case.fault) {
            (0, false) | (EXIT_THRESHOLD_FAILED, true) => {}
            (0, true) => failures.push(format!("{}: the fault run passed the gate", case.stem)),
            (EXIT_THRESHOLD_FAILED, false) => {
                failures.push(format!("{}: failed the gate", case.stem));
            }
            (code, _) => failures.push(format!("{}: loadgen exited with {code}", case.stem)),
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    println!("\nPASS: both token sources held the gate, and the fault run failed it");
    Ok(())
}

/// Where a run's tokens come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tokens {
    /// mock-idp's, renewed through each VU's seeded family; the API checks them with its JWKS.
    Provider,
    /// Signed by loadgen with the test secret the API trusts.
    Signed,
}

/// One run of the command.
#[derive(Debug, Clone, Copy)]
struct Case {
    stem: &'static str,
    label: &'static str,
    tokens: Tokens,
    /// The API refuses 1 % of calls, and the run must fail its gate.
    fault: bool,
}

const CASES: [Case; 3] = [
    Case {
        stem: "api-oidc",
        label: "the provider's tokens, checked against its JWKS",
        tokens: Tokens::Provider,
        fault: false,
    },
    Case {
        stem: "api-sign",
        label: "tokens loadgen signs (HS256)",
        tokens: Tokens::Signed,
        fault: false,
    },
    Case {
        stem: "api-fault",
        label: "a deliberate fault: the API refuses 1 % as invalid_token, which must fail the gate",
        tokens: Tokens::Signed,
        fault: true,
    },
];

impl Case {
    fn api_args(&self, idp: &str) -> Vec<String> {
        let mut args = match self.tokens {
            Tokens::Provider => vec![
                "--jwks-url".to_owned(),
                format!("{idp}/jwks"),
                "--issuer".to_owned(),
                idp.to_owned(),
            ],
            Tokens::Signed => vec!["--hs256-secret-env".to_owned(), SECRET_VARIABLE.to_owned()],
        };
        if self.fault {
            args.extend(["--inject-fault".to_owned(), "401:0.01".to_owned()]);
        }
        args
    }

    fn loadgen_args(&self, api: &str) -> Vec<String> {
        let mut args = vec![
            "--api-url".to_owned(),
            format!("{api}/api/v1/posts/feed=3"),
            "--api-url".to_owned(),
            format!("{api}/api/v1/me=1"),
        ];
        if self.tokens == Tokens::Signed {
            args.extend(
                [
                    "--token-source",
                    "sign",
                    "--sign-secret-env",
                    SECRET_VARIABLE,
                    "--token-ttl",
                    ACCESS_TOKEN_TTL,
                ]
                .map(str::to_owned),
            );
        }
        args
    }
}
