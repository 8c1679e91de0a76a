//! Time, injected: event timestamps and timers (Wait states, retries, task timeouts, the
//! execution's time limit) come from this clock, so tests drive them with a [`ManualClock`]
//! instead of sleeping. Only what faces the outside world reads the system's time itself:
//! request signatures and the HTTP dates of integration results.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A source of wall-clock time in epoch milliseconds.
pub trait Clock: Send + Sync + 'static {
    fn now_millis(&self) -> i64;

    /// Resolves at or after `at` (epoch milliseconds), or earlier: callers look at the time
    /// again and wait once more. The default sleeps on the runtime's timer, at most a minute
    /// at a time so that a jump of the system clock is noticed.
    fn sleep_until(&self, at: i64) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let millis = (at - self.now_millis()).clamp(1, 60_000) as u64;
        Box::pin(tokio::time::sleep(Duration::from_millis(millis)))
    }
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that moves only when told, for tests: timers due at or before the new time fire
/// on [`ManualClock::advance`], and nothing else does.
pub struct ManualClock {
    now: tokio::sync::watch::Sender<i64>,
}

impl ManualClock {
    pub fn new(now_millis: i64) -> ManualClock {
        ManualClock {
            now: tokio::sync::watch::channel(now_millis).0,
        }
    }

    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now.send_modify(|now| *now = now.saturating_add(by));
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: i64) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let mut now = self.now.subscribe();
        Box::pin(async move {
            // Err only when the clock is gone, and then nothing will ever be due.
            if now.wait_for(|now| *now >= at).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
