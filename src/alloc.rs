//! The allocator's side of memory: the binary runs on mimalloc
//! (`src/main.rs`), which gives freed memory back to the system only as
//! the thread that freed it keeps allocating. An idle worker keeps what it
//! last used; [`trim`] makes the calling thread give its free pages back
//! now. Called where a burst ends: a request with a large body, the last
//! request in flight, tokenizers loaded.
//!
//! [`no_huge_pages`]: mimalloc asks the kernel for transparent huge pages
//! on its arenas (`madvise(MADV_HUGEPAGE)`), so each 2 MiB it touches is
//! resident in full: 20 of the idle gateway's 38 MiB of heap were such
//! pages, and the untouched parts of each stream's buffers counted in
//! full. The gateway turns them off for itself at start
//! (`load-tests/RESULTS.md`, "Idle memory" and "Huge pages off, every
//! worker trimmed": the memory, and the paired throughput with and
//! without, unchanged).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::OnceLock;
use std::time::Duration;

/// Returns the calling thread's free allocator pages to the system
/// (a few hundred µs; never on the hot path).
pub fn trim() {
    // SAFETY: `mi_collect` only walks and trims the calling thread's heap;
    // it is valid at any time from any thread (mimalloc's API), and a no-op
    // for memory another allocator manages.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Rounds of trimming the helper of [`trim_workers`] has started.
static ROUNDS: AtomicU64 = AtomicU64::new(0);

/// How long after a burst the workers trim (and at most how often).
const TRIM_AFTER: Duration = Duration::from_millis(250);

thread_local! {
    /// The last round this thread trimmed in.
    static TRIMMED: Cell<u64> = const { Cell::new(0) };
}

/// A burst ended (nothing in flight): this thread trims now, and every
/// worker of the current Tokio runtime [`TRIM_AFTER`] later. The memory a
/// burst leaves is spread over the workers that served it, and freed
/// after the last request ends too (connection tasks); an idle worker
/// never trims on its own. Measured after 1 000 streams
/// (`load-tests/streams.sh`): 88 MiB stayed resident against 28 MiB idle
/// until later requests happened to reach both workers.
///
/// Tokio cannot run a task on a given worker, but a task spawned from
/// outside the runtime wakes a parked worker to take it. So a helper
/// thread waits [`TRIM_AFTER`] (coalescing the bursts that end meanwhile),
/// then spawns one task per worker; a task landing on a thread that
/// already trimmed in this round yields (up to 8 times) for another worker
/// to take it. Best effort; at most one round per [`TRIM_AFTER`].
pub fn trim_workers() {
    trim();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if let Some(helper) = trimmer() {
        // Full: a round already waiting covers this burst too.
        let _ = helper.try_send(runtime);
    }
}

/// The helper thread's queue (started on first use; `None` if no thread
/// could be started).
fn trimmer() -> Option<&'static SyncSender<tokio::runtime::Handle>> {
    static HELPER: OnceLock<Option<SyncSender<tokio::runtime::Handle>>> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<tokio::runtime::Handle>(1);
            let started = std::thread::Builder::new()
                .name("sluice-trim".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    while let Ok(runtime) = rx.recv() {
                        std::thread::sleep(TRIM_AFTER);
                        let round = ROUNDS.fetch_add(1, Ordering::Relaxed) + 1;
                        for _ in 0..runtime.metrics().num_workers() {
                            runtime.spawn(async move {
                                for _ in 0..8 {
                                    if trim_once(round) {
                                        return;
                                    }
                                    tokio::task::yield_now().await;
                                }
                            });
                        }
                    }
                });
            started.is_ok().then_some(tx)
        })
        .as_ref()
}

/// Trims this thread unless it did in `round` or a later one; true if it
/// did now.
fn trim_once(round: u64) -> bool {
    if TRIMMED.get() >= round {
        return false;
    }
    trim();
    TRIMMED.set(round);
    true
}

/// Turns transparent huge pages off for this process (pages faulted from
/// now on are 4 KiB; what an idle gateway holds is then what it uses).
/// Best effort: a kernel without the option leaves things as they were.
pub fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` only sets a flag of
    // the calling process; it reads no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
