//! Waiting for children one at a time, by pid, after a look that takes
//! nothing: so that a child whose exec failed, which the C library's
//! posix_spawn reaps itself, is never taken from it (its pid, freed, could
//! be given to the next child, which the C library would then reap).

use std::io;
use std::mem::MaybeUninit;

use crate::cvt;

/// How a child ended, as `waitpid` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signaled(i32),
}

/// The pid of a child that has exited and is not reaped yet, left as it
/// is (`waitid` with `WNOWAIT`); `None` if there is none, or no child at
/// all. Which child comes first, when several have exited, is the
/// system's choice.
pub fn next_exited() -> io::Result<Option<libc::pid_t>> {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `info` is writable storage for one siginfo_t, zeroed so
    // that si_pid reads 0 when no child is ready (POSIX).
    let ret = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            info.as_mut_ptr(),
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    match cvt(ret) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Ok(None),
        Err(e) => return Err(e),
    }
    // SAFETY: zeroed, then filled by waitid; si_pid is meaningful for a
    // child's status (SIGCHLD), and 0 when nothing was filled in.
    let pid = unsafe { info.assume_init_ref().si_pid() };
    Ok((pid > 0).then_some(pid))
}

/// Reaps `pid` if it has ended; `None` if it has not.
pub fn reap(pid: libc::pid_t) -> io::Result<Option<Ending>> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is writable storage for one int.
        match cvt(unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) }) {
            Ok(0) => return Ok(None),
            Ok(_) if libc::WIFEXITED(status) => {
                return Ok(Some(Ending::Exited(libc::WEXITSTATUS(status))))
            }
            Ok(_) if libc::WIFSIGNALED(status) => {
                return Ok(Some(Ending::Signaled(libc::WTERMSIG(status))))
            }
            // Stopped or continued: not an ending (there is no WUNTRACED
            // here, but some systems report them all the same).
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
