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

/// File actions that put one descriptor on fds 0 and 1 and close the
/// server's own descriptors. The object is C's to fill and read: it is
/// only ever handed to the C library by pointer, never read here, and it
/// never moves once initialised (it lives in its own box).
struct FileActions {
    raw: Box<MaybeUninit<sys::posix_spawn_file_actions_t>>,
    fd: RawFd,
}

impl FileActions {
    fn new(fd: RawFd, own_from: RawFd) -> io::Result<FileActions> {
        let mut raw = Box::new(MaybeUninit::uninit());
        // SAFETY: `raw` is writable storage for a file actions object. If
        // this fails, `raw` is dropped as plain memory, never destroyed.
        check(unsafe { sys::posix_spawn_file_actions_init(raw.as_mut_ptr()) })?;
        // Initialised: from here on the Drop impl below destroys it, on
        // every path.
        let mut fa = FileActions { raw, fd };
        for target in [0, 1] {
            // SAFETY: `fa.raw` is initialised.
            check(unsafe {
                sys::posix_spawn_file_actions_adddup2(fa.raw.as_mut_ptr(), fd, target)
            })?;
        }
        keep_stderr(fa.raw.as_mut_ptr())?;
        close_own(fa.raw.as_mut_ptr(), own_from)?;
        Ok(fa)
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: a `FileActions` exists only once its object is
        // initialised (`new`); destroyed exactly once here.
        unsafe { sys::posix_spawn_file_actions_destroy(self.raw.as_mut_ptr()) };
    }
}

cfg_if::cfg_if! {
    if #[cfg(any(
        all(target_os = "linux", target_env = "gnu"),
        target_os = "freebsd",
        target_os = "illumos",
        target_os = "solaris",
    ))] {
        /// Until its exec, the C library's child has a copy of the whole
        /// descriptor table: the listening socket, the signal and wake-up
        /// descriptors, and the connections other spawners have in flight.
        /// Close-on-exec closes them only at the exec, which a long PATH
        /// search or a hung file system delays; so the child closes them
        /// first, with one action (glibc 2.34, FreeBSD 13.1, illumos and
        /// Solaris 11.4: close_range(2) or closefrom(3) in the child). The
        /// server's own descriptors are all at `own_from` and above
        /// (fd::reserve_inherited); those below, which the server's parent
        /// passed on, stay, as with the C server.
        pub const CLOSES_BEFORE_EXEC: bool = true;

        #[cfg(target_os = "freebsd")]
        extern "C" {
            // <spawn.h> on FreeBSD 13.1 and later; the libc crate lacks it.
            fn posix_spawn_file_actions_addclosefrom_np(
                actions: *mut sys::posix_spawn_file_actions_t,
                from: libc::c_int,
            ) -> libc::c_int;
        }
        #[cfg(not(target_os = "freebsd"))]
        use sys::posix_spawn_file_actions_addclosefrom_np;

        fn close_own(actions: *mut sys::posix_spawn_file_actions_t, own_from: RawFd) -> io::Result<()> {
            // SAFETY: `actions` points to an initialised file actions object.
            check(unsafe { posix_spawn_file_actions_addclosefrom_np(actions, own_from) })
        }
    } else if #[cfg(target_vendor = "apple")] {
        /// Apple's posix_spawn is one system call, and with
        /// POSIX_SPAWN_CLOEXEC_DEFAULT (below) the child never holds a
        /// descriptor its file actions do not name.
        pub const CLOSES_BEFORE_EXEC: bool = true;

        fn close_own(_: *mut sys::posix_spawn_file_actions_t, _: RawFd) -> io::Result<()> {
            Ok(())
        }
    } else {
        /// musl (to 1.2.5), Android's bionic, NetBSD, OpenBSD and
        /// DragonFly have no close-from action: until its exec, the
        /// child holds a copy of the server's descriptors, closed by
        /// close-on-exec at the exec.
        pub const CLOSES_BEFORE_EXEC: bool = false;

        fn close_own(_: *mut sys::posix_spawn_file_actions_t, _: RawFd) -> io::Result<()> {
            Ok(())
        }
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
        // Everything the server opens is close-on-exec from its creation.
        const EXTRA_FLAGS: libc::c_int = 0;

        fn keep_stderr(_: *mut sys::posix_spawn_file_actions_t) -> io::Result<()> {
            Ok(())
        }
    }
}

/// Spawn attributes, C's to fill and read, as [`FileActions`].
struct Attr(Box<MaybeUninit<sys::posix_spawnattr_t>>);

impl Attr {
    fn new() -> io::Result<Attr> {
        let mut raw = Box::new(MaybeUninit::uninit());
        // SAFETY: `raw` is writable storage for an attributes object. If
        // this fails, `raw` is dropped as plain memory, never destroyed.
        check(unsafe { sys::posix_spawnattr_init(raw.as_mut_ptr()) })?;
        Ok(Attr(raw))
    }
}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: an `Attr` exists only once its object is initialised
        // (`Attr::new`); destroyed exactly once here.
        unsafe { sys::posix_spawnattr_destroy(self.0.as_mut_ptr()) };
    }
}

cfg_if::cfg_if! {
    if #[cfg(target_os = "linux")] {
        /// glibc and musl reserve the signals from 32 up to SIGRTMIN for
        /// themselves, and their posix_spawn sets those to SIG_IGN in the
        /// child unless POSIX_SPAWN_SETSIGDEF names them; an ignored signal
        /// stays ignored across the exec, so the program would start with
        /// signals ignored that nobody chose. Their sigaddset refuses these
        /// numbers, so the bits are set directly: both keep a sigset_t as
        /// an array of unsigned longs, signal N at bit N - 1.
        fn add_reserved_signals(set: *mut libc::sigset_t) {
            const BITS: usize = 8 * std::mem::size_of::<libc::c_ulong>();
            let words = set.cast::<libc::c_ulong>();
            for sig in 32..libc::SIGRTMIN() as usize {
                // SAFETY: `set` points to an initialised sigset_t of at
                // least 64 bits (glibc 1024, musl 1024 on Linux), aligned
                // for unsigned long, and sig - 1 < 64.
                unsafe { *words.add((sig - 1) / BITS) |= 1 << ((sig - 1) % BITS) };
            }
        }
    } else {
        /// Other C libraries leave no signal of their own ignored in the
        /// child.
        fn add_reserved_signals(_: *mut libc::sigset_t) {}
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
    attr: Attr,
    /// The server's own descriptors start here (fd::reserve_inherited).
    own_from: RawFd,
    /// Connections often get the same descriptor number again, so the
    /// file actions are kept for the last one.
    actions: Option<FileActions>,
}

impl Program {
    pub fn new(argv: &[OsString], own_from: RawFd) -> io::Result<Program> {
        let argv = c_argv(argv)?;
        let mut argv_ptrs: Vec<_> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(ptr::null());
        let search_path = !argv[0].as_bytes().contains(&b'/');

        let mut attr = Attr::new()?;
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
            add_reserved_signals(default.as_mut_ptr());
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
            own_from,
            actions: None,
        })
    }

    /// Starts the program on `conn` with `env`; returns its pid once it
    /// has exec'd.
    pub fn spawn(&mut self, conn: BorrowedFd<'_>, env: &EnvBlock) -> io::Result<libc::pid_t> {
        let fd = conn.as_raw_fd();
        let actions = match &mut self.actions {
            Some(a) if a.fd == fd => a,
            slot => slot.insert(FileActions::new(fd, self.own_from)?),
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
