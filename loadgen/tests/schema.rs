//! The committed JSON Schema of the result file must be the one generated from the Rust types.
//! Regenerate with `LOADGEN_UPDATE_SCHEMA=1 cargo test -p loadgen --test schema`.

use std::path::PathBuf;

/// Fails unless `generated` is the committed `schema/{name}`; rewrites it first when asked.
fn assert_committed(name: &str, generated: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(name);
    if std::env::var_os("LOADGEN_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, generated).expect("the schema file can be written");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date; regenerate it with LOADGEN_UPDATE_SCHEMA=1 cargo test -p loadgen --test schema",
        path.display()
    );
}

#[test]
fn committed_schema_matches_the_types() {
    assert_committed(
        "result.schema.json",
        &loadgen::results::result::result_schema_json(),
    );
}

#[test]
fn committed_mix_schema_matches_the_types() {
    assert_committed(
        "mix-result.schema.json",
        &loadgen::results::mix_result::mix_result_schema_json(),
    );
}

#[test]
fn schema_names_the_required_fields() {
    let schema: serde_json::Value =
        serde_json::from_str(&loadgen::results::result::result_schema_json()).unwrap();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    for field in [
        "schema_version",
        "test_id",
        "scenario",
        "target",
        "load_profile",
        "started_at",
        "duration_s",
        "iterations",
        "requests",
        "success_rate",
        "error_rate",
        "achieved_rate_per_s",
        "latency",
        "service_time",
        "endpoints",
        "checks",
        "thresholds",
        "verdict",
        "histograms",
    ] {
        assert!(required.contains(&field), "{field} is not required");
    }
}
