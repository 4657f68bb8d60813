//! The committed JSON Schema of the result file must be the one generated from the Rust types.
//! Regenerate with `LOADGEN_UPDATE_SCHEMA=1 cargo test -p loadgen --test schema`.

use std::path::PathBuf;

fn committed_schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/result.schema.json")
}

#[test]
fn committed_schema_matches_the_types() {
    let generated = loadgen::results::result::result_schema_json();
    let path = committed_schema_path();
    if std::env::var_os("LOADGEN_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date; regenerate it with LOADGEN_UPDATE_SCHEMA=1 cargo test -p loadgen --test schema",
        path.display()
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

#[test]
fn committed_mix_schema_matches_the_types() {
    let generated = loadgen::results::mix_result::mix_result_schema_json();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/mix-result.schema.json");
    if std::env::var_os("LOADGEN_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date; regenerate it with LOADGEN_UPDATE_SCHEMA=1 cargo test -p loadgen --test schema",
        path.display()
    );
}
