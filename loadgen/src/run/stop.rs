//! Stopping a run early (Ctrl-C, a capacity search's deadline): the run then ends its in-flight
//! iterations and reports.

use std::sync::Arc;

use tokio::sync::watch;

/// Tells a run to stop early; the run then ends its in-flight iterations and reports.
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<watch::Sender<bool>>);

impl StopHandle {
    /// Asks the run to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// The run's side of a [`StopHandle`].
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// Resolves once a stop was asked for; never if the handle is gone without asking.
    pub(super) async fn requested(&mut self) {
        if self.0.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// A linked stop handle and signal.
pub fn stop_signal() -> (StopHandle, StopSignal) {
    let (sender, receiver) = watch::channel(false);
    (StopHandle(Arc::new(sender)), StopSignal(receiver))
}
