//! illumos and Solaris: `getpeerucred(fd, &ucred)` allocates a `ucred_t`
//! holding the peer's credentials at connect time; `ucred_geteuid()`,
//! `ucred_getegid()` and `ucred_getpid()` read it (each -1 when the value
//! is not available), `ucred_getgroups()` points at its supplementary
//! groups and says how many (-1 when not available), and `ucred_free()`
//! releases it on every path.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;

use super::{Credentials, Groups};
use crate::cvt;

#[cfg(not(feature = "force-getpeerucred"))]
use libc::{
    getpeerucred, ucred_free, ucred_getegid, ucred_geteuid, ucred_getgroups, ucred_getpid, ucred_t,
};
// On Linux, for the tests: the same calls over SO_PEERCRED, counting frees.
#[cfg(feature = "force-getpeerucred")]
use super::ucred_shim::{
    getpeerucred, ucred_free, ucred_getegid, ucred_geteuid, ucred_getgroups, ucred_getpid, ucred_t,
};

pub const SUPPORTED: bool = true;
pub const MECHANISM: &str = "getpeerucred";
pub const GROUPS_MECHANISM: Option<&str> = Some("ucred_getgroups");
pub const MAX_KNOWN_GROUPS: usize = usize::MAX;

/// NGROUPS_MAX, as this system is configured.
pub fn groups_room() -> usize {
    crate::privileges::ngroups_max()
}

/// Owns the `ucred_t` that getpeerucred allocated, and frees it on drop.
struct Ucred(*mut ucred_t);

impl Drop for Ucred {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer was allocated by getpeerucred and is freed
            // exactly once, here.
            unsafe { ucred_free(self.0) };
        }
    }
}

pub fn peer(fd: BorrowedFd<'_>, groups: Option<&mut Groups>) -> io::Result<Credentials> {
    // getpeerucred allocates only when the pointer it is given is null.
    let mut cred = Ucred(ptr::null_mut());
    // SAFETY: `cred.0` is a valid out-pointer initialised to null, as
    // getpeerucred(3C) requires; `fd` is a live borrowed descriptor.
    cvt(unsafe { getpeerucred(fd.as_raw_fd(), &mut cred.0) })?;
    // SAFETY: getpeerucred succeeded, so `cred.0` points to a valid ucred_t,
    // which stays alive until `cred` is dropped at the end of this function.
    let (uid, gid, pid) = unsafe {
        (
            ucred_geteuid(cred.0),
            ucred_getegid(cred.0),
            ucred_getpid(cred.0),
        )
    };
    if uid == libc::uid_t::MAX || gid == libc::gid_t::MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "getpeerucred returned no effective uid or gid",
        ));
    }
    if let Some(groups) = groups {
        let mut list: *const libc::gid_t = ptr::null();
        // SAFETY: `cred.0` is a valid ucred_t (above); `list` is a writable
        // out-pointer, which the call sets to storage inside the ucred_t.
        let n = unsafe { ucred_getgroups(cred.0, &mut list) };
        if let Ok(n) = usize::try_from(n) {
            if n == 0 {
                groups.set(&[]);
            } else if !list.is_null() {
                // SAFETY: ucred_getgroups(3C) says `list` points at `n` gids
                // inside the ucred_t, alive until `cred` is dropped below.
                groups.set(unsafe { std::slice::from_raw_parts(list, n) });
            }
        }
    }
    Ok(Credentials {
        uid,
        gid,
        pid: (pid > 0).then_some(pid),
    })
}
