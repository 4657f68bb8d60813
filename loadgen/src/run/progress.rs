//! The live progress of a run: an indicatif line on a terminal, plain periodic lines otherwise.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::plan::schedule::Schedule;
use crate::run::scenario::RunContext;
use crate::terminal::{ProgressMode, progress_bar};

/// The running progress reporter; [`ProgressReporter::finish`] stops it.
#[derive(Debug)]
pub struct ProgressReporter {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl ProgressReporter {
    /// Stops reporting and clears the live line.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

struct Snapshot {
    line: String,
    position: u64,
}

fn snapshot(
    context: &RunContext,
    schedule: &Schedule,
    elapsed: Duration,
    started_before: &mut u64,
    interval: Duration,
    latency_p99_ms: f64,
) -> Snapshot {
    let live = &context.live;
    let started = live.started.load(Ordering::Relaxed);
    let dropped = live.dropped.load(Ordering::Relaxed);
    let achieved = (started - *started_before) as f64 / interval.as_secs_f64().max(1e-3);
    *started_before = started;
    let line = format!(
        "target {:.0}/s  achieved {:.0}/s  in-flight {}  requests {}  errors {}  dropped {}  p99 {:.1} ms",
        schedule.rate_at(elapsed),
        achieved,
        live.in_flight.load(Ordering::Relaxed),
        live.requests.load(Ordering::Relaxed),
        live.failed_requests.load(Ordering::Relaxed),
        dropped,
        latency_p99_ms,
    );
    Snapshot {
        line,
        position: started + dropped,
    }
}

fn p99_so_far(context: &RunContext) -> f64 {
    let histogram = context.recorder.latency_so_far();
    if histogram.is_empty() {
        0.0
    } else {
        histogram.value_at_quantile(0.99) as f64 / 1000.0
    }
}

/// Starts showing progress of a run whose schedule began at `start`; `None` when hidden.
pub fn spawn_progress(
    mode: ProgressMode,
    context: Arc<RunContext>,
    schedule: Arc<Schedule>,
    start: Instant,
) -> Option<ProgressReporter> {
    if mode == ProgressMode::Hidden {
        return None;
    }
    let (stop, mut stopped) = oneshot::channel();
    let total = schedule.total_iterations();
    let terminal = std::io::stderr().is_terminal();
    let task = tokio::spawn(async move {
        let interval = if terminal {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        };
        let bar = terminal.then(|| {
            let bar = progress_bar(
                total,
                "{spinner} [{elapsed_precise}] {bar:25} {pos}/{len} {msg}",
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let mut started_before = 0;
        let mut ticker = tokio::time::interval_at(start + interval, interval);
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = ticker.tick() => {}
            }
            let elapsed = start.elapsed();
            let p99 = p99_so_far(&context);
            let now = snapshot(
                &context,
                &schedule,
                elapsed,
                &mut started_before,
                interval,
                p99,
            );
            match &bar {
                Some(bar) => {
                    bar.set_position(now.position);
                    bar.set_message(now.line);
                }
                None => eprintln!("[{:>6.1}s] {}", elapsed.as_secs_f64(), now.line),
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    });
    Some(ProgressReporter { stop, task })
}
