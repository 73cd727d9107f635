//! Counters that the server's children update and the parent reads: the
//! log lines dropped (by any process), and the clients that prefork
//! workers accepted, lost to a broken connection, or cut at a stop (the
//! parent never sees those clients).
//!
//! After fork, a child's memory is a copy of its parent's: what it writes,
//! the parent never sees. These counters live in one page mapped
//! MAP_SHARED before the first fork, so that every child inherits the same
//! page, not a copy (Stevens' preforked servers count the same way). The
//! counters are atomics: processes may update them at the same time.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use nix::sys::mman::{self, MapFlags, ProtFlags};

/// The counters of the shared page.
#[derive(Debug, Default)]
pub struct Counters {
    /// Log lines dropped because stderr was full, stalled or closed.
    pub dropped_log_lines: AtomicU64,
    /// Clients accepted by prefork workers.
    pub accepted: AtomicU64,
    /// Clients prefork workers lost to a broken connection (EPIPE).
    pub sigpipe: AtomicU64,
    /// Clients prefork workers cut when a stop's grace period ran out.
    pub cut: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`.
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The value of `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

static SHARED: OnceLock<&'static Counters> = OnceLock::new();
/// Where the counters are kept if no page could be mapped: this process
/// still counts its own.
static PRIVATE: Counters = Counters {
    dropped_log_lines: AtomicU64::new(0),
    accepted: AtomicU64::new(0),
    sigpipe: AtomicU64::new(0),
    cut: AtomicU64::new(0),
};

/// Maps the shared page. Called once, before the first fork.
pub fn map() {
    let (Some(size), None) = (NonZeroUsize::new(std::mem::size_of::<Counters>()), SHARED.get()) else {
        return;
    };
    let flags = MapFlags::MAP_SHARED | MapFlags::MAP_ANONYMOUS;
    let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    // SAFETY: a new anonymous mapping at an address of the kernel's choosing
    // touches nothing that exists; it comes zero-filled and page-aligned,
    // and is never unmapped, so the reference may live for ever. Zeros are
    // valid atomics, and atomics are lock-free here, so the processes that
    // share the page (the children, after fork) may use them at once.
    let page =
        unsafe { mman::mmap_anonymous(None, size, prot, flags).map(|page| page.cast::<Counters>().as_ref()) };
    if let Ok(counters) = page {
        let _ = SHARED.set(counters);
    }
}

/// The counters: shared with the children if [`map`] was called.
pub fn counters() -> &'static Counters {
    SHARED.get().copied().unwrap_or(&PRIVATE)
}
