//! DragonFly: `getpeereid(fd, &euid, &egid)` (over `LOCAL_PEERCRED`, whose
//! `struct xucred` has no pid there), so the pid is never known; asked for
//! the groups, `getsockopt(fd, 0, LOCAL_PEERCRED)` itself: `cr_groups[0]`
//! is the effective gid and the supplementary groups follow (known only if
//! the array is not full: xucred_groups). With the `force-getpeereid`
//! feature, the same backend runs on Linux over libbsd's `getpeereid()`,
//! and neither the pid nor the groups are known there.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{Credentials, Groups};
use crate::cvt;

#[cfg(not(feature = "force-getpeereid"))]
use libc::getpeereid;

// The libc crate declares getpeereid only where the C library has it;
// on Linux it is libbsd's (Debian's libbsd-dev), built on SO_PEERCRED.
#[cfg(feature = "force-getpeereid")]
#[link(name = "bsd")]
extern "C" {
    fn getpeereid(fd: libc::c_int, euid: *mut libc::uid_t, egid: *mut libc::gid_t) -> libc::c_int;
}

pub const SUPPORTED: bool = true;
pub const MECHANISM: &str = "getpeereid";
#[cfg(feature = "force-getpeereid")]
pub const GROUPS_MECHANISM: Option<&str> = None;
#[cfg(feature = "force-getpeereid")]
pub const MAX_KNOWN_GROUPS: usize = 0;

/// The array of struct xucred (DragonFly).
pub fn groups_room() -> usize {
    16
}
#[cfg(not(feature = "force-getpeereid"))]
pub const GROUPS_MECHANISM: Option<&str> = Some("LOCAL_PEERCRED");
/// The array holds the effective gid and 15 more; a full one may be cut.
#[cfg(not(feature = "force-getpeereid"))]
pub const MAX_KNOWN_GROUPS: usize = 16 - 2;

/// The supplementary groups from DragonFly's `struct xucred`.
#[cfg(not(feature = "force-getpeereid"))]
fn peer_groups(fd: BorrowedFd<'_>, groups: &mut Groups) {
    // SAFETY: xucred is integers, an array of them and a padding pointer;
    // all zeroes (no groups: unknown) is a valid value.
    let init: libc::xucred = unsafe { std::mem::zeroed() };
    // SAFETY: LOCAL_PEERCRED writes a `struct xucred` (unix(4)), of which
    // any bit pattern is a value.
    let got = unsafe { crate::sys::getsockopt(fd, 0, libc::LOCAL_PEERCRED, init) };
    if let Ok(cred) = got {
        if cred.cr_version == libc::XUCRED_VERSION {
            super::xucred_groups(cred.cr_ngroups, &cred.cr_groups, groups);
        }
    }
}

#[cfg(feature = "force-getpeereid")]
fn peer_groups(_fd: BorrowedFd<'_>, _groups: &mut Groups) {}

pub fn peer(fd: BorrowedFd<'_>, groups: Option<&mut Groups>) -> io::Result<Credentials> {
    // Non-root values, in case the call succeeds without writing.
    let mut uid = libc::uid_t::MAX;
    let mut gid = libc::gid_t::MAX;
    // SAFETY: both out-pointers point to live, writable locals of the exact
    // types getpeereid(3) takes; `fd` is a live borrowed descriptor.
    cvt(unsafe { getpeereid(fd.as_raw_fd(), &mut uid, &mut gid) })?;
    if let Some(groups) = groups {
        peer_groups(fd, groups);
    }
    Ok(Credentials {
        uid,
        gid,
        pid: None,
    })
}
