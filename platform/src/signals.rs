//! Caught signals as a descriptor the event loop polls with everything else:
//! [`Signals::drain`] hands over the numbers of the signals that arrived.
//!
//! On Linux and Android the signals are blocked and read from a `signalfd`:
//! no handler runs, so a child exit neither interrupts the server nor wakes
//! it from a wait, and nothing has to be masked around a spawn. Elsewhere
//! (and with the `self-pipe-signals` feature) a handler writes each
//! signal's number to a self-pipe.
//!
//! Either way, a trapped signal that the server's parent ignored or blocked
//! is caught all the same, and children never inherit it ignored.

use std::io;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

cfg_if::cfg_if! {
    if #[cfg(all(
        any(target_os = "linux", target_os = "android"),
        not(feature = "self-pipe-signals"),
    ))] {
        mod signalfd;
        pub use signalfd::Signals;
    } else {
        mod self_pipe;
        pub use self_pipe::Signals;
    }
}

/// SIGCHLD is wanted only for children that exit, not for those that stop.
fn flags_for(sig: Signal) -> SaFlags {
    if sig == Signal::SIGCHLD {
        SaFlags::SA_NOCLDSTOP
    } else {
        SaFlags::empty()
    }
}

/// Blocks every signal in the calling thread (a spawner thread), so that
/// the signals the server traps are caught by the event loop alone: with a
/// signalfd, a thread with SIGCHLD unblocked would take it and drop it.
pub fn block_all_in_this_thread() -> io::Result<()> {
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&SigSet::all()),
        None,
    )
    .map_err(io::Error::from)
}

/// Ignores SIGPIPE in the server: a client that goes away must never kill
/// it. Children get the default back when they are spawned.
pub fn ignore_sigpipe() -> io::Result<()> {
    let action = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: ignoring a signal installs no code.
    unsafe { sigaction(Signal::SIGPIPE, &action) }
        .map(drop)
        .map_err(io::Error::from)
}
