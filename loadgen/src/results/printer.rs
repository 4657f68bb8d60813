//! The human summary of a result, printed at the end of a run and by `loadgen report` (k6-like).

use std::fmt::Write as _;

use crate::results::api_tokens::ApiTokens;
use crate::results::mix_result::MixResult;
use crate::results::result::{LatencySummary, Requests, RunResult};
use crate::results::thresholds::{LatencyBasis, Verdict};

fn mark(passed: bool) -> &'static str {
    if passed { "✓" } else { "✗" }
}

fn latency_line(name: &str, summary: &LatencySummary) -> String {
    format!(
        "  {name:.<26}: min={:.2}ms mean={:.2}ms p50={:.2}ms p90={:.2}ms p95={:.2}ms p99={:.2}ms p99.9={:.2}ms max={:.2}ms (n={})",
        summary.min_ms,
        summary.mean_ms,
        summary.p50_ms,
        summary.p90_ms,
        summary.p95_ms,
        summary.p99_ms,
        summary.p99_9_ms,
        summary.max_ms,
        summary.count,
    )
}

fn requests_line(requests: &Requests) -> String {
    let statuses: Vec<String> = requests
        .by_status
        .iter()
        .map(|(code, count)| format!("{code}={count}"))
        .collect();
    let errors: Vec<String> = requests
        .transport_errors
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(kind, count)| format!("{kind}={count}"))
        .collect();
    let mut line = format!(
        "{} total, status [{}], 401={}",
        requests.total,
        statuses.join(" "),
        requests.unauthorized
    );
    if !errors.is_empty() {
        let _ = write!(line, ", errors [{}]", errors.join(" "));
    }
    line
}

/// The summary as text (no trailing colour codes; safe to log).
pub fn summary(result: &RunResult) -> String {
    let mut out = String::new();
    let profile = &result.load_profile.profile;
    let _ = writeln!(
        out,
        "\n  {} — {} against {}{}",
        result.test_id,
        result.scenario,
        result.target,
        if result.shards > 1 {
            format!(" ({} shards merged)", result.shards)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "  profile: {}/s, ramp-up {}s, steady {}s, ramp-down {}s, max {} VUs, timeout {} ms; started {}, ran {:.1}s{}",
        profile.rate_per_s,
        profile.ramp_up_s,
        profile.steady_s,
        profile.ramp_down_s,
        result.load_profile.max_vus,
        result.load_profile.timeout_ms,
        result.started_at,
        result.duration_s,
        match &result.incomplete_reason {
            Some(reason) => format!(" — INCOMPLETE: {reason}"),
            None => String::new(),
        }
    );
    if let Some(run) = result.run.as_ref().filter(|run| {
        run.planned_start.is_some() || run.shard.is_some_and(|shard| !shard.is_whole())
    }) {
        let mut line = format!("  run {}", run.run_id);
        if let Some(shard) = run.shard {
            let _ = write!(line, ", shard {shard}");
        }
        if let Some(planned) = &run.planned_start {
            let _ = write!(line, ", planned start {planned}");
        }
        let _ = write!(line, ", actual start {}", run.actual_start);
        if let Some(skew) = run.start_skew_ms {
            let _ = write!(line, ", shards' start skew {skew:.1} ms");
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out);

    let checks_passed: u64 = result.checks.values().map(|check| check.passed).sum();
    let checks_failed: u64 = result.checks.values().map(|check| check.failed).sum();
    let checks_total = checks_passed + checks_failed;
    // A tick says the iterations' checks held; when iterations failed with no check failed, they
    // failed before their checks (a status, a transport error, a page instead of a code), and the
    // line must not read as fine.
    let failed_before_checks =
        checks_failed == 0 && (result.iterations.failed > 0 || result.iterations.dropped > 0);
    let _ = writeln!(
        out,
        "  {} {:.<24}: {:.2}% {} passed, {} failed{}",
        if failed_before_checks {
            "-"
        } else {
            mark(checks_failed == 0)
        },
        "checks",
        if checks_total == 0 {
            0.0
        } else {
            checks_passed as f64 * 100.0 / checks_total as f64
        },
        checks_passed,
        checks_failed,
        if failed_before_checks {
            " (iterations failed before their checks: see the causes below)"
        } else {
            ""
        }
    );
    for (name, counts) in &result.checks {
        let _ = writeln!(
            out,
            "      {} {name:.<22}: {} passed, {} failed",
            mark(counts.failed == 0),
            counts.passed,
            counts.failed
        );
    }
    if !result.skipped_checks.is_empty() {
        let _ = writeln!(
            out,
            "      skipped (--skip-check), not made: {}",
            result.skipped_checks.join(", ")
        );
    }
    let _ = writeln!(out);
    let iterations = &result.iterations;
    let _ = writeln!(
        out,
        "  {:.<26}: {} scheduled, {} completed, {} failed, {} dropped",
        "iterations",
        iterations.scheduled,
        iterations.completed,
        iterations.failed,
        iterations.dropped
    );
    if !result.failures.is_empty() {
        let _ = writeln!(out, "  failed iterations by cause:");
        let mut causes: Vec<_> = result.failures.iter().collect();
        causes.sort_by(|left, right| right.1.cmp(left.1).then_with(|| left.0.cmp(right.0)));
        for (cause, count) in causes {
            let _ = writeln!(out, "    {count:>8} {cause}");
        }
    }
    let _ = writeln!(
        out,
        "  {:.<26}: {:.3}% (error rate {:.3}%)",
        "success rate",
        result.success_rate * 100.0,
        result.error_rate * 100.0
    );
    let _ = writeln!(
        out,
        "  {:.<26}: {:.1}/s over the run, {:.1}/s in steady state (target {}/s)",
        "achieved rate",
        result.achieved_rate_per_s,
        result.steady_state_achieved_rate_per_s,
        profile.rate_per_s
    );
    let _ = writeln!(
        out,
        "  {:.<26}: {}",
        "requests",
        requests_line(&result.requests)
    );
    if let Some(tokens) = &result.api_tokens {
        api_tokens_lines(&mut out, tokens);
    }
    if let Some(connections) = &result.connections {
        let _ = writeln!(
            out,
            "  {:.<26}: {} opened over {}, TLS handshakes {} full and {} resumed, {:.1} ms setting them up{}",
            "connections",
            connections.opened,
            connections.http_version,
            connections.tls_full_handshakes,
            connections.tls_resumed_handshakes,
            connections.set_up_ms,
            if connections.tls_unverified {
                " (certificates NOT verified: --insecure)"
            } else {
                ""
            }
        );
        if connections.requests_resent > 0 {
            let _ = writeln!(
                out,
                "  {:.<26}: {} GETs sent again on a new connection: the server had closed the \
                 kept-alive one (its idle timeout) as they were sent",
                "requests resent", connections.requests_resent
            );
        }
    }
    if let Some(lag) = &result.generator_lag {
        let _ = writeln!(
            out,
            "  {:.<26}: p50={:.3}ms p99={:.3}ms max={:.3}ms (intended start to the start of an \
             iteration: loadgen's own delay, inside every latency below)",
            "generator lag", lag.p50_ms, lag.p99_ms, lag.max_ms
        );
    }
    // The gated latency first, named as the thresholds name it; the request figures after it.
    let gated_name = format!("{} (gated)", result.gated_latency.describe());
    let _ = writeln!(
        out,
        "{}",
        latency_line(&gated_name, result.gated_latency_summary())
    );
    if result.gated_latency != LatencyBasis::Requests {
        let _ = writeln!(out, "{}", latency_line("request latency", &result.latency));
    }
    let _ = writeln!(
        out,
        "{}",
        latency_line("request service time", &result.service_time)
    );
    for (name, endpoint) in &result.endpoints {
        // A name too long for the label column (an API's route) gets a line of its own, and
        // its figures the short labels under it.
        let prefix = if name.len() > 13 {
            let _ = writeln!(out, "  {name}:");
            " "
        } else {
            name.as_str()
        };
        let _ = writeln!(
            out,
            "  {:.<26}: {}",
            format!("{prefix} requests"),
            requests_line(&endpoint.requests)
        );
        let _ = writeln!(
            out,
            "{}",
            latency_line(&format!("{prefix} latency"), &endpoint.latency)
        );
        let _ = writeln!(
            out,
            "{}",
            latency_line(&format!("{prefix} service time"), &endpoint.service_time)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "  thresholds:");
    for outcome in &result.thresholds {
        let _ = writeln!(
            out,
            "    {} {} (observed {})",
            mark(outcome.verdict == Verdict::Pass),
            outcome.condition,
            outcome.observed_text()
        );
    }
    if !result.notes.is_empty() {
        let _ = writeln!(out, "\n  notes:");
        for note in &result.notes {
            let _ = writeln!(out, "    - {note}");
        }
    }
    let _ = writeln!(out, "\n  verdict: {}", result.verdict.label());
    out
}

/// The summary of a mix: each scenario's section as [`summary`] prints a run, then a table of the
/// sections side by side and the mix's one verdict.
pub fn mix_summary(mix: &MixResult) -> String {
    let mut out = String::new();
    for section in &mix.sections {
        out.push_str(&summary(section));
    }
    let _ = writeln!(
        out,
        "
  mix {}:",
        mix.mix
    );
    let _ = writeln!(
        out,
        "    {:<20} {:>9} {:>9} {:>10} {:>9} {:>9}  verdict",
        "scenario", "target/s", "achieved", "success", "p95 ms", "p99 ms"
    );
    for section in &mix.sections {
        let gated = section.gated_latency_summary();
        let _ = writeln!(
            out,
            "    {:<20} {:>9.1} {:>9.1} {:>9.3}% {:>9.2} {:>9.2}  {}",
            section.scenario,
            section.load_profile.profile.rate_per_s,
            section.steady_state_achieved_rate_per_s,
            section.success_rate * 100.0,
            gated.p95_ms,
            gated.p99_ms,
            section.verdict.label()
        );
    }
    let passed = mix
        .sections
        .iter()
        .filter(|section| section.verdict == Verdict::Pass)
        .count();
    let _ = writeln!(
        out,
        "\n  mix verdict: {} ({passed} of {} scenarios passed)",
        mix.verdict.label(),
        mix.sections.len()
    );
    out
}

/// Appends `markdown` to the GitHub Actions job summary when `GITHUB_STEP_SUMMARY` names one (as
/// in a workflow step); does nothing elsewhere. Returns the file appended to, if any.
pub fn append_to_github_job_summary(markdown: &str) -> std::io::Result<Option<std::path::PathBuf>> {
    use std::io::Write as _;
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|path| !path.is_empty()) else {
        return Ok(None);
    };
    let path = std::path::PathBuf::from(path);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    writeln!(file, "{}", markdown.trim_end())?;
    Ok(Some(path))
}

/// The `api` scenario's tokens: renewals, recovered 401s, and each kind of refusal with the state
/// of the token refused.
fn api_tokens_lines(out: &mut String, tokens: &ApiTokens) {
    let _ = writeln!(
        out,
        "  {:.<26}: from {}, {} renewed off the measured path ({} renewals failed), {} 401s \
         recovered by one renewal and retry",
        "api tokens",
        tokens.token_source,
        tokens.refreshes,
        tokens.refresh_failures,
        tokens.recovered_401
    );
    for refusal in &tokens.refusals {
        let token = match (refusal.expires_in_s, refusal.age_s) {
            (Some(left), Some(age)) if left < 0 => {
                format!(
                    "the token had expired {} s before, {age} s after it was got",
                    -left
                )
            }
            (Some(left), Some(age)) => {
                format!("the token had {left} s left, {age} s after it was got")
            }
            _ => "the token's expiry unknown".to_owned(),
        };
        let _ = writeln!(
            out,
            "    {:>8} x {} {}{}{}: {}{}",
            refusal.count,
            refusal.status,
            refusal.error.as_deref().unwrap_or("(no error code)"),
            refusal
                .description
                .as_deref()
                .map(|description| format!(" \"{description}\""))
                .unwrap_or_default(),
            if refusal.recovered > 0 {
                format!(" ({} recovered)", refusal.recovered)
            } else {
                String::new()
            },
            token,
            refusal
                .kid
                .as_deref()
                .map(|kid| format!(", kid {kid}"))
                .unwrap_or_default()
        );
    }
}
