//! The table of limits: per signing algorithm, test and client (how it authenticates, whether it
//! binds its tokens with DPoP), the highest rate mock-idp held under the gate (from `loadgen
//! capacity`), and its CPU time per request there beside the floor, the signatures one request
//! needs times the raw aws-lc-rs signing cost the benches measured; and loadgen's own CPU per
//! iteration, which a client's assertions and proofs raise too.

use benches::BenchRow;
use loadgen::run::capacity::CapacityReport;
use serde::Serialize;

/// The most mock-idp's CPU per request may be over its floor for RS256 (issue 12's goal).
pub const RS256_FLOOR_RATIO_TARGET: f64 = 1.5;

/// Signatures mock-idp makes per request of a scenario: TEST 1's code redemption and TEST 2's
/// refresh each issue a JWT access token and, the scope holding `openid`, an ID token.
pub fn signatures_per_request(scenario: &str) -> Option<u32> {
    match scenario {
        "token-code" | "refresh-storm" => Some(2),
        _ => None,
    }
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitRow {
    pub algorithm: String,
    pub scenario: String,
    /// How the client authenticated, and `+ DPoP` when it bound its tokens.
    pub client: String,
    pub highest_pass_per_s: Option<f64>,
    pub p99_ms: Option<f64>,
    pub lowest_failure_per_s: Option<f64>,
    pub failure: Option<String>,
    /// mock-idp's CPU time per request at the highest passing rate, microseconds.
    pub cpu_us_per_request: Option<f64>,
    /// Signatures per request times the raw signing cost, microseconds.
    pub floor_us: Option<f64>,
    pub floor_ratio: Option<f64>,
    /// loadgen's own CPU time per iteration at the highest passing rate, microseconds.
    pub loadgen_cpu_us_per_iteration: Option<f64>,
}

impl LimitRow {
    /// The row of one search against mock-idp signing with `algorithm`.
    pub fn new(algorithm: &str, report: &CapacityReport, benches: &[BenchRow]) -> Self {
        let pass = report.highest_pass.as_ref();
        let cpu_us_per_request = pass.and_then(|step| {
            let cpu = step.target_cpu_s?;
            (step.requests > 0).then(|| cpu * 1e6 / step.requests as f64)
        });
        let loadgen_cpu_us_per_iteration = pass.and_then(|step| {
            let cpu = step.generator_cpu_s?;
            (step.iterations > 0).then(|| cpu * 1e6 / step.iterations as f64)
        });
        let raw_sign_ns = benches
            .iter()
            .find(|row| row.algorithm == algorithm && row.operation == "sign")
            .map(|row| row.raw_ns);
        let floor_us = signatures_per_request(&report.scenario)
            .zip(raw_sign_ns)
            .map(|(signatures, ns)| f64::from(signatures) * ns / 1000.0);
        Self {
            algorithm: algorithm.to_owned(),
            scenario: report.scenario.clone(),
            client: report.client.clone(),
            highest_pass_per_s: pass.map(|step| step.rate_per_s),
            p99_ms: pass.and_then(|step| step.p99_ms),
            lowest_failure_per_s: report.lowest_failure.as_ref().map(|step| step.rate_per_s),
            failure: report
                .lowest_failure
                .as_ref()
                .map(|step| step.failures.join("; ")),
            cpu_us_per_request,
            floor_us,
            floor_ratio: cpu_us_per_request
                .zip(floor_us)
                .map(|(cpu, floor)| cpu / floor),
            loadgen_cpu_us_per_iteration,
        }
    }

    /// Whether the row misses the RS256 floor target (judged for the client with a secret: an
    /// assertion or a DPoP proof to verify is work the floor does not count, shown, not judged).
    pub fn misses_the_floor_target(&self) -> bool {
        self.algorithm == "RS256"
            && self.client == "client_secret_basic"
            && self
                .floor_ratio
                .is_some_and(|ratio| ratio > RS256_FLOOR_RATIO_TARGET)
    }
}

fn figure(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.decimals$}"))
}

/// The rows as a Markdown table.
pub fn table(rows: &[LimitRow]) -> String {
    let mut text = String::from(
        "| algorithm | test | client | highest rate held /s | p99 there ms | first rate failed /s | \
         mock-idp CPU µs/request | floor µs (signatures x raw sign) | ratio | loadgen CPU \
         µs/iteration |\n\
         | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            row.algorithm,
            row.scenario,
            row.client,
            figure(row.highest_pass_per_s, 0),
            figure(row.p99_ms, 2),
            figure(row.lowest_failure_per_s, 0),
            figure(row.cpu_us_per_request, 0),
            figure(row.floor_us, 0),
            figure(row.floor_ratio, 2),
            figure(row.loadgen_cpu_us_per_iteration, 0),
        ));
    }
    for row in rows {
        if let Some(failure) = &row.failure {
            text.push_str(&format!(
                "\n{} {} ({}) first failed because: {failure}",
                row.algorithm, row.scenario, row.client
            ));
        }
    }
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use loadgen::run::capacity::{Step, Stop};

    use super::*;

    fn step(rate: f64, passed: bool, cpu_s: f64, requests: u64) -> Step {
        Step {
            rate_per_s: rate,
            passed,
            p99_ms: Some(3.0),
            achieved_rate_per_s: rate,
            failures: if passed {
                Vec::new()
            } else {
                vec!["p99 iteration latency < 500 ms did not hold (observed 900.00 ms)".into()]
            },
            result_file: None,
            requests,
            target_cpu_s: Some(cpu_s),
            // loadgen's own CPU: a tenth of the target's, over half as many iterations.
            generator_cpu_s: Some(cpu_s / 10.0),
            iterations: requests / 2,
        }
    }

    #[test]
    fn cpu_per_request_is_set_beside_signatures_times_the_raw_signing_cost() {
        let report = CapacityReport {
            scenario: "refresh-storm".into(),
            target: "http://127.0.0.1:1".into(),
            client: "client_secret_basic".into(),
            highest_pass: Some(step(1000.0, true, 12.0, 20_000)),
            lowest_failure: Some(step(1050.0, false, 13.0, 21_000)),
            stopped: Stop::Precise,
            steps: Vec::new(),
        };
        let benches = [BenchRow {
            algorithm: "RS256".into(),
            operation: "sign".into(),
            mock_idp_ns: 260_000.0,
            raw_ns: 250_000.0,
            ratio: 1.04,
        }];
        let row = LimitRow::new("RS256", &report, &benches);
        // 12 s of CPU over 20,000 requests is 600 µs; the floor is 2 x 250 µs.
        assert_eq!(row.cpu_us_per_request, Some(600.0));
        assert_eq!(row.floor_us, Some(500.0));
        assert!((row.floor_ratio.unwrap() - 1.2).abs() < 1e-9);
        assert!(!row.misses_the_floor_target());
        // 1.2 s of loadgen's CPU over 10,000 iterations is 120 µs.
        assert_eq!(row.loadgen_cpu_us_per_iteration, Some(120.0));
        let rendered = table(std::slice::from_ref(&row));
        assert!(
            rendered.contains(
                "| RS256 | refresh-storm | client_secret_basic | 1000 | 3.00 | 1050 | 600 | 500 \
                 | 1.20 | 120 |"
            ),
            "{rendered}"
        );
        assert!(rendered.contains("(client_secret_basic) first failed because: p99 iteration"));

        // A client that signs assertions and proofs costs more than the floor counts: shown,
        // never judged against the target.
        let signing = CapacityReport {
            client: "private_key_jwt + DPoP".into(),
            highest_pass: Some(step(1000.0, true, 20.0, 20_000)),
            ..report.clone()
        };
        let row = LimitRow::new("RS256", &signing, &benches);
        assert_eq!(row.floor_ratio, Some(2.0));
        assert!(!row.misses_the_floor_target());

        // No signing bench for the algorithm: no floor, and nothing judged.
        let unmeasured = LimitRow::new("ES256", &report, &benches);
        assert_eq!((unmeasured.floor_us, unmeasured.floor_ratio), (None, None));
    }
}
