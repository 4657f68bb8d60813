//! `cargo xtask wrk-compare`: loadgen's CPU time per request beside wrk's and oha's (the
//! best-known Rust generator), on the same endpoint, at the same rate and with the same arrival
//! pattern, over alternating rounds; fails when loadgen's median is above the target multiple of
//! wrk's (1.15x), or not below 0.8x oha's.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use xshell::{Shell, cmd};

use crate::flags::WrkCompareArgs;
use crate::process::{self, IdpProcess};
use crate::workspace::Workspace;

/// One tool's run: how many requests it completed and the CPU seconds it used.
#[derive(Debug, Clone, Copy)]
struct Measured {
    requests: f64,
    cpu_seconds: f64,
}

impl Measured {
    fn micros_per_request(self) -> f64 {
        self.cpu_seconds / self.requests * 1e6
    }
}

/// Runs the comparison and prints every round, the medians and the ratio.
pub fn run(options: WrkCompareArgs) -> Result<()> {
    ensure!(options.rounds > 0, "--rounds must be at least 1");
    ensure!(options.rate > 0, "--rate must be at least 1");
    let workspace = Workspace::find()?;
    let shell = workspace.shell()?;
    install_wrk(&shell)?;
    let oha = install_oha(&shell, &workspace)?;
    workspace.build_binaries()?;
    let run_dir = workspace.new_run_dir("-wrk")?;
    let dir = run_dir.path();
    let tls_dir = run_dir.tls();
    let tls_dir_text = tls_dir.display().to_string();
    let idp = if options.tls {
        workspace.boot_idp(&run_dir, &["--tls-self-signed", &tls_dir_text])?
    } else {
        workspace.boot_idp(&run_dir, &[])?
    };
    // wrk and oha do not verify the certificate; loadgen does, against the run's CA.
    let loadgen_tls = if options.tls {
        format!(" --ca-cert {}", tls_dir.join("ca.pem").display())
    } else {
        String::new()
    };
    // One core for the IdP and the generator: a wake-up across cores costs an inter-processor
    // interrupt, which on a virtual machine adds a large and noisy share of CPU to both tools.
    let pin_prefix = if !options.no_pin {
        pin_to_first_core(&shell, &idp)?
    } else {
        String::new()
    };
    let url = format!("{}/.well-known/openid-configuration", idp.base_url);
    let seconds = options.duration.as_secs().max(1);

    // wrk is closed-loop. With one connection and a fixed Lua `delay()` before each request it
    // sends evenly spaced requests, one wake-up each, as an open-model generator does. With
    // several connections its timers fire together and one wake-up sends a burst, a cheaper
    // pattern than a fixed arrival rate.
    let delay_ms = (1000 / options.rate).max(1);
    let script = dir.join("pace.lua");
    std::fs::write(
        &script,
        format!("function delay()\n  return {delay_ms}\nend\n"),
    )?;

    println!(
        "\n==> {} rounds of {seconds} s: wrk (1 connection, {delay_ms} ms before each request), \
         then loadgen at the rate wrk achieved{}",
        options.rounds,
        if !options.no_pin {
            "; IdP and generators on CPU 0"
        } else {
            ""
        }
    );
    println!(
        "  round  wrk req/s  wrk us/req  loadgen req/s  loadgen us/req  oha req/s  oha us/req  \
         loadgen/wrk"
    );
    let mut wrk_costs = Vec::new();
    let mut loadgen_costs = Vec::new();
    let mut oha_costs = Vec::new();
    let mut handshake_costs = Vec::new();
    for round in 1..=options.rounds {
        if process::interrupted() {
            bail!("interrupted");
        }
        let wrk = run_wrk(&shell, &pin_prefix, seconds, &script, &url)?;
        let achieved_rate = wrk.requests / seconds as f64;
        let result = dir.join(format!("loadgen-round{round}.result.json"));
        let loadgen = run_loadgen(
            &shell,
            workspace.loadgen().binary(),
            &pin_prefix,
            &format!("--target {}{loadgen_tls}", idp.base_url),
            achieved_rate,
            seconds,
            &result,
        )?;
        if options.tls {
            let fresh = run_loadgen(
                &shell,
                workspace.loadgen().binary(),
                &pin_prefix,
                &format!(
                    "--target {}{loadgen_tls} --new-connection-per-iteration",
                    idp.base_url
                ),
                achieved_rate,
                seconds,
                &dir.join(format!("loadgen-round{round}-fresh.result.json")),
            )?;
            handshake_costs.push(fresh.micros_per_request() - loadgen.micros_per_request());
        }
        let oha_run = run_oha(&shell, &oha, &pin_prefix, achieved_rate, seconds, &url)?;
        let (wrk_cost, loadgen_cost, oha_cost) = (
            wrk.micros_per_request(),
            loadgen.micros_per_request(),
            oha_run.micros_per_request(),
        );
        println!(
            "  {round:>5}  {achieved_rate:>9.1}  {wrk_cost:>10.1}  {:>13.1}  {loadgen_cost:>14.1}  \
             {:>9.1}  {oha_cost:>10.1}  {:>10.2}x",
            loadgen.requests / seconds as f64,
            oha_run.requests / seconds as f64,
            loadgen_cost / wrk_cost
        );
        wrk_costs.push(wrk_cost);
        loadgen_costs.push(loadgen_cost);
        oha_costs.push(oha_cost);
    }
    drop(idp);
    if !handshake_costs.is_empty() {
        println!(
            "\nloadgen's own CPU for a new connection and TLS handshake per iteration (resumed \
             from the VU's session), median of the rounds: {:.1} us",
            median(&mut handshake_costs)
        );
    }

    let wrk_median = median(&mut wrk_costs);
    let loadgen_median = median(&mut loadgen_costs);
    let oha_median = median(&mut oha_costs);
    let ratio = loadgen_median / wrk_median;
    println!(
        "\ngenerator cost, GET /.well-known/openid-configuration{}, median of {} rounds:",
        if options.tls { " over TLS" } else { "" },
        options.rounds
    );
    println!("  wrk      {wrk_median:>7.1} us CPU per request");
    println!("  loadgen  {loadgen_median:>7.1} us CPU per request");
    println!("  oha      {oha_median:>7.1} us CPU per request (oha {OHA_VERSION})");
    let oha_ratio = loadgen_median / oha_median;
    println!(
        "  ratio loadgen/wrk: {ratio:.2}x (target <= {:.2}x); loadgen/oha: {oha_ratio:.2}x \
         (target < {:.2}x)",
        options.max_ratio, options.max_oha_ratio
    );
    ensure!(
        ratio <= options.max_ratio,
        "loadgen uses {ratio:.2}x wrk's CPU per request, above the {:.2}x target (--max-ratio); \
         the rounds spread widely on a shared machine, so run it again before believing one median",
        options.max_ratio
    );
    ensure!(
        oha_ratio < options.max_oha_ratio,
        "loadgen uses {loadgen_median:.1} us of CPU per request, {oha_ratio:.2}x oha's \
         {oha_median:.1} us, not below the {:.2}x target (--max-oha-ratio)",
        options.max_oha_ratio
    );
    Ok(())
}

/// The oha release compared with, installed from crates.io into `target/` on first use.
const OHA_VERSION: &str = "1.16.0";

/// Installs oha, pinned, under `target/oha-VERSION` (its own lock file used), and returns its
/// binary. Its default features stay on: oha 1.16.0 does not compile without a TLS backend.
fn install_oha(shell: &Shell, workspace: &Workspace) -> Result<PathBuf> {
    let root = workspace.target_path(&format!("oha-{OHA_VERSION}"));
    let binary = root.join("bin").join("oha");
    if binary.exists() {
        return Ok(binary);
    }
    println!("==> installing oha {OHA_VERSION} (cargo install --locked, once)");
    cmd!(
        shell,
        "cargo install oha --locked --version {OHA_VERSION} --root {root}"
    )
    .run()
    .context("could not install oha from crates.io")?;
    Ok(binary)
}

/// oha at `rate` on one connection (evenly spaced requests, as wrk's and loadgen's here).
fn run_oha(
    shell: &Shell,
    oha: &Path,
    pin_prefix: &str,
    rate: f64,
    seconds: u64,
    url: &str,
) -> Result<Measured> {
    let line = format!(
        "{pin_prefix}{} -z {seconds}s -q {rate:.1} -c 1 --no-tui --insecure --output-format json {url}",
        oha.display()
    );
    let (output, cpu_seconds) = timed_children(shell, &line)?;
    let requests = oha_request_count(&output).context("could not read oha's request count")?;
    ensure!(requests > 0.0, "oha completed no request:\n{output}");
    Ok(Measured {
        requests,
        cpu_seconds,
    })
}

/// The sum of oha's `"statusCodeDistribution": {"200": N, ...}`: the responses it completed.
fn oha_request_count(output: &str) -> Option<f64> {
    let (_, rest) = output.split_once("\"statusCodeDistribution\"")?;
    let (_, rest) = rest.split_once('{')?;
    let (body, _) = rest.split_once('}')?;
    body.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| entry.split_once(':')?.1.trim().parse::<f64>().ok())
        .sum()
}

fn install_wrk(shell: &Shell) -> Result<()> {
    if cmd!(shell, "which wrk")
        .quiet()
        .ignore_stderr()
        .read()
        .is_ok()
    {
        return Ok(());
    }
    println!("==> installing wrk (Debian package)");
    cmd!(shell, "apt-get install -y -q wrk")
        .run()
        .or_else(|_| {
            cmd!(shell, "apt-get update -q").run()?;
            cmd!(shell, "apt-get install -y -q wrk").run()
        })?;
    Ok(())
}

/// Moves every thread of the IdP to CPU 0 and returns the prefix that starts a command there.
fn pin_to_first_core(shell: &Shell, idp: &IdpProcess) -> Result<String> {
    let pid = idp.pid().context("mock-idp is not running")?.to_string();
    cmd!(shell, "taskset -a -p -c 0 {pid}")
        .quiet()
        .ignore_stdout()
        .run()
        .context("could not pin mock-idp with taskset (util-linux); try --no-pin")?;
    Ok("taskset -c 0 ".to_owned())
}

fn run_wrk(
    shell: &Shell,
    pin_prefix: &str,
    seconds: u64,
    script: &Path,
    url: &str,
) -> Result<Measured> {
    let line = format!(
        "{pin_prefix}wrk -t1 -c1 -d{seconds}s -s {} {url}",
        script.display()
    );
    let (output, cpu_seconds) = timed_children(shell, &line)?;
    let requests = wrk_request_count(&output).context("could not read wrk's request count")?;
    ensure!(requests > 0.0, "wrk completed no request:\n{output}");
    Ok(Measured {
        requests,
        cpu_seconds,
    })
}

fn run_loadgen(
    shell: &Shell,
    loadgen: &Path,
    pin_prefix: &str,
    target_args: &str,
    rate: f64,
    seconds: u64,
    result: &Path,
) -> Result<Measured> {
    // One VU, so one connection, as wrk and oha have: with 50 VUs the hand-out spread the
    // iterations over all of them, and their 50 connections (50 TLS handshakes over HTTPS) were
    // counted in loadgen's cost per request.
    let line = format!(
        "{pin_prefix}{} run --scenario discovery {target_args} --rate {rate:.1} \
         --ramp-up 0s --duration {seconds}s --ramp-down 0s --max-vus 1 --no-progress --out {}",
        loadgen.display(),
        result.display()
    );
    let (output, cpu_seconds) = timed_children(shell, &line)?;
    let result_text = std::fs::read_to_string(result)
        .with_context(|| format!("loadgen wrote no result:\n{output}"))?;
    let requests =
        loadgen_request_count(&result_text).context("could not read loadgen's request count")?;
    ensure!(requests > 0.0, "loadgen completed no request:\n{output}");
    Ok(Measured {
        requests,
        cpu_seconds,
    })
}

/// `  3189 requests in 8.00s, 4.79MB read` -> 3189.
fn wrk_request_count(output: &str) -> Option<f64> {
    output.lines().find_map(|line| {
        let (count, _) = line.trim().split_once(" requests in ")?;
        count.trim().parse().ok()
    })
}

/// The first `"total": N` of a result: the overall request count.
fn loadgen_request_count(result: &str) -> Option<f64> {
    let (_, rest) = result.split_once("\"total\":")?;
    rest.trim_start()
        .split([',', '}'])
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Sorts `values` and returns their median.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// Runs `line` in bash and returns its output and the CPU seconds (user + system) its children
/// used, from bash's `times` builtin.
fn timed_children(shell: &Shell, line: &str) -> Result<(String, f64)> {
    let script = format!("{line}; times");
    let output = cmd!(shell, "bash -c {script}").ignore_status().read()?;
    let times_line = output
        .lines()
        .last()
        .context("no output from `times`")?
        .to_owned();
    let cpu: f64 = times_line
        .split_whitespace()
        .map(parse_bash_time)
        .collect::<Result<Vec<f64>>>()?
        .iter()
        .sum();
    Ok((output, cpu))
}

/// `1m2.345s` -> 62.345.
fn parse_bash_time(text: &str) -> Result<f64> {
    let (minutes, seconds) = text
        .trim_end_matches('s')
        .split_once('m')
        .with_context(|| format!("unexpected time {text:?}"))?;
    Ok(minutes.parse::<f64>()? * 60.0 + seconds.parse::<f64>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_times_parse() {
        assert_eq!(parse_bash_time("0m1.500s").unwrap(), 1.5);
        assert_eq!(parse_bash_time("2m0.250s").unwrap(), 120.25);
        assert!(parse_bash_time("garbage").is_err());
    }

    #[test]
    fn request_counts_are_read_from_both_tools() {
        let wrk = "Running 8s test @ http://127.0.0.1:1/\n  1 threads and 1 connections\n  \
                   3189 requests in 8.00s, 4.79MB read\nRequests/sec:    398.53\n";
        assert_eq!(wrk_request_count(wrk), Some(3189.0));
        assert_eq!(wrk_request_count("no summary"), None);
        let result = r#"{"requests": {"total": 3200, "by_status": {"200": 3200}}}"#;
        assert_eq!(loadgen_request_count(result), Some(3200.0));
        assert_eq!(loadgen_request_count("{}"), None);
        let oha = r#"{"summary": {"successRate": 1.0}, "statusCodeDistribution": {"200": 3150, "503": 2}, "errorDistribution": {}}"#;
        assert_eq!(oha_request_count(oha), Some(3152.0));
        assert_eq!(oha_request_count("{}"), None);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
