//! NetBSD: `getsockopt(fd, 0, LOCAL_PEEREID)` fills a
//! `struct unpcbid { unp_pid, unp_euid, unp_egid }` with the peer's pid and
//! effective ids at `connect()` (unix(4)); getpeereid(3) reads the same
//! struct, so the ids and the pid come from this one call.

use std::io;
use std::os::fd::BorrowedFd;

use super::{Credentials, Groups};
use crate::sys::getsockopt;

pub const SUPPORTED: bool = true;
pub const MECHANISM: &str = "LOCAL_PEEREID";
pub const GROUPS_MECHANISM: Option<&str> = None;
pub const MAX_KNOWN_GROUPS: usize = 0;

/// No groups are read.
pub fn groups_room() -> usize {
    0
}

/// The level of the local-domain socket options: NetBSD's <sys/un.h> names
/// none (FreeBSD's and Apple's call it SOL_LOCAL), and unix(4) passes 0.
const SOL_LOCAL: libc::c_int = 0;

pub fn peer(fd: BorrowedFd<'_>, _groups: Option<&mut Groups>) -> io::Result<Credentials> {
    // Non-root values, in case the call succeeds without writing.
    let init = libc::unpcbid {
        unp_pid: 0,
        unp_euid: libc::uid_t::MAX,
        unp_egid: libc::gid_t::MAX,
    };
    // SAFETY: LOCAL_PEEREID writes a `struct unpcbid` (unix(4)), all
    // integers.
    let id = unsafe { getsockopt(fd, SOL_LOCAL, libc::LOCAL_PEEREID, init) }?;
    Ok(Credentials {
        uid: id.unp_euid,
        gid: id.unp_egid,
        pid: (id.unp_pid > 0).then_some(id.unp_pid),
    })
}
