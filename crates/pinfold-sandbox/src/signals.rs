//! SIGINT, SIGTERM and SIGHUP sent to `pinfold run` are meant for the program it runs:
//! while a container runs, they are caught here and handed to the engine, which
//! forwards them, instead of killing pinfold and leaving the container behind.
//!
//! The handler only sets a bit; the engine's wait loop takes the bits and acts. The
//! C `signal` function is declared here because the standard library has no signal
//! API and one function does not justify another dependency.

use std::os::raw::c_int;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGTERM: i32 = 15;

static PENDING: AtomicU32 = AtomicU32::new(0);
/// Live [`Forwarding`] values: the default actions come back when the last goes.
static USERS: AtomicUsize = AtomicUsize::new(0);

extern "C" {
    /// `sighandler_t signal(int, sighandler_t)`; `None` is `SIG_DFL`.
    fn signal(signum: c_int, handler: Option<extern "C" fn(c_int)>) -> usize;
}

extern "C" fn on_signal(sig: c_int) {
    if (0..32).contains(&sig) {
        PENDING.fetch_or(1 << sig, Ordering::SeqCst);
    }
}

/// Catches the forwarded signals while it lives; the default action is restored when
/// the last one is dropped. Signals that arrive before the program starts stay
/// pending, and are forwarded as soon as it runs.
pub struct Forwarding(());

impl Forwarding {
    pub fn install() -> Self {
        if USERS.fetch_add(1, Ordering::SeqCst) > 0 {
            return Forwarding(());
        }
        PENDING.store(0, Ordering::SeqCst);
        for sig in [SIGHUP, SIGINT, SIGTERM] {
            // SAFETY: `on_signal` only performs an atomic operation, which is
            // async-signal-safe, and `signal` is called with valid signal numbers.
            unsafe {
                signal(sig, Some(on_signal));
            }
        }
        Forwarding(())
    }

    /// Signals received since the last call, in a fixed order.
    pub fn take(&self) -> Vec<i32> {
        let bits = PENDING.swap(0, Ordering::SeqCst);
        [SIGHUP, SIGINT, SIGTERM].into_iter().filter(|s| bits & (1 << s) != 0).collect()
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        if USERS.fetch_sub(1, Ordering::SeqCst) != 1 {
            return;
        }
        for sig in [SIGHUP, SIGINT, SIGTERM] {
            // SAFETY: restores the default disposition of valid signal numbers.
            unsafe {
                signal(sig, None);
            }
        }
    }
}
