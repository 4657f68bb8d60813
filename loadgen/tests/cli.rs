//! The `loadgen` binary end to end against an in-process mock IdP: help, seed, run, report,
//! and the exit codes (0 pass, 99 thresholds failed, 1 error).

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn loadgen(arguments: Vec<String>) -> impl FnOnce() -> anyhow::Result<Output> {
    move || {
        Ok(Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(arguments)
            .env_remove("LOADGEN_TARGET")
            .output()?)
    }
}

async fn run_loadgen(arguments: &[&str]) -> anyhow::Result<Output> {
    let arguments = arguments
        .iter()
        .map(|argument| (*argument).to_owned())
        .collect();
    tokio::task::spawn_blocking(loadgen(arguments)).await?
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_has_help_with_env_fallbacks() {
    for command in [
        vec!["--help"],
        vec!["seed", "--help"],
        vec!["run", "--help"],
        vec!["report", "--help"],
    ] {
        let output = run_loadgen(&command).await.unwrap();
        assert!(output.status.success(), "{command:?}");
        let help = String::from_utf8_lossy(&output.stdout).into_owned();
        if command.len() == 2 && command[0] != "report" {
            assert!(help.contains("LOADGEN_TARGET"), "{command:?}: {help}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_run_and_report_with_exit_codes() {
    let idp = common::spawn_idp().await.unwrap();
    let target = idp.base_url();
    let temporary = tempfile::tempdir().unwrap();
    let directory = temporary.path();
    let seeds = directory.join("seeds");

    let output = run_loadgen(&[
        "seed",
        "--target",
        &target,
        "--codes",
        "200",
        "--refresh-families",
        "3",
        "--sessions",
        "3",
        "--out",
        &text(&seeds),
        "--no-progress",
    ])
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "authorization_codes.json",
        "refresh_tokens.json",
        "sessions.json",
    ] {
        assert!(seeds.join(file).exists(), "{file}");
    }

    let first = directory.join("first.json");
    let profile = [
        "--rate",
        "20",
        "--ramp-up",
        "0s",
        "--duration",
        "2s",
        "--ramp-down",
        "0s",
    ];
    let mut arguments = vec![
        "run",
        "--scenario",
        "refresh-storm",
        "--target",
        &target,
        "--seeds",
        "",
        "--max-vus",
        "3",
        "--out",
        "",
        "--no-progress",
    ];
    let seeds_text = text(&seeds);
    let first_text = text(&first);
    arguments[6] = &seeds_text;
    arguments[10] = &first_text;
    arguments.extend(profile);
    let output = run_loadgen(&arguments).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("verdict: PASS"), "{stdout}");
    assert!(stdout.contains("refresh_token_rotated"), "{stdout}");

    // The same run with an impossible latency threshold: exit 99.
    let second = directory.join("second.json");
    let second_text = text(&second);
    arguments[10] = &second_text;
    arguments.extend(["--p95", "1us"]);
    let output = run_loadgen(&arguments).await.unwrap();
    assert_eq!(output.status.code(), Some(99));

    // Two files of one test merge; the merged verdict is judged again.
    let merged = directory.join("merged.json");
    let output = run_loadgen(&[
        "report",
        &text(&first),
        &text(&second),
        "--out",
        &text(&merged),
    ])
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stdout.contains("2 shards merged"), "{stdout}");
    let merged_result = loadgen::RunResult::read(&merged).unwrap();
    assert_eq!(merged_result.iterations.scheduled, 80);

    // `report` judges only with --gate: the failed second run prints, exits 0, and gates 99.
    let output = run_loadgen(&["report", &second_text]).await.unwrap();
    assert_eq!(output.status.code(), Some(0));
    let output = run_loadgen(&["report", "--gate", &second_text])
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(99));

    // In a GitHub Actions step the summary is appended to the job summary as well, and the
    // reports asked for are written.
    let job_summary = directory.join("step-summary.md");
    std::fs::write(&job_summary, "earlier step\n").unwrap();
    let (html, junit) = (directory.join("report.html"), directory.join("junit.xml"));
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "report",
            &first_text,
            "--html",
            &text(&html),
            "--junit",
            &text(&junit),
        ])
        .env("GITHUB_STEP_SUMMARY", &job_summary)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let appended = std::fs::read_to_string(&job_summary).unwrap();
    assert!(appended.starts_with("earlier step\n"), "{appended}");
    assert!(appended.contains("verdict: PASS"), "{appended}");
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<testsuites")
    );

    // A shard needs a common start; one shard alone exits 0 (judged on the merge), and a merge
    // of part of a run is refused in words.
    let shard_arguments = |shard: &'static str, out: String, start: Option<String>| {
        let mut arguments = vec![
            "run".to_owned(),
            "--scenario".to_owned(),
            "discovery".to_owned(),
            "--target".to_owned(),
            target.clone(),
            "--shard".to_owned(),
            shard.to_owned(),
            "--out".to_owned(),
            out,
            "--no-progress".to_owned(),
        ];
        arguments.extend(profile.iter().map(|word| (*word).to_owned()));
        arguments.extend(
            start
                .into_iter()
                .flat_map(|start| ["--start-at".to_owned(), start]),
        );
        arguments
    };
    let lone = directory.join("lone-shard.json");
    let output = tokio::task::spawn_blocking(loadgen(shard_arguments("1/2", text(&lone), None)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(stderr.contains("--shard 1/2 needs --start-at"), "{stderr}");
    let start = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(1),
    )
    .to_string();
    let output =
        tokio::task::spawn_blocking(loadgen(shard_arguments("1/2", text(&lone), Some(start))))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run_loadgen(&["report", "--gate", &text(&lone)])
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        stderr.contains("the run has 2 shards but 0/2 are missing"),
        "{stderr}"
    );

    // Too few seeds, and an unreachable target: exit 1 with a reason.
    let output = run_loadgen(&[
        "run",
        "--scenario",
        "token-code",
        "--target",
        &target,
        "--seeds",
        &text(&seeds),
        "--rate",
        "300",
        "--duration",
        "120s",
        "--no-progress",
    ])
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(stderr.contains("needs 39390"), "{stderr}");
    let output = run_loadgen(&[
        "run",
        "--scenario",
        "discovery",
        "--target",
        "http://127.0.0.1:1",
        "--duration",
        "1s",
        "--no-progress",
    ])
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));

    idp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_flags_that_cannot_work_are_refused_in_words_before_any_load() {
    let target = "http://127.0.0.1:9";
    for (arguments, expected) in [
        (vec!["--scenario", "api"], "needs at least one --api-url"),
        (
            vec![
                "--scenario",
                "token-code",
                "--api-url",
                "http://127.0.0.1:9/api",
            ],
            "--api-url is for --scenario api",
        ),
        (
            vec!["--scenario", "api", "--api-url", "/api/v1/feed"],
            "URL=WEIGHT",
        ),
        (
            vec![
                "--scenario",
                "api",
                "--api-url",
                "http://127.0.0.1:9/api",
                "--token-source",
                "sign",
            ],
            "needs the application's test key",
        ),
        (
            vec![
                "--scenario",
                "api",
                "--api-url",
                "http://127.0.0.1:9/api",
                "--token-source",
                "sign",
                "--sign-secret-env",
                "LOADGEN_TEST_SECRET_NOBODY_SETS",
            ],
            "not set in the environment",
        ),
        (
            vec![
                "--scenario",
                "api",
                "--api-url",
                "http://127.0.0.1:9/api",
                "--token-source",
                "sign",
                "--sign-secret-env",
                "PATH",
                "--claim",
                "role",
            ],
            "is not name=value",
        ),
        (
            vec![
                "--scenario",
                "api",
                "--api-url",
                "http://127.0.0.1:9/api",
                "--token-source",
                "json",
            ],
            "needs --login-url",
        ),
        (
            vec![
                "--scenario",
                "api",
                "--api-url",
                "http://127.0.0.1:9/api",
                "--token-source",
                "mint",
            ],
            "needs --mint-url",
        ),
    ] {
        // PATH stands for a secret long enough, so that the claim is what is refused.
        let mut command = vec!["run", "--target", target];
        command.extend(arguments.iter().copied());
        assert_refused_in_words(&command, expected).await;
    }
}

/// `command` fails with `expected` in its error output, and without a panic.
async fn assert_refused_in_words(command: &[&str], expected: &str) {
    let output = run_loadgen(command).await.expect("loadgen runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{command:?}");
    assert!(stderr.contains(expected), "{command:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Client authentication flags that cannot work are refused in words before any request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_auth_flags_that_cannot_work_are_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_key = dir.path().join("key.pem");
    std::fs::write(&not_a_key, "not a key").unwrap();
    let not_a_key = not_a_key.to_str().unwrap();
    for (arguments, expected) in [
        (
            vec!["--client-auth", "private-key-jwt"],
            "give it with --client-key FILE",
        ),
        (
            vec![
                "--client-auth",
                "private-key-jwt",
                "--client-key",
                not_a_key,
            ],
            "is not a PEM private key for Rs256",
        ),
        (
            vec!["--client-auth", "post", "--public-client"],
            "--public-client authenticates with nothing but its client_id",
        ),
    ] {
        let mut command = vec![
            "run",
            "--target",
            "http://127.0.0.1:9",
            "--scenario",
            "client-credentials",
        ];
        command.extend(arguments.iter().copied());
        assert_refused_in_words(&command, expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preset_is_planned_seeded_run_and_reported_as_one_mix() {
    let output = run_loadgen(&["plan", "--preset", "web", "--mau", "1500000"])
        .await
        .unwrap();
    assert!(output.status.success());
    let plan = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        plan.contains("mix login=30,refresh-storm=45,userinfo=225, 300.00 iterations/s in all"),
        "{plan}"
    );

    // The same preset for few users, run end to end against mock-idp.
    let idp = common::spawn_idp().await.unwrap();
    let target = idp.base_url();
    let temporary = tempfile::tempdir().unwrap();
    let directory = temporary.path();
    let seeds = text(&directory.join("seeds"));
    let result = text(&directory.join("mix.json"));
    let sizing = [
        "--preset",
        "web",
        "--mau",
        "100000",
        "--ramp-up",
        "1s",
        "--duration",
        "2s",
        "--ramp-down",
        "0s",
        "--max-vus",
        "12",
    ];
    let mut seed = vec![
        "seed",
        "--target",
        &target,
        "--out",
        &seeds,
        "--no-progress",
    ];
    seed.extend(sizing);
    let output = run_loadgen(&seed).await.unwrap();
    assert!(output.status.success(), "{output:?}");
    let mut run = vec![
        "run",
        "--target",
        &target,
        "--seeds",
        &seeds,
        "--out",
        &result,
        "--no-progress",
    ];
    run.extend(sizing);
    let output = run_loadgen(&run).await.unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{printed}");
    assert!(
        printed.contains("mix verdict: PASS (3 of 3 scenarios passed)"),
        "{printed}"
    );
    let output = run_loadgen(&["report", "--gate", &result]).await.unwrap();
    assert!(output.status.success(), "{output:?}");
    // The gate of single runs refuses a mix's file in words, pointing to `loadgen report`.
    let error = loadgen::RunResult::read(Path::new(&result)).unwrap_err();
    assert!(error.to_string().contains("loadgen report"), "{error}");

    let output = run_loadgen(&["run", "--target", &target, "--mix", "login=1,logon=2"])
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let complaint = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        complaint.contains("the mix names 'logon', which is no scenario"),
        "{complaint}"
    );
    idp.shutdown().await;
}
