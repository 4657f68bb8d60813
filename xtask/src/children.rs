//! The workspace's binaries as typed commands: `loadgen seed`, `loadgen run` and the `gate`
//! subcommands, each built from typed arguments in one place and run to completion.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};

use crate::process::{in_ci, run_side_by_side, run_to_completion};

/// loadgen's and gate's exit code for "a threshold failed" (k6's convention).
pub const EXIT_THRESHOLD_FAILED: i32 = 99;

/// The arrival-rate profile of a run, as loadgen's flags take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Iterations per second at the steady rate.
    pub rate: u32,
    /// Each of the two linear ramps.
    pub ramp: Duration,
    /// Time at the steady rate.
    pub steady: Duration,
}

impl Profile {
    /// The profile as loadgen's flags.
    pub fn args(&self) -> Vec<OsString> {
        let seconds = |duration: Duration| format!("{}s", duration.as_secs());
        [
            "--rate".to_owned(),
            self.rate.to_string(),
            "--ramp-up".to_owned(),
            seconds(self.ramp),
            "--duration".to_owned(),
            seconds(self.steady),
            "--ramp-down".to_owned(),
            seconds(self.ramp),
        ]
        .into_iter()
        .map(OsString::from)
        .collect()
    }
}

/// What `loadgen seed` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedCounts {
    /// Authorization codes for a TEST 1 of this profile (loadgen sizes them), or none.
    pub codes_for: Option<Profile>,
    /// Refresh-token families.
    pub refresh_families: u32,
    /// Signed-in sessions.
    pub sessions: u32,
}

/// One `loadgen run` of one standard test.
#[derive(Debug, Clone, Copy)]
pub struct TestRun<'a> {
    /// `TEST 1` ...
    pub test_id: &'a str,
    /// loadgen's scenario name.
    pub scenario: &'a str,
    /// The IdP's base URL.
    pub target: &'a str,
    /// The seed directory.
    pub seeds: &'a Path,
    /// The profile.
    pub profile: Profile,
    /// Virtual users.
    pub max_vus: u32,
    /// Where the result goes.
    pub out: &'a Path,
}

/// Shard `index` of `count` of one run, all starting at `start_at` (RFC 3339, UTC).
#[derive(Debug, Clone, Copy)]
pub struct ShardOf<'a> {
    /// From 0.
    pub index: u32,
    /// The run's shards.
    pub count: u32,
    /// The common start.
    pub start_at: &'a str,
}

impl ShardOf<'_> {
    fn args(&self) -> Vec<OsString> {
        vec![
            "--shard".into(),
            format!("{}/{}", self.index, self.count).into(),
            "--start-at".into(),
            self.start_at.into(),
        ]
    }
}

/// How `loadgen capacity` searches.
#[derive(Debug, Clone, Copy)]
pub struct CapacitySearch<'a> {
    /// loadgen's scenario name.
    pub scenario: &'a str,
    /// The IdP's base URL.
    pub target: &'a str,
    /// The IdP's process, whose CPU time each step records.
    pub target_pid: Option<u32>,
    /// The first rate, iterations per second.
    pub start_rate: u32,
    /// The ramp and the steady time of each step.
    pub ramp: Duration,
    pub steady: Duration,
    /// Done within this fraction.
    pub precision: f64,
    /// The longest the search may take.
    pub max_time: Duration,
    /// Where the steps and capacity.json go.
    pub out_dir: &'a Path,
}

/// How the children reach a provider that serves HTTPS: the CA to trust, and whether to speak
/// HTTP/2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The PEM file of the CA that signed the provider's certificate.
    pub ca_cert: PathBuf,
    /// Speak HTTP/2 (negotiated by ALPN).
    pub http2: bool,
}

impl Tls {
    fn loadgen_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["--ca-cert".into(), self.ca_cert.clone().into()];
        if self.http2 {
            args.push("--http2".into());
        }
        args
    }
}

/// The client key loadgen signs `private_key_jwt` assertions with (made for the run by
/// `mock-idp --make-client-key`, its JWKS registered with the provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey {
    /// The PEM private key.
    pub key: PathBuf,
    /// Its JWKS, for the provider.
    pub jwks: PathBuf,
    /// A self-signed certificate of it (PEM), for the provider and the TLS handshake.
    pub certificate: PathBuf,
    /// Whether loadgen authenticates with the certificate (RFC 8705) instead of assertions.
    pub by_certificate: bool,
}

impl ClientKey {
    /// The algorithm of the keys the pipeline makes.
    pub const ALGORITHM: &str = "ES256";

    fn loadgen_args(&self) -> Vec<OsString> {
        if self.by_certificate {
            return vec![
                "--client-auth".into(),
                "tls".into(),
                "--client-cert".into(),
                self.certificate.clone().into(),
                "--client-key".into(),
                self.key.clone().into(),
            ];
        }
        vec![
            "--client-auth".into(),
            "private-key-jwt".into(),
            "--client-key".into(),
            self.key.clone().into(),
            "--client-key-alg".into(),
            Self::ALGORITHM.into(),
        ]
    }
}

/// The release `loadgen` binary.
#[derive(Debug, Clone)]
pub struct Loadgen {
    binary: PathBuf,
    tls: Option<Tls>,
    client_key: Option<ClientKey>,
    /// Runs bind their tokens to DPoP keys (`--dpop`); seeding does not.
    dpop: bool,
    /// Every command pushes its authorization requests (`--par`).
    par: bool,
}

impl Loadgen {
    /// `binary`, a release build of loadgen.
    pub fn new(binary: PathBuf) -> Self {
        Self {
            binary,
            tls: None,
            client_key: None,
            dpop: false,
            par: false,
        }
    }

    /// The same loadgen, pushing its authorization requests (RFC 9126) when `par`.
    pub fn with_par(mut self, par: bool) -> Self {
        self.par = par;
        self
    }

    /// The same loadgen, its runs binding tokens to each VU's DPoP key when `dpop`.
    pub fn with_dpop(mut self, dpop: bool) -> Self {
        self.dpop = dpop;
        self
    }

    /// The flags of a run (`run`, `capacity`) besides the transport's.
    fn run_flags(&self) -> Vec<OsString> {
        if self.dpop {
            vec!["--dpop".into()]
        } else {
            Vec::new()
        }
    }

    /// The same loadgen, its client authenticating with `client_key` when one is given.
    pub fn with_client_key(mut self, client_key: Option<ClientKey>) -> Self {
        self.client_key = client_key;
        self
    }

    /// The same loadgen, reaching the provider over HTTPS as `tls` says (plain HTTP when `None`).
    pub fn with_tls(mut self, tls: Option<Tls>) -> Self {
        self.tls = tls;
        self
    }

    /// How every command reaches the provider and authenticates its client.
    fn transport_args(&self) -> Vec<OsString> {
        let mut args = self.tls.as_ref().map(Tls::loadgen_args).unwrap_or_default();
        args.extend(
            self.client_key
                .as_ref()
                .map(ClientKey::loadgen_args)
                .unwrap_or_default(),
        );
        if self.par {
            args.push("--par".into());
        }
        args
    }

    /// The binary, for commands timed in a shell (`wrk-compare`).
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    fn seed_args(target: &str, counts: SeedCounts, out: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["seed".into(), "--target".into(), target.into()];
        match counts.codes_for {
            // loadgen knows how many codes a TEST 1 of the profile needs: one formula.
            Some(profile) => args.extend(profile.args()),
            None => args.extend(["--codes".into(), "0".into()]),
        }
        args.extend([
            "--refresh-families".into(),
            counts.refresh_families.to_string().into(),
            "--sessions".into(),
            counts.sessions.to_string().into(),
            "--out".into(),
            out.into(),
        ]);
        if in_ci() {
            args.push("--no-progress".into());
        }
        args
    }

    /// `loadgen seed` into `out`.
    pub fn seed(&self, target: &str, counts: SeedCounts, out: &Path) -> Result<()> {
        let status = run_to_completion(
            Command::new(&self.binary)
                .args(Self::seed_args(target, counts, out))
                .args(self.transport_args()),
        )?;
        ensure!(status.success(), "loadgen seed failed ({status})");
        Ok(())
    }

    fn run_args(test: &TestRun<'_>) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "run".into(),
            "--scenario".into(),
            test.scenario.into(),
            "--target".into(),
            test.target.into(),
            "--test-id".into(),
            test.test_id.into(),
            "--seeds".into(),
            test.seeds.into(),
        ];
        args.extend(test.profile.args());
        args.extend([
            "--max-vus".into(),
            test.max_vus.to_string().into(),
            "--timeout".into(),
            "5s".into(),
            "--out".into(),
            test.out.into(),
        ]);
        if in_ci() {
            args.push("--no-progress".into());
        }
        args
    }

    /// `loadgen seed --shard I/N` of every shard, side by side (each into `out(I)`), as the
    /// machines of a sharded run seed themselves.
    pub fn seed_shards(
        &self,
        target: &str,
        counts: SeedCounts,
        count: u32,
        out: impl Fn(u32) -> PathBuf,
    ) -> Result<()> {
        let mut commands: Vec<Command> = (0..count)
            .map(|index| {
                let mut command = Command::new(&self.binary);
                command
                    .args(Self::seed_args(target, counts, &out(index)))
                    .args(["--shard".to_owned(), format!("{index}/{count}")]);
                command
            })
            .collect();
        for (index, status) in run_side_by_side(&mut commands)?.into_iter().enumerate() {
            ensure!(
                status.success(),
                "loadgen seed --shard {index}/{count} failed ({status})"
            );
        }
        Ok(())
    }

    /// `loadgen run --shard I/N --start-at T` of every shard, side by side; each shard's exit
    /// code (0 once it wrote its result, whatever its figures; other: an error). `test(I)` is
    /// shard I's run.
    pub fn run_shards<'a>(
        &self,
        count: u32,
        start_at: &str,
        test: impl Fn(u32) -> TestRun<'a>,
    ) -> Result<Vec<i32>> {
        let mut commands: Vec<Command> = (0..count)
            .map(|index| {
                let shard = ShardOf {
                    index,
                    count,
                    start_at,
                };
                let mut command = Command::new(&self.binary);
                command
                    .args(Self::run_args(&test(index)))
                    .args(shard.args());
                command
            })
            .collect();
        run_side_by_side(&mut commands)?
            .into_iter()
            .map(|status| {
                status
                    .code()
                    .with_context(|| format!("loadgen was killed by a signal ({status})"))
            })
            .collect()
    }

    /// `loadgen report --gate FILES --out OUT`: the shards merged into `out`; the exit code
    /// (0 pass, 99 a threshold failed, other: the merge was refused or failed).
    pub fn report(&self, files: &[PathBuf], out: &Path) -> Result<i32> {
        let status = run_to_completion(
            Command::new(&self.binary)
                .args(["report", "--gate", "--out"])
                .arg(out)
                .args(files),
        )?;
        status
            .code()
            .with_context(|| format!("loadgen was killed by a signal ({status})"))
    }

    /// `loadgen capacity`: exit code 0 when a rate passed, 99 when none did.
    pub fn capacity(&self, search: &CapacitySearch<'_>) -> Result<i32> {
        let seconds = |duration: Duration| format!("{}s", duration.as_secs());
        let mut command = Command::new(&self.binary);
        command
            .args([
                "capacity",
                "--scenario",
                search.scenario,
                "--target",
                search.target,
            ])
            .args(["--start-rate", &search.start_rate.to_string()])
            .args(["--ramp-up", &seconds(search.ramp)])
            .args(["--duration", &seconds(search.steady)])
            .args(["--precision", &search.precision.to_string()])
            .args(["--max-time", &seconds(search.max_time)])
            .arg("--out-dir")
            .arg(search.out_dir)
            .args(self.transport_args())
            .args(self.run_flags());
        if let Some(pid) = search.target_pid {
            command.args(["--target-pid", &pid.to_string()]);
        }
        let status = run_to_completion(&mut command)?;
        status
            .code()
            .with_context(|| format!("loadgen was killed by a signal ({status})"))
    }

    /// `loadgen run` in the background, for commands that watch the target meanwhile (`soak`).
    pub fn spawn_run(&self, test: &TestRun<'_>) -> Result<std::process::Child> {
        Command::new(&self.binary)
            .args(Self::run_args(test))
            .args(self.transport_args())
            .args(self.run_flags())
            .spawn()
            .with_context(|| format!("could not start {}", self.binary.display()))
    }

    /// `loadgen run`; its exit code (0 pass, 99 a threshold failed, other: an error).
    pub fn run(&self, test: &TestRun<'_>) -> Result<i32> {
        self.run_with(test, &[], &[])
    }

    /// [`Self::run`] with further flags (the `api` scenario's) and environment variables.
    pub fn run_with(
        &self,
        test: &TestRun<'_>,
        extra_args: &[String],
        env: &[(&str, &str)],
    ) -> Result<i32> {
        let status = run_to_completion(
            Command::new(&self.binary)
                .args(Self::run_args(test))
                .args(self.transport_args())
                .args(self.run_flags())
                .args(extra_args)
                .envs(env.iter().copied()),
        )?;
        status
            .code()
            .with_context(|| format!("loadgen was killed by a signal ({status})"))
    }
}

/// The release `gate` binary (the verification crate's).
#[derive(Debug, Clone)]
pub struct Gate {
    binary: PathBuf,
    ca_cert: Option<PathBuf>,
}

impl Gate {
    /// `binary`, a release build of the verification crate's `gate`.
    pub fn new(binary: PathBuf) -> Self {
        Self {
            binary,
            ca_cert: None,
        }
    }

    /// The same gate, trusting `tls`'s CA when it reads an https provider's `/metrics`.
    pub fn with_tls(mut self, tls: Option<&Tls>) -> Self {
        self.ca_cert = tls.map(|tls| tls.ca_cert.clone());
        self
    }

    /// Runs `gate ARGS`: `Ok(true)` on pass, `Ok(false)` on a judged failure (exit 99).
    fn judge(&self, args: Vec<OsString>) -> Result<bool> {
        let subcommand = args
            .first()
            .map(|arg| arg.to_string_lossy().into_owned())
            .unwrap_or_default();
        let status = run_to_completion(Command::new(&self.binary).args(args))?;
        match status.code() {
            Some(0) => Ok(true),
            Some(EXIT_THRESHOLD_FAILED) => Ok(false),
            _ => bail!("gate {subcommand} failed ({status})"),
        }
    }

    /// `gate check RESULT`: whether the result passes the gate.
    pub fn check(&self, result: &Path) -> Result<bool> {
        self.judge(vec!["check".into(), result.into()])
    }

    /// `gate metrics`: saves the IdP's `/metrics` to `out`.
    pub fn snapshot_metrics(&self, target: &str, out: &Path) -> Result<()> {
        let mut args: Vec<OsString> = vec![
            "metrics".into(),
            "--target".into(),
            target.into(),
            "--out".into(),
            out.into(),
        ];
        if let Some(ca_cert) = &self.ca_cert {
            args.extend(["--ca-cert".into(), ca_cert.into()]);
        }
        let saved = self.judge(args)?;
        ensure!(saved, "could not save a snapshot of {target}/metrics");
        Ok(())
    }

    /// `gate reconcile`: whether the IdP's counters agree with the result.
    pub fn reconcile(
        &self,
        result: &Path,
        before: &Path,
        after: &Path,
        out: &Path,
    ) -> Result<bool> {
        self.judge(vec![
            "reconcile".into(),
            "--result".into(),
            result.into(),
            "--before".into(),
            before.into(),
            "--after".into(),
            after.into(),
            "--out".into(),
            out.into(),
        ])
    }

    /// `gate summary`: writes the run's summary; whether everything passed.
    pub fn summary(
        &self,
        run_dir: &Path,
        run_id: &str,
        benches: Option<&Path>,
        iteration_benches: Option<&Path>,
        problems: &[String],
    ) -> Result<bool> {
        let mut args: Vec<OsString> = vec![
            "summary".into(),
            "--run-dir".into(),
            run_dir.into(),
            "--run-id".into(),
            run_id.into(),
        ];
        if let Some(benches) = benches {
            args.extend(["--benches".into(), benches.into()]);
        }
        if let Some(iteration_benches) = iteration_benches {
            args.extend(["--iteration-benches".into(), iteration_benches.into()]);
        }
        for problem in problems {
            args.extend(["--problem".into(), problem.into()]);
        }
        self.judge(args)
    }

    /// `gate shards`: whether each merged sharded run stands for its single-process run; writes
    /// the side-by-side table to `out`.
    pub fn shards(&self, pairs: &[(PathBuf, PathBuf)], out: &Path) -> Result<bool> {
        let mut args: Vec<OsString> = vec!["shards".into(), "--out".into(), out.into()];
        for (merged, single) in pairs {
            args.extend([
                "--merged".into(),
                merged.into(),
                "--single".into(),
                single.into(),
            ]);
        }
        self.judge(args)
    }

    /// `gate capacity`: the table of limits into `out`; false when RS256 misses its floor target.
    pub fn capacity(
        &self,
        searches: &[(String, PathBuf)],
        benches: &Path,
        out: &Path,
    ) -> Result<bool> {
        let mut args: Vec<OsString> = vec![
            "capacity".into(),
            "--benches".into(),
            benches.into(),
            "--out".into(),
            out.into(),
        ];
        for (algorithm, report) in searches {
            let mut search = OsString::from(format!("{algorithm}="));
            search.push(report);
            args.extend(["--search".into(), search]);
        }
        self.judge(args)
    }

    /// `gate perf`: appends the summary's figures to the history; whether none regressed past
    /// its tolerance (only judged when `strict`).
    pub fn perf(
        &self,
        summary: &Path,
        baseline: &Path,
        history: &Path,
        out: &Path,
        strict: bool,
    ) -> Result<bool> {
        let mut args: Vec<OsString> = vec![
            "perf".into(),
            "--summary".into(),
            summary.into(),
            "--baseline".into(),
            baseline.into(),
            "--history".into(),
            history.into(),
            "--out".into(),
            out.into(),
        ];
        if strict {
            args.push("--strict".into());
        }
        self.judge(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .filter(|arg| arg != "--no-progress")
            .collect()
    }

    const QUICK: Profile = Profile {
        rate: 300,
        ramp: Duration::from_secs(2),
        steady: Duration::from_secs(10),
    };

    #[test]
    fn seeding_passes_the_profile_so_loadgen_sizes_the_codes() {
        let counts = SeedCounts {
            codes_for: Some(QUICK),
            refresh_families: 300,
            sessions: 300,
        };
        assert_eq!(
            words(&Loadgen::seed_args(
                "http://idp",
                counts,
                Path::new("seeds")
            )),
            [
                "seed",
                "--target",
                "http://idp",
                "--rate",
                "300",
                "--ramp-up",
                "2s",
                "--duration",
                "10s",
                "--ramp-down",
                "2s",
                "--refresh-families",
                "300",
                "--sessions",
                "300",
                "--out",
                "seeds"
            ]
        );
        let codes_only_none = SeedCounts {
            codes_for: None,
            refresh_families: 0,
            sessions: 1,
        };
        assert_eq!(
            words(&Loadgen::seed_args(
                "http://idp",
                codes_only_none,
                Path::new("s")
            ))[3..5],
            ["--codes", "0"]
        );
    }

    fn transport_args_of(loadgen: &Loadgen) -> Vec<String> {
        loadgen
            .transport_args()
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_command_reaches_the_provider_over_tls_and_signs_with_the_run_s_key() {
        let loadgen = Loadgen::new("loadgen".into())
            .with_tls(Some(Tls {
                ca_cert: "ca.pem".into(),
                http2: true,
            }))
            .with_client_key(Some(ClientKey {
                key: "client-key.pem".into(),
                jwks: "client-jwks.json".into(),
                certificate: "client-cert.pem".into(),
                by_certificate: false,
            }));
        assert_eq!(
            transport_args_of(&loadgen),
            [
                "--ca-cert",
                "ca.pem",
                "--http2",
                "--client-auth",
                "private-key-jwt",
                "--client-key",
                "client-key.pem",
                "--client-key-alg",
                "ES256"
            ]
        );
        assert!(Loadgen::new("loadgen".into()).transport_args().is_empty());
        let by_certificate = Loadgen::new("loadgen".into()).with_client_key(Some(ClientKey {
            key: "client-key.pem".into(),
            jwks: "client-jwks.json".into(),
            certificate: "client-cert.pem".into(),
            by_certificate: true,
        }));
        assert_eq!(
            transport_args_of(&by_certificate),
            [
                "--client-auth",
                "tls",
                "--client-cert",
                "client-cert.pem",
                "--client-key",
                "client-key.pem"
            ]
        );
    }

    #[test]
    fn a_test_run_names_its_scenario_seeds_profile_and_result() {
        let test = TestRun {
            test_id: "TEST 2",
            scenario: "refresh-storm",
            target: "http://idp",
            seeds: Path::new("seeds"),
            profile: QUICK,
            max_vus: 300,
            out: Path::new("test2.result.json"),
        };
        assert_eq!(
            words(&Loadgen::run_args(&test)),
            [
                "run",
                "--scenario",
                "refresh-storm",
                "--target",
                "http://idp",
                "--test-id",
                "TEST 2",
                "--seeds",
                "seeds",
                "--rate",
                "300",
                "--ramp-up",
                "2s",
                "--duration",
                "10s",
                "--ramp-down",
                "2s",
                "--max-vus",
                "300",
                "--timeout",
                "5s",
                "--out",
                "test2.result.json"
            ]
        );
    }
}
