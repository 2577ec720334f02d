//! Linux and Android: `getsockopt(fd, SOL_SOCKET, SO_PEERCRED)` fills a
//! `struct ucred { pid, uid, gid }` with the ids the peer had at `connect()`
//! (or at `socketpair()`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::Credentials;
use crate::cvt;

pub const SUPPORTED: bool = true;
pub const MECHANISM: &str = "SO_PEERCRED";

pub fn peer(fd: BorrowedFd<'_>) -> io::Result<Credentials> {
    // Pre-set to "nobody"-like values so that a call that writes nothing can
    // never make the peer look like root.
    let mut cred = libc::ucred {
        pid: 0,
        uid: libc::uid_t::MAX,
        gid: libc::gid_t::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a valid, writable `struct ucred` and `len` holds its
    // exact size, which is what SO_PEERCRED expects; `fd` is a live descriptor
    // borrowed for the duration of the call.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    if len as usize != std::mem::size_of::<libc::ucred>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "SO_PEERCRED returned a short struct ucred",
        ));
    }
    Ok(Credentials {
        uid: cred.uid,
        gid: cred.gid,
    })
}
