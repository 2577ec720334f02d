//! `posix_spawn(3)`: the C library starts the child without copying the
//! server (vfork or a clone that shares memory), and reports a program that
//! cannot be executed as an error return.

use std::ffi::{CString, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::ptr;

use super::{c_argv, Environ};

/// No standby child here (see spawn.rs).
pub const STANDBY: bool = false;

pub const MECHANISM: &str = "posix_spawn";

/// File actions that put one descriptor on fds 0 and 1.
struct FileActions {
    raw: libc::posix_spawn_file_actions_t,
    fd: RawFd,
}

impl FileActions {
    fn new(fd: RawFd) -> io::Result<Box<FileActions>> {
        let mut fa = Box::new(FileActions {
            // SAFETY: the value is initialised by posix_spawn_file_actions_init
            // right below before any other use.
            raw: unsafe { MaybeUninit::zeroed().assume_init() },
            fd,
        });
        // SAFETY: `fa.raw` is writable storage for a file actions object; it
        // is boxed so its address never changes after init.
        unsafe {
            check(libc::posix_spawn_file_actions_init(&mut fa.raw))?;
            // The Drop impl below destroys it from here on, on every path.
            check(libc::posix_spawn_file_actions_adddup2(&mut fa.raw, fd, 0))?;
            check(libc::posix_spawn_file_actions_adddup2(&mut fa.raw, fd, 1))?;
        }
        Ok(fa)
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed exactly once here.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.raw) };
    }
}

struct Attr(libc::posix_spawnattr_t);

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: initialised in `Program::new`, destroyed exactly once here.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// The program to run for each connection, prepared once.
pub struct Program {
    argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    search_path: bool,
    attr: Box<Attr>,
    /// The accepted connection almost always gets the same descriptor
    /// number, so the file actions are built once and kept for it.
    actions: Option<Box<FileActions>>,
}

impl Program {
    pub fn new(argv: &[OsString]) -> io::Result<Program> {
        let argv = c_argv(argv)?;
        let mut argv_ptrs: Vec<_> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(ptr::null());
        let search_path = !argv[0].as_bytes().contains(&b'/');

        // SAFETY: zeroed storage is only used after posix_spawnattr_init.
        let mut attr = Box::new(Attr(unsafe { MaybeUninit::zeroed().assume_init() }));
        // SAFETY: every call gets the boxed attribute object (stable address)
        // and live, initialised signal sets.
        unsafe {
            check(libc::posix_spawnattr_init(&mut attr.0))?;
            let mut empty = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
            libc::sigemptyset(&mut empty);
            let mut default = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
            libc::sigemptyset(&mut default);
            libc::sigaddset(&mut default, libc::SIGPIPE);
            check(libc::posix_spawnattr_setsigmask(&mut attr.0, &empty))?;
            check(libc::posix_spawnattr_setsigdefault(&mut attr.0, &default))?;
            let flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
            check(libc::posix_spawnattr_setflags(&mut attr.0, flags as _))?;
        }
        Ok(Program {
            argv,
            argv_ptrs,
            search_path,
            attr,
            actions: None,
        })
    }

    /// Starts the program on `conn` with `env`; returns its pid.
    pub fn spawn(&mut self, conn: BorrowedFd<'_>, env: &mut Environ) -> io::Result<libc::pid_t> {
        let fd = conn.as_raw_fd();
        if self.actions.as_ref().map(|a| a.fd) != Some(fd) {
            self.actions = None;
            self.actions = Some(FileActions::new(fd)?);
        }
        let actions = match &self.actions {
            Some(a) => &a.raw,
            None => unreachable!("file actions were set just above"),
        };
        let envp = env.envp();
        let mut pid: libc::pid_t = 0;
        let spawn = if self.search_path {
            libc::posix_spawnp
        } else {
            libc::posix_spawn
        };
        // SAFETY: `pid` is writable; `actions` and `attr` are initialised;
        // `argv_ptrs` and `envp` are null-terminated arrays of pointers to
        // NUL-terminated strings that `self` and `env` keep alive for the
        // call. The descriptor in the file actions is `conn`, live here.
        check(unsafe {
            spawn(
                &mut pid,
                self.argv[0].as_ptr(),
                actions,
                &self.attr.0,
                self.argv_ptrs.as_ptr() as *const *mut libc::c_char,
                envp as *const *mut libc::c_char,
            )
        })?;
        Ok(pid)
    }

    /// Why the child `pid` could not be executed, if that is how it ended:
    /// never here, `spawn` itself reports it.
    pub fn take_failure(&mut self, _pid: libc::pid_t) -> Option<io::Error> {
        None
    }
}
