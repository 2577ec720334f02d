//! Descriptor details: close-on-exec where `pipe2` and `accept4` do not
//! exist (Apple targets), and keeping fds 0, 1 and 2 occupied so that no
//! socket the server opens ever lands on a standard descriptor.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::cvt;

/// Sets or clears `FD_CLOEXEC`.
pub fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: fcntl(F_GETFD/F_SETFD) on a live borrowed descriptor has no
    // memory effects.
    unsafe {
        let flags = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFD))?;
        let new = if on {
            flags | libc::FD_CLOEXEC
        } else {
            flags & !libc::FD_CLOEXEC
        };
        if new != flags {
            cvt(libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, new))?;
        }
    }
    Ok(())
}

/// Sets or clears `O_NONBLOCK`.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: fcntl(F_GETFL/F_SETFL) on a live borrowed descriptor has no
    // memory effects.
    unsafe {
        let flags = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        let new = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        if new != flags {
            cvt(libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, new))?;
        }
    }
    Ok(())
}

fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

fn open_dev_null() -> io::Result<OwnedFd> {
    // std opens with O_CLOEXEC on every Unix.
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?
        .into())
}

/// Puts `/dev/null` on `target`, closing whatever was there, atomically.
fn null_onto(target: RawFd) -> io::Result<()> {
    let null = open_dev_null()?;
    if null.as_raw_fd() != target {
        // SAFETY: both descriptors are valid; dup2 replaces `target` in one
        // step and the copy on `target` is not close-on-exec, which does not
        // matter: children get the connection on 0 and 1 and inherit 2.
        cvt(unsafe { libc::dup2(null.as_raw_fd(), target) })?;
    } else {
        // It landed on `target` itself: keep it open there, inheritable.
        set_cloexec(std::os::fd::AsFd::as_fd(&null), false)?;
        let _ = std::os::fd::IntoRawFd::into_raw_fd(null);
    }
    Ok(())
}

/// Releases the descriptors the server was started with: stdin always,
/// stdout unless `keep_stdout`. The slots are filled with `/dev/null`, and a
/// closed stderr gets `/dev/null` too, so that a later socket can never be
/// numbered 0, 1 or 2 and be mistaken for a standard descriptor.
pub fn detach_stdio(keep_stdout: bool) -> io::Result<()> {
    null_onto(0)?;
    if !keep_stdout {
        null_onto(1)?;
    }
    if !is_open(2) {
        null_onto(2)?;
    }
    Ok(())
}

/// Writes `line` to stdout, then releases stdout (for `-1`): the reader sees
/// the line followed by end of file.
pub fn notify_and_close_stdout(line: &[u8]) -> io::Result<()> {
    let mut rest = line;
    while !rest.is_empty() {
        // SAFETY: `rest` is a live byte slice of the given length.
        let n = unsafe { libc::write(1, rest.as_ptr().cast(), rest.len()) };
        match cvt(n) {
            Ok(n) => rest = &rest[n as usize..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    null_onto(1)
}

/// A pipe whose two ends are close-on-exec and non-blocking.
pub fn pipe_cloexec_nonblocking() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    cfg_if::cfg_if! {
        if #[cfg(target_vendor = "apple")] {
            // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
            cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
        } else {
            // SAFETY: `fds` has room for the two descriptors pipe2(2) writes.
            cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
        }
    }
    // SAFETY: pipe succeeded, so both descriptors are open and owned by
    // nobody else.
    let (r, w) = unsafe {
        use std::os::fd::FromRawFd;
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    if cfg!(target_vendor = "apple") {
        for fd in [&r, &w] {
            set_cloexec(std::os::fd::AsFd::as_fd(fd), true)?;
            set_nonblocking(std::os::fd::AsFd::as_fd(fd), true)?;
        }
    }
    Ok((r, w))
}

/// Where the server's own descriptors begin, after
/// [`reserve_inherited`]: every number below is a standard descriptor,
/// one the parent passed on, or a `/dev/null` placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnFrom(pub RawFd);

/// The descriptors [`reserve_inherited`] leaves free under the soft
/// `RLIMIT_NOFILE`, at least, for the server's own (the listening socket,
/// the signal and wake-up descriptors, connections in flight, and room to
/// accept).
const HEADROOM: usize = 256;

/// Descriptors scanned per poll(2) call by [`reserve_inherited`].
const SCAN_CHUNK: usize = 1024;

/// The highest descriptor number worth scanning: the soft limit, or a
/// million where there is none.
fn scan_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is writable storage for one rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1 << 20;
    }
    usize::try_from(lim.rlim_cur).map_or(1 << 20, |n| n.min(1 << 20))
}

/// Called first thing, before the program opens anything: finds the
/// descriptors the parent left open above 2 (children inherit those, as
/// from the C server, except on Apple systems: spawn.rs), and fills every
/// free number below the highest of them with a close-on-exec
/// `/dev/null`. From then on every descriptor the program opens,
/// connections included, is numbered at or above the returned bound, so
/// that a child can close them all with one action before its exec
/// (spawn.rs), and keep what the parent passed. Where that would leave
/// fewer than 256 numbers under the soft `RLIMIT_NOFILE` (a parent that
/// passed a descriptor close to it), nothing is filled.
///
/// The cost is one copy of `/dev/null` per free number below the highest
/// descriptor passed on: nothing for a parent that passes only 0 to 2.
pub fn reserve_inherited() -> io::Result<OwnFrom> {
    let highest = highest_open()?;
    // Placeholders must leave room under the descriptor limit for the
    // server itself; without them, a descriptor of the server's that
    // lands below `highest` is closed at the exec only (as before).
    let room = (highest as usize).saturating_add(HEADROOM) <= scan_limit();
    if room && (3..highest).any(|fd| !is_open(fd)) {
        // One /dev/null, copied onto every free number in turn: each copy
        // takes the lowest free number, until one lands above `highest`.
        let null = open_dev_null()?;
        loop {
            // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor, owned here
            // (left open on purpose, or closed just below).
            let fd = cvt(unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
            if fd > highest {
                // SAFETY: `fd` was just made and is owned by nothing else.
                unsafe { libc::close(fd) };
                break;
            }
        }
        if null.as_raw_fd() < highest {
            // It took the first free number itself: it stays there.
            let _ = std::os::fd::IntoRawFd::into_raw_fd(null);
        }
    }
    Ok(OwnFrom(highest + 1))
}

/// The highest open descriptor above 2, or 2. Where `/proc/self/fd` lists
/// the open descriptors (Linux, Android, illumos, Solaris), it is read:
/// a few system calls. Elsewhere poll(2) is asked about each number in
/// turn, a chunk at a time, up to the soft `RLIMIT_NOFILE` (a descriptor
/// above it, left by a parent that lowered the limit after opening it, is
/// not seen): some 0.3 ms for 20,000 numbers.
fn highest_open() -> io::Result<RawFd> {
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        let listed: Vec<RawFd> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        // The directory's own descriptor was listed too, and is closed
        // now: only what is still open counts.
        return Ok(listed
            .into_iter()
            .filter(|&fd| fd > 2 && is_open(fd))
            .max()
            .unwrap_or(2));
    }
    let limit = scan_limit();
    let mut highest: RawFd = 2;
    let mut fds = Vec::with_capacity(SCAN_CHUNK.min(limit));
    let mut start = 3;
    while start < limit {
        let end = (start + SCAN_CHUNK).min(limit);
        fds.clear();
        fds.extend((start..end).map(|fd| libc::pollfd {
            fd: fd as RawFd,
            events: 0,
            revents: 0,
        }));
        // SAFETY: `fds` is a live array of `fds.len()` pollfd records;
        // a timeout of 0 returns at once.
        cvt(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) })?;
        if let Some(open) = fds.iter().rev().find(|p| p.revents & libc::POLLNVAL == 0) {
            highest = open.fd;
        }
        start = end;
    }
    Ok(highest)
}

/// Puts a close-on-exec `/dev/null` on `target`, closing whatever was
/// there: a number the server keeps occupied, which no child receives.
pub fn placeholder_onto(target: RawFd) -> io::Result<()> {
    let null = open_dev_null()?;
    if null.as_raw_fd() != target {
        // SAFETY: both descriptors are valid; `null` is closed on return.
        // This runs before the program has threads, so no spawn can see
        // the copy before it is made close-on-exec (there is no dup3 on
        // Apple systems).
        cvt(unsafe { libc::dup2(null.as_raw_fd(), target) })?;
        // SAFETY: `target` was just made a valid descriptor.
        set_cloexec(unsafe { BorrowedFd::borrow_raw(target) }, true)?;
    } else {
        let _ = std::os::fd::IntoRawFd::into_raw_fd(null);
    }
    Ok(())
}

/// Puts `fd` on each of `targets` for the program this process execs
/// into (s6-ipcclient's 6 and 7, the binder's 0): each copy inherited
/// (not close-on-exec), whatever was there closed. `fd` itself is closed
/// unless it is one of the targets.
pub fn hand_over(fd: OwnedFd, targets: &[RawFd]) -> io::Result<()> {
    for &target in targets {
        if target != fd.as_raw_fd() {
            // SAFETY: `fd` is live; dup2 closes whatever `target` was,
            // which no other part of this process owns once it execs.
            cvt(unsafe { libc::dup2(fd.as_raw_fd(), target) })?;
        }
        // SAFETY: `target` is `fd` or was just made a copy of it.
        set_cloexec(unsafe { BorrowedFd::borrow_raw(target) }, false)?;
    }
    if targets.contains(&fd.as_raw_fd()) {
        // It is one of the copies handed over: not to be closed.
        let _ = std::os::fd::IntoRawFd::into_raw_fd(fd);
    }
    Ok(())
}
