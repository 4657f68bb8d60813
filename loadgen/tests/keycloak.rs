//! loadgen against Keycloak, unmodified (`idps/keycloak`): seeding through its own login pages,
//! then TEST 1-3 clean, with its `typ: JWT` access tokens checked as JWTs (not as RFC 9068's) and
//! its refresh tokens rotated with reuse refused.
//!
//! Needs a Java 17+ JDK and Maven: `idps/keycloak/install.sh` installs Keycloak from Maven Central
//! under `target/keycloak` once (`.ci/run` does it first). Without `java` or `mvn` on the PATH the
//! test says so and passes.

mod common;

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use common::{assert_clean, make_seeds, run_config, steady};
use loadgen::{ScenarioKind, Seeds, stop_signal};

/// Keycloak started by `idps/keycloak/start.sh` in a process group of its own, stopped with the
/// whole group (the script, `kc.sh` and the JVM) when dropped.
struct Keycloak {
    child: Child,
    issuer: String,
    run_dir: tempfile::TempDir,
}

impl Drop for Keycloak {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../idps/keycloak")
}

fn available(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Installs (once) and starts Keycloak on 127.0.0.1:0, or `None` without Java and Maven.
fn start() -> Result<Option<Keycloak>> {
    if !available("java") || !available("mvn") {
        eprintln!(
            "SKIPPED: java or mvn is not on the PATH; install a Java 17+ JDK and Maven to test \
             against Keycloak"
        );
        return Ok(None);
    }
    let installed = Command::new("bash")
        .arg(folder().join("install.sh"))
        .status()
        .context("could not run idps/keycloak/install.sh")?;
    if !installed.success() {
        bail!("idps/keycloak/install.sh failed ({installed})");
    }
    let run_dir = tempfile::tempdir()?;
    let child = Command::new("bash")
        .arg(folder().join("start.sh"))
        .env("PORT", "0")
        .env("USERS", "40")
        .env("RUN_DIR", run_dir.path())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("could not start idps/keycloak/start.sh")?;
    // The guard first: from here on every path stops the whole group.
    let mut keycloak = Keycloak {
        child,
        issuer: String::new(),
        run_dir,
    };
    let stdout = keycloak.child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Some(issuer) = line.trim().strip_prefix("listening on ") else {
        let log = std::fs::read_to_string(keycloak.run_dir.path().join("keycloak.log"))
            .unwrap_or_default();
        bail!("Keycloak did not start (first line {line:?}); its log:\n{log}");
    };
    keycloak.issuer = issuer.to_owned();
    Ok(Some(keycloak))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_and_test_1_to_3_against_keycloak() -> Result<()> {
    let Some(keycloak) = start()? else {
        return Ok(());
    };
    let seeds = make_seeds(&keycloak.issuer, 60, 4, 4).await?;
    assert_eq!(
        (
            seeds.authorization_codes.len(),
            seeds.refresh_tokens.len(),
            seeds.sessions.len()
        ),
        (60, 4, 4)
    );
    // Keycloak's session cookies, and the subject its ID token names (a user id, not the name).
    assert!(
        seeds.sessions[0].cookie.contains("KEYCLOAK_SESSION="),
        "{:?}",
        seeds.sessions[0]
    );
    let subject = seeds.sessions[0].subject.clone().unwrap_or_default();
    assert!(
        !subject.is_empty() && subject != seeds.sessions[0].user_id,
        "{subject}"
    );
    let directory = tempfile::tempdir()?;
    seeds.save(directory.path())?;

    for scenario in [
        ScenarioKind::TokenCode,
        ScenarioKind::RefreshStorm,
        ScenarioKind::FullOidc,
    ] {
        let mut config = run_config(scenario, &keycloak.issuer, steady(20.0, 2.0), 4);
        config.seeds_out = Some(directory.path().to_owned());
        let (_handle, stop) = stop_signal();
        let result = loadgen::run(&config, Seeds::load(directory.path())?, stop).await?;
        assert_clean(&result);
        // Every access token was a JWT of `typ: JWT`, checked without its audience (none given),
        // and every token named the subject the seeds recorded.
        assert_eq!(
            result.access_token_bases.get("jwt_audience_unchecked"),
            Some(&result.iterations.completed),
            "{}: {:#?}",
            scenario.name(),
            result.access_token_bases
        );
        assert!(
            result.notes.iter().any(|note| note.contains("aud")),
            "{:#?}",
            result.notes
        );
        let (subjects_passed, subjects_failed) = common::check(&result, "token_subject");
        assert!(
            subjects_passed > 0 && subjects_failed == 0,
            "{}: {:#?}",
            scenario.name(),
            result.checks
        );
        if scenario == ScenarioKind::RefreshStorm {
            let (rotated, _) = common::check(&result, "refresh_token_rotated");
            assert_eq!(rotated, result.iterations.completed);
        }
    }

    // People signing in from scratch through Keycloak's own login page, and the test client
    // asking for tokens of its own through its service account, each token checked.
    let mut config = run_config(ScenarioKind::Login, &keycloak.issuer, steady(10.0, 2.0), 3);
    config.users.count = 8;
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await?;
    assert_clean(&result);
    for endpoint in ["authorize", "login", "token"] {
        assert_eq!(
            result.endpoints.get(endpoint).map(|e| e.requests.total),
            Some(20),
            "{endpoint}: {:?}",
            result.endpoints.keys()
        );
    }
    let mut config = run_config(
        ScenarioKind::ClientCredentials,
        &keycloak.issuer,
        steady(20.0, 1.0),
        3,
    );
    config.machine_clients =
        loadgen::protocol::machine_clients::MachineClients::run_client("profile");
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, Seeds::default(), stop).await?;
    assert_clean(&result);
    // Keycloak names the client in `azp` and `client_id`, and grants its default scopes beside
    // the one asked for.
    assert_eq!(common::check(&result, "access_token_client"), (20, 0));
    let (scopes_passed, scopes_failed) = common::check(&result, "granted_scope");
    assert!(
        scopes_passed >= 20 && scopes_failed == 0,
        "{:#?}",
        result.checks
    );
    Ok(())
}
