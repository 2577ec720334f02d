//! DragonFly: `getpeereid(fd, &euid, &egid)` (over `LOCAL_PEERCRED`, whose
//! `struct xucred` has no pid there), so the pid is never known. With the
//! `force-getpeereid` feature, the same backend runs on Linux over
//! libbsd's `getpeereid()`, and the pid is not known there either.

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
pub const GROUPS_MECHANISM: Option<&str> = None;
pub const MAX_KNOWN_GROUPS: usize = 0;

pub fn peer(fd: BorrowedFd<'_>, _groups: Option<&mut Groups>) -> io::Result<Credentials> {
    // Non-root values, in case the call succeeds without writing.
    let mut uid = libc::uid_t::MAX;
    let mut gid = libc::gid_t::MAX;
    // SAFETY: both out-pointers point to live, writable locals of the exact
    // types getpeereid(3) takes; `fd` is a live borrowed descriptor.
    cvt(unsafe { getpeereid(fd.as_raw_fd(), &mut uid, &mut gid) })?;
    Ok(Credentials {
        uid,
        gid,
        pid: None,
    })
}
