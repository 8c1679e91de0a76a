//! The memory bound of an evaluation: how many bytes one JSONata evaluation may hold at once.
//!
//! jsonata-core bounds time and sequence lengths, not memory: a string doubled by `&` a few
//! dozen times reaches hundreds of MiB. [`Metered`] wraps the process's allocator and, on a
//! thread where a [`Meter`] is open, counts the bytes allocated less those freed; once they
//! pass the meter's limit it cancels the evaluation (jsonata-core looks at its cancel token
//! at every node it evaluates). Counting is per thread, and an evaluation runs on one.
//!
//! A binary opts in by installing it: `#[global_allocator] static A: Metered<System> =
//! Metered(System);` (the server does). Without it evaluations have no memory bound.
//! A single built-in call finishes before the cancel is seen, so built-ins that can make a
//! large value from small arguments (`$pad`) check their size themselves.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

use jsonata_core::evaluator::CancelToken;

thread_local! {
    /// Bytes allocated less bytes freed since the meter opened.
    static USED: Cell<isize> = const { Cell::new(0) };
    /// The open meter's limit; 0 when none is open.
    static LIMIT: Cell<isize> = const { Cell::new(0) };
    /// The open meter's cancel token (owned by the [`Meter`], which outlives it here).
    static CANCEL: Cell<*const CancelToken> = const { Cell::new(std::ptr::null()) };
}

/// An allocator that counts, for open [`Meter`]s, what their thread holds.
pub struct Metered<A>(pub A);

// SAFETY: every call is passed to the wrapped allocator unchanged; counting only reads and
// writes this thread's cells and never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Metered<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout);
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Adds `bytes` to this thread's count while a meter is open, and cancels past its limit.
fn count(bytes: isize) {
    let _ = LIMIT.try_with(|limit| {
        let limit = limit.get();
        if limit == 0 {
            return;
        }
        let used = USED.with(|u| {
            let n = u.get().saturating_add(bytes);
            u.set(n);
            n
        });
        if used > limit {
            let token = CANCEL.with(Cell::get);
            // SAFETY: set only by `Meter::open` to a token the meter owns, and cleared when
            // it drops, on this same thread.
            if let Some(token) = unsafe { token.as_ref() } {
                token.cancel();
            }
        }
    });
}

/// Counts what the current thread allocates until it is dropped.
pub(crate) struct Meter {
    token: Box<CancelToken>,
    outer: (isize, isize, *const CancelToken),
}

impl Meter {
    /// Opens a meter of `limit` bytes on this thread (a meter opened inside another takes
    /// the inner one's place until it drops).
    pub(crate) fn open(limit: usize) -> Meter {
        let token = Box::new(CancelToken::new());
        let limit = isize::try_from(limit).unwrap_or(isize::MAX).max(1);
        let outer = (
            USED.with(|u| u.replace(0)),
            LIMIT.with(|l| l.replace(limit)),
            CANCEL.with(|c| c.replace(&*token)),
        );
        Meter { token, outer }
    }

    /// The token the evaluation must watch.
    pub(crate) fn token(&self) -> CancelToken {
        (*self.token).clone()
    }

    /// Whether the evaluation went past the limit.
    pub(crate) fn exceeded(&self) -> bool {
        self.token.is_cancelled()
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        let (used, limit, cancel) = self.outer;
        CANCEL.with(|c| c.set(cancel));
        LIMIT.with(|l| l.set(limit));
        USED.with(|u| u.set(used));
    }
}
