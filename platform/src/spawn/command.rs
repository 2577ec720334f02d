//! std's `Command`: portable, and itself built on posix_spawn or fork and
//! exec. It rebuilds the environment for every child, which costs time on
//! the per-connection path; the posix_spawn backend is preferred where the
//! C library has it.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::{c_argv, Environ};

/// No standby child here (see spawn.rs).
pub const STANDBY: bool = false;

pub const MECHANISM: &str = "std::process::Command";

pub struct Program {
    argv: Vec<OsString>,
}

impl Program {
    pub fn new(argv: &[OsString]) -> io::Result<Program> {
        c_argv(argv)?; // the same validation as the other backend
        Ok(Program {
            argv: argv.to_vec(),
        })
    }

    pub fn spawn(&mut self, conn: BorrowedFd<'_>, env: &mut Environ) -> io::Result<libc::pid_t> {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.arg0(&self.argv[0]).args(&self.argv[1..]).env_clear();
        for kv in env.entries() {
            let eq = kv.iter().position(|&b| b == b'=').unwrap_or(kv.len());
            let value = kv.get(eq + 1..).unwrap_or_default();
            cmd.env(OsStr::from_bytes(&kv[..eq]), OsStr::from_bytes(value));
        }
        cmd.stdin(Stdio::from(conn.try_clone_to_owned()?))
            .stdout(Stdio::from(conn.try_clone_to_owned()?));
        // std puts SIGPIPE back to its default but leaves the signal mask
        // as the spawning thread has it (platform/tests/spawn.rs caught
        // that), so both are done here. This makes std fork and exec
        // instead of using posix_spawn.
        // SAFETY: the closure runs in the child between fork and exec and
        // only calls async-signal-safe functions on a local signal set.
        unsafe {
            cmd.pre_exec(|| {
                let mut empty = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
                libc::sigemptyset(empty.as_mut_ptr());
                libc::pthread_sigmask(libc::SIG_SETMASK, empty.as_ptr(), std::ptr::null_mut());
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        Ok(child.id() as libc::pid_t)
    }

    /// Why the child `pid` could not be executed, if that is how it ended:
    /// never here, `spawn` itself reports it.
    pub fn take_failure(&mut self, _pid: libc::pid_t) -> Option<io::Error> {
        None
    }
}
