//! Linux: `clone(CLONE_VM)` without `CLONE_VFORK`. The child borrows the
//! server's memory only until its `execve`, so no page table is copied (as
//! `fork` would), and the server does not sleep until the child has exec'd
//! (as `vfork` and `posix_spawn` do): it goes back to accepting at once.
//! On two CPUs that doubles the connections served per second.
//!
//! The price is care. While a child runs on borrowed memory it must only
//! read what the server leaves alone: each child gets a launch slot (its own
//! stack under a guard page, its own copy of the environment, its own
//! [`Launch`] block) that the server reuses only after the kernel has
//! cleared the slot's tid word (`CLONE_CHILD_CLEARTID`), which it does when
//! the child's `execve` (or exit) gives the memory back. The child makes raw
//! system calls only, so it never writes the server's `errno`. A program
//! that cannot be executed is seen by `spawn` itself (an `faccessat` check,
//! made until an exec is known to work and again after any failure); if it
//! fails in the child anyway, the child records the error and exits 127,
//! and [`Program::take_failure`] reports it when the child is reaped.

use std::ffi::{CString, OsString};
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::ptr;
use std::sync::atomic::{AtomicI32, Ordering};

use super::{c_argv, EnvBlock, Environ};

pub const MECHANISM: &str = "clone(CLONE_VM)";

/// Children between `clone` and `execve` at once (each holds a launch
/// slot until its exec) are limited to a window of four per CPU: a child
/// that is slow to reach its exec is waiting for a CPU, so the server
/// waits too, and the connections queue in the listen backlog, first come
/// first served, instead of as runnable children that the scheduler
/// serves in no particular order. When the window is full, the server
/// sleeps until half of it is free (or for one wait step), then fills it
/// again: one wake-up for several execs rather than one for each.
/// ci/bench, 16 clients of /bin/true on 2 CPUs, ratios to the C server
/// (README, Performance): with no window, 1.17-1.20 x its connections/s
/// and 1.00-1.03 x its p99 latency; with this one, 1.15-1.17 x and
/// 0.71-0.76 x (five full runs); two per CPU waking up for every exec,
/// 1.10-1.13 x and 0.70 x; waiting for every exec (vfork), 0.92-1.00 x.
///
/// A child that lets `GROW_AFTER` wait steps pass without reaching its
/// exec is stuck (stopped before its exec, say: SIGSTOP cannot be
/// blocked): its slot stops counting toward the window and is no longer
/// waited on, and new slots are made in its place, up to `MAX_SLOTS` in
/// all, so that stuck children cannot hold up the server for good. Past
/// that the server waits, one step at a time, for a slot to free up.
const PER_CPU: usize = 4;
const MIN_WINDOW: usize = 2;
const MAX_SLOTS: usize = 64;
/// Wait steps a child may let pass before its exec until it counts as
/// stuck: a runnable child reaches its exec in well under that (10 ms),
/// even on a loaded machine.
const GROW_AFTER: u32 = 10;
/// The child's stack, rounded up to whole pages. It runs a few raw system
/// calls: a page would do.
const STACK: usize = 8192;
/// How long `free_slot` sleeps on one busy slot before it looks at all of
/// them again, in nanoseconds.
const WAIT_STEP_NS: libc::c_long = 1_000_000;
/// The highest signal number plus one.
const NSIG: usize = 65;
/// The `execve` errors after which the next path is tried, as `execvp`
/// does (EACCES too, but it is remembered: see `child`).
const NEXT_PATH: [libc::c_int; 5] = [
    libc::ENOENT,
    libc::ENOTDIR,
    libc::ESTALE,
    libc::ENODEV,
    libc::ETIMEDOUT,
];

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

    /// The `clone` system call, with the child running `f(arg)` on `stack`
    /// and exiting with what it returns. libc's `clone()` is not used:
    /// musl's refuses `CLONE_CHILD_CLEARTID` (EINVAL), and this is the same
    /// few instructions on every libc. No parent or child tid pointer is
    /// written and no TLS is set; the child's tid pointer is `ctid`.
    /// Returns the child's pid, or `-errno`.
    ///
    /// The kernel (arch/x86/entry/entry_64.S) keeps every register but
    /// rax, rcx and r11 across `syscall`, in the child too, so `f` and
    /// `arg` arrive there in r12 and r13; the child starts with `rsp` at
    /// `stack`, 16-byte aligned, so after `call` pushes its return address
    /// `f` sees the alignment the ABI requires at a function's entry.
    #[cfg(target_arch = "x86_64")]
    pub unsafe fn clone(
        flags: usize,
        stack: *mut libc::c_void,
        ctid: *mut libc::c_int,
        f: extern "C" fn(*mut libc::c_void) -> libc::c_int,
        arg: *mut libc::c_void,
    ) -> isize {
        let ret: isize;
        // SAFETY (caller's): `stack` is the 16-byte aligned top of memory
        // the child may use as its stack, `ctid` stays valid until the
        // kernel clears it, and `f` with `arg` is safe to run there. The
        // parent only falls through to `2:`; the child never leaves the
        // block (exit after `f`, `ud2` if even that returned).
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r13",
            "call r12",
            "mov edi, eax",
            "mov eax, 60", // SYS_exit, checked below
            "syscall",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone as isize => ret,
            in("rdi") flags,
            in("rsi") stack,
            in("rdx") 0usize,
            in("r10") ctid,
            in("r8") 0usize,
            in("r12") f,
            in("r13") arg,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
        ret
    }

    // The exit numbers written into the blocks above.
    #[cfg(target_arch = "x86_64")]
    const _: () = assert!(libc::SYS_exit == 60);
    #[cfg(target_arch = "aarch64")]
    const _: () = assert!(libc::SYS_exit == 93);

    /// As on x86_64. aarch64 takes the arguments as flags, stack, parent
    /// tid, TLS, child tid (x0 to x4), and the kernel keeps every register
    /// but x0 across `svc`, in the child too, so `f` and `arg` arrive there
    /// in x9 and x10; `stack` is 16-byte aligned, as `sp` must be.
    #[cfg(target_arch = "aarch64")]
    pub unsafe fn clone(
        flags: usize,
        stack: *mut libc::c_void,
        ctid: *mut libc::c_int,
        f: extern "C" fn(*mut libc::c_void) -> libc::c_int,
        arg: *mut libc::c_void,
    ) -> isize {
        let ret: isize;
        // SAFETY (caller's): as on x86_64.
        std::arch::asm!(
            "svc 0",
            "cbnz x0, 2f",
            "mov x0, x10",
            "blr x9",
            "mov x8, 93", // SYS_exit, checked below
            "svc 0",
            "brk 0",
            "2:",
            in("x8") libc::SYS_clone,
            inlateout("x0") flags as isize => ret,
            in("x1") stack,
            in("x2") 0usize,
            in("x3") 0usize,
            in("x4") ctid,
            in("x9") f,
            in("x10") arg,
            options(nostack),
        );
        ret
    }
}

/// The kernel's `struct sigaction`, which `rt_sigaction` reads: not libc's
/// (whose `sa_mask` has room for 1024 signals).
///
/// - x86_64 (`arch/x86/include/uapi/asm/signal.h`): handler, flags,
///   restorer, mask.
/// - aarch64: the asm-generic layout, which has a restorer field when the
///   architecture defines `SA_RESTORER` (`uapi/asm-generic/signal.h`), and
///   arm64 does (`arch/arm64/include/uapi/asm/signal.h`, "Required for
///   AArch32 compatibility"; glibc's `aarch64/libc_sigaction.c` also
///   defines it): handler, flags, restorer, mask, as on x86_64.
///
/// So the same four words on both; the definition is gated to these two so
/// that a port to another architecture has to check its layout (those
/// without `SA_RESTORER` have no restorer field). A three-word struct here
/// would make the kernel read the mask from beyond it.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    /// One bit per signal, 1 to 64 (`_NSIG` is 64 on both).
    mask: u64,
}

/// The size the kernel's `rt_sigaction` and `rt_sigprocmask` expect for a
/// signal set (`_NSIG / 8`).
const KERNEL_SIGSET: usize = 8;

/// Everything a child reads of its slot: plain data, written by the server
/// only while no child uses the slot, copied out by the child at its start
/// with one `ptr::read` (the child never makes a reference into it).
#[repr(C)]
#[derive(Clone, Copy)]
struct Launch {
    fd: libc::c_int,
    /// Into `Program` (argv, paths, signals): see its `Drop`.
    argv: *const *const libc::c_char,
    paths: *const *const libc::c_char,
    npaths: usize,
    reset: *const u8,
    nreset: usize,
    /// Into the slot's own `EnvBlock`.
    envp: *const *const libc::c_char,
}

/// The memory a child shares with the server, at the top of its slot's
/// mapping. All zeroes (a fresh mapping) is a valid value.
#[repr(C)]
struct Shared {
    launch: Launch,
    /// Non-zero from just before `clone` until the kernel clears it, when
    /// the child execs or exits. Written by the server and the kernel.
    tid: AtomicI32,
    /// The errno of a failed `execve`: written by the child before it
    /// exits, taken back to 0 by the server.
    err: AtomicI32,
}

/// `Shared`, rounded up so that the stack below it is 16-byte aligned.
const SHARED: usize = (mem::size_of::<Shared>() + 15) & !15;

/// A launch slot: one mapping (a `PROT_NONE` guard page, the child's stack,
/// then `Shared`), the environment the child gets, and the server's own
/// bookkeeping, which the child does not read. Moving a `Slot` moves
/// neither its mapping nor its environment.
struct Slot {
    map: *mut libc::c_void,
    len: usize,
    env: EnvBlock,
    /// The last child started on this slot, and when (`Program::spawns`).
    pid: libc::pid_t,
    seq: u64,
    /// Wait steps this child has let pass without reaching its exec; at
    /// `GROW_AFTER` it counts as stuck (see `PER_CPU`).
    stalls: u32,
}

impl Slot {
    fn new(page: usize) -> io::Result<Slot> {
        let len = page + STACK.next_multiple_of(page);
        // SAFETY: a new anonymous mapping; no existing memory is touched.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // From here on, dropping `slot` unmaps it.
        let slot = Slot {
            map,
            len,
            env: EnvBlock::default(),
            pid: 0,
            seq: 0,
            stalls: 0,
        };
        // The stack grows down into the guard page, which faults.
        // SAFETY: the first page of the mapping made just above.
        if unsafe { libc::mprotect(map, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(slot)
    }

    /// The shared block: at the top of the mapping, 16-byte aligned (the
    /// mapping's end is page-aligned), zeroed by `mmap`, which is a valid
    /// `Shared`.
    fn shared(&self) -> *mut Shared {
        self.map.cast::<u8>().wrapping_add(self.len - SHARED).cast()
    }

    fn tid(&self) -> &AtomicI32 {
        // SAFETY: `shared()` points to a live, aligned, initialised
        // `Shared` (see there) for as long as `self`; the reference covers
        // the atomic only, never `launch`.
        unsafe { &(*self.shared()).tid }
    }

    /// Busy with a child that has not reached its exec for `GROW_AFTER`
    /// wait steps: stopped, most likely.
    fn stuck(&self) -> bool {
        self.stalls >= GROW_AFTER
    }

    fn err(&self) -> &AtomicI32 {
        // SAFETY: as in `tid`.
        unsafe { &(*self.shared()).err }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once. `Program` drops
        // only slots that no child uses (it leaks the others).
        unsafe { libc::munmap(self.map, self.len) };
    }
}

/// The program to run for each connection, prepared once.
pub struct Program {
    /// The strings `argv_ptrs` points to.
    argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// Where `execve` is tried, in order: the path itself, or `dir/prog`
    /// for each `PATH` entry (what `execvp` would try).
    paths: Vec<CString>,
    path_ptrs: Vec<*const libc::c_char>,
    /// The last path that passed the check, tried first next time.
    hit: usize,
    /// The check passed and no exec has been seen failing since: the check
    /// is skipped (a failure is then reported at reap, by `take_failure`).
    trusted: bool,
    /// Signals the child puts back to their default: those with a handler,
    /// and SIGPIPE. Found at the first spawn, when handlers are in place.
    reset: Vec<u8>,
    reset_known: bool,
    /// Whether any signal has a handler (see `spawn`).
    handlers: bool,
    page: usize,
    /// Made as needed, up to `window`, then `MAX_SLOTS` (see `PER_CPU`).
    slots: Vec<Slot>,
    window: usize,
    /// Free slots a full window waits for (half of it).
    batch: usize,
    /// Filling the window again after such a wait: free slots are used
    /// until none is left.
    refill: bool,
    /// Spawns so far, to order the busy slots by age.
    spawns: u64,
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
        let window = window();
        // SAFETY: a query without side effects.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            n if n > 0 => n as usize,
            _ => 4096,
        };
        Ok(Program {
            argv,
            argv_ptrs,
            paths,
            path_ptrs,
            hit: 0,
            trusted: false,
            reset: Vec::with_capacity(NSIG),
            reset_known: false,
            handlers: false,
            page,
            slots: Vec::new(),
            window,
            batch: (window / 2).max(1),
            refill: false,
            spawns: 0,
            failed: Vec::new(),
        })
    }

    /// Signals that have a handler in the server now, plus SIGPIPE.
    fn find_reset(&mut self) {
        self.reset.clear();
        self.handlers = false;
        for sig in 1..NSIG as libc::c_int {
            // SAFETY: a query only; `old` is writable.
            let mut old: libc::sigaction = unsafe { mem::zeroed() };
            // SAFETY: as above; invalid numbers just fail.
            let r = unsafe { libc::sigaction(sig, ptr::null(), &mut old) };
            let caught =
                r == 0 && old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            if caught || sig == libc::SIGPIPE {
                self.reset.push(sig as u8);
            }
            self.handlers |= caught;
        }
        self.reset_known = true;
    }

    /// Whether `execve` can work: the first path that passes, or why not
    /// (EACCES if one exists but is not executable, else ENOENT).
    fn check(&mut self) -> io::Result<()> {
        let executable = |p: &CString| {
            // SAFETY: `p` is a NUL-terminated path.
            let r = unsafe {
                libc::faccessat(libc::AT_FDCWD, p.as_ptr(), libc::X_OK, libc::AT_EACCESS)
            };
            if r == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error().raw_os_error())
            }
        };
        // The last path that passed first, then the others in order.
        let last_hit = match executable(&self.paths[self.hit]) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let mut eacces = last_hit == Some(libc::EACCES);
        for (i, p) in self.paths.iter().enumerate() {
            if i == self.hit {
                continue;
            }
            match executable(p) {
                Ok(()) => {
                    self.hit = i;
                    return Ok(());
                }
                Err(e) => eacces |= e == Some(libc::EACCES),
            }
        }
        Err(io::Error::from_raw_os_error(if eacces {
            libc::EACCES
        } else {
            libc::ENOENT
        }))
    }

    /// Takes the errno a finished child left in `slot`, if any.
    fn harvest(slot: &Slot, failed: &mut Vec<(libc::pid_t, i32)>, trusted: &mut bool) {
        let err = slot.err().swap(0, Ordering::Acquire);
        if err != 0 {
            failed.push((slot.pid, err));
            *trusted = false;
        }
    }

    /// A slot no child uses: a free one or a new one while the window is
    /// not full; when it is full, once `batch` slots are free, or after a
    /// wait step, or while refilling (see `PER_CPU`).
    fn free_slot(&mut self) -> io::Result<usize> {
        let mut waited = false;
        loop {
            let mut free = None;
            let mut nfree = 0;
            let mut stuck = 0;
            for (i, s) in self.slots.iter_mut().enumerate() {
                if s.tid().load(Ordering::Acquire) == 0 {
                    s.stalls = 0;
                    free.get_or_insert(i);
                    nfree += 1;
                } else if s.stuck() {
                    stuck += 1;
                }
            }
            let n = self.slots.len();
            // Stuck children do not count toward the window.
            let open = n - stuck < self.window;
            if let Some(i) = free {
                if open || self.refill || nfree >= self.batch || waited {
                    self.refill = nfree > 1;
                    Self::harvest(&self.slots[i], &mut self.failed, &mut self.trusted);
                    return Ok(i);
                }
            } else if open && n < MAX_SLOTS {
                match Slot::new(self.page) {
                    Ok(s) => {
                        self.slots.push(s);
                        return Ok(n);
                    }
                    Err(e) if n == 0 => return Err(e),
                    // Out of memory for now: wait for a slot instead.
                    Err(_) => {}
                }
            }
            self.wait_for_batch(nfree);
            waited = true;
        }
    }

    /// Sleeps until the busy child whose exec would make `batch` slots
    /// free has exec'd (children exec roughly in the order they were
    /// started), or for one wait step, which counts against that child.
    /// Stuck children are waited on only when every busy one is. No
    /// allocation: this runs whenever the window is full.
    fn wait_for_batch(&mut self, nfree: usize) {
        let mut order = [(0u64, 0usize); MAX_SLOTS];
        let mut busy = 0;
        for stuck in [false, true] {
            for (i, s) in self.slots.iter().enumerate() {
                if busy < MAX_SLOTS && s.stuck() == stuck && s.tid().load(Ordering::Acquire) != 0 {
                    order[busy] = (s.seq, i);
                    busy += 1;
                }
            }
            if busy > 0 {
                break;
            }
        }
        if busy == 0 {
            return;
        }
        let nth = self.batch.saturating_sub(nfree).clamp(1, busy) - 1;
        let (_, &mut (_, i), _) = order[..busy].select_nth_unstable(nth);
        let slot = &mut self.slots[i];
        if wait_cleared(slot.tid()) == Waited::TimedOut {
            slot.stalls = slot.stalls.saturating_add(1);
        }
    }

    /// Starts the program on `conn` with `env`; returns its pid.
    pub fn spawn(&mut self, conn: BorrowedFd<'_>, env: &mut Environ) -> io::Result<libc::pid_t> {
        if !self.trusted {
            self.check()?;
        }
        if !self.reset_known {
            self.find_reset();
        }
        let i = self.free_slot()?;
        let slot = &mut self.slots[i];
        // The slot is free: no child reads anything of it until `clone`.
        env.render();
        mem::swap(&mut slot.env, &mut env.rendered);
        let launch = Launch {
            fd: conn.as_raw_fd(),
            argv: self.argv_ptrs.as_ptr(),
            paths: self.path_ptrs.as_ptr(),
            npaths: self.path_ptrs.len(),
            reset: self.reset.as_ptr(),
            nreset: self.reset.len(),
            envp: slot.env.ptrs.as_ptr(),
        };
        let shared = slot.shared();
        // SAFETY: `shared` is valid and aligned (see `Slot::shared`), and no
        // child uses the slot, so nothing else reads or writes `launch`.
        unsafe { ptr::addr_of_mut!((*shared).launch).write(launch) };
        let tid = slot.tid();
        tid.store(1, Ordering::Release);
        // The stack grows down from just under `Shared` (16-byte aligned).
        let top = shared.cast::<libc::c_void>();

        // Where the server has signal handlers, the child starts with every
        // signal blocked, so that none of them ever runs in it; it unblocks
        // them once they are default. Where it has none (Linux: signals
        // come from a signalfd), there is nothing to keep out, and the two
        // system calls are saved.
        let saved_mask = self.handlers.then(block_all);
        // SAFETY: `child` reads only `launch` (written just above) and what
        // its pointers reach: `Program`'s argv, paths and signals and the
        // slot's environment, none of which changes or is freed before the
        // kernel clears `tid` (the slot is not handed out again before, and
        // Drop leaks what a busy slot may still read). It runs on the
        // slot's own stack, under a guard page, with raw system calls only.
        let r = unsafe {
            raw::clone(
                (libc::CLONE_VM | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD) as usize,
                top,
                tid.as_ptr(),
                child,
                shared.cast(),
            )
        };
        if let Some(old) = saved_mask {
            // SAFETY: puts the server's mask back.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut()) };
        }
        if r < 0 {
            tid.store(0, Ordering::Release);
            return Err(io::Error::from_raw_os_error(r.wrapping_neg() as i32));
        }
        let pid = r as libc::pid_t;
        slot.pid = pid;
        slot.seq = self.spawns;
        self.spawns = self.spawns.wrapping_add(1);
        self.trusted = true;
        Ok(pid)
    }

    /// Why the child `pid` could not be executed, if that is how it ended.
    /// Call it once `pid` is reaped.
    pub fn take_failure(&mut self, pid: libc::pid_t) -> Option<io::Error> {
        if let Some(s) = self
            .slots
            .iter()
            .find(|s| s.pid == pid && s.tid().load(Ordering::Acquire) == 0)
        {
            Self::harvest(s, &mut self.failed, &mut self.trusted);
        }
        let i = self.failed.iter().position(|f| f.0 == pid)?;
        Some(io::Error::from_raw_os_error(self.failed.swap_remove(i).1))
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // A child still before its exec reads its slot and `Program`'s
        // strings, and may stay there indefinitely (stopped, say): waiting
        // for it could hang the server, and freeing would let it read freed
        // memory. So what it may read is leaked instead; it is little, and
        // only ever at exit or on a test's Program.
        let mut busy = false;
        for s in self.slots.drain(..) {
            if s.tid().load(Ordering::Acquire) == 0 {
                drop(s);
            } else {
                busy = true;
                mem::forget(s);
            }
        }
        if busy {
            mem::forget(mem::take(&mut self.argv));
            mem::forget(mem::take(&mut self.argv_ptrs));
            mem::forget(mem::take(&mut self.paths));
            mem::forget(mem::take(&mut self.path_ptrs));
            mem::forget(mem::take(&mut self.reset));
        }
    }
}

/// Blocks every signal; returns the mask it replaced.
fn block_all() -> libc::sigset_t {
    // SAFETY: plain signal set operations on local storage.
    unsafe {
        let mut all: libc::sigset_t = mem::zeroed();
        let mut old: libc::sigset_t = mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// The slot window: `PER_CPU` per CPU this process may run on, within
/// `MIN_WINDOW..=MAX_SLOTS`.
fn window() -> usize {
    // SAFETY: `set` is a writable, zeroed cpu_set_t of the size given; the
    // call only fills it in.
    let cpus = unsafe {
        let mut set: libc::cpu_set_t = mem::zeroed();
        if libc::sched_getaffinity(0, mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            libc::CPU_COUNT(&set) as usize
        } else {
            1
        }
    };
    cpus.saturating_mul(PER_CPU).clamp(MIN_WINDOW, MAX_SLOTS)
}

#[derive(PartialEq)]
enum Waited {
    /// Woken, or the word had already changed, or a signal came.
    Woken,
    /// A whole wait step passed with the child still before its exec.
    TimedOut,
}

/// Sleeps until the kernel clears `tid` (its child has exec'd or exited),
/// or for `WAIT_STEP_NS` at most.
fn wait_cleared(tid: &AtomicI32) -> Waited {
    let seen = tid.load(Ordering::Acquire);
    if seen == 0 {
        return Waited::Woken;
    }
    let step = libc::timespec {
        tv_sec: 0,
        tv_nsec: WAIT_STEP_NS,
    };
    // SAFETY: FUTEX_WAIT reads the live, aligned word `tid` and sleeps only
    // while it still holds `seen`, for at most the relative timeout `step`;
    // the kernel wakes it when it clears the word. Every error (changed,
    // timed out, interrupted) just means "look again".
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            tid.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            &step as *const libc::timespec,
        )
    };
    if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT) {
        Waited::TimedOut
    } else {
        Waited::Woken
    }
}

/// The child, on borrowed memory: signals to default, the connection on
/// fds 0 and 1, an empty mask, then `execve` down the paths like `execvp`.
///
/// It must not panic, even in a debug build: it runs with the server's
/// thread-local storage and heap, so the panic machinery (the panic count,
/// a message allocated with the server's malloc, its locks, the stderr
/// lock) would corrupt the server's state while the server runs on, on a
/// stack too small for it. So it only copies plain data out with raw
/// reads, uses wrapping arithmetic, no indexing and no references into
/// shared memory (its own locals aside), and makes raw system calls.
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    let shared = arg as *const Shared;
    // SAFETY: `arg` is the slot's `Shared` (aligned, live), whose `launch`
    // the server wrote before `clone` and leaves alone until this child
    // execs or exits. Copied out once, as plain data.
    let l: Launch = unsafe { ptr::read(ptr::addr_of!((*shared).launch)) };
    let dfl = KernelSigaction {
        handler: 0, // SIG_DFL
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let mut i: usize = 0;
    while i < l.nreset {
        // SAFETY: `reset` holds `nreset` signal numbers (see `Launch`).
        let sig = unsafe { ptr::read(l.reset.wrapping_add(i)) } as usize;
        // SAFETY: `dfl` is a kernel sigaction on our stack; no old action
        // is asked for; invalid signal numbers just fail.
        unsafe {
            raw::syscall4(
                libc::SYS_rt_sigaction,
                sig,
                ptr::addr_of!(dfl) as usize,
                0,
                KERNEL_SIGSET,
            )
        };
        i = i.wrapping_add(1);
    }
    for target in [0, 1] {
        // SAFETY: descriptor operations on this child's own descriptor
        // table (a copy: no CLONE_FILES); errors leave it as it was.
        unsafe {
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
    }
    let empty: u64 = 0;
    // SAFETY: `empty` is a kernel signal set on our stack.
    unsafe {
        raw::syscall4(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            ptr::addr_of!(empty) as usize,
            0,
            KERNEL_SIGSET,
        )
    };
    let mut err = libc::ENOENT;
    let mut eacces = false;
    let mut i: usize = 0;
    while i < l.npaths {
        // SAFETY: `paths` holds `npaths` pointers to NUL-terminated paths;
        // `argv` and `envp` are null-terminated arrays of pointers to
        // NUL-terminated strings (see `Launch`). On success, no return.
        let r = unsafe {
            let path = ptr::read(l.paths.wrapping_add(i));
            raw::syscall4(
                libc::SYS_execve,
                path as usize,
                l.argv as usize,
                l.envp as usize,
                0,
            )
        };
        err = r.wrapping_neg() as libc::c_int;
        if err == libc::EACCES {
            eacces = true;
        } else if !NEXT_PATH.contains(&err) {
            break;
        }
        i = i.wrapping_add(1);
    }
    // As execvp: a program found but not executable says so, rather than
    // the error from the last path tried.
    if eacces && NEXT_PATH.contains(&err) {
        err = libc::EACCES;
    }
    // SAFETY: the slot's `err` word (aligned, live as above). The place is
    // reached through the raw pointer and only the atomic is referenced,
    // as atomics are written (`AtomicI32::from_ptr` needs Rust 1.75).
    // Release: the server reads it with Acquire once the kernel has
    // cleared `tid`.
    unsafe { (*shared).err.store(err, Ordering::Release) };
    // SAFETY: ends this child only (its own thread group).
    unsafe { raw::syscall4(libc::SYS_exit_group, 127, 0, 0, 0) };
    127
}

/// The window's policy, on slots marked busy by hand (no child runs: a busy
/// slot's tid word is set to a fake tid that nothing clears). Each wait
/// step is a real 1 ms futex timeout.
#[cfg(test)]
mod tests {
    use super::*;

    fn program(window: usize) -> Program {
        let mut p = Program::new(&[OsString::from("/bin/true")]).unwrap();
        p.window = window;
        p.batch = (window / 2).max(1);
        p
    }

    /// Makes `n` slots, all busy, started in order (seq 0 oldest).
    fn busy_slots(p: &mut Program, n: usize) {
        for seq in 0..n {
            let i = p.free_slot().unwrap();
            let s = &mut p.slots[i];
            s.tid().store(1, Ordering::Release);
            s.seq = seq as u64;
            p.spawns = seq as u64 + 1;
        }
    }

    fn free(p: &Program, seqs: &[u64]) {
        for s in &p.slots {
            if seqs.contains(&s.seq) {
                s.tid().store(0, Ordering::Release);
            }
        }
    }

    fn stalls(p: &Program) -> Vec<u32> {
        let mut v: Vec<_> = p.slots.iter().map(|s| (s.seq, s.stalls)).collect();
        v.sort();
        v.into_iter().map(|(_, n)| n).collect()
    }

    #[test]
    fn slots_are_made_up_to_the_window_then_waited_for_by_halves() {
        let mut p = program(8);
        busy_slots(&mut p, 8);
        assert_eq!(p.slots.len(), 8);
        // Full: the wait is on the child whose exec frees half the window
        // (the fourth oldest), and one step that passes counts against it.
        p.wait_for_batch(0);
        assert_eq!(stalls(&p), [0, 0, 0, 1, 0, 0, 0, 0]);
        // With one slot free already, on the third oldest of the others.
        free(&p, &[0]);
        p.wait_for_batch(1);
        assert_eq!(stalls(&p), [0, 0, 0, 2, 0, 0, 0, 0]);
        for s in &p.slots {
            s.tid().store(0, Ordering::Release);
        }
    }

    #[test]
    fn a_full_window_waits_for_half_of_it_then_refills() {
        let mut p = program(8);
        busy_slots(&mut p, 8);
        // Half free: taken at once, and the others too (refilling), with
        // no wait step and no new slot.
        free(&p, &[0, 1, 2, 3]);
        for seq in 8..12 {
            let i = p.free_slot().unwrap();
            assert!(p.slots[i].seq <= 3);
            p.slots[i].tid().store(1, Ordering::Release);
            p.slots[i].seq = seq;
        }
        assert_eq!(p.slots.len(), 8);
        assert_eq!(stalls(&p), [0; 8]);
        // One free, not refilling: one wait step first (on the busy child
        // whose exec would make four free: the third oldest, seq 7), then
        // the free slot is taken.
        free(&p, &[4]);
        let i = p.free_slot().unwrap();
        assert_eq!(p.slots[i].seq, 4);
        assert_eq!(stalls(&p), [0, 0, 0, 1, 0, 0, 0, 0]);
        for s in &p.slots {
            s.tid().store(0, Ordering::Release);
        }
    }

    #[test]
    fn stuck_children_stop_counting_toward_the_window() {
        let mut p = program(4);
        busy_slots(&mut p, 4);
        // Nothing execs: every step counts against the same child until it
        // is stuck, then a new slot is made in its place.
        let i = p.free_slot().unwrap();
        assert_eq!(i, 4);
        assert_eq!(p.slots.len(), 5);
        assert_eq!(p.slots.iter().filter(|s| s.stuck()).count(), 1);
        // A stuck slot that frees up counts again, from zero.
        p.slots[i].tid().store(1, Ordering::Release);
        p.slots[i].seq = 4;
        let stuck = p.slots.iter().position(|s| s.stuck()).unwrap();
        p.slots[stuck].tid().store(0, Ordering::Release);
        assert_eq!(p.free_slot().unwrap(), stuck);
        assert_eq!(p.slots[stuck].stalls, 0);
        // Leave no fake busy slot for Drop to leak.
        for s in &p.slots {
            s.tid().store(0, Ordering::Release);
        }
    }
}
