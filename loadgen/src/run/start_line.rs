//! The one start the scenarios of a mix share: each sets up its virtual users, waits at the line
//! until all have, and all take the same instant as the start of their schedules.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::Barrier;
use tokio::time::Instant;

/// Where the engines of one mix wait for each other before their clocks start.
#[derive(Debug)]
pub struct StartLine {
    ready: Barrier,
    start: OnceLock<Instant>,
}

impl StartLine {
    /// A line for `runs` engines.
    pub fn new(runs: usize) -> Self {
        Self {
            ready: Barrier::new(runs),
            start: OnceLock::new(),
        }
    }

    /// Waits until every engine is ready; the start is `lead` after the last one was, the same
    /// instant for all.
    pub async fn ready(&self, lead: Duration) -> Instant {
        self.ready.wait().await;
        *self.start.get_or_init(|| Instant::now() + lead)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn every_engine_gets_the_same_start_after_the_last_is_ready() {
        let line = Arc::new(StartLine::new(2));
        let early = tokio::spawn({
            let line = Arc::clone(&line);
            async move { line.ready(Duration::from_millis(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let last_ready = Instant::now();
        let late = line.ready(Duration::from_millis(5)).await;
        let early = early.await.unwrap();
        assert_eq!(early, late);
        assert!(late >= last_ready + Duration::from_millis(5));
    }
}
