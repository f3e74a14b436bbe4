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
//!
//! `malloc_trim` cannot return a page that holds a block of a thread's
//! cache (glibc's tcache: up to 7 freed blocks of each of 64 sizes per
//! thread, which look in use to the arena). After a flood those are the
//! last blocks each runtime thread freed, scattered over the pages the flood
//! used, one page each: measured, 2–2.5 MiB stayed resident (+11 % of an
//! idle `serve`), against +0.3 MiB with the caches off. glibc reads that
//! setting only from the environment at start, so `serve` re-executes
//! itself once with `glibc.malloc.tcache_count=0` added to
//! `GLIBC_TUNABLES` ([`without_thread_caches`]), unless a tcache setting is
//! already there.

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

/// Set in the environment of the re-executed process.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const REEXECUTED: &str = "MALOMO_MCP_MALLOC_TUNED";

/// Re-executes this process with glibc's per-thread malloc caches off (see
/// the module documentation); returns (and the process goes on as it is)
/// when that is done already, not wanted, or impossible. Call it first
/// thing, before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn without_thread_caches() {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os(REEXECUTED).is_some() {
        return;
    }
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if tunables.contains("glibc.malloc.tcache_count") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let tunables = if tunables.is_empty() {
        "glibc.malloc.tcache_count=0".to_owned()
    } else {
        format!("{tunables}:glibc.malloc.tcache_count=0")
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    // Only returns if the exec failed: then go on with the caches.
    let _ = command
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .env(REEXECUTED, "1")
        .exec();
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn without_thread_caches() {}
