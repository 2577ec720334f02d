//! A stand-in for FreeBSD's `LOCAL_PEERCRED` on Linux, so that the
//! local_peercred backend runs under the whole suite (`force-xucred`):
//! the same `struct xucred` as FreeBSD's, filled as FreeBSD's kernel fills
//! it, from SO_PEERCRED and SO_PEERGROUPS: the effective gid first, then
//! the supplementary groups, at most `XU_NGROUPS` in all, `cr_ngroups`
//! counting what was copied.

use std::io;
use std::os::fd::BorrowedFd;

use super::so_peergroups::peer_groups;
use super::Groups;

pub const XU_NGROUPS: libc::c_int = 16;
pub const XUCRED_VERSION: libc::c_uint = 0;

#[allow(non_camel_case_types)]
#[derive(Clone, Copy)]
#[repr(C)]
pub union __c_anonymous_cr_pid {
    pub cr_pid: libc::pid_t,
    _cr_unused1: *mut libc::c_void,
}

/// FreeBSD's <sys/ucred.h> layout, with the libc crate's names.
#[allow(non_camel_case_types, non_snake_case)]
#[derive(Clone, Copy)]
#[repr(C)]
pub struct xucred {
    pub cr_version: libc::c_uint,
    pub cr_uid: libc::uid_t,
    pub cr_ngroups: libc::c_short,
    pub cr_groups: [libc::gid_t; XU_NGROUPS as usize],
    pub cr_pid__c_anonymous_union: __c_anonymous_cr_pid,
}

/// What `getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED)` answers on FreeBSD: the
/// peer's effective uid, its effective gid and as many supplementary
/// groups as fit in the array (the kernel copies `min(ngroups,
/// XU_NGROUPS)` and says how many it copied), its pid.
pub fn local_peercred(fd: BorrowedFd<'_>, init: xucred) -> io::Result<xucred> {
    let ucred_init = libc::ucred {
        pid: 0,
        uid: libc::uid_t::MAX,
        gid: libc::gid_t::MAX,
    };
    // SAFETY: SO_PEERCRED writes a `struct ucred` (socket(7)), all integers.
    let cred =
        unsafe { crate::sys::getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, ucred_init) }?;
    // The stand-in may allocate: only tests build it.
    let mut supplementary = Groups::new();
    peer_groups(fd, &mut supplementary);
    let supplementary = supplementary
        .get()
        .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "SO_PEERGROUPS"))?;
    let mut out = init;
    out.cr_uid = cred.uid;
    out.cr_groups[0] = cred.gid;
    let copied = supplementary.len().min(XU_NGROUPS as usize - 1);
    out.cr_groups[1..=copied].copy_from_slice(&supplementary[..copied]);
    out.cr_ngroups = (1 + copied) as libc::c_short;
    out.cr_pid__c_anonymous_union = __c_anonymous_cr_pid { cr_pid: cred.pid };
    Ok(out)
}
