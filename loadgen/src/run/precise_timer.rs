//! Waiting for an iteration's intended start to the microsecond. Tokio's timer wheel counts in
//! milliseconds, so an iteration it woke began up to a millisecond late, and every latency figure
//! carried that delay as if the provider had spent it. On Linux a timerfd (the kernel's
//! high-resolution timer, armed for each start) wakes the runtime's own thread through its event
//! loop: no thread of its own, no spinning; elsewhere Tokio's timer serves.

use tokio::time::Instant;

/// Sleeps until instants with microsecond precision.
#[derive(Debug)]
pub struct PreciseTimer {
    #[cfg(target_os = "linux")]
    timer: Option<linux::TimerFdSleep>,
}

impl PreciseTimer {
    /// A timer; on Linux a timerfd registered with the current runtime, or Tokio's timer when
    /// one cannot be made.
    pub fn new() -> Self {
        Self {
            #[cfg(target_os = "linux")]
            timer: linux::TimerFdSleep::new().ok(),
        }
    }

    /// Returns at `deadline` (at once when it is past).
    pub async fn sleep_until(&mut self, deadline: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(timer) = &mut self.timer {
            if timer.sleep_until(deadline).await.is_ok() {
                return;
            }
            // A timerfd that failed once is not trusted again: Tokio's timer from now on.
            self.timer = None;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

impl Default for PreciseTimer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsFd as _, AsRawFd, RawFd};

    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::unix::AsyncFd;
    use tokio::time::Instant;

    /// A timerfd as Tokio's reactor needs it.
    #[derive(Debug)]
    struct Fd(TimerFd);

    impl AsRawFd for Fd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    /// A one-shot timerfd armed for each deadline, awaited through the runtime's event loop.
    #[derive(Debug)]
    pub(super) struct TimerFdSleep {
        fd: AsyncFd<Fd>,
    }

    impl TimerFdSleep {
        pub(super) fn new() -> std::io::Result<Self> {
            // Linux lets a timer of this thread fire up to 50 µs late by default, to batch
            // wake-ups; one nanosecond asks for the deadline itself. Without it the timer is only
            // less precise.
            let _ = nix::sys::prctl::set_timerslack(1);
            let timer = TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )?;
            // `AsyncFd::new` is deprecated because a caller could close the descriptor while it
            // is registered; here the AsyncFd owns the timer, so it lives exactly as long as the
            // registration (and the safe alternative, `register`, is an unsafe fn).
            #[allow(deprecated)]
            let fd = AsyncFd::new(Fd(timer))?;
            Ok(Self { fd })
        }

        pub(super) async fn sleep_until(&mut self, deadline: Instant) -> std::io::Result<()> {
            let left = deadline.saturating_duration_since(Instant::now());
            // A zero expiry would disarm the timer rather than fire it.
            if left.is_zero() {
                return Ok(());
            }
            self.fd
                .get_ref()
                .0
                .set(
                    Expiration::OneShot(TimeSpec::from_duration(left)),
                    TimerSetTimeFlags::empty(),
                )
                .map_err(std::io::Error::from)?;
            loop {
                let mut ready = self.fd.readable().await?;
                let mut expirations = [0_u8; 8];
                match nix::unistd::read(&ready.get_inner().0, &mut expirations) {
                    Ok(_) => return Ok(()),
                    Err(nix::errno::Errno::EAGAIN) => ready.clear_ready(),
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn it_wakes_at_the_deadline_and_not_before() {
        let mut timer = PreciseTimer::new();
        let mut lateness = Vec::new();
        for step in 1..=20_u64 {
            let deadline = Instant::now() + Duration::from_micros(300 * step);
            timer.sleep_until(deadline).await;
            let woke = Instant::now();
            assert!(woke >= deadline, "woke {:?} early", deadline - woke);
            lateness.push(woke - deadline);
        }
        // A deadline already past returns at once.
        timer
            .sleep_until(Instant::now() - Duration::from_millis(1))
            .await;
        lateness.sort();
        eprintln!("median lateness {:?}", lateness[lateness.len() / 2]);
    }
}
