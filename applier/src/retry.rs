//! Capped exponential backoff for transient failures.
//!
//! A worker that meets a transient fault (database or broker unavailable, deadlock, timeout) keeps
//! the message it holds and tries it again after a pause; it never hands the message back to the
//! queue, because that would reorder a tenant's calls. The pause doubles from `initial` up to `max`
//! so a long outage costs little, and the wait ends early when shutdown is requested.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// First pause after a transient failure.
pub const DEFAULT_INITIAL: Duration = Duration::from_millis(100);
/// Longest pause between two attempts.
pub const DEFAULT_MAX: Duration = Duration::from_secs(30);

/// The pauses between attempts: `initial`, doubled each time, never above `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(DEFAULT_INITIAL, DEFAULT_MAX)
    }
}

impl Backoff {
    /// A backoff starting at `initial` and capped at `max` (`max` is raised to `initial` if lower).
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            next: initial,
            attempts: 0,
        }
    }

    /// The pause to take now; the following one is twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        self.attempts = self.attempts.saturating_add(1);
        delay
    }

    /// How many pauses were handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
        self.attempts = 0;
    }

    /// Sleeps for the next pause. Returns `false` without waiting out the pause when `shutdown` is
    /// cancelled first, so callers can give up promptly.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let delays: Vec<u128> = (0..7).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(backoff.attempts(), 7);
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::default();
        for _ in 0..20 {
            backoff.next_delay();
        }
        assert_eq!(backoff.next_delay(), DEFAULT_MAX);
        backoff.reset();
        assert_eq!(backoff.attempts(), 0);
        assert_eq!(backoff.next_delay(), DEFAULT_INITIAL);
    }

    #[test]
    fn a_cap_below_the_start_is_raised() {
        let mut backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(1));
        assert_eq!(backoff.next_delay(), Duration::from_secs(2));
        assert_eq!(backoff.next_delay(), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn wait_sleeps_the_delay() {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(60));
        let token = CancellationToken::new();
        let started = std::time::Instant::now();
        assert!(backoff.wait(&token).await);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn wait_gives_up_on_shutdown() {
        let mut backoff = Backoff::new(Duration::from_secs(30), Duration::from_secs(30));
        let token = CancellationToken::new();
        let canceller = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            canceller.cancel();
        });
        let started = std::time::Instant::now();
        assert!(!backoff.wait(&token).await);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
