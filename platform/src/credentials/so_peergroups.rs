//! Linux and Android: `getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS)` (Linux
//! 4.13 and later) fills an array of `gid_t` with the peer's supplementary
//! groups at `connect()`; `ERANGE` says the array was too small and sets
//! the length to what is needed; `ENOPROTOOPT` means an older kernel,
//! which does not say (socket(7)). Also what the stand-ins for other
//! systems' records read on Linux.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::Groups;

/// Not in the libc crate: <asm-generic/socket.h>, and SPARC's own.
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_PEERGROUPS: libc::c_int = 0x3d;
#[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
const SO_PEERGROUPS: libc::c_int = 59;

#[allow(dead_code)] // only the Linux backend names it
pub const MECHANISM: &str = "SO_PEERGROUPS";

/// Fills `out` with the peer's supplementary groups, or leaves them unknown
/// where the kernel does not say. The storage has room for `NGROUPS_MAX`
/// groups, so the kernel's list always fits; should it not, it is grown
/// once and asked again.
pub fn peer_groups(fd: BorrowedFd<'_>, out: &mut Groups) {
    for _ in 0..2 {
        let list = out.storage();
        let room = list.capacity();
        let Ok(mut len) = libc::socklen_t::try_from(room * mem::size_of::<libc::gid_t>()) else {
            return;
        };
        // SAFETY: the pointer and `len` describe the list's spare capacity,
        // `room` writable gids; `fd` is a live borrowed descriptor. The
        // kernel writes at most `len` bytes.
        let ret = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                list.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if ret == -1 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE) {
                let needed = len as usize / mem::size_of::<libc::gid_t>();
                list.reserve(needed.saturating_sub(list.len()));
                continue;
            }
            // ENOPROTOOPT (before Linux 4.13) or anything else: unknown.
            return;
        }
        let bytes = len as usize;
        if bytes % mem::size_of::<libc::gid_t>() != 0
            || bytes / mem::size_of::<libc::gid_t>() > room
        {
            return;
        }
        // SAFETY: the kernel wrote `bytes` bytes, whole gids, within the
        // capacity checked above; gid_t is an integer, any bits a value.
        unsafe { list.set_len(bytes / mem::size_of::<libc::gid_t>()) };
        out.mark_known();
        return;
    }
}
