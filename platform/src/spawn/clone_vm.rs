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
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use super::{c_argv, EnvBlock, Environ, StandbyVars, Taken, STANDBY_UIDS};

pub const MECHANISM: &str = "clone(CLONE_VM)";

/// This backend can keep a standby child (see [`Program::arm`]).
pub const STANDBY: bool = true;

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
    pub unsafe fn syscall4(n: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
        // SAFETY (caller's): as for `syscall5`; the fifth argument register
        // holds 0, which a system call of four arguments does not read.
        syscall5(n, a, b, c, d, 0)
    }

    #[cfg(target_arch = "x86_64")]
    pub unsafe fn syscall5(
        n: libc::c_long,
        a: usize,
        b: usize,
        c: usize,
        d: usize,
        e: usize,
    ) -> isize {
        let ret: isize;
        // SAFETY (caller's): the arguments are valid for system call `n`.
        std::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d, in("r8") e,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
        ret
    }

    #[cfg(target_arch = "aarch64")]
    pub unsafe fn syscall5(
        n: libc::c_long,
        a: usize,
        b: usize,
        c: usize,
        d: usize,
        e: usize,
    ) -> isize {
        let ret: isize;
        // SAFETY (caller's): the arguments are valid for system call `n`.
        std::arch::asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") a as isize => ret,
            in("x1") b, in("x2") c, in("x3") d, in("x4") e,
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
    /// For a standby child (see [`Program::arm`]); `listener` is -1 for
    /// any other child, which runs on `fd`.
    standby: StandbyLaunch,
}

/// What a standby child needs besides a `Launch`: where to accept, whom to
/// tell, and where the per-connection values go.
#[repr(C)]
#[derive(Clone, Copy)]
struct StandbyLaunch {
    listener: libc::c_int,
    /// An eventfd the child adds 1 to once it has written its report.
    notify: libc::c_int,
    /// The server: if it is gone by the time the child has asked for
    /// SIGKILL on its parent's death, the child exits.
    ppid: libc::pid_t,
    /// Where the values of IPCREMOTEEUID, IPCREMOTEEGID, IPCCONNNUM and
    /// IPCREMOTEPATH start in the slot's environment, each followed by
    /// room for `ROOM[i]` bytes and a NUL.
    values: [*mut u8; 4],
}

impl StandbyLaunch {
    const NONE: StandbyLaunch = StandbyLaunch {
        listener: -1,
        notify: -1,
        ppid: 0,
        values: [ptr::null_mut(); 4],
    };
}

/// The room each standby value has: a u32 in decimal (three of them),
/// then a peer address as IPCREMOTEPATH shows it (`sun_path`'s size).
const ROOM: [usize; 4] = [10, 10, 10, SUN_PATH];
const SUN_PATH: usize = 108;

/// `Shared::state`, for a standby child. Not one: 0.
const ARMED: u32 = 1;
/// It accepted (or failed to): no longer cancellable; a report follows.
const BUSY: u32 = 2;
/// Its report says it took a connection and goes on to its exec.
const TAKEN: u32 = 3;
/// Its report says `accept` (step 1) or the credentials (step 2) failed.
const FAILED: u32 = 4;
/// The server called it off before it accepted anything.
const CANCELLED: u32 = 5;

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
    standby: StandbyShared,
}

/// What a standby child and the server share besides `Shared`'s words:
/// atomics only, so both sides may hold references to it.
#[repr(C)]
struct StandbyShared {
    /// ARMED, BUSY..., or 0 for a child that is not a standby one.
    state: AtomicU32,
    /// The report, written by the child before it stores TAKEN or FAILED
    /// (Release), read by the server after it loads them (Acquire).
    uid: AtomicU32,
    gid: AtomicU32,
    connnum: AtomicU32,
    fail_step: AtomicU32,
    fail_errno: AtomicI32,
    /// The server's live connections per uid when it armed the child,
    /// `nuids` of them; the server takes one off when a connection ends.
    nuids: AtomicU32,
    uids: [AtomicU32; STANDBY_UIDS],
    counts: [AtomicU32; STANDBY_UIDS],
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
    /// Its child is the standby one and has not reported yet: it counts
    /// neither toward the window nor as stuck, and is never waited on.
    standby: bool,
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
            standby: false,
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

    fn sb(&self) -> &StandbyShared {
        // SAFETY: as in `tid`; `StandbyShared` is all atomics.
        unsafe { &(*self.shared()).standby }
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
    /// The slot of the standby child, until its report is taken.
    standby: Option<usize>,
    /// The eventfd standby children report through, made at the first.
    notify: Option<OwnedFd>,
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
            standby: None,
            notify: None,
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
                    s.standby = false;
                    free.get_or_insert(i);
                    nfree += 1;
                } else if s.stuck() || s.standby {
                    stuck += 1;
                }
            }
            let n = self.slots.len();
            // Stuck children, and the standby one, do not count toward the
            // window.
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
                if busy < MAX_SLOTS
                    && !s.standby
                    && s.stuck() == stuck
                    && s.tid().load(Ordering::Acquire) != 0
                {
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
        self.prepare()?;
        let i = self.free_slot()?;
        env.render();
        self.start(i, conn.as_raw_fd(), env, None)
    }

    fn prepare(&mut self) -> io::Result<()> {
        if !self.trusted {
            self.check()?;
        }
        if !self.reset_known {
            self.find_reset();
        }
        Ok(())
    }

    /// Starts a child on the free slot `i` with `env`, rendered: on `fd`,
    /// or as a standby child (listener, eventfd, where the values go in
    /// the rendering).
    fn start(
        &mut self,
        i: usize,
        fd: libc::c_int,
        env: &mut Environ,
        standby: Option<(libc::c_int, libc::c_int, [usize; 4])>,
    ) -> io::Result<libc::pid_t> {
        let slot = &mut self.slots[i];
        // The slot is free: no child reads anything of it until `clone`.
        mem::swap(&mut slot.env, &mut env.rendered);
        let standby = match standby {
            None => StandbyLaunch::NONE,
            Some((listener, notify, at)) => {
                // The rendering's strings do not move from here on (the slot
                // owns them and leaves them alone while its child runs).
                let base = slot.env.strings.as_mut_ptr();
                StandbyLaunch {
                    listener,
                    notify,
                    ppid: std::process::id() as libc::pid_t,
                    values: at.map(|o| base.wrapping_add(o)),
                }
            }
        };
        let launch = Launch {
            fd,
            argv: self.argv_ptrs.as_ptr(),
            paths: self.path_ptrs.as_ptr(),
            npaths: self.path_ptrs.len(),
            reset: self.reset.as_ptr(),
            nreset: self.reset.len(),
            envp: slot.env.ptrs.as_ptr(),
            standby,
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

impl Environ {
    /// Sets each of `slots` to `room` placeholder bytes, renders, and
    /// returns where each value starts in `rendered.strings`, for a
    /// standby child to write its own values (and a NUL) there.
    fn render_with_room(&mut self, slots: [super::Slot; 4], room: [usize; 4]) -> [usize; 4] {
        for (slot, room) in slots.iter().zip(room) {
            let var = &mut self.vars[slot.0];
            var.buf.truncate(var.name_len + 1);
            var.buf.resize(var.name_len + 1 + room, b'0');
            var.buf.push(0);
            var.set = true;
        }
        self.render();
        let mut at = [0; 4];
        let mut next = self.base.len();
        for (k, v) in self.vars.iter().enumerate().filter(|(_, v)| v.set) {
            if let Some(j) = slots.iter().position(|s| s.0 == k) {
                at[j] = next + v.name_len + 1;
            }
            next += v.buf.len();
        }
        at
    }
}

/// The standby child (see [`Program::arm`]).
impl Program {
    /// Starts a standby child, which waits on `listener` (non-blocking)
    /// for the next connection, then does for it, in the child, what the
    /// server does before `spawn`: it accepts, reads the client's
    /// credentials, sets `vars` in its own copy of `env` (IPCCONNNUM from
    /// `counts`, the live connections per uid, at most [`STANDBY_UIDS`]),
    /// reports through [`Program::standby_fd`], and runs the program. The
    /// connection is then served without a `clone` or a wake-up of the
    /// server on its way. Returns the child's pid.
    ///
    /// The server keeps the standby child's counts current with
    /// [`Program::standby_ended`], takes its report with
    /// [`Program::standby_report`], tells it apart at reap time with
    /// [`Program::standby_reaped`], and calls it off with
    /// [`Program::disarm`].
    pub fn arm(
        &mut self,
        listener: BorrowedFd<'_>,
        env: &mut Environ,
        vars: &StandbyVars,
        counts: impl Iterator<Item = (libc::uid_t, u32)>,
    ) -> io::Result<libc::pid_t> {
        if self.standby.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a standby child is armed already",
            ));
        }
        self.prepare()?;
        let notify = match &self.notify {
            Some(fd) => fd.as_raw_fd(),
            None => {
                // SAFETY: creates a new descriptor; no memory is passed.
                let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // SAFETY: `fd` was just made and is owned by nobody else.
                self.notify
                    .insert(unsafe { OwnedFd::from_raw_fd(fd) })
                    .as_raw_fd()
            }
        };
        let i = self.free_slot()?;
        let sb = self.slots[i].sb();
        let mut n = 0;
        for (uid, count) in counts {
            if n == STANDBY_UIDS {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "too many uids for a standby child",
                ));
            }
            sb.uids[n].store(uid, Ordering::Relaxed);
            sb.counts[n].store(count, Ordering::Relaxed);
            n += 1;
        }
        sb.nuids.store(n as u32, Ordering::Relaxed);
        sb.state.store(ARMED, Ordering::Release);
        let at = env.render_with_room([vars.euid, vars.egid, vars.connnum, vars.path], ROOM);
        let pid = self.start(i, -1, env, Some((listener.as_raw_fd(), notify, at)))?;
        self.slots[i].standby = true;
        self.standby = Some(i);
        Ok(pid)
    }

    /// Readable once the standby child has a report, while there is one.
    pub fn standby_fd(&self) -> Option<BorrowedFd<'_>> {
        self.standby?;
        self.notify.as_ref().map(|fd| fd.as_fd())
    }

    /// The standby child's report, once it has made one; that ends its
    /// standby (arm another).
    pub fn standby_report(&mut self) -> Option<Taken> {
        if let Some(fd) = &self.notify {
            let mut n: u64 = 0;
            // SAFETY: reads 8 bytes into `n`; the eventfd is non-blocking,
            // and when it holds nothing (EAGAIN) there is nothing to do.
            unsafe { libc::read(fd.as_raw_fd(), ptr::addr_of_mut!(n).cast(), 8) };
        }
        let i = self.standby?;
        let slot = &mut self.slots[i];
        let sb = slot.sb();
        let report = match sb.state.load(Ordering::Acquire) {
            TAKEN => Taken::Connection {
                pid: slot.pid,
                uid: sb.uid.load(Ordering::Relaxed),
                gid: sb.gid.load(Ordering::Relaxed),
                connnum: sb.connnum.load(Ordering::Relaxed),
            },
            FAILED => {
                let e = io::Error::from_raw_os_error(sb.fail_errno.load(Ordering::Relaxed));
                if sb.fail_step.load(Ordering::Relaxed) == 1 {
                    Taken::AcceptFailed(e)
                } else {
                    Taken::CredentialsFailed(e)
                }
            }
            _ => return None,
        };
        slot.standby = false;
        self.standby = None;
        Some(report)
    }

    /// The standby child's pid if it has accepted a client but not yet
    /// reported: a connection already, which the server's signals to its
    /// connections must reach.
    pub fn standby_accepted(&self) -> Option<libc::pid_t> {
        let slot = &self.slots[self.standby?];
        matches!(slot.sb().state.load(Ordering::Acquire), BUSY | TAKEN).then_some(slot.pid)
    }

    /// Whether the standby child still waits without having accepted.
    pub fn standby_waiting(&self) -> bool {
        self.standby
            .is_some_and(|i| self.slots[i].sb().state.load(Ordering::Acquire) == ARMED)
    }

    /// A connection of `uid` ended: the standby child counts it no more.
    pub fn standby_ended(&mut self, uid: libc::uid_t) {
        let Some(i) = self.standby else { return };
        let sb = self.slots[i].sb();
        let n = (sb.nuids.load(Ordering::Relaxed) as usize).min(STANDBY_UIDS);
        if let Some(k) = sb.uids[..n]
            .iter()
            .position(|u| u.load(Ordering::Relaxed) == uid)
        {
            // Never below 0, even if the server's and the child's view of
            // a count ever differed.
            let _ = sb.counts[k]
                .fetch_update(Ordering::Release, Ordering::Relaxed, |c| c.checked_sub(1));
        }
    }

    /// `pid` was reaped. If it was the standby child, its standby ends,
    /// with its report if it made one before it exited.
    pub fn standby_reaped(&mut self, pid: libc::pid_t) -> Option<Taken> {
        let i = self.standby?;
        if self.slots[i].pid != pid {
            return None;
        }
        let report = self.standby_report();
        self.slots[i].standby = false;
        self.standby = None;
        report
    }

    /// Calls the standby child off: it is killed unless it has accepted a
    /// connection already, in which case its pid is returned (it goes on
    /// to run the program, or fails and exits by itself).
    pub fn disarm(&mut self) -> Option<libc::pid_t> {
        let i = self.standby.take()?;
        let slot = &mut self.slots[i];
        slot.standby = false;
        match slot.sb().state.compare_exchange(
            ARMED,
            CANCELLED,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                // SAFETY: a signal to our own child, which has not accepted
                // anything and is not reaped (this is its slot).
                unsafe { libc::kill(slot.pid, libc::SIGKILL) };
                None
            }
            Err(TAKEN | BUSY) => Some(slot.pid),
            Err(_) => None,
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // A standby child left armed would go on accepting for no server.
        self.disarm();
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
    // A standby child has its signals at their defaults before it waits,
    // one system call fewer once a client is there.
    let fd = if l.standby.listener < 0 {
        l.fd
    } else {
        // SAFETY: as for `launch`; `standby` is all atomics, which the
        // server only reads or changes atomically.
        let sb = unsafe { &*ptr::addr_of!((*shared).standby) };
        match stand_by(&l.standby, sb) {
            Some(fd) => fd,
            // SAFETY: ends this child only; an accepted connection, if
            // any, is closed with it.
            None => unsafe { raw::syscall4(libc::SYS_exit_group, 0, 0, 0, 0) as libc::c_int },
        }
    };
    for target in [0, 1] {
        // SAFETY: descriptor operations on this child's own descriptor
        // table (a copy: no CLONE_FILES); errors leave it as it was.
        unsafe {
            if fd == target {
                // Already in place: only close-on-exec must go.
                raw::syscall4(
                    libc::SYS_fcntl,
                    target as usize,
                    libc::F_SETFD as usize,
                    0,
                    0,
                );
            } else {
                raw::syscall4(libc::SYS_dup3, fd as usize, target as usize, 0, 0);
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

/// A standby child's wait and report, under the same rules as `child`:
/// returns the accepted connection, with the values set in the
/// environment and the server told, or `None` if the child is to exit
/// (called off, the server gone, or a failure it has reported).
fn stand_by(s: &StandbyLaunch, sb: &StandbyShared) -> Option<libc::c_int> {
    // Killed with the server, rather than left accepting for nobody; and
    // if the server died before this, its pid is gone from getppid().
    // SAFETY: prctl and getppid with plain integer arguments.
    unsafe {
        raw::syscall4(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG as usize,
            libc::SIGKILL as usize,
            0,
            0,
        );
        if raw::syscall4(libc::SYS_getppid, 0, 0, 0, 0) != s.ppid as isize {
            return None;
        }
    }
    // SAFETY: all zeroes is a valid sockaddr_un.
    let mut addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    let mut len: libc::socklen_t;
    let accepted = loop {
        let mut pfd = libc::pollfd {
            fd: s.listener,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd on our stack, no timeout, no signal mask.
        unsafe { raw::syscall4(libc::SYS_ppoll, ptr::addr_of_mut!(pfd) as usize, 1, 0, 0) };
        len = mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        // SAFETY: `addr` and `len` are writable locals of the sizes given.
        let r = unsafe {
            raw::syscall4(
                libc::SYS_accept4,
                s.listener as usize,
                ptr::addr_of_mut!(addr) as usize,
                ptr::addr_of_mut!(len) as usize,
                libc::SOCK_CLOEXEC as usize,
            )
        };
        if r >= 0 {
            break Ok(r as libc::c_int);
        }
        match r.wrapping_neg() as libc::c_int {
            // Another process took it, the client gave up, or a signal
            // came (a stop and a continue): wait again.
            libc::EAGAIN | libc::EINTR | libc::ECONNABORTED | libc::EPROTO => {}
            e => break Err(e),
        }
    };
    if accepted.is_ok() {
        // Before the server can know this child has a client (BUSY, below)
        // and signal it as one: what was sent to it while it waited goes,
        // what the server sends from now on stays pending for the program.
        flush_pending();
        // SAFETY: prctl with integer arguments: the program must not die
        // with the server, as no child of a C s6-ipcserver does.
        unsafe { raw::syscall4(libc::SYS_prctl, libc::PR_SET_PDEATHSIG as usize, 0, 0, 0) };
    }
    // From here on the server can no longer call this child off.
    if sb
        .state
        .compare_exchange(ARMED, BUSY, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return None;
    }
    let fd = match accepted {
        Ok(fd) => fd,
        Err(e) => return report_failure(s, sb, 1, e),
    };
    // As credentials/so_peercred.rs: ids that are never root's if the call
    // wrote nothing, and a short struct is an error.
    let mut cred = libc::ucred {
        pid: 0,
        uid: libc::uid_t::MAX,
        gid: libc::gid_t::MAX,
    };
    let mut clen = mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `clen` are writable locals of the sizes given.
    let r = unsafe {
        raw::syscall5(
            libc::SYS_getsockopt,
            fd as usize,
            libc::SOL_SOCKET as usize,
            libc::SO_PEERCRED as usize,
            ptr::addr_of_mut!(cred) as usize,
            ptr::addr_of_mut!(clen) as usize,
        )
    };
    if r < 0 {
        return report_failure(s, sb, 2, r.wrapping_neg() as libc::c_int);
    }
    if clen as usize != mem::size_of::<libc::ucred>() {
        return report_failure(s, sb, 2, libc::EINVAL);
    }
    let n = (sb.nuids.load(Ordering::Acquire) as usize).min(STANDBY_UIDS);
    let mut count = 0;
    for (u, c) in sb.uids.iter().zip(sb.counts.iter()).take(n) {
        if u.load(Ordering::Relaxed) == cred.uid {
            count = c.load(Ordering::Acquire);
        }
    }
    let connnum = count.wrapping_add(1);
    let [euid_at, egid_at, connnum_at, path_at] = s.values;
    // SAFETY: each value place has room for ROOM bytes and a NUL, in this
    // child's own copy of the environment (see `StandbyLaunch`).
    unsafe {
        put_u32(euid_at, cred.uid);
        put_u32(egid_at, cred.gid);
        put_u32(connnum_at, connnum);
        put_path(path_at, &addr, len);
    }
    sb.uid.store(cred.uid, Ordering::Relaxed);
    sb.gid.store(cred.gid, Ordering::Relaxed);
    sb.connnum.store(connnum, Ordering::Relaxed);
    sb.state.store(TAKEN, Ordering::Release);
    notify(s.notify);
    Some(fd)
}

fn report_failure(
    s: &StandbyLaunch,
    sb: &StandbyShared,
    step: u32,
    errno: libc::c_int,
) -> Option<libc::c_int> {
    sb.fail_step.store(step, Ordering::Relaxed);
    sb.fail_errno.store(errno, Ordering::Relaxed);
    sb.state.store(FAILED, Ordering::Release);
    notify(s.notify);
    None
}

fn notify(eventfd: libc::c_int) {
    let one: u64 = 1;
    // SAFETY: writes the 8 bytes of `one`; a full counter (EAGAIN) still
    // leaves the eventfd readable, which is all the server needs.
    unsafe {
        raw::syscall4(
            libc::SYS_write,
            eventfd as usize,
            ptr::addr_of!(one) as usize,
            8,
            0,
        )
    };
}

/// `v` in decimal, then a NUL.
///
/// # Safety
/// `at` has room for 11 bytes.
unsafe fn put_u32(at: *mut u8, v: u32) {
    let mut digits: usize = 1;
    let mut t = v;
    while t >= 10 {
        t /= 10;
        digits = digits.wrapping_add(1);
    }
    let mut v = v;
    let mut k = digits;
    while k > 0 {
        k = k.wrapping_sub(1);
        at.wrapping_add(k).write(b'0'.wrapping_add((v % 10) as u8));
        v /= 10;
    }
    at.wrapping_add(digits).write(0);
}

/// The peer address as the server shows it in IPCREMOTEPATH (see
/// `PeerAddr::remote` and `Server::set_env`): empty when unnamed, a path up
/// to its first NUL, or an abstract name as '@' then the name with '@' for
/// each NUL; then a NUL.
///
/// # Safety
/// `at` has room for `SUN_PATH` + 1 bytes.
unsafe fn put_path(at: *mut u8, addr: &libc::sockaddr_un, len: libc::socklen_t) {
    let offset = mem::size_of::<libc::sa_family_t>();
    let plen = (len as usize).saturating_sub(offset).min(SUN_PATH);
    let src = addr.sun_path.as_ptr().cast::<u8>();
    let mut k = 0;
    if plen > 0 && src.read() == 0 {
        at.write(b'@');
        k = 1;
        while k < plen {
            let c = src.wrapping_add(k).read();
            at.wrapping_add(k).write(if c == 0 { b'@' } else { c });
            k = k.wrapping_add(1);
        }
    } else {
        while k < plen && src.wrapping_add(k).read() != 0 {
            at.wrapping_add(k).write(src.wrapping_add(k).read());
            k = k.wrapping_add(1);
        }
    }
    at.wrapping_add(k).write(0);
}

/// Discards the signals sent to this child while it stood by (to the
/// server's process group, say): blocked, they would reach the program as
/// soon as its mask is emptied, though they were not meant for it. Setting
/// a signal to SIG_IGN drops it; its action is then put back.
fn flush_pending() {
    let mut pending: u64 = 0;
    // SAFETY: `pending` is a kernel signal set on our stack.
    let r = unsafe {
        raw::syscall4(
            libc::SYS_rt_sigpending,
            ptr::addr_of_mut!(pending) as usize,
            KERNEL_SIGSET,
            0,
            0,
        )
    };
    if r != 0 || pending == 0 {
        return;
    }
    let ign = KernelSigaction {
        handler: 1, // SIG_IGN
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..NSIG {
        if pending & 1u64.wrapping_shl(sig.wrapping_sub(1) as u32) == 0 {
            continue;
        }
        let mut old = KernelSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: kernel sigactions on our stack; SIGKILL and SIGSTOP just
        // fail.
        unsafe {
            raw::syscall4(
                libc::SYS_rt_sigaction,
                sig,
                ptr::addr_of!(ign) as usize,
                ptr::addr_of_mut!(old) as usize,
                KERNEL_SIGSET,
            );
            raw::syscall4(
                libc::SYS_rt_sigaction,
                sig,
                ptr::addr_of!(old) as usize,
                0,
                KERNEL_SIGSET,
            );
        }
    }
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

    /// Marks slot `i` busy, as if its child had been started `seq`-th.
    fn occupy(p: &mut Program, i: usize, seq: u64) {
        p.slots[i].tid().store(1, Ordering::Release);
        p.slots[i].seq = seq;
    }

    /// Makes `n` slots, all busy, started in order (seq 0 oldest).
    fn busy_slots(p: &mut Program, n: usize) {
        for seq in 0..n as u64 {
            let i = p.free_slot().unwrap();
            occupy(p, i, seq);
            p.spawns = seq + 1;
        }
    }

    /// Frees every slot, so that Drop leaks no fake busy one.
    fn free_all(p: &Program) {
        for s in &p.slots {
            s.tid().store(0, Ordering::Release);
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
        free_all(&p);
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
            occupy(&mut p, i, seq);
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
        free_all(&p);
    }

    #[test]
    fn the_standby_slot_is_neither_counted_nor_waited_on() {
        let mut p = program(4);
        busy_slots(&mut p, 4);
        p.slots[0].standby = true;
        // Three of four count: a new slot at once, no wait step taken.
        let i = p.free_slot().unwrap();
        assert_eq!((i, p.slots.len()), (4, 5));
        assert_eq!(stalls(&p), [0; 5]);
        // Full again: the wait is on the others, never on the standby one.
        occupy(&mut p, i, 4);
        for _ in 0..3 {
            p.wait_for_batch(0);
        }
        assert_eq!(p.slots[0].stalls, 0, "the standby child is not waited on");
        assert_eq!(stalls(&p).iter().sum::<u32>(), 3);
        free_all(&p);
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
        occupy(&mut p, i, 4);
        let stuck = p.slots.iter().position(|s| s.stuck()).unwrap();
        p.slots[stuck].tid().store(0, Ordering::Release);
        assert_eq!(p.free_slot().unwrap(), stuck);
        assert_eq!(p.slots[stuck].stalls, 0);
        free_all(&p);
    }
}
