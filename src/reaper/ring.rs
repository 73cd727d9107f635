//! Where the reaper leaves what it reaped for the main loop: a ring of
//! records in static memory, written only by the handler and read only by
//! the main loop. The handler may not allocate or take a lock (it could
//! have interrupted the main loop holding that very lock), so the ring is
//! a fixed array of atomics, and a record is one word: the PID in the high
//! 32 bits, the wait status in the low ones.
//!
//! `written` and `taken` count the records ever written by the handler and
//! ever taken by the main loop; their difference is what is waiting. The
//! handler publishes a record by storing `written` with Release ordering
//! after the record itself; the main loop reads `written` with Acquire
//! before it reads the record: it never sees a count without its record.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Records in the ring: as many as fit, with the counts, in one page of
/// memory, so that reaping a child writes one page only (after each fork
/// every page the parent writes must be copied: copy on write). If more
/// children end than the ring holds before the main loop gets to them, the
/// handler leaves the rest as zombies and the main loop asks for another
/// pass ([`was_full`]).
pub const CAPACITY: usize = 500;

#[repr(C, align(4096))]
struct Ring {
    written: AtomicUsize,
    taken: AtomicUsize,
    was_full: AtomicBool,
    records: [AtomicU64; CAPACITY],
}

static RING: Ring = Ring {
    written: AtomicUsize::new(0),
    taken: AtomicUsize::new(0),
    was_full: AtomicBool::new(false),
    records: [const { AtomicU64::new(0) }; CAPACITY],
};

/// Whether one more record fits (the handler asks before it reaps a child:
/// a child it could not record must stay a zombie until the next pass).
/// When it does not, the main loop is told to ask for another pass.
pub fn has_room() -> bool {
    let waiting = RING.written.load(Ordering::Relaxed) - RING.taken.load(Ordering::Acquire);
    if waiting == CAPACITY {
        RING.was_full.store(true, Ordering::SeqCst);
        return false;
    }
    true
}

/// Records a reaped child (handler only, after [`has_room`]).
pub fn push(pid: libc::pid_t, status: libc::c_int) {
    let written = RING.written.load(Ordering::Relaxed);
    let record = (pid as u32 as u64) << 32 | status as u32 as u64;
    RING.records[written % CAPACITY].store(record, Ordering::Relaxed);
    RING.written.store(written + 1, Ordering::Release);
}

/// The oldest record not taken yet, as (PID, wait status) (main loop only).
pub fn pop() -> Option<(libc::pid_t, libc::c_int)> {
    let taken = RING.taken.load(Ordering::Relaxed);
    if taken == RING.written.load(Ordering::Acquire) {
        return None;
    }
    let record = RING.records[taken % CAPACITY].load(Ordering::Relaxed);
    RING.taken.store(taken + 1, Ordering::Release);
    Some(((record >> 32) as libc::pid_t, record as u32 as libc::c_int))
}

/// Whether the ring was full since the last call: some children ended
/// without being reaped, and their SIGCHLD is spent.
pub fn was_full() -> bool {
    // Look before clearing: a write, even of the same value, would make the
    // page private again after every fork (copy on write).
    RING.was_full.load(Ordering::SeqCst) && RING.was_full.swap(false, Ordering::SeqCst)
}
