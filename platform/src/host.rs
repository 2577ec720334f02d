//! Facts about and controls of the running system that the tests and tools
//! need: whether /proc describes processes, whether abstract socket
//! addresses exist, and a few process controls that only some systems
//! offer (another process's descriptor limit, becoming a subreaper).
//!
//! The server itself uses none of this, and only a build with the
//! `test-support` feature has it. Each fact is a constant and each
//! control returns `ErrorKind::Unsupported` where the system lacks it, so
//! that a test can skip visibly instead of being compiled out.

use std::io;

use crate::cvt;

/// Whether the C library's `posix_spawn` lets other threads spawn while one
/// waits for its child's exec. musl's does not: it holds a process-wide
/// lock (`__abort_lock`) across the clone, which returns only once the
/// child has exec'd, so a child stopped before its exec stops every spawn
/// of the process, and spawns never overlap.
pub const SPAWNS_OVERLAP: bool = cfg!(not(target_env = "musl"));

cfg_if::cfg_if! {
    if #[cfg(any(target_os = "linux", target_os = "android"))] {
        /// Whether `/proc/PID/fd` (one entry per open descriptor, named by
        /// its number), `/proc/PID/stat` (state as field 3, parent as field
        /// 4, utime and stime as fields 14 and 15, in clock ticks) and
        /// `/proc/PID/status` (`Uid:`, `Gid:`, `Groups:` and `VmRSS:`
        /// lines) exist as the tests read them.
        pub const PROCFS: bool = true;

        /// Whether Unix sockets can be bound to abstract names (a leading
        /// NUL in `sun_path`, no file behind it).
        pub const ABSTRACT_ADDRESSES: bool = true;

        /// Sets the soft `RLIMIT_NOFILE` of process `pid` (this one or
        /// another), keeping its hard limit.
        pub fn set_nofile_limit(pid: libc::pid_t, soft: u64) -> io::Result<()> {
            let mut old = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: `old` is writable storage for one rlimit; a null new
            // limit only reads.
            cvt(unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) })?;
            let new = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: old.rlim_max,
            };
            // SAFETY: `new` is a live rlimit; the old value is not asked for.
            cvt(unsafe {
                libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut())
            })
            .map(drop)
        }

        /// Makes this process the reaper of its orphaned descendants: they
        /// are reparented to it, not to init, and it can wait for them.
        pub fn become_child_subreaper() -> io::Result<()> {
            // SAFETY: prctl with these arguments only sets a flag of this
            // process; the unused arguments are zero as required.
            cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
        }
    } else if #[cfg(any(target_os = "freebsd", target_os = "dragonfly"))] {
        /// Whether `/proc/PID/{fd,stat,status}` exist as the tests read
        /// them (Linux's layout; FreeBSD's procfs, when mounted, differs).
        pub const PROCFS: bool = false;

        /// Whether Unix sockets can be bound to abstract names.
        pub const ABSTRACT_ADDRESSES: bool = false;

        /// Setting another process's descriptor limit needs prlimit(2).
        pub fn set_nofile_limit(_pid: libc::pid_t, _soft: u64) -> io::Result<()> {
            Err(unsupported("setting another process's descriptor limit"))
        }

        /// Makes this process the reaper of its orphaned descendants
        /// (procctl(PROC_REAP_ACQUIRE)).
        pub fn become_child_subreaper() -> io::Result<()> {
            // SAFETY: PROC_REAP_ACQUIRE on this process takes no data (a
            // null pointer) and only sets a flag of this process.
            cvt(unsafe {
                libc::procctl(
                    libc::P_PID,
                    libc::getpid() as libc::id_t,
                    libc::PROC_REAP_ACQUIRE,
                    std::ptr::null_mut(),
                )
            })
            .map(drop)
        }
    } else {
        /// Whether `/proc/PID/{fd,stat,status}` exist as the tests read
        /// them (Linux's layout).
        pub const PROCFS: bool = false;

        /// Whether Unix sockets can be bound to abstract names.
        pub const ABSTRACT_ADDRESSES: bool = false;

        /// Setting another process's descriptor limit needs prlimit(2).
        pub fn set_nofile_limit(_pid: libc::pid_t, _soft: u64) -> io::Result<()> {
            Err(unsupported("setting another process's descriptor limit"))
        }

        /// Becoming a subreaper needs prctl(2) or procctl(2).
        pub fn become_child_subreaper() -> io::Result<()> {
            Err(unsupported("becoming a child subreaper"))
        }
    }
}

/// Sets this process's supplementary groups to exactly `list`
/// (setgroups(2)). Allocates nothing, so it may run between fork and exec.
/// On the BSDs the first entry becomes the effective gid: callers that care
/// put it first.
pub fn set_groups(list: &[libc::gid_t]) -> io::Result<()> {
    crate::sys::setgroups(list)
}

/// Raises this process's soft `RLIMIT_NOFILE` to at least `n`, or to the
/// hard limit if that is lower; never lowers it.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on some systems, i64 on others
pub fn raise_nofile_limit(n: u64) -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is writable storage for one rlimit.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    let want = n.min(libc::rlim_t::MAX as u64) as libc::rlim_t;
    if lim.rlim_cur < want {
        lim.rlim_cur = want.min(lim.rlim_max);
        // SAFETY: `lim` is a live rlimit.
        cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    }
    Ok(())
}

#[allow(dead_code)] // not every system lacks something
fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is not supported on this system"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_nofile_limit_works_or_says_unsupported() {
        // SAFETY: getpid cannot fail and has no memory effects.
        let me = unsafe { libc::getpid() };
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is writable storage for one rlimit.
        cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }).unwrap();
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
        let soft = lim.rlim_cur as u64;
        if let Err(e) = set_nofile_limit(me, soft) {
            assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}");
        }
    }
}
