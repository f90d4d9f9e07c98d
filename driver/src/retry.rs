//! Waiting before trying again what may heal: one backoff schedule for every loop that retries
//! (connecting to a server, the extractor's passes, the transport's syncs, the agent's restarts
//! of failed tasks), and [`RetryPolicy`], which runs an operation under it.
//!
//! A definite error is never retried; a transient one is, after a delay that starts at
//! `first_delay` and doubles up to `max_delay`. Every wait ends at once when the task is
//! cancelled.

use crate::error::TaskError;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Delays that double from `first` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A schedule starting at `first`, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The next delay; the one after it is twice as long (at most `max`).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Starts again from the first delay (after a success, or a long healthy run).
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Sleeps the next delay; `false` when `cancel` fired first.
    pub async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        sleep(self.next_delay(), cancel).await
    }
}

/// Sleeps `delay`; `false` when `cancel` fired first.
pub async fn sleep(delay: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

/// How long to keep trying what may heal before giving up.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before giving up (at least 1).
    pub attempts: u32,
    /// First delay; doubles up to `max_delay`.
    pub first_delay: Duration,
    /// Longest delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// This policy's delays.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.first_delay, self.max_delay)
    }

    /// Runs `op` until it succeeds, fails definitely, or the attempts are used up.
    ///
    /// # Errors
    /// The last error; a transient one is reported with the number of attempts. Cancelled while
    /// waiting, the error that made it wait.
    pub async fn run<T, F, Fut>(
        &self,
        what: &str,
        cancel: &CancellationToken,
        mut op: F,
    ) -> Result<T, TaskError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, TaskError>>,
    {
        let mut backoff = self.backoff();
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(err) if err.is_transient() && attempt < self.attempts.max(1) => {
                    tracing::warn!(%err, attempt, "{what} failed; retrying");
                    if !backoff.wait(cancel).await {
                        return Err(err);
                    }
                    attempt += 1;
                }
                Err(err) if err.is_transient() => {
                    return Err(TaskError::Transient(format!(
                        "{err} (gave up after {attempt} attempts)"
                    )))
                }
                Err(err) => return Err(err),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::time::Instant;

    fn policy(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        }
    }

    #[test]
    fn delays_double_up_to_the_maximum_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(300));
        let delays: Vec<u64> = (0..4).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 300, 300]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_with_backoff_until_success() {
        let calls = AtomicU32::new(0);
        let began = Instant::now();
        let value = policy(5)
            .run("probing", &CancellationToken::new(), || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0..=2 => Err(TaskError::Transient("not yet".into())),
                    _ => Ok(7),
                }
            })
            .await
            .expect("succeeds on the fourth attempt");
        assert_eq!(value, 7);
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(began.elapsed(), Duration::from_millis(100 + 200 + 300));
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_run_out_and_definite_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let err = policy(3)
            .run("probing", &CancellationToken::new(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(TaskError::Transient("down".into()))
            })
            .await
            .expect_err("gives up");
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(
            err.to_string().contains("gave up after 3 attempts"),
            "{err}"
        );

        let calls = AtomicU32::new(0);
        let err = policy(3)
            .run("probing", &CancellationToken::new(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(TaskError::because(
                    crate::error::DefiniteCause::AccessDenied("wrong password".into()),
                ))
            })
            .await
            .expect_err("definite");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(!err.is_transient());
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_ends_the_wait_at_once() {
        let cancel = CancellationToken::new();
        let mut backoff = Backoff::new(Duration::from_secs(3600), Duration::from_secs(3600));
        let began = Instant::now();
        let stopper = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            stopper.cancel();
        });
        assert!(!backoff.wait(&cancel).await);
        assert_eq!(began.elapsed(), Duration::from_secs(1));
    }
}
