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
//! pages. The gateway turns them off for itself at start
//! (`load-tests/RESULTS.md`, "Idle memory": idle RSS and the paired
//! throughput with and without).

/// Returns the calling thread's free allocator pages to the system
/// (a few hundred µs; never on the hot path).
pub fn trim() {
    // SAFETY: `mi_collect` only walks and trims the calling thread's heap;
    // it is valid at any time from any thread (mimalloc's API), and a no-op
    // for memory another allocator manages.
    unsafe { libmimalloc_sys::mi_collect(true) };
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
