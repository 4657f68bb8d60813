//! insta snapshots that lock the result schema: the committed JSON Schema, and the shape of a
//! real result (from a short in-process run against mock-idp) with every dynamic value redacted,
//! so any change of the format is a reviewed snapshot diff.

use std::time::Duration;

use anyhow::Result;
use loadgen::seeding::seeder::SeedConfig;
use loadgen::{LoadProfile, RunConfig, ScenarioKind};
use serde_json::Value;

/// Fields whose values are the same in every run; every other leaf is redacted to its type.
const STABLE: &[&str] = &[
    "schema_version",
    "test_id",
    "scenario",
    "complete",
    "incomplete_reason",
    "shards",
    "shard",
    "verdict",
    "name",
    "condition",
    "limit",
    "require_all_checks",
    "max_unauthorized",
    "min_success_rate",
    "p95_latency_below_ms",
    "p99_latency_below_ms",
];

/// Replaces dynamic leaves (times, counts, latencies, histograms, ports) with placeholders.
fn redact(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, inner)| (name.clone(), redact(inner, Some(name))))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|item| redact(item, key)).collect()),
        _ if key.is_some_and(|key| STABLE.contains(&key)) => value.clone(),
        Value::Number(_) => Value::from("[number]"),
        Value::String(_) => Value::from("[string]"),
        other => other.clone(),
    }
}

#[test]
fn the_committed_json_schema_is_locked() -> Result<()> {
    let schema: Value = serde_json::from_str(&loadgen::results::result::result_schema_json())?;
    insta::assert_json_snapshot!("result_json_schema", schema);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shape_of_a_real_result_is_locked() -> Result<()> {
    let idp = mock_idp::spawn(mock_idp::Config::ephemeral()).await?;
    let target = idp.base_url();
    let seeds = loadgen::seeding::seeder::make_seeds(&SeedConfig {
        codes: 60,
        refresh_families: 0,
        sessions: 0,
        concurrency: 4,
        ..SeedConfig::new(target.clone())
    })
    .await?;
    let profile = LoadProfile {
        rate_per_s: 20.0,
        ramp_up_s: 0.0,
        steady_s: 2.0,
        ramp_down_s: 0.0,
    };
    let config = RunConfig {
        max_vus: 10,
        timeout: Duration::from_secs(3),
        test_id: Some("TEST 1".into()),
        // The shape must not depend on how busy the machine is: a debug build beside the rest of
        // the test suite can start iterations more than the default 5 ms late, which adds a note.
        max_generator_lag: Duration::from_secs(1),
        ..RunConfig::new(ScenarioKind::TokenCode, target, profile)
    };
    let (_stop_handle, stop) = loadgen::stop_signal();
    let result = loadgen::run(&config, seeds, stop).await?;
    idp.shutdown().await;
    assert_eq!(result.verdict, loadgen::Verdict::Pass, "{:?}", result.notes);
    let shape = redact(&serde_json::to_value(&result)?, None);
    insta::assert_json_snapshot!("token_code_result_shape", shape);
    Ok(())
}
