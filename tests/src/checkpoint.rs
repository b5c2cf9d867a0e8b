//! Holding a simulated Mirroring Task at a known point of its load, so a test can inject a fault
//! exactly there: after the first RowData call that brings the rows sent to a threshold, the
//! tenant's cycle waits, between two calls, until the test releases it.
//!
//! The wait blocks the simulator's task in place ([`tokio::task::block_in_place`]), so the test
//! must run on the multi-threaded runtime; everything else in the process keeps running.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use mirror_sim::driver::{CycleReport, Observer};
use tokio::sync::{mpsc as channel, oneshot};

/// Bound on how long a test may take to reach the hold or to see a cycle end.
const PATIENCE: Duration = Duration::from_secs(180);

/// The simulator's side: an [`Observer`] to pass to `mirror_sim::driver::run`.
pub struct Checkpoint {
    after_rows: u64,
    sent: AtomicU64,
    triggered: AtomicBool,
    reached: Mutex<Option<oneshot::Sender<u64>>>,
    release: Mutex<mpsc::Receiver<()>>,
    finished: channel::UnboundedSender<CycleReport>,
}

/// The test's side: waits for the hold, releases it, and follows the cycles as they end.
pub struct Hold {
    reached: Option<oneshot::Receiver<u64>>,
    release: mpsc::Sender<()>,
    finished: channel::UnboundedReceiver<CycleReport>,
}

impl Checkpoint {
    /// Holds the cycle once `after_rows` rows have been sent and acknowledged.
    pub fn after_rows(after_rows: u64) -> (Arc<Checkpoint>, Hold) {
        let (reached_tx, reached_rx) = oneshot::channel();
        let (release_tx, release_rx) = mpsc::channel();
        let (finished_tx, finished_rx) = channel::unbounded_channel();
        let checkpoint = Checkpoint {
            after_rows,
            sent: AtomicU64::new(0),
            triggered: AtomicBool::new(false),
            reached: Mutex::new(Some(reached_tx)),
            release: Mutex::new(release_rx),
            finished: finished_tx,
        };
        let hold = Hold {
            reached: Some(reached_rx),
            release: release_tx,
            finished: finished_rx,
        };
        (Arc::new(checkpoint), hold)
    }
}

impl Observer for Checkpoint {
    fn rows_sent(&self, _tenant: &str, rows: u64, _bytes: u64) {
        let sent = self.sent.fetch_add(rows, Ordering::SeqCst) + rows;
        if sent < self.after_rows || self.triggered.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(reached) = self.reached.lock().expect("the reached signal").take() {
            let _ = reached.send(sent);
        }
        // Until released; a test that failed meanwhile dropped its sender, which releases too.
        let release = self.release.lock().expect("the release signal");
        tokio::task::block_in_place(|| {
            let _ = release.recv();
        });
    }

    fn cycle_finished(&self, report: &CycleReport) {
        let _ = self.finished.send(report.clone());
    }
}

impl Hold {
    /// Waits until the cycle is held; returns the rows sent and acknowledged until then.
    pub async fn reached(&mut self) -> u64 {
        let reached = self.reached.take().expect("the hold is reached once");
        tokio::time::timeout(PATIENCE, reached)
            .await
            .expect("the simulator reaches the checkpoint in time")
            .expect("the simulator reaches the checkpoint before it ends")
    }

    /// Lets the held cycle go on.
    pub fn release(&self) {
        let _ = self.release.send(());
    }

    /// The report of the next cycle to end.
    pub async fn next_finished(&mut self) -> CycleReport {
        tokio::time::timeout(PATIENCE, self.finished.recv())
            .await
            .expect("a cycle ends in time")
            .expect("a cycle ends before the run does")
    }
}
