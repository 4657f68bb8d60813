//! The result file of a run: its types (the JSON Schema is generated from them) and building one
//! from a run's measurements. Reading and writing it are in `result_file`, merging in `merge`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::schedule::{LoadProfile, Stage};
use crate::plan::shard::RunIdentity;
use crate::results::api_tokens::ApiTokens;
use crate::results::histogram::{HistogramCodecError, encode_histogram};
use crate::results::names::{Check, Endpoint, TransportErrorKind};
use crate::results::recorder::{EndpointRecorder, Recorder};
use crate::results::thresholds::{
    Evaluation, LatencyBasis, Observations, ThresholdOutcome, Thresholds, Verdict, evaluate,
};
use crate::results::timeline::TimelineReport;

/// Version of the result format; bumped on any incompatible change. Version 2: threshold names
/// are a closed set, every run carries the `complete` outcome, an observed value is `null` when
/// nothing was measured, and an error status is a failed request, no longer a failed `status` check.
/// Version 3: the latency thresholds judge iterations (`gated_latency`), each dropped iteration is
/// in `iteration_duration` at no less than the timeout, and `refresh_families` may appear.
/// Version 4: `run` names the run, its configuration hash, the shard and the planned and actual
/// start, and merged shards keep the run's profile instead of adding their rates.
/// Version 5: `timeline`, the run second by second with an HDR histogram per second.
pub const SCHEMA_VERSION: u32 = 5;

/// The oldest result format [`RunResult::read`] still reads (its fields are a subset of today's).
pub const OLDEST_READABLE_SCHEMA_VERSION: u32 = 1;

/// One run of one scenario (or several shards of one run, merged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunResult {
    /// Version of this format, [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Which test this was, for example `TEST 1`.
    pub test_id: String,
    /// Scenario name, for example `token-code`.
    pub scenario: String,
    /// Base URL of the identity provider under test.
    pub target: String,
    /// The arrival-rate profile and client limits.
    pub load_profile: LoadProfileReport,
    /// Wall-clock start, RFC 3339, UTC.
    pub started_at: String,
    /// Seconds from the first scheduled iteration to the end of the run.
    pub duration_s: f64,
    /// False when the run was stopped early (Ctrl-C) or could not finish its schedule.
    pub complete: bool,
    /// Why the run is incomplete, when it is.
    pub incomplete_reason: Option<String>,
    /// How many result files were merged into this one (1 for a single run).
    pub shards: u32,
    /// Iteration counts.
    pub iterations: Iterations,
    /// Request counts by outcome.
    pub requests: Requests,
    /// Iterations that succeeded over iterations scheduled (dropped ones count as failed), 0..=1.
    pub success_rate: f64,
    /// 1 - success rate.
    pub error_rate: f64,
    /// Iterations started per second over the whole run.
    pub achieved_rate_per_s: f64,
    /// Iterations started per second while the profile held its steady rate.
    pub steady_state_achieved_rate_per_s: f64,
    /// Request latency over the scenario's own endpoints (not the introspection requests that
    /// check opaque tokens): intended start to last byte.
    pub latency: LatencySummary,
    /// Request service time over all endpoints: actual send to last byte.
    pub service_time: LatencySummary,
    /// Whole iteration: intended start to the end of its last step, loadgen's own check
    /// requests (introspection) left out; each dropped iteration counted at the timeout.
    pub iteration_duration: LatencySummary,
    /// How late after its intended start each iteration began (the scheduler's wake-up and the
    /// hand-over to a virtual user): the generator's own delay, included in every latency above.
    /// `null` in results before it was kept, or when no iteration ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_lag: Option<LatencySummary>,
    /// Which latency the p95 and p99 thresholds judge: `iterations` (`iteration_duration`) since
    /// format 3; a file of an older format says nothing and was judged on `requests` (`latency`).
    #[serde(default)]
    pub gated_latency: LatencyBasis,
    /// Per endpoint (`authorize`, `token`, `userinfo`, `discovery`), only those called.
    pub endpoints: BTreeMap<String, EndpointResult>,
    /// Per check, only those evaluated.
    pub checks: BTreeMap<String, CheckCounts>,
    /// The thresholds the run was judged against.
    pub threshold_config: Thresholds,
    /// Each threshold with its observed value and verdict.
    pub thresholds: Vec<ThresholdOutcome>,
    /// Pass only if every threshold passed.
    pub verdict: Verdict,
    /// Serialized histograms over all endpoints, so runs can be merged.
    pub histograms: HistogramSet,
    /// What happened that the numbers alone do not say (target unreachable, seeds exhausted ...).
    pub notes: Vec<String>,
    /// Checks turned off for this run (`--skip-check`), by name: they were not made.
    #[serde(default)]
    pub skipped_checks: Vec<String>,
    /// What became of the refresh-token families, for the scenario that holds them (TEST 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_families: Option<FamilyCounts>,
    /// The `api` scenario's tokens: their source, refreshes, recovered 401s and the API's
    /// refusals explained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_tokens: Option<ApiTokens>,
    /// Why iterations failed: each failed iteration counted once, under the first failure it met
    /// (an unexpected status from an endpoint, a transport error, a failed check, a stop on the
    /// provider's pages, no seed left), dropped and cut-off iterations under causes of their own
    /// (empty in results written before loadgen counted them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failures: BTreeMap<String, u64>,
    /// How many access tokens were checked under each set of rules, by its name: `rfc9068`,
    /// `jwt` (another JWT, its audience checked), `jwt_audience_unchecked`, `introspection` or
    /// `opaque_unchecked` (empty in results written before loadgen told them apart).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub access_token_bases: BTreeMap<String, u64>,
    /// How the virtual users connected and what their connections cost (absent in results
    /// written before loadgen spoke TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<ConnectionReport>,
    /// The run this result belongs to (since format 4): its id, configuration hash, shard and
    /// starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunIdentity>,
    /// The run second by second of its schedule (since format 5): iterations due, started,
    /// dropped, succeeded and failed, requests by status and error, and latency percentiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<TimelineReport>,
}

/// The load profile as run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadProfileReport {
    /// Steady rate and ramps.
    #[serde(flatten)]
    pub profile: LoadProfile,
    /// The stages the schedule was built from.
    pub stages: Vec<Stage>,
    /// Most iterations in flight at once (virtual users).
    pub max_vus: u64,
    /// Per-request timeout, and the longest an iteration may wait for a free VU, in ms.
    pub timeout_ms: u64,
}

/// Iteration counts; `scheduled = completed + failed + dropped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Iterations {
    /// Iterations the schedule made due before the run ended.
    pub scheduled: u64,
    /// Ran, and every step succeeded.
    pub completed: u64,
    /// Ran (or were cut off at the end of the run), and some step failed.
    pub failed: u64,
    /// Never started: no VU was free within the timeout.
    pub dropped: u64,
}

/// Requests by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Requests {
    /// All requests sent.
    pub total: u64,
    /// Responses by status code (`"200"`, `"400"` ...; `"0"` for codes outside 100-599).
    pub by_status: BTreeMap<String, u64>,
    /// Responses with status 401, shown apart because the gate allows none.
    pub unauthorized: u64,
    /// Requests without a complete response, by kind: `connect`, `timeout`, `reset`, `protocol`, `body_too_large`.
    pub transport_errors: BTreeMap<String, u64>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p99_9_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl LatencySummary {
    /// Percentiles of a microsecond histogram.
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let millis = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: histogram.len(),
            min_ms: millis(histogram.min()),
            mean_ms: histogram.mean() / 1000.0,
            p50_ms: millis(histogram.value_at_quantile(0.50)),
            p90_ms: millis(histogram.value_at_quantile(0.90)),
            p95_ms: millis(histogram.value_at_quantile(0.95)),
            p99_ms: millis(histogram.value_at_quantile(0.99)),
            p99_9_ms: millis(histogram.value_at_quantile(0.999)),
            max_ms: millis(histogram.max()),
        }
    }
}

/// One endpoint's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EndpointResult {
    /// Requests to this endpoint by outcome.
    pub requests: Requests,
    /// Intended start to last byte.
    pub latency: LatencySummary,
    /// Actual send to last byte.
    pub service_time: LatencySummary,
    /// Serialized histograms of this endpoint.
    pub histograms: HistogramSet,
}

impl EndpointResult {
    /// What one endpoint (or one route of the `api` endpoint) measured.
    fn of(measured: &EndpointRecorder) -> Result<Self, HistogramCodecError> {
        Ok(Self {
            requests: requests_of(
                measured.statuses(),
                TransportErrorKind::all().map(|kind| (kind, measured.errors(kind))),
            ),
            latency: LatencySummary::of(&measured.latency),
            service_time: LatencySummary::of(&measured.service_time),
            histograms: HistogramSet {
                latency: encode_histogram(&measured.latency)?,
                service_time: encode_histogram(&measured.service_time)?,
                iteration_duration: None,
                generator_lag: None,
            },
        })
    }
}

/// Passed and failed count of one check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CheckCounts {
    /// Evaluations that held.
    pub passed: u64,
    /// Evaluations that did not.
    pub failed: u64,
}

/// Histograms in microseconds, each HdrHistogram V2 encoded then base64 (standard alphabet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HistogramSet {
    /// Latency histogram.
    pub latency: String,
    /// Service-time histogram.
    pub service_time: String,
    /// Iteration-duration histogram (only on the run level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration_duration: Option<String>,
    /// Generator-lag histogram (only on the run level; absent in results before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_lag: Option<String>,
}

/// Facts about a run that the recorder does not hold.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMeta {
    /// Test id, for example `TEST 2`.
    pub test_id: String,
    /// Scenario name.
    pub scenario: String,
    /// Target base URL.
    pub target: String,
    /// Load profile.
    pub profile: LoadProfile,
    /// VU limit.
    pub max_vus: u64,
    /// Request timeout in ms.
    pub timeout_ms: u64,
    /// RFC 3339 start.
    pub started_at: String,
    /// Run duration in seconds.
    pub duration_s: f64,
    /// Whether the schedule ran to its end.
    pub complete: bool,
    /// Why not, if not.
    pub incomplete_reason: Option<String>,
    /// Result files merged (1 for a run).
    pub shards: u32,
    /// Iterations made due.
    pub scheduled: u64,
    /// Iterations dropped for want of a VU.
    pub dropped: u64,
    /// Iterations cut off at the end of the run (counted as failed).
    pub abandoned: u64,
    /// Iterations started in the steady window.
    pub steady_state_started: u64,
    /// Notes to carry into the result.
    pub notes: Vec<String>,
    /// Checks turned off, by name.
    pub skipped_checks: Vec<String>,
    /// What became of the refresh-token families, when the scenario holds them.
    pub refresh_families: Option<FamilyCounts>,
    /// The `api` scenario's token figures.
    pub api_tokens: Option<ApiTokens>,
    /// Access tokens checked, by the rules they were checked under.
    pub access_token_bases: BTreeMap<String, u64>,
    /// Iteration failures by cause.
    pub failures: BTreeMap<String, u64>,
    /// How the virtual users connected.
    pub connections: Option<ConnectionReport>,
    /// Which latency the thresholds judge.
    pub gated_latency: LatencyBasis,
    /// The run, its shard and its starts.
    pub run: Option<RunIdentity>,
}

/// What became of a run's families, for the result.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct FamilyCounts {
    /// Families set aside because a rotation's answer never arrived (a transport error after
    /// the request was sent), so the provider may have rotated them.
    pub lost_after_transport_error: u64,
    /// Spare families users moved to.
    pub spares_taken: u64,
    /// Spare families still unused at the end.
    pub spares_left: u64,
}

/// How a run's virtual users connected and what their connections cost, apart from the latency
/// of their requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionReport {
    /// `HTTP/1.1` or `HTTP/2`.
    pub http_version: String,
    /// Whether the provider's certificates went unverified (`--insecure`).
    pub tls_unverified: bool,
    /// Connections the virtual users opened (one per origin each while keep-alive holds).
    pub opened: u64,
    /// Full TLS handshakes among them.
    pub tls_full_handshakes: u64,
    /// Resumed TLS sessions among them.
    pub tls_resumed_handshakes: u64,
    /// Time spent opening them (TCP connect, TLS handshake, HTTP/2 preface), in ms.
    pub set_up_ms: f64,
    /// GETs sent again on a new connection because the server closed the kept-alive one as they
    /// were sent (its idle timeout): each is one request in the counts, not an error.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub requests_resent: u64,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

impl ConnectionReport {
    /// The connections of two shards' runs together.
    pub fn merged(&self, other: &Self) -> Self {
        Self {
            http_version: self.http_version.clone(),
            tls_unverified: self.tls_unverified || other.tls_unverified,
            opened: self.opened + other.opened,
            tls_full_handshakes: self.tls_full_handshakes + other.tls_full_handshakes,
            tls_resumed_handshakes: self.tls_resumed_handshakes + other.tls_resumed_handshakes,
            set_up_ms: self.set_up_ms + other.set_up_ms,
            requests_resent: self.requests_resent + other.requests_resent,
        }
    }
}

impl FamilyCounts {
    /// The counts of two shards' runs together.
    pub fn merged(self, other: Self) -> Self {
        Self {
            lost_after_transport_error: self.lost_after_transport_error
                + other.lost_after_transport_error,
            spares_taken: self.spares_taken + other.spares_taken,
            spares_left: self.spares_left + other.spares_left,
        }
    }
}
fn requests_of(
    statuses: impl Iterator<Item = (u16, u64)>,
    errors: impl Iterator<Item = (TransportErrorKind, u64)>,
) -> Requests {
    let mut requests = Requests::default();
    for (code, count) in statuses {
        requests.total += count;
        if code == 401 {
            requests.unauthorized += count;
        }
        *requests.by_status.entry(code.to_string()).or_default() += count;
    }
    for (kind, count) in errors {
        requests.total += count;
        *requests
            .transport_errors
            .entry(kind.as_str().to_owned())
            .or_default() += count;
    }
    requests
}

impl RunResult {
    /// Builds the result of a run from its merged recorder and judges it.
    pub fn from_recorder(
        meta: RunMeta,
        recorder: &Recorder,
        thresholds: &Thresholds,
    ) -> Result<Self, HistogramCodecError> {
        let mut endpoints = BTreeMap::new();
        let measured = Endpoint::all()
            .map(|endpoint| (endpoint.as_str(), recorder.endpoint(endpoint)))
            .chain(recorder.routes());
        for (name, measured) in measured {
            if measured.requests() == 0 {
                continue;
            }
            endpoints.insert(name.to_owned(), EndpointResult::of(measured)?);
        }
        let all_statuses =
            Endpoint::all().flat_map(|endpoint| recorder.endpoint(endpoint).statuses());
        let all_errors = TransportErrorKind::all().map(|kind| {
            let count = Endpoint::all()
                .map(|endpoint| recorder.endpoint(endpoint).errors(kind))
                .sum();
            (kind, count)
        });
        let requests = requests_of(all_statuses, all_errors);

        let checks: BTreeMap<String, CheckCounts> = Check::all()
            .map(|check| (check, recorder.check(check)))
            .filter(|(_, tally)| tally.passed + tally.failed > 0)
            .map(|(check, tally)| {
                (
                    check.as_str().to_owned(),
                    CheckCounts {
                        passed: tally.passed,
                        failed: tally.failed,
                    },
                )
            })
            .collect();

        let iterations = Iterations {
            scheduled: meta.scheduled,
            completed: recorder.iterations_succeeded,
            failed: recorder.iterations_failed + meta.abandoned,
            dropped: meta.dropped,
        };
        let success_rate = if iterations.scheduled == 0 {
            0.0
        } else {
            iterations.completed as f64 / iterations.scheduled as f64
        };
        let started = recorder.iterations_succeeded + recorder.iterations_failed + meta.abandoned;
        let achieved_rate_per_s = if meta.duration_s > 0.0 {
            started as f64 / meta.duration_s
        } else {
            0.0
        };
        let steady_state_achieved_rate_per_s = if meta.profile.steady_s > 0.0 {
            meta.steady_state_started as f64 / meta.profile.steady_s
        } else {
            0.0
        };

        let overall_latency = recorder.overall_latency();
        let overall_service = recorder.overall_service_time();
        let latency = LatencySummary::of(&overall_latency);

        let mut result = Self {
            schema_version: SCHEMA_VERSION,
            test_id: meta.test_id,
            scenario: meta.scenario,
            target: meta.target,
            load_profile: LoadProfileReport {
                profile: meta.profile,
                stages: meta.profile.stages(),
                max_vus: meta.max_vus,
                timeout_ms: meta.timeout_ms,
            },
            started_at: meta.started_at,
            duration_s: meta.duration_s,
            complete: meta.complete,
            incomplete_reason: meta.incomplete_reason,
            shards: meta.shards,
            iterations,
            requests,
            success_rate,
            error_rate: 1.0 - success_rate,
            achieved_rate_per_s,
            steady_state_achieved_rate_per_s,
            latency,
            service_time: LatencySummary::of(&overall_service),
            iteration_duration: LatencySummary::of(&recorder.iteration_duration),
            gated_latency: meta.gated_latency,
            endpoints,
            checks,
            threshold_config: thresholds.clone(),
            thresholds: Vec::new(),
            verdict: Verdict::Fail,
            histograms: HistogramSet {
                latency: encode_histogram(&overall_latency)?,
                service_time: encode_histogram(&overall_service)?,
                iteration_duration: Some(encode_histogram(&recorder.iteration_duration)?),
                generator_lag: Some(encode_histogram(&recorder.generator_lag)?),
            },
            generator_lag: (!recorder.generator_lag.is_empty())
                .then(|| LatencySummary::of(&recorder.generator_lag)),
            notes: meta.notes,
            skipped_checks: meta.skipped_checks,
            refresh_families: meta.refresh_families,
            api_tokens: meta.api_tokens,
            access_token_bases: meta.access_token_bases,
            failures: meta.failures,
            connections: meta.connections,
            run: meta.run,
            timeline: Some(recorder.timeline.report()?),
        };
        let evaluation = result.judge(thresholds);
        result.thresholds = evaluation.outcomes;
        result.verdict = evaluation.verdict;
        Ok(result)
    }

    /// The latency the p95 and p99 thresholds judge: whole iterations (`iteration_duration`)
    /// since format 3, requests (`latency`) in older files. Everything that shows "the" latency of
    /// a run (the printer, the reports, the pipeline's summary and perf figures) shows this one,
    /// named by [`LatencyBasis::describe`], so what people read is what the gate judged.
    pub fn gated_latency_summary(&self) -> &LatencySummary {
        match self.gated_latency {
            LatencyBasis::Requests => &self.latency,
            LatencyBasis::Iterations => &self.iteration_duration,
        }
    }

    /// The figures thresholds are judged on, read from this result's own counts (never from the
    /// verdict it carries).
    pub fn observations(&self) -> Observations {
        let gated = self.gated_latency_summary();
        let measured = gated.count > 0;
        Observations {
            latency_basis: self.gated_latency,
            iterations_succeeded: self.iterations.completed,
            iterations_scheduled: self.iterations.scheduled,
            unauthorized: self.requests.unauthorized,
            p95_latency_ms: measured.then_some(gated.p95_ms),
            p99_latency_ms: measured.then_some(gated.p99_ms),
            failed_checks: self.checks.values().map(|counts| counts.failed).sum(),
            complete: self.complete,
        }
    }

    /// Judges this result against `thresholds`: the one judgement `loadgen run`, `loadgen report`
    /// and `gate check` all make.
    pub fn judge(&self, thresholds: &Thresholds) -> Evaluation {
        evaluate(thresholds, &self.observations())
    }
}
/// The JSON Schema of [`RunResult`], as committed in `loadgen/schema/result.schema.json`.
pub fn result_schema_json() -> String {
    let schema = schemars::schema_for!(RunResult);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use crate::results::merge::merge_results;
    use crate::results::result_file::ResultError;
    use std::time::Duration;

    use super::*;
    use crate::results::names::RequestOutcome;

    fn meta(scheduled: u64) -> RunMeta {
        RunMeta {
            test_id: "TEST 2".into(),
            scenario: "refresh-storm".into(),
            target: "http://127.0.0.1:1".into(),
            profile: LoadProfile {
                rate_per_s: 10.0,
                ramp_up_s: 0.0,
                steady_s: 1.0,
                ramp_down_s: 0.0,
            },
            max_vus: 4,
            timeout_ms: 5000,
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_s: 1.0,
            complete: true,
            incomplete_reason: None,
            shards: 1,
            scheduled,
            dropped: 0,
            abandoned: 0,
            steady_state_started: scheduled,
            notes: vec![],
            skipped_checks: vec![],
            refresh_families: None,
            api_tokens: None,
            access_token_bases: BTreeMap::new(),
            failures: BTreeMap::new(),
            connections: None,
            gated_latency: LatencyBasis::Iterations,
            run: None,
        }
    }

    fn named(results: &[&RunResult]) -> Vec<(String, RunResult)> {
        results
            .iter()
            .enumerate()
            .map(|(index, result)| (format!("result-{index}.json"), (*result).clone()))
            .collect()
    }

    fn record(recorder: &mut Recorder, millis: u64, status: u16) {
        recorder.record_request(
            Endpoint::Token,
            RequestOutcome::Status(status),
            Duration::from_millis(millis),
            Duration::from_millis(millis),
        );
        // Checks judge answers that claimed success; an error status is a failed request.
        if status == 200 {
            recorder.record_check(Check::AccessTokenVerifies, true);
        }
        recorder.record_iteration(status == 200, Duration::from_millis(millis));
    }

    #[test]
    fn merging_two_shards_equals_one_run() {
        let mut first = Recorder::new();
        let mut second = Recorder::new();
        let mut both = Recorder::new();
        for value in 1..=10 {
            record(&mut first, value, 200);
            record(&mut both, value, 200);
        }
        for value in 11..=20 {
            let status = if value == 20 { 401 } else { 200 };
            record(&mut second, value, status);
            record(&mut both, value, status);
        }
        let thresholds = Thresholds::default();
        let first = RunResult::from_recorder(meta(10), &first, &thresholds).unwrap();
        let second = RunResult::from_recorder(meta(10), &second, &thresholds).unwrap();
        let mut whole_meta = meta(20);
        whole_meta.profile.rate_per_s = 20.0;
        whole_meta.max_vus = 8;
        whole_meta.shards = 2;
        let whole = RunResult::from_recorder(whole_meta, &both, &thresholds).unwrap();

        let merged = merge_results(&named(&[&first, &second]), Duration::ZERO).unwrap();
        assert_eq!(merged.iterations, whole.iterations);
        assert_eq!(merged.requests, whole.requests);
        assert_eq!(merged.checks, whole.checks);
        assert_eq!(merged.latency, whole.latency);
        assert_eq!(merged.endpoints, whole.endpoints);
        assert_eq!(merged.thresholds, whole.thresholds);
        assert_eq!(merged.verdict, Verdict::Fail);
        assert_eq!(merged.requests.unauthorized, 1);
        assert_eq!(merged.shards, 2);
        assert!((merged.achieved_rate_per_s - 20.0).abs() < 1e-9);
        assert_eq!(merged, whole);
    }

    #[test]
    fn refuses_to_merge_different_scenarios() {
        let recorder = Recorder::new();
        let thresholds = Thresholds::default();
        let first = RunResult::from_recorder(meta(0), &recorder, &thresholds).unwrap();
        let mut other_meta = meta(0);
        other_meta.scenario = "token-code".into();
        let second = RunResult::from_recorder(other_meta, &recorder, &thresholds).unwrap();
        assert!(matches!(
            merge_results(&named(&[&first, &second]), Duration::ZERO),
            Err(ResultError::Mismatch(..))
        ));
        assert!(matches!(
            merge_results(&[], Duration::ZERO),
            Err(ResultError::Empty)
        ));
    }

    #[test]
    fn an_empty_run_fails_the_gate() {
        let result =
            RunResult::from_recorder(meta(0), &Recorder::new(), &Thresholds::default()).unwrap();
        assert_eq!(result.verdict, Verdict::Fail);
        assert_eq!(result.success_rate, 0.0);
    }

    #[test]
    fn result_round_trips_through_a_file() {
        let mut recorder = Recorder::new();
        record(&mut recorder, 3, 200);
        let result = RunResult::from_recorder(meta(1), &recorder, &Thresholds::default()).unwrap();
        assert_eq!(result.verdict, Verdict::Pass);
        assert_eq!(
            evaluate(&Thresholds::default(), &result.observations()).outcomes,
            result.thresholds
        );
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("result.json");
        result.write(&path).unwrap();
        assert_eq!(RunResult::read(&path).unwrap(), result);
        std::fs::write(&path, r#"{"schema_version": 99}"#).unwrap();
        assert!(matches!(
            RunResult::read(&path),
            Err(ResultError::Version { found: 99, .. })
        ));
    }

    #[test]
    fn the_gate_judges_iterations_and_a_file_of_format_2_as_it_was_judged() {
        let mut recorder = Recorder::new();
        record(&mut recorder, 3, 200);
        // The iteration took longer than its one request: loadgen's checks, or a second step.
        recorder.record_iteration(true, Duration::from_millis(700));
        let result = RunResult::from_recorder(meta(1), &recorder, &Thresholds::default()).unwrap();
        assert_eq!(result.gated_latency, LatencyBasis::Iterations);
        let p99 = &result.thresholds[3];
        assert_eq!(p99.condition, "p99 iteration latency < 500 ms");
        assert_eq!(p99.observed, Some(result.iteration_duration.p99_ms));
        assert_eq!(result.verdict, Verdict::Fail);
        // What people read is what the gate judged: the printer's first latency line is the
        // iteration's 700 ms, labelled as gated, and the 3 ms request comes after it, labelled too.
        assert_eq!(result.gated_latency_summary(), &result.iteration_duration);
        let text = crate::results::printer::summary(&result);
        let line = |name: &str| {
            text.lines()
                .position(|line| line.trim_start().starts_with(name))
                .map(|index| (index, text.lines().nth(index).unwrap_or_default()))
                .unwrap_or_else(|| panic!("no {name} line in {text}"))
        };
        let (gated_at, gated) = line("iteration latency (gated).");
        let (request_at, request) = line("request latency.");
        assert!(gated.contains("p99=700.41ms"), "{gated}");
        assert!(request.contains("p99=3.00ms"), "{request}");
        assert!(gated_at < request_at, "{text}");

        // A file of format 2 carries no basis: it was judged on request latency, and still is.
        let mut old = serde_json::to_value(&result).unwrap();
        let fields = old.as_object_mut().unwrap();
        fields.remove("gated_latency");
        fields.insert("schema_version".into(), 2.into());
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("result.json");
        std::fs::write(&path, old.to_string()).unwrap();
        let reread = RunResult::read(&path).unwrap();
        assert_eq!(reread.gated_latency, LatencyBasis::Requests);
        assert_eq!(reread.gated_latency_summary(), &reread.latency);
        assert!(
            crate::results::printer::summary(&reread)
                .contains("latency (gated)...........: min=3.00ms")
        );
        let evaluation = reread.judge(&Thresholds::default());
        assert_eq!(evaluation.outcomes[3].condition, "p99 latency < 500 ms");
        assert_eq!(evaluation.outcomes[3].observed, Some(reread.latency.p99_ms));
        assert_eq!(evaluation.verdict, Verdict::Pass);
    }

    #[test]
    fn exactly_the_minimum_success_rate_passes_when_run_merged_and_reread() {
        // 35,964 of 36,000 iterations is exactly 99.9 %, the default minimum.
        let mut recorder = Recorder::new();
        for index in 0..36_000_u64 {
            recorder.record_request(
                Endpoint::Token,
                RequestOutcome::Status(if index < 35_964 { 200 } else { 500 }),
                Duration::from_millis(3),
                Duration::from_millis(2),
            );
            recorder.record_iteration(index < 35_964, Duration::from_millis(3));
        }
        let run =
            RunResult::from_recorder(meta(36_000), &recorder, &Thresholds::default()).unwrap();
        assert_eq!(run.iterations.completed, 35_964);
        assert_eq!(
            run.verdict,
            Verdict::Pass,
            "{:?}",
            run.judge(&run.threshold_config).failures()
        );
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("result.json");
        run.write(&path).unwrap();
        let reread = RunResult::read(&path).unwrap();
        assert_eq!(reread.judge(&Thresholds::default()).verdict, Verdict::Pass);
        let reported = merge_results(&named(&[&reread]), Duration::ZERO).unwrap();
        assert_eq!(reported.verdict, Verdict::Pass);
    }
}
