//! OpenBSD: `getsockopt(fd, SOL_SOCKET, SO_PEERCRED)` fills a
//! `struct sockpeercred { uid, gid, pid }` (in that order, not Linux's) with
//! the peer's effective ids and pid at `connect()` (getsockopt(2));
//! getpeereid(3) reads the same struct, so all three come from this call.

use std::io;
use std::os::fd::BorrowedFd;

use super::{Credentials, Groups};
use crate::sys::getsockopt;

pub const SUPPORTED: bool = true;
pub const MECHANISM: &str = "SO_PEERCRED (sockpeercred)";
pub const GROUPS_MECHANISM: Option<&str> = None;
pub const MAX_KNOWN_GROUPS: usize = 0;

/// No groups are read.
pub fn groups_room() -> usize {
    0
}

pub fn peer(fd: BorrowedFd<'_>, _groups: Option<&mut Groups>) -> io::Result<Credentials> {
    // Non-root values, in case the call succeeds without writing.
    let init = libc::sockpeercred {
        uid: libc::uid_t::MAX,
        gid: libc::gid_t::MAX,
        pid: 0,
    };
    // SAFETY: OpenBSD's SO_PEERCRED writes a `struct sockpeercred`
    // (getsockopt(2)), all integers.
    let cred = unsafe { getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, init) }?;
    Ok(Credentials {
        uid: cred.uid,
        gid: cred.gid,
        pid: (cred.pid > 0).then_some(cred.pid),
    })
}
