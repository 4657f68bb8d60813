//! Keeps Tokio's timer from waking its own event loop once per request.
//!
//! Tokio's time driver wakes the runtime's event loop (a write to its eventfd, one more system
//! call) whenever a timer is set earlier than the earliest one it holds, and an empty wheel holds
//! none. Between two requests of a VU the wheel was empty, so every request's timeout woke the
//! loop (seen with strace: one `write` per request). A timer always due within a quarter of a
//! second, set again as it fires, is earlier than any request's timeout of the usual seconds, so
//! setting those wakes nothing; it costs four wake-ups a second.

use std::time::Duration;

use tokio::task::JoinHandle;

/// How often the anchor fires: shorter than any sensible request timeout.
const PERIOD: Duration = Duration::from_millis(250);

/// A timer held in Tokio's wheel while this value lives.
#[derive(Debug)]
pub struct TimerWheelAnchor {
    task: JoinHandle<()>,
}

impl TimerWheelAnchor {
    /// Starts holding a timer on the current runtime.
    pub fn hold() -> Self {
        let task = tokio::spawn(async {
            let mut ticks = tokio::time::interval(PERIOD);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
            }
        });
        Self { task }
    }
}

impl Drop for TimerWheelAnchor {
    fn drop(&mut self) {
        self.task.abort();
    }
}
