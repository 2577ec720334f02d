//! DragonFly: `getpeereid(fd, &euid, &egid)` (over `LOCAL_PEERCRED`, whose
//! `struct xucred` has no pid there), so the pid is never known.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::Credentials;
use crate::cvt;

pub const SUPPORTED: bool = true;
pub const MECHANISM: &str = "getpeereid";

pub fn peer(fd: BorrowedFd<'_>) -> io::Result<Credentials> {
    // Non-root values, in case the call succeeds without writing.
    let mut uid = libc::uid_t::MAX;
    let mut gid = libc::gid_t::MAX;
    // SAFETY: both out-pointers point to live, writable locals of the exact
    // types getpeereid(3) takes; `fd` is a live borrowed descriptor.
    cvt(unsafe { libc::getpeereid(fd.as_raw_fd(), &mut uid, &mut gid) })?;
    Ok(Credentials {
        uid,
        gid,
        pid: None,
    })
}
