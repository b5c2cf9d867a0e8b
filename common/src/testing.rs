//! Helpers for the test suites of every crate (feature `testing`, enabled only as a
//! dev-dependency): waiting for asynchronous effects without sleeping for a guessed time.

use std::future::Future;
use std::time::Duration;

/// How long [`eventually`] keeps trying. Generous: the machine is small and shared, and a suite
/// may run beside other crates' tests.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How often [`eventually`] checks.
const POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it yields `Some`, and returns that; panics naming `what` after
/// [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(what, PATIENCE, check).await
}

/// [`eventually`] with another patience.
pub async fn eventually_within<T, F, Fut>(what: &str, patience: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {patience:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_first_value_found() {
        let mut calls = 0;
        let value = eventually("the third call", || {
            calls += 1;
            let n = calls;
            async move { (n == 3).then_some(n * 10) }
        })
        .await;
        assert_eq!(value, 30);
    }

    #[tokio::test]
    #[should_panic(expected = "timed out after 200ms waiting for nothing")]
    async fn gives_up_naming_what_it_waited_for() {
        eventually_within("nothing", Duration::from_millis(200), || async {
            None::<()>
        })
        .await;
    }
}
