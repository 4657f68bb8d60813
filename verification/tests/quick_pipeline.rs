//! The `--quick` pipeline's TEST 1 (300 iterations/s, 2 s ramps, 10 s steady), run in-process
//! against mock-idp, passes the gate.

use std::time::Duration;

use anyhow::Result;
use loadgen::seeding::seeder::SeedConfig;
use loadgen::{LoadProfile, RunConfig, ScenarioKind, Thresholds};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_test_1_passes_the_gate() -> Result<()> {
    let idp = mock_idp::spawn(mock_idp::Config::ephemeral()).await?;
    let target = idp.base_url();
    let profile = LoadProfile {
        rate_per_s: 300.0,
        ramp_up_s: 2.0,
        steady_s: 10.0,
        ramp_down_s: 2.0,
    };
    let seeds = loadgen::seeding::seeder::make_seeds(&SeedConfig {
        codes: 3_900,
        refresh_families: 0,
        sessions: 0,
        ..SeedConfig::new(target.clone())
    })
    .await?;
    let config = RunConfig {
        max_vus: 300,
        timeout: Duration::from_secs(5),
        test_id: Some("TEST 1".into()),
        ..RunConfig::new(ScenarioKind::TokenCode, target, profile)
    };
    let (_stop_handle, stop) = loadgen::stop_signal();
    let result = loadgen::run(&config, seeds, stop).await?;
    idp.shutdown().await;
    let report = verification::gate::judge(&result, &Thresholds::default());
    assert!(
        report.passed(),
        "failures: {:?}; notes: {:?}",
        report.failures(),
        result.notes
    );
    assert_eq!(result.iterations.scheduled, 3_600);
    assert_eq!(result.iterations.completed, 3_600);
    assert_eq!(result.requests.unauthorized, 0);
    Ok(())
}
