//! FreeBSD: `getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED)` fills a
//! `struct xucred` with the ids the peer had at `connect()` and, since
//! FreeBSD 13, its pid in `cr_pid` (0 when unknown) (unix(4)). The ids and
//! the pid come from this one call: `cr_uid` is the effective uid and
//! `cr_groups[0]` the effective gid, which is all getpeereid(3) reads there.

use std::io;
use std::os::fd::BorrowedFd;

use super::Credentials;
use crate::sys::getsockopt;

pub const SUPPORTED: bool = true;
pub const MECHANISM: &str = "LOCAL_PEERCRED";

pub fn peer(fd: BorrowedFd<'_>) -> io::Result<Credentials> {
    // Non-root values, in case the call succeeds without writing.
    let init = libc::xucred {
        cr_version: libc::XUCRED_VERSION,
        cr_uid: libc::uid_t::MAX,
        cr_ngroups: 0,
        cr_groups: [libc::gid_t::MAX; libc::XU_NGROUPS as usize],
        cr_pid__c_anonymous_union: libc::__c_anonymous_cr_pid { cr_pid: 0 },
    };
    // SAFETY: LOCAL_PEERCRED writes a `struct xucred` (unix(4)): integers,
    // an array of them, and a union of a pid_t with pointer-sized padding,
    // of which any bit pattern is a value.
    let cred = unsafe { getsockopt(fd, libc::SOL_LOCAL, libc::LOCAL_PEERCRED, init) }?;
    if cred.cr_version != libc::XUCRED_VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "LOCAL_PEERCRED returned struct xucred version {}",
                cred.cr_version
            ),
        ));
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
