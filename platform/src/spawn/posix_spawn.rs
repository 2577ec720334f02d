//! `posix_spawn(3)`: the C library starts the child without copying the
//! server (vfork, or a clone that shares memory until the exec) and
//! reports a program that cannot be executed as an error return. One
//! [`Program`] per spawner thread: nothing in it is shared.

use std::ffi::{CString, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::ptr;

use super::{c_argv, EnvBlock};

cfg_if::cfg_if! {
    if #[cfg(target_os = "android")] {
        /// Bionic has had posix_spawn since API level 28 (Android 9); the
        /// libc crate has its types and constants but not its functions,
        /// declared here as <spawn.h> declares them.
        mod sys {
            pub use libc::{
                posix_spawn_file_actions_t, posix_spawnattr_t, POSIX_SPAWN_SETSIGDEF,
                POSIX_SPAWN_SETSIGMASK,
            };
            use libc::{c_char, c_int, c_short, pid_t, sigset_t};

            extern "C" {
                pub fn posix_spawn(
                    pid: *mut pid_t,
                    path: *const c_char,
                    actions: *const posix_spawn_file_actions_t,
                    attr: *const posix_spawnattr_t,
                    argv: *const *mut c_char,
                    envp: *const *mut c_char,
                ) -> c_int;
                pub fn posix_spawnp(
                    pid: *mut pid_t,
                    file: *const c_char,
                    actions: *const posix_spawn_file_actions_t,
                    attr: *const posix_spawnattr_t,
                    argv: *const *mut c_char,
                    envp: *const *mut c_char,
                ) -> c_int;
                pub fn posix_spawnattr_init(attr: *mut posix_spawnattr_t) -> c_int;
                pub fn posix_spawnattr_destroy(attr: *mut posix_spawnattr_t) -> c_int;
                pub fn posix_spawnattr_setflags(attr: *mut posix_spawnattr_t, flags: c_short) -> c_int;
                pub fn posix_spawnattr_setsigmask(
                    attr: *mut posix_spawnattr_t,
                    mask: *const sigset_t,
                ) -> c_int;
                pub fn posix_spawnattr_setsigdefault(
                    attr: *mut posix_spawnattr_t,
                    mask: *const sigset_t,
                ) -> c_int;
                pub fn posix_spawn_file_actions_init(actions: *mut posix_spawn_file_actions_t) -> c_int;
                pub fn posix_spawn_file_actions_destroy(
                    actions: *mut posix_spawn_file_actions_t,
                ) -> c_int;
                pub fn posix_spawn_file_actions_adddup2(
                    actions: *mut posix_spawn_file_actions_t,
                    fd: c_int,
                    new_fd: c_int,
                ) -> c_int;
            }
        }
    } else {
        use libc as sys;
    }
}

/// File actions that put one descriptor on fds 0 and 1. The object is
/// C's to fill and read: it is only ever handed to the C library by
/// pointer, never read here.
struct FileActions {
    raw: MaybeUninit<sys::posix_spawn_file_actions_t>,
    fd: RawFd,
}

impl FileActions {
    fn new(fd: RawFd) -> io::Result<Box<FileActions>> {
        // Boxed first, so that the object never moves once initialised.
        let mut fa = Box::new(FileActions {
            raw: MaybeUninit::uninit(),
            fd,
        });
        // SAFETY: `fa.raw` is writable storage for a file actions object.
        check(unsafe { sys::posix_spawn_file_actions_init(fa.raw.as_mut_ptr()) })?;
        // The Drop impl below destroys it from here on, on every path.
        for target in [0, 1] {
            // SAFETY: `fa.raw` was initialised just above.
            check(unsafe {
                sys::posix_spawn_file_actions_adddup2(fa.raw.as_mut_ptr(), fd, target)
            })?;
        }
        keep_stderr(fa.raw.as_mut_ptr())?;
        Ok(fa)
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` (a box is only returned once it
        // is), destroyed exactly once here.
        unsafe { sys::posix_spawn_file_actions_destroy(self.raw.as_mut_ptr()) };
    }
}

cfg_if::cfg_if! {
    if #[cfg(target_vendor = "apple")] {
        // No accept4 on Apple systems: a connection is close-on-exec only
        // a moment after its accept, and a spawn made on another thread in
        // that moment would hand it to the wrong child. So each child gets
        // only the descriptors its file actions name
        // (POSIX_SPAWN_CLOEXEC_DEFAULT), and fd 2 is named with Apple's
        // addinherit_np (a dup2 of 2 onto itself would not do).
        const EXTRA_FLAGS: libc::c_int = libc::POSIX_SPAWN_CLOEXEC_DEFAULT;

        extern "C" {
            // <spawn.h> on macOS 10.7 and later; the libc crate lacks it.
            fn posix_spawn_file_actions_addinherit_np(
                actions: *mut sys::posix_spawn_file_actions_t,
                fd: libc::c_int,
            ) -> libc::c_int;
        }

        fn keep_stderr(actions: *mut sys::posix_spawn_file_actions_t) -> io::Result<()> {
            // SAFETY: `actions` points to an initialised file actions object.
            check(unsafe { posix_spawn_file_actions_addinherit_np(actions, 2) })
        }
    } else {
        // Everything but fds 0 to 2 is close-on-exec from its creation.
        const EXTRA_FLAGS: libc::c_int = 0;

        fn keep_stderr(_: *mut sys::posix_spawn_file_actions_t) -> io::Result<()> {
            Ok(())
        }
    }
}

/// Spawn attributes, C's to fill and read, as [`FileActions`].
struct Attr(MaybeUninit<sys::posix_spawnattr_t>);

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: an `Attr` is made only once initialised (`Program::new`);
        // destroyed exactly once here.
        unsafe { sys::posix_spawnattr_destroy(self.0.as_mut_ptr()) };
    }
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(ret))
    }
}

/// The program to run for each connection, prepared once per thread.
pub struct Program {
    argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// The `envp` of the current spawn, rebuilt from each [`EnvBlock`].
    envp: Vec<*const libc::c_char>,
    search_path: bool,
    attr: Box<Attr>,
    /// Connections often get the same descriptor number again, so the
    /// file actions are kept for the last one.
    actions: Option<Box<FileActions>>,
}

impl Program {
    pub fn new(argv: &[OsString]) -> io::Result<Program> {
        let argv = c_argv(argv)?;
        let mut argv_ptrs: Vec<_> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(ptr::null());
        let search_path = !argv[0].as_bytes().contains(&b'/');

        let mut attr = MaybeUninit::uninit();
        // SAFETY: `attr` is writable storage for an attributes object.
        check(unsafe { sys::posix_spawnattr_init(attr.as_mut_ptr()) })?;
        // Boxed so that it never moves again; its Drop destroys it.
        let mut attr = Box::new(Attr(attr));
        let a = attr.0.as_mut_ptr();
        let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
        let mut default = MaybeUninit::<libc::sigset_t>::uninit();
        let flags = sys::POSIX_SPAWN_SETSIGMASK as libc::c_int
            | sys::POSIX_SPAWN_SETSIGDEF as libc::c_int
            | EXTRA_FLAGS;
        // SAFETY: the sets are initialised by sigemptyset before they are
        // read; `a` points to the initialised attributes object.
        unsafe {
            libc::sigemptyset(empty.as_mut_ptr());
            libc::sigemptyset(default.as_mut_ptr());
            libc::sigaddset(default.as_mut_ptr(), libc::SIGPIPE);
            check(sys::posix_spawnattr_setsigmask(a, empty.as_ptr()))?;
            check(sys::posix_spawnattr_setsigdefault(a, default.as_ptr()))?;
            check(sys::posix_spawnattr_setflags(a, flags as _))?;
        }
        Ok(Program {
            argv,
            argv_ptrs,
            envp: Vec::new(),
            search_path,
            attr,
            actions: None,
        })
    }

    /// Starts the program on `conn` with `env`; returns its pid once it
    /// has exec'd.
    pub fn spawn(&mut self, conn: BorrowedFd<'_>, env: &EnvBlock) -> io::Result<libc::pid_t> {
        let fd = conn.as_raw_fd();
        let actions = match &mut self.actions {
            Some(a) if a.fd == fd => a,
            slot => slot.insert(FileActions::new(fd)?),
        };
        self.envp.clear();
        let start = env.strings.as_ptr();
        self.envp
            .extend(env.starts.iter().map(|&at| start.wrapping_add(at).cast()));
        self.envp.push(ptr::null());
        let mut pid: libc::pid_t = 0;
        let spawn = if self.search_path {
            sys::posix_spawnp
        } else {
            sys::posix_spawn
        };
        // SAFETY: `pid` is writable; `actions` and `attr` are initialised;
        // `argv_ptrs` and `envp` are null-terminated arrays of pointers to
        // NUL-terminated strings (`EnvBlock` holds `NAME=value\0` at each
        // start) that `self` and `env` keep alive for the call. The
        // descriptor in the file actions is `conn`, live here.
        check(unsafe {
            spawn(
                &mut pid,
                self.argv[0].as_ptr(),
                actions.raw.as_ptr(),
                self.attr.0.as_ptr(),
                self.argv_ptrs.as_ptr() as *const *mut libc::c_char,
                self.envp.as_ptr() as *const *mut libc::c_char,
            )
        })?;
        Ok(pid)
    }
}
