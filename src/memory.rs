//! Giving freed memory back to the operating system after a burst.
//!
//! A session flood allocates tens of thousands of small blocks (rmcp's
//! per-session tasks and channels) across the runtime's threads. When the
//! sessions end every block is freed, but glibc's allocator keeps the pages
//! of its per-thread arenas mapped: measured with `benches/sessions.rs`,
//! RSS stayed at its peak a minute after every session had ended
//! (BENCHMARKS.md, "Session flood"). `malloc_trim` returns the free pages of
//! every arena. It walks the heap, so it runs on a blocking thread, at most
//! once per [`TRIM_DELAY`], shortly after the last of a run of releases.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long after a release the trim runs; releases meanwhile share it.
pub const TRIM_DELAY: Duration = Duration::from_secs(2);

/// Schedules trims after releases of memory.
#[derive(Debug, Default)]
pub struct Trimmer {
    scheduled: AtomicBool,
}

impl Trimmer {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Notes that something large was freed; a trim follows soon.
    pub fn released(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.scheduled.store(false, Ordering::Release);
            return;
        };
        let this = self.clone();
        runtime.spawn(async move {
            tokio::time::sleep(TRIM_DELAY).await;
            // Releases from now on schedule the next trim.
            this.scheduled.store(false, Ordering::Release);
            let _ = tokio::task::spawn_blocking(return_free_pages).await;
        });
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_free_pages() {
    // SAFETY: malloc_trim only releases free memory of glibc's own arenas;
    // it takes no pointers and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_free_pages() {}
