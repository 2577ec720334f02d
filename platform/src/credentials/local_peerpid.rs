//! macOS, iOS and the other Apple systems: `getpeereid(fd, &euid, &egid)`
//! for the ids, then `getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID)` for the
//! peer's pid, a `pid_t` (unix(4), <sys/un.h>), and, when asked for the
//! groups, `getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED)`, a `struct xucred`
//! whose `cr_groups[0]` is the effective gid and the supplementary groups
//! follow (known only if the array is not full: xucred_groups).
//!
//! The kernel answers LOCAL_PEERPID with the last process to use the peer's
//! socket, which is the one that connected unless it handed the socket on.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{xucred_groups, Credentials, Groups};
use crate::cvt;
use crate::sys::getsockopt;

pub const SUPPORTED: bool = true;
pub const MECHANISM: &str = "getpeereid, LOCAL_PEERPID";
pub const GROUPS_MECHANISM: Option<&str> = Some("LOCAL_PEERCRED");
pub const MAX_KNOWN_GROUPS: usize = 16 - 2;

/// The array of struct xucred.
pub fn groups_room() -> usize {
    16
}

pub fn peer(fd: BorrowedFd<'_>, groups: Option<&mut Groups>) -> io::Result<Credentials> {
    // Non-root values, in case the call succeeds without writing.
    let mut uid = libc::uid_t::MAX;
    let mut gid = libc::gid_t::MAX;
    // SAFETY: both out-pointers point to live, writable locals of the exact
    // types getpeereid(3) takes; `fd` is a live borrowed descriptor.
    cvt(unsafe { libc::getpeereid(fd.as_raw_fd(), &mut uid, &mut gid) })?;
    // Starting from 0, "unknown", should the call succeed without writing.
    // SAFETY: LOCAL_PEERPID writes a `pid_t` (<sys/un.h>), an integer.
    let pid: libc::pid_t = unsafe { getsockopt(fd, libc::SOL_LOCAL, libc::LOCAL_PEERPID, 0) }?;
    if let Some(groups) = groups {
        // An empty record, should the call succeed without writing: unknown.
        let init = libc::xucred {
            cr_version: libc::XUCRED_VERSION,
            cr_uid: libc::uid_t::MAX,
            cr_ngroups: 0,
            cr_groups: [libc::gid_t::MAX; 16],
        };
        // SAFETY: LOCAL_PEERCRED writes a `struct xucred` (unix(4)),
        // integers and an array of them.
        match unsafe { getsockopt(fd, libc::SOL_LOCAL, libc::LOCAL_PEERCRED, init) } {
            Ok(cred) if cred.cr_version == libc::XUCRED_VERSION => {
                xucred_groups(cred.cr_ngroups, &cred.cr_groups, groups)
            }
            _ => {}
        }
    }
    Ok(Credentials {
        uid,
        gid,
        pid: (pid > 0).then_some(pid),
    })
}
