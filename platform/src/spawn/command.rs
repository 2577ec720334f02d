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
        // std empties the signal mask and resets SIGPIPE in the child.
        let child = cmd.spawn()?;
        Ok(child.id() as libc::pid_t)
    }
}
