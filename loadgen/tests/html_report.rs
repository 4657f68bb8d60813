//! The HTML report of a real run, rendered by headless Chromium to a PNG: the page must show its
//! plots (the series' colours drawn in quantity) and not be blank. Debian's `chromium` is
//! installed by `tests/browser/install-chromium.sh` where missing; without it (no apt, no root)
//! the test says so and passes, except in CI, where it fails.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use common::{make_seeds, run_config, spawn_idp, steady};
use loadgen::{ScenarioKind, stop_signal};

/// The first two plot colours of `html_report` (p50 and target lines are drawn in them).
const BLUE: [u8; 3] = [0x00, 0x72, 0xb2];
const ORANGE: [u8; 3] = [0xe6, 0x9f, 0x00];

/// Makes `chromium` available, or says why it cannot be.
fn chromium() -> Result<Option<&'static str>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/install-chromium.sh");
    let installed = Command::new("bash")
        .arg(&script)
        .status()
        .context("could not run install-chromium.sh")?;
    if installed.success() {
        return Ok(Some("chromium"));
    }
    if std::env::var_os("CI").is_some_and(|value| value != "false") {
        bail!("install-chromium.sh failed ({installed}): CI must render the HTML report");
    }
    eprintln!("SKIPPED: Chromium could not be installed; the HTML report was not rendered");
    Ok(None)
}

/// Renders `html` to a PNG with headless Chromium, within a minute.
fn screenshot(browser: &str, html: &Path, png: &Path) -> Result<()> {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=900,2200",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("could not start chromium")?;
    let began = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            ensure!(status.success(), "chromium exited with {status}");
            return Ok(());
        }
        if began.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("chromium did not render the page within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many pixels are within a small distance of `colour`, and how many are not near-white.
fn count_pixels(png: &Path, colour: [u8; 3]) -> Result<(usize, usize, usize)> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png)?));
    let mut reader = decoder.read_info()?;
    let mut buffer = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buffer)?;
    let channels = frame.color_type.samples();
    ensure!(channels >= 3, "the screenshot is not in colour");
    let pixels = &buffer[..frame.buffer_size()];
    let (mut matching, mut inked) = (0, 0);
    for pixel in pixels.chunks_exact(channels) {
        let near = |wanted: u8, got: u8| wanted.abs_diff(got) <= 40;
        if near(colour[0], pixel[0]) && near(colour[1], pixel[1]) && near(colour[2], pixel[2]) {
            matching += 1;
        }
        if pixel[..3].iter().any(|value| *value < 200) {
            inked += 1;
        }
    }
    Ok((matching, inked, pixels.len() / channels))
}

/// Whether a screenshot shows the report: plots in both colours, and a page that is not blank.
fn shows_the_plots(png: &Path) -> Result<bool> {
    let (blue, inked, total) = count_pixels(png, BLUE)?;
    let (orange, _, _) = count_pixels(png, ORANGE)?;
    eprintln!("screenshot: {blue} blue and {orange} orange pixels, {inked} of {total} inked");
    Ok(blue > 500 && orange > 200 && inked * 100 > total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_of_a_run_renders_its_plots_in_chromium() -> Result<()> {
    let idp = spawn_idp().await?;
    let profile = steady(40.0, 4.0);
    let seeds = make_seeds(&idp.base_url(), 200, 0, 0).await?;
    let config = run_config(ScenarioKind::TokenCode, &idp.base_url(), profile, 8);
    let (_handle, stop) = stop_signal();
    let result = loadgen::run(&config, seeds, stop).await?;
    idp.shutdown().await;

    let timeline = result
        .timeline
        .as_ref()
        .context("a run keeps its timeline")?;
    assert_eq!(timeline.intervals.len(), 4);
    assert_eq!(
        timeline
            .intervals
            .iter()
            .map(|interval| interval.scheduled)
            .sum::<u64>(),
        result.iterations.scheduled
    );
    let page =
        loadgen::results::html_report::render("TEST 1 report", std::slice::from_ref(&result));
    // Self-contained: nothing is fetched when the page is viewed.
    for reference in ["src=", "href=", "@import", "url("] {
        assert!(!page.contains(reference), "the page refers to {reference}");
    }
    assert_eq!(page.matches("<svg").count(), 3);
    assert!(
        page.contains("p95 iteration latency &lt; 300 ms"),
        "thresholds are listed"
    );

    let Some(browser) = chromium()? else {
        return Ok(());
    };
    let directory = tempfile::tempdir()?;
    let html = directory.path().join("report.html");
    std::fs::write(&html, &page)?;
    let png = directory.path().join("report.png");
    screenshot(browser, &html, &png)?;
    ensure!(
        shows_the_plots(&png)?,
        "the rendered report shows no plots: see {}",
        html.display()
    );

    // The check is not satisfied by any page: a blank one, and one without its plots, fail it.
    let blank = directory.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>")?;
    screenshot(browser, &blank, &png)?;
    assert!(!shows_the_plots(&png)?, "a blank page passed the check");
    let without_plots = directory.path().join("without-plots.html");
    std::fs::write(
        &without_plots,
        page.split("<svg").next().context("the page has text")?,
    )?;
    screenshot(browser, &without_plots, &png)?;
    assert!(
        !shows_the_plots(&png)?,
        "a page without its plots passed the check"
    );
    Ok(())
}
