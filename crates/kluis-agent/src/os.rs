//! The two operating-system calls of the agent that no safe crate wraps:
//! the scheduling policy of its event threads, and handing freed heap
//! memory back after a large sync.
//!
//! # Event threads under `SCHED_BATCH`
//!
//! The file watcher's thread is woken for every file event. While a large
//! sync keeps every core busy, a normal thread that wakes up preempts the
//! worker whose open or rename caused the event, reads that one event and
//! sleeps again: two context switches per file, about a tenth of the CPU
//! time of a 10,000-file first sync on two cores (bench/sync-initial.sh).
//! Under `SCHED_BATCH` a thread never preempts on wakeup; it runs at the
//! next scheduling point and reads every event queued meanwhile in one go.
//! It keeps its nice value and its fair share of CPU, so the kernel's
//! event queue (16,384 events by default) does not overflow, and on an idle
//! machine it runs at once, so the latency of a single save is unchanged.
//! It also means the agent's event handling never preempts the user's own
//! programs.
//!
//! Threads inherit the policy of the thread that starts them, and notify
//! starts its own thread, so [`as_batch`] switches the calling thread
//! around the code that starts them.
//!
//! # The heap after a large sync
//!
//! A first sync of 10,000 files peaks at about 75 MiB, most of it buffers
//! and scan results freed right after. glibc keeps freed memory that is
//! not at the top of an arena, so the idle agent's resident size depended
//! on how the last sync happened to fragment the heap: 28–40 MiB over five
//! runs of the same build. [`trim_heap`] returns every free page.
//!
//! This is the one module of Kluis with `unsafe` code: rustix leaves
//! `sched_setscheduler(2)` and `malloc_trim(3)` out, and the
//! `thread-priority` crate sets the nice value along with the policy,
//! which would undo a `Nice=` that the user or their unit file chose.
#![cfg_attr(target_os = "linux", allow(unsafe_code))]

/// Runs `f` with the calling thread under `SCHED_BATCH`, so that the threads
/// it starts inherit that policy, then restores the policy the thread had.
/// Where the switch fails, or the thread had another policy (real-time, or
/// idle), `f` runs unchanged.
#[cfg(target_os = "linux")]
pub(crate) fn as_batch<T>(f: impl FnOnce() -> T) -> T {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: both calls act on the calling thread (pid 0) and read only
    // `param`, a valid, initialised `sched_param` that outlives them.
    // Moving between SCHED_OTHER and SCHED_BATCH needs no privilege and
    // leaves the nice value alone.
    let switched = unsafe { libc::sched_getscheduler(0) } == libc::SCHED_OTHER
        && unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } == 0;
    let out = f();
    if switched {
        // SAFETY: as above.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
    }
    out
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn as_batch<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// Returns the heap's free memory to the system (glibc's `malloc_trim`,
/// which also releases free pages in the middle of an arena).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn trim_heap() {
    // SAFETY: takes no pointers; glibc walks its own arenas under their
    // locks, and other threads may allocate meanwhile.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn trim_heap() {}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::as_batch;

    fn policy() -> i32 {
        // SAFETY: reads the calling thread's policy.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn threads_started_inside_are_batch_and_the_caller_is_restored() {
        // The test harness runs tests on fresh threads with the default
        // policy; skip if someone runs it under chrt.
        if policy() != libc::SCHED_OTHER {
            return;
        }
        let inner = as_batch(|| {
            let here = policy();
            let child = std::thread::spawn(policy).join().expect("thread");
            (here, child)
        });
        assert_eq!(inner, (libc::SCHED_BATCH, libc::SCHED_BATCH));
        assert_eq!(policy(), libc::SCHED_OTHER);
        assert_eq!(
            std::thread::spawn(policy).join().expect("thread"),
            libc::SCHED_OTHER
        );
    }

    #[cfg(target_env = "gnu")]
    #[test]
    fn trimming_returns_free_pages_in_the_middle_of_the_heap() {
        fn rss() -> usize {
            let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
            let pages: usize = statm
                .split(' ')
                .nth(1)
                .and_then(|p| p.parse().ok())
                .expect("rss");
            pages * 4096
        }
        // 80 MiB in 4 KiB blocks, then every block freed but one in 16:
        // the survivors pin the heap, so free() alone gives nothing back.
        let mut blocks: Vec<Box<[u8]>> = (0..20_000).map(|i| vec![i as u8; 4096].into()).collect();
        let mut kept = Vec::new();
        for (i, b) in blocks.drain(..).enumerate() {
            if i % 16 == 0 {
                kept.push(b);
            }
        }
        let before = rss();
        super::trim_heap();
        let after = rss();
        assert!(
            before.saturating_sub(after) > 32 << 20,
            "RSS {before} -> {after} bytes"
        );
        assert_eq!(kept.len(), 1250);
    }
}
