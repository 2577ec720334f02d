//! Linux: `clone(CLONE_VM)` without `CLONE_VFORK`. The child borrows the
//! server's memory only until its `execve`, so no page table is copied (as
//! `fork` would), and the server does not sleep until the child has exec'd
//! (as `vfork` and `posix_spawn` do): it goes back to accepting at once.
//! On two CPUs that doubles the connections served per second.
//!
//! The price is care. While a child runs on borrowed memory it must only
//! read what the server leaves alone: each child gets a launch slot (its own
//! stack, its own copy of the environment) that the server reuses only after
//! the kernel has cleared the slot's tid word (`CLONE_CHILD_CLEARTID`), which
//! it does when the child's `execve` (or exit) gives the memory back. The
//! child makes raw system calls only, so it never writes the server's
//! `errno`. A program that cannot be executed is seen by `spawn` itself
//! (an `faccessat` check); if it fails in the child anyway (a race), the
//! child records the error and exits 127, and [`Program::take_failure`]
//! reports it when the child is reaped.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};

use super::{c_argv, Environ};

pub const MECHANISM: &str = "clone(CLONE_VM)";

/// Launch slots: children between `clone` and `execve` at once. More only
/// make the server wait for a slot (rarely: the window is short).
const SLOTS: usize = 8;
/// The child's stack. It runs a few raw system calls: a page would do.
const STACK: usize = 8192;
/// The highest signal number plus one.
const NSIG: usize = 65;

/// Raw system calls: no `errno`, which the child shares with the server.
mod raw {
    #[cfg(target_arch = "x86_64")]
    pub unsafe fn syscall4(n: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
        let ret: isize;
        // SAFETY (caller's): the arguments are valid for system call `n`.
        std::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
        ret
    }

    #[cfg(target_arch = "aarch64")]
    pub unsafe fn syscall4(n: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
        let ret: isize;
        // SAFETY (caller's): the arguments are valid for system call `n`.
        std::arch::asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") a as isize => ret,
            in("x1") b, in("x2") c, in("x3") d,
            options(nostack),
        );
        ret
    }
}

/// The kernel's `struct sigaction` on x86_64 and aarch64.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// What a child reads: everything is written by the server before `clone`
/// and left alone until the kernel clears `tid`.
struct Launch {
    /// Non-zero while the child may still use this slot.
    tid: AtomicI32,
    /// The errno of a failed `execve`, set by the child before it exits.
    err: AtomicI32,
    pid: libc::pid_t,
    fd: libc::c_int,
    /// Pointers into `Program` (argv, paths, signals): they outlive children.
    argv: *const *const libc::c_char,
    paths: *const *const libc::c_char,
    npaths: usize,
    reset: *const u8,
    nreset: usize,
    envp: Vec<*const libc::c_char>,
    strings: Vec<u8>,
    stack: Vec<u8>,
}

/// The program to run for each connection, prepared once.
pub struct Program {
    /// The strings `argv_ptrs` points to.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// Where `execve` is tried, in order: the path itself, or `dir/prog`
    /// for each `PATH` entry (what `execvp` would try).
    paths: Vec<CString>,
    path_ptrs: Vec<*const libc::c_char>,
    /// The last path that passed the check, tried first next time.
    hit: usize,
    /// Signals the child puts back to their default: those with a handler,
    /// and SIGPIPE. Found at the first spawn, when handlers are in place.
    reset: Vec<u8>,
    reset_known: bool,
    slots: Box<[Launch]>,
    /// Children whose `execve` failed, not yet reaped.
    failed: Vec<(libc::pid_t, i32)>,
}

impl Program {
    pub fn new(argv: &[OsString]) -> io::Result<Program> {
        let argv = c_argv(argv)?;
        let mut argv_ptrs: Vec<_> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(ptr::null());
        let prog = argv[0].as_bytes();
        let paths = if prog.contains(&b'/') {
            vec![argv[0].clone()]
        } else {
            let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
            path.as_bytes()
                .split(|&b| b == b':')
                .filter_map(|dir| {
                    // An empty entry is the current directory, as in execvp.
                    let mut p = dir.to_vec();
                    if !p.is_empty() {
                        p.push(b'/');
                    }
                    p.extend_from_slice(prog);
                    CString::new(p).ok()
                })
                .collect()
        };
        let path_ptrs = paths.iter().map(|p| p.as_ptr()).collect();
        let slots = (0..SLOTS)
            .map(|_| Launch {
                tid: AtomicI32::new(0),
                err: AtomicI32::new(0),
                pid: 0,
                fd: -1,
                argv: ptr::null(),
                paths: ptr::null(),
                npaths: 0,
                reset: ptr::null(),
                nreset: 0,
                envp: Vec::new(),
                strings: Vec::new(),
                stack: Vec::new(),
            })
            .collect();
        Ok(Program {
            _argv: argv,
            argv_ptrs,
            paths,
            path_ptrs,
            hit: 0,
            reset: Vec::with_capacity(NSIG),
            reset_known: false,
            slots,
            failed: Vec::new(),
        })
    }

    /// Signals that have a handler in the server now, plus SIGPIPE.
    fn find_reset(&mut self) {
        self.reset.clear();
        for sig in 1..NSIG as libc::c_int {
            // SAFETY: a query only; `old` is writable.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: as above; invalid numbers just fail.
            let r = unsafe { libc::sigaction(sig, ptr::null(), &mut old) };
            let caught =
                r == 0 && old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            if caught || sig == libc::SIGPIPE {
                self.reset.push(sig as u8);
            }
        }
        self.reset_known = true;
    }

    /// Whether `execve` can work: the first path that passes, or why not
    /// (EACCES if one exists but is not executable, else ENOENT).
    fn check(&mut self) -> io::Result<()> {
        let ok = |p: &CString| {
            // SAFETY: `p` is a NUL-terminated path.
            unsafe {
                libc::faccessat(libc::AT_FDCWD, p.as_ptr(), libc::X_OK, libc::AT_EACCESS) == 0
            }
        };
        if ok(&self.paths[self.hit]) {
            return Ok(());
        }
        let mut eacces = false;
        for (i, p) in self.paths.iter().enumerate() {
            if ok(p) {
                self.hit = i;
                return Ok(());
            }
            eacces |= io::Error::last_os_error().raw_os_error() == Some(libc::EACCES);
        }
        Err(io::Error::from_raw_os_error(if eacces {
            libc::EACCES
        } else {
            libc::ENOENT
        }))
    }

    /// A slot no child uses; waits for one if all are busy.
    fn free_slot(&mut self) -> usize {
        loop {
            for (i, s) in self.slots.iter_mut().enumerate() {
                if s.tid.load(Ordering::Acquire) == 0 {
                    let err = s.err.swap(0, Ordering::Acquire);
                    if err != 0 {
                        self.failed.push((s.pid, err));
                    }
                    return i;
                }
            }
            let s = &self.slots[0];
            let tid = s.tid.load(Ordering::Acquire);
            if tid != 0 {
                // SAFETY: waits while the word still holds `tid`; the kernel
                // wakes us when it clears it.
                unsafe {
                    libc::syscall(
                        libc::SYS_futex,
                        s.tid.as_ptr(),
                        libc::FUTEX_WAIT,
                        tid,
                        ptr::null::<libc::timespec>(),
                    )
                };
            }
        }
    }

    /// Starts the program on `conn` with `env`; returns its pid.
    pub fn spawn(&mut self, conn: BorrowedFd<'_>, env: &mut Environ) -> io::Result<libc::pid_t> {
        self.check()?;
        if !self.reset_known {
            self.find_reset();
        }
        let i = self.free_slot();
        let slot = &mut self.slots[i];
        if slot.stack.is_empty() {
            slot.stack = vec![0u8; STACK];
        }
        env.render(&mut slot.envp, &mut slot.strings);
        slot.fd = conn.as_raw_fd();
        slot.argv = self.argv_ptrs.as_ptr();
        slot.paths = self.path_ptrs.as_ptr();
        slot.npaths = self.path_ptrs.len();
        slot.reset = self.reset.as_ptr();
        slot.nreset = self.reset.len();
        slot.tid.store(1, Ordering::Release);
        // The stack grows down from its 16-byte aligned top.
        let top = (slot.stack.as_mut_ptr() as usize + STACK) & !15;
        let arg: *mut Launch = slot;

        // The child starts with every signal blocked, so that no server
        // handler ever runs in it; it unblocks them once they are default.
        // SAFETY: plain signal set operations on local storage.
        let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe {
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        }
        // SAFETY: `child` only reads the slot and the Program data it points
        // to, which stay untouched until the kernel clears `tid` (the slot
        // is not handed out again before, and Drop waits for it). It runs on
        // the slot's own stack and makes raw system calls only.
        let pid = unsafe {
            libc::clone(
                child,
                top as *mut libc::c_void,
                libc::CLONE_VM | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD,
                arg.cast(),
                ptr::null_mut::<libc::pid_t>(),
                ptr::null_mut::<libc::c_void>(),
                slot.tid.as_ptr(),
            )
        };
        let e = io::Error::last_os_error();
        // SAFETY: puts the server's mask back.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut()) };
        if pid < 0 {
            slot.tid.store(0, Ordering::Release);
            return Err(e);
        }
        slot.pid = pid;
        Ok(pid)
    }

    /// Why the child `pid` could not be executed, if that is how it ended.
    /// Call it once `pid` is reaped.
    pub fn take_failure(&mut self, pid: libc::pid_t) -> Option<io::Error> {
        if let Some(i) = self.failed.iter().position(|f| f.0 == pid) {
            return Some(io::Error::from_raw_os_error(self.failed.swap_remove(i).1));
        }
        let s = self
            .slots
            .iter()
            .find(|s| s.pid == pid && s.tid.load(Ordering::Acquire) == 0)?;
        match s.err.swap(0, Ordering::Acquire) {
            0 => None,
            e => Some(io::Error::from_raw_os_error(e)),
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // No child may be left reading memory about to be freed.
        for s in self.slots.iter() {
            loop {
                let tid = s.tid.load(Ordering::Acquire);
                if tid == 0 {
                    break;
                }
                // SAFETY: as in `free_slot`.
                unsafe {
                    libc::syscall(
                        libc::SYS_futex,
                        s.tid.as_ptr(),
                        libc::FUTEX_WAIT,
                        tid,
                        ptr::null::<libc::timespec>(),
                    )
                };
            }
        }
    }
}

/// The child, on borrowed memory: signals to default, the connection on
/// fds 0 and 1, an empty mask, then `execve` down the paths like `execvp`.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the slot the server filled in and leaves alone until
    // this child execs or exits; the pointers in it are live for as long.
    unsafe {
        let l = &*(arg as *const Launch);
        let dfl = KernelSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        for i in 0..l.nreset {
            let sig = *l.reset.add(i) as usize;
            raw::syscall4(libc::SYS_rt_sigaction, sig, &dfl as *const _ as usize, 0, 8);
        }
        for target in [0, 1] {
            if l.fd == target {
                // Already in place: only close-on-exec must go.
                raw::syscall4(
                    libc::SYS_fcntl,
                    target as usize,
                    libc::F_SETFD as usize,
                    0,
                    0,
                );
            } else {
                raw::syscall4(libc::SYS_dup3, l.fd as usize, target as usize, 0, 0);
            }
        }
        let empty = 0u64;
        raw::syscall4(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            &empty as *const u64 as usize,
            0,
            8,
        );
        let mut err = libc::ENOENT;
        let mut eacces = false;
        for i in 0..l.npaths {
            let r = raw::syscall4(
                libc::SYS_execve,
                *l.paths.add(i) as usize,
                l.argv as usize,
                l.envp.as_ptr() as usize,
                0,
            );
            err = -r as i32;
            match err {
                libc::EACCES => eacces = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => break,
            }
        }
        if eacces
            && matches!(
                err,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT
            )
        {
            err = libc::EACCES;
        }
        // Release: seen by the server once the kernel clears `tid`.
        l.err.store(err, Ordering::Release);
        raw::syscall4(libc::SYS_exit_group, 127, 0, 0, 0);
        127
    }
}
