//! Taking a `std::sync::Mutex` that a panic poisoned. The engine's locks guard maps and
//! queues whose every critical section leaves them consistent, so a poisoned one is taken as
//! it is: never skipped (which would drop a signal or a task) and never re-panicked (which
//! would take down every caller after the first fault).

use std::sync::{Mutex, MutexGuard, PoisonError};

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
