//! A handler writes each caught signal's number to a non-blocking pipe.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

use crate::cvt;

/// The write end of the self-pipe, for the handler. -1 until installed.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signo: libc::c_int) {
    let fd = WRITE_FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // Only async-signal-safe calls here. errno is saved and restored so the
    // interrupted code never sees the handler's write fail.
    let saved = Errno::last_raw();
    let byte = signo as u8;
    // SAFETY: write(2) is async-signal-safe; `byte` is a live local. A full
    // pipe (EAGAIN) loses nothing that matters: a byte for the same kind of
    // event is already waiting to be read.
    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    Errno::set_raw(saved);
}

/// The read end of the self-pipe; every caught signal shows up on it as one
/// byte holding its number.
pub struct Signals {
    read: OwnedFd,
}

impl Signals {
    /// Creates the pipe and routes `signals` to it, unblocking any that the
    /// server's parent left blocked.
    pub fn install(signals: &[Signal]) -> io::Result<Signals> {
        let (read, write) = crate::fd::pipe_cloexec_nonblocking()?;
        // The write end lives as long as the process: the handler needs it.
        WRITE_FD.store(write.into_raw_fd(), Ordering::Relaxed);
        for &sig in signals {
            let flags = SaFlags::SA_RESTART | super::flags_for(sig);
            let action = SigAction::new(SigHandler::Handler(on_signal), flags, SigSet::empty());
            // SAFETY: the handler only calls async-signal-safe functions and
            // touches an atomic.
            unsafe { sigaction(sig, &action) }.map_err(io::Error::from)?;
        }
        let set: SigSet = signals.iter().copied().collect();
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None)
            .map_err(io::Error::from)?;
        Ok(Signals { read })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.read)
    }

    /// Reads the pending signals into `buf` and returns them, oldest first.
    pub fn drain<'a>(&self, buf: &'a mut [u8; 64]) -> io::Result<&'a [u8]> {
        // SAFETY: `buf` is a live writable buffer of the stated length.
        let n = unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match cvt(n) {
            Ok(n) => Ok(&buf[..n as usize]),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                Ok(&buf[..0])
            }
            Err(e) => Err(e),
        }
    }
}
