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

cfg_if::cfg_if! {
    if #[cfg(any(target_os = "linux", target_os = "android"))] {
        /// Linux keeps a list of children per thread, and `__WNOTHREAD`
        /// waits for the calling thread's only: the event loop starts no
        /// child, so those are the children the process had before its
        /// exec.
        fn own_thread_exited() -> io::Result<Option<libc::pid_t>> {
            peek(libc::__WNOTHREAD)
        }

        /// Whether [`is_stranger`] can ever say yes here.
        pub const STRANGERS_TOLD_APART: bool = true;
    } else {
        /// Other systems do not tell children apart by thread: a stranger
        /// that exits while a spawn is stuck before its exec waits for
        /// that spawn to return, and so does every child behind it.
        fn own_thread_exited() -> io::Result<Option<libc::pid_t>> {
            Ok(None)
        }

        /// Whether [`is_stranger`] can ever say yes here.
        pub const STRANGERS_TOLD_APART: bool = false;
    }
}

/// The pid of a child that has exited and is not reaped yet, left as it
/// is (`waitid` with `WNOWAIT`); `None` if there is none, or no child at
/// all. Which child comes first, when several have exited, is the
/// system's choice.
pub fn next_exited() -> io::Result<Option<libc::pid_t>> {
    peek(0)
}

/// Whether the exited child `pid` is known to be the calling thread's own
/// (Linux: that thread's exited child, as `__WNOTHREAD` finds it, is this
/// one). Asked only of a child the caller cannot place otherwise, so that
/// the common path costs no extra system call. A thread's own children are
/// looked at first by a look over every thread's (Linux begins with the
/// caller's), so a stranger that hides the others is always this one.
pub fn is_stranger(pid: libc::pid_t) -> io::Result<bool> {
    Ok(own_thread_exited()? == Some(pid))
}

/// `waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT | flags)`: the pid of an
/// exited child, not reaped.
fn peek(flags: libc::c_int) -> io::Result<Option<libc::pid_t>> {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `info` is writable storage for one siginfo_t, zeroed so
    // that si_pid reads 0 when no child is ready (POSIX).
    let ret = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            info.as_mut_ptr(),
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | flags,
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
