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
    use std::task::Poll;

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
            // Readiness the reactor holds now is stale: the timer just armed cannot have been seen
            // by it yet. It is left when a wait was cancelled (the run stopped) before its timer
            // fired. Clearing it needs no system call, and neither does the wake below: arming
            // the timer again resets its count of expirations, so it is never read (two system
            // calls per iteration fewer than reading it, measured with strace).
            std::future::poll_fn(|context| {
                if let Poll::Ready(Ok(mut stale)) = self.fd.poll_read_ready(context) {
                    stale.clear_ready();
                }
                Poll::Ready(())
            })
            .await;
            let mut fired = self.fd.readable().await?;
            fired.clear_ready();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;
    use std::task::Poll;
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

    /// A wait cancelled before its timer fired leaves an expiry behind, seen by the reactor or
    /// still in the kernel's queue; neither may end a later wait early.
    #[tokio::test]
    async fn a_cancelled_wait_does_not_end_the_next_one_early() {
        let mut timer = PreciseTimer::new();
        for reactor_saw_it in [true, false] {
            // Polled once (the timer armed), then dropped.
            let first_poll_pending = {
                let mut cancelled =
                    std::pin::pin!(timer.sleep_until(Instant::now() + Duration::from_millis(1)));
                std::future::poll_fn(|context| {
                    Poll::Ready(cancelled.as_mut().poll(context).is_pending())
                })
                .await
            };
            assert!(
                first_poll_pending,
                "the first wait ended before its deadline"
            );
            if reactor_saw_it {
                // The runtime turns its event loop meanwhile and takes the expiry in.
                tokio::time::sleep(Duration::from_millis(3)).await;
            } else {
                // The thread is blocked: the expiry waits in the kernel.
                std::thread::sleep(Duration::from_millis(3));
            }
            let deadline = Instant::now() + Duration::from_millis(5);
            timer.sleep_until(deadline).await;
            let woke = Instant::now();
            assert!(
                woke >= deadline,
                "woke {:?} early (reactor saw the stale expiry: {reactor_saw_it})",
                deadline - woke
            );
        }
    }
}
