//! The caught signals stay blocked and are read from a `signalfd`.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sys::signal::{sigaction, SigAction, SigHandler, SigSet, SigmaskHow, Signal};

use crate::cvt;

/// Signals read at once; more wait for the next read.
const BATCH: usize = 16;

pub struct Signals {
    fd: OwnedFd,
}

impl Signals {
    /// Blocks `signals`, puts them at their default disposition (so that
    /// one the server's parent ignored is not ignored by its children, who
    /// inherit an ignored signal across `execve`) and opens a `signalfd`
    /// for them. From then on a blocked signal is queued even where its
    /// default is to ignore it (SIGCHLD). One already pending from before
    /// is discarded by the default disposition (POSIX), which is why the
    /// server reaps once after this.
    pub fn install(signals: &[Signal]) -> io::Result<Signals> {
        let set: SigSet = signals.iter().copied().collect();
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .map_err(io::Error::from)?;
        for &sig in signals {
            let action = SigAction::new(SigHandler::SigDfl, super::flags_for(sig), SigSet::empty());
            // SAFETY: the default disposition installs no code.
            unsafe { sigaction(sig, &action) }.map_err(io::Error::from)?;
        }
        // SAFETY: `set` is a valid signal set; the new descriptor is owned
        // by the `OwnedFd` at once.
        let fd = cvt(unsafe {
            libc::signalfd(-1, set.as_ref(), libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
        })?;
        // SAFETY: a descriptor just opened and owned by no one else.
        Ok(Signals {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads the pending signals into `buf` and returns their numbers,
    /// lowest number first (the kernel's order, not that of arrival).
    pub fn drain<'a>(&self, buf: &'a mut [u8; 64]) -> io::Result<&'a [u8]> {
        const RECORD: usize = mem::size_of::<libc::signalfd_siginfo>();
        let mut raw = [0u8; RECORD * BATCH];
        // SAFETY: `raw` is a live writable buffer of the stated size.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), raw.as_mut_ptr().cast(), raw.len()) };
        let n = match cvt(n) {
            // The kernel returns whole records only.
            Ok(n) => n as usize / RECORD,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                0
            }
            Err(e) => return Err(e),
        };
        let mut len = 0;
        for (slot, record) in buf.iter_mut().zip(raw[..n * RECORD].chunks_exact(RECORD)) {
            // `ssi_signo`, a u32 in native byte order, opens each record
            // (<sys/signalfd.h>). Signal numbers are below 65 and fit.
            let mut signo = [0u8; 4];
            signo.copy_from_slice(&record[..4]);
            *slot = u32::from_ne_bytes(signo) as u8;
            len += 1;
        }
        Ok(&buf[..len])
    }
}
