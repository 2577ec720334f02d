//! Signals as bytes on a self-pipe: the handler writes the signal number to
//! a non-blocking pipe and the event loop reads it with everything else.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

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
pub struct SignalPipe {
    read: OwnedFd,
}

impl SignalPipe {
    /// Creates the pipe and routes `signals` to it. SIGCHLD is caught only
    /// for children that exit, not for those that stop.
    pub fn install(signals: &[Signal]) -> io::Result<SignalPipe> {
        let (read, write) = crate::fd::pipe_cloexec_nonblocking()?;
        // The write end lives as long as the process: the handler needs it.
        WRITE_FD.store(write.into_raw_fd(), Ordering::Relaxed);
        for &sig in signals {
            let mut flags = SaFlags::SA_RESTART;
            if sig == Signal::SIGCHLD {
                flags |= SaFlags::SA_NOCLDSTOP;
            }
            let action = SigAction::new(SigHandler::Handler(on_signal), flags, SigSet::empty());
            // SAFETY: the handler only calls async-signal-safe functions and
            // touches an atomic.
            unsafe { sigaction(sig, &action) }.map_err(io::Error::from)?;
        }
        Ok(SignalPipe { read })
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

/// Ignores SIGPIPE in the server: a client that goes away must never kill
/// it. Children get the default back when they are spawned.
pub fn ignore_sigpipe() -> io::Result<()> {
    let action = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: ignoring a signal installs no code.
    unsafe { sigaction(Signal::SIGPIPE, &action) }
        .map(drop)
        .map_err(io::Error::from)
}
