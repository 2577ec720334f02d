//! macOS, iOS and the other Apple systems: `getpeereid(fd, &euid, &egid)`
//! for the ids, then `getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID)` for the
//! peer's pid, a `pid_t` (unix(4), <sys/un.h>).
//!
//! The kernel answers LOCAL_PEERPID with the last process to use the peer's
//! socket, which is the one that connected unless it handed the socket on.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::Credentials;
use crate::cvt;
use crate::sys::getsockopt;

pub const SUPPORTED: bool = true;
pub const MECHANISM: &str = "getpeereid, LOCAL_PEERPID";

pub fn peer(fd: BorrowedFd<'_>) -> io::Result<Credentials> {
    // Non-root values, in case the call succeeds without writing.
    let mut uid = libc::uid_t::MAX;
    let mut gid = libc::gid_t::MAX;
    // SAFETY: both out-pointers point to live, writable locals of the exact
    // types getpeereid(3) takes; `fd` is a live borrowed descriptor.
    cvt(unsafe { libc::getpeereid(fd.as_raw_fd(), &mut uid, &mut gid) })?;
    // Starting from 0, "unknown", should the call succeed without writing.
    // SAFETY: LOCAL_PEERPID writes a `pid_t` (<sys/un.h>), an integer.
    let pid: libc::pid_t = unsafe { getsockopt(fd, libc::SOL_LOCAL, libc::LOCAL_PEERPID, 0) }?;
    Ok(Credentials {
        uid,
        gid,
        pid: (pid > 0).then_some(pid),
    })
}
