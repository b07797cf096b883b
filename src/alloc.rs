//! The allocator's side of memory: the binary runs on mimalloc
//! (`src/main.rs`), which gives freed memory back to the system only as
//! the thread that freed it keeps allocating. An idle worker keeps what it
//! last used; [`trim`] makes the calling thread give its free pages back
//! now. Called where a burst ends: a request with a large body, the last
//! request in flight, tokenizers loaded.

/// Returns the calling thread's free allocator pages to the system
/// (a few hundred µs; never on the hot path).
pub fn trim() {
    // SAFETY: `mi_collect` only walks and trims the calling thread's heap;
    // it is valid at any time from any thread (mimalloc's API), and a no-op
    // for memory another allocator manages.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
