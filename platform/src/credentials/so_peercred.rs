//! Linux and Android: `getsockopt(fd, SOL_SOCKET, SO_PEERCRED)` fills a
//! `struct ucred { pid, uid, gid }` with the peer's pid and ids at
//! `connect()` (or at `socketpair()`); a pid of 0 means the kernel has
//! none to give (socket(7)). The groups: `SO_PEERGROUPS`
//! (so_peergroups.rs).

use std::io;
use std::os::fd::BorrowedFd;

use super::{so_peergroups, Credentials, Groups};
use crate::sys::getsockopt;

pub const SUPPORTED: bool = true;
pub const MECHANISM: &str = "SO_PEERCRED";
pub const GROUPS_MECHANISM: Option<&str> = Some(so_peergroups::MECHANISM);
pub const MAX_KNOWN_GROUPS: usize = usize::MAX;

/// Linux's NGROUPS_MAX (<linux/limits.h>), what SO_PEERGROUPS can give.
pub fn groups_room() -> usize {
    65536
}

pub fn peer(fd: BorrowedFd<'_>, groups: Option<&mut Groups>) -> io::Result<Credentials> {
    // Pre-set to "nobody"-like values so that a call that writes nothing can
    // never make the peer look like root.
    let init = libc::ucred {
        pid: 0,
        uid: libc::uid_t::MAX,
        gid: libc::gid_t::MAX,
    };
    // SAFETY: SO_PEERCRED writes a `struct ucred` (socket(7)), all integers.
    let cred = unsafe { getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, init) }?;
    if let Some(groups) = groups {
        so_peergroups::peer_groups(fd, groups);
    }
    Ok(Credentials {
        uid: cred.uid,
        gid: cred.gid,
        pid: (cred.pid > 0).then_some(cred.pid),
    })
}
