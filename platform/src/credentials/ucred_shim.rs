//! A stand-in for illumos's `getpeerucred()` and `ucred_*()` on Linux, so
//! that the getpeerucred backend runs under the whole suite
//! (`force-getpeerucred`). Same signatures and conventions as illumos
//! (getpeerucred(3C), ucred_get(3C)), built on SO_PEERCRED and
//! SO_PEERGROUPS. With
//! `test-support` it counts the `ucred_t` alive, so a test sees one that a
//! lookup did not free.

use std::os::fd::BorrowedFd;
#[cfg(feature = "test-support")]
use std::sync::atomic::{AtomicIsize, Ordering};

/// What getpeerucred allocates; opaque to the backend, as on illumos.
#[allow(non_camel_case_types)]
pub struct ucred_t {
    cred: libc::ucred,
    /// The supplementary groups, `None` where the kernel did not say.
    groups: Option<Vec<libc::gid_t>>,
}

/// Allocations minus frees. Only the tests read it, so only a build for
/// them keeps it.
#[cfg(feature = "test-support")]
static LIVE: AtomicIsize = AtomicIsize::new(0);

#[cfg(feature = "test-support")]
pub fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// Adds `delta` to the live count, in a build for the tests.
fn count(delta: isize) {
    #[cfg(feature = "test-support")]
    LIVE.fetch_add(delta, Ordering::SeqCst);
    #[cfg(not(feature = "test-support"))]
    let _ = delta;
}

/// 0 and `*ucred` set, or -1 and errno set; allocates only when `*ucred` is
/// null, and nothing on failure, as illumos does.
///
/// # Safety
///
/// `ucred` points to a writable pointer that is null or was returned by an
/// earlier call.
pub unsafe extern "C" fn getpeerucred(fd: libc::c_int, ucred: *mut *mut ucred_t) -> libc::c_int {
    // SAFETY: the caller lends `fd` for the duration of this call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let init = libc::ucred {
        pid: 0,
        uid: libc::uid_t::MAX,
        gid: libc::gid_t::MAX,
    };
    // SAFETY: SO_PEERCRED writes a `struct ucred` (socket(7)), all integers.
    let got = unsafe { crate::sys::getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, init) };
    let cred = match got {
        Ok(cred) => cred,
        Err(e) => {
            // A short answer is an error with no errno of its own, and the
            // caller reads errno after -1.
            nix::errno::Errno::set_raw(e.raw_os_error().unwrap_or(libc::EINVAL));
            return -1;
        }
    };
    // SAFETY: the caller guarantees `ucred` points to a writable pointer.
    let slot = unsafe { &mut *ucred };
    let mut peer_groups = super::Groups::new();
    super::so_peergroups::peer_groups(fd, &mut peer_groups);
    let groups = peer_groups.get().map(<[_]>::to_vec);
    if slot.is_null() {
        *slot = Box::into_raw(Box::new(ucred_t { cred, groups }));
        count(1);
    } else {
        // SAFETY: a non-null `*ucred` was returned by an earlier call (the
        // caller's guarantee) and not freed, so it is a live `ucred_t`.
        unsafe { **slot = ucred_t { cred, groups } };
    }
    0
}

/// # Safety
///
/// `ucred` was returned by [`getpeerucred`] and is not used again.
pub unsafe extern "C" fn ucred_free(ucred: *mut ucred_t) {
    if !ucred.is_null() {
        // SAFETY: allocated by Box::into_raw in getpeerucred, freed once.
        drop(unsafe { Box::from_raw(ucred) });
        count(-1);
    }
}

/// # Safety
///
/// `ucred` is a live `ucred_t` from [`getpeerucred`].
pub unsafe extern "C" fn ucred_geteuid(ucred: *const ucred_t) -> libc::uid_t {
    // SAFETY: see above.
    unsafe { (*ucred).cred.uid }
}

/// # Safety
///
/// `ucred` is a live `ucred_t` from [`getpeerucred`].
pub unsafe extern "C" fn ucred_getegid(ucred: *const ucred_t) -> libc::gid_t {
    // SAFETY: see above.
    unsafe { (*ucred).cred.gid }
}

/// The number of supplementary groups, with `*groups` pointing at them
/// inside the `ucred_t`; -1 and EINVAL when not available, as on illumos.
///
/// # Safety
///
/// `ucred` is a live `ucred_t` from [`getpeerucred`]; `groups` is a
/// writable pointer.
pub unsafe extern "C" fn ucred_getgroups(
    ucred: *const ucred_t,
    groups: *mut *const libc::gid_t,
) -> libc::c_int {
    // SAFETY: see above.
    match unsafe { &(*ucred).groups } {
        Some(list) => {
            // SAFETY: the caller guarantees `groups` is writable.
            unsafe { *groups = list.as_ptr() };
            libc::c_int::try_from(list.len()).unwrap_or(-1)
        }
        None => {
            nix::errno::Errno::set_raw(libc::EINVAL);
            -1
        }
    }
}

/// -1 when unknown, as on illumos (Linux says 0).
///
/// # Safety
///
/// `ucred` is a live `ucred_t` from [`getpeerucred`].
pub unsafe extern "C" fn ucred_getpid(ucred: *const ucred_t) -> libc::pid_t {
    // SAFETY: see above.
    match unsafe { (*ucred).cred.pid } {
        0 => -1,
        pid => pid,
    }
}
