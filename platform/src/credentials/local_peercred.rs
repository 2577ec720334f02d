//! FreeBSD: `getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED)` fills a
//! `struct xucred` with the ids the peer had at `connect()` and, since
//! FreeBSD 13, its pid in `cr_pid` (0 when unknown) (unix(4)). The ids,
//! the pid and the groups come from this one call: `cr_uid` is the
//! effective uid, `cr_groups[0]` the effective gid, which is all
//! getpeereid(3) reads there, and the supplementary groups follow, up to
//! `cr_ngroups` (known only if the array is not full: xucred_groups). With
//! the `force-xucred` feature the same backend runs on Linux over a
//! stand-in for the call (xucred_shim.rs).

use std::io;
use std::os::fd::BorrowedFd;

use super::{xucred_groups, Credentials, Groups};

#[cfg(feature = "force-xucred")]
use super::xucred_shim::{__c_anonymous_cr_pid, xucred, XUCRED_VERSION, XU_NGROUPS};
#[cfg(not(feature = "force-xucred"))]
use libc::{__c_anonymous_cr_pid, xucred, XUCRED_VERSION, XU_NGROUPS};

pub const SUPPORTED: bool = true;
pub const MECHANISM: &str = "LOCAL_PEERCRED";
pub const GROUPS_MECHANISM: Option<&str> = Some("LOCAL_PEERCRED");
/// The array holds the effective gid and 15 more; a full one may be cut.
pub const MAX_KNOWN_GROUPS: usize = XU_NGROUPS as usize - 2;

/// The array of struct xucred.
pub fn groups_room() -> usize {
    XU_NGROUPS as usize
}

/// The record of the peer, starting from `init`.
#[cfg(not(feature = "force-xucred"))]
fn local_peercred(fd: BorrowedFd<'_>, init: xucred) -> io::Result<xucred> {
    // SAFETY: LOCAL_PEERCRED writes a `struct xucred` (unix(4)): integers,
    // an array of them, and a union of a pid_t with pointer-sized padding,
    // of which any bit pattern is a value.
    unsafe { crate::sys::getsockopt(fd, libc::SOL_LOCAL, libc::LOCAL_PEERCRED, init) }
}
#[cfg(feature = "force-xucred")]
use super::xucred_shim::local_peercred;

pub fn peer(fd: BorrowedFd<'_>, groups: Option<&mut Groups>) -> io::Result<Credentials> {
    // Non-root values, in case the call succeeds without writing.
    let init = xucred {
        cr_version: XUCRED_VERSION,
        cr_uid: libc::uid_t::MAX,
        cr_ngroups: 0,
        cr_groups: [libc::gid_t::MAX; XU_NGROUPS as usize],
        cr_pid__c_anonymous_union: __c_anonymous_cr_pid { cr_pid: 0 },
    };
    let cred = local_peercred(fd, init)?;
    if cred.cr_version != XUCRED_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "LOCAL_PEERCRED returned struct xucred version {}",
                cred.cr_version
            ),
        ));
    }
    if let Some(groups) = groups {
        xucred_groups(cred.cr_ngroups, &cred.cr_groups, groups);
    }
    // SAFETY: reads the union's `cr_pid`, a plain pid_t which every bit
    // pattern is; it was written by the kernel or pre-set above.
    let pid = unsafe { cred.cr_pid__c_anonymous_union.cr_pid };
    Ok(Credentials {
        uid: cred.cr_uid,
        gid: cred.cr_groups[0],
        pid: (pid > 0).then_some(pid),
    })
}
