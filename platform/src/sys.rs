//! The conventions of the C interface that every module of this crate
//! shares, written once: "-1 and errno", the length a `getsockopt` must
//! return, and the count type of `setgroups`.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Turns the C convention "-1 and errno" into an `io::Result`, the same way
/// for every system call in this crate.
pub(crate) fn cvt<T: IsMinusOne>(ret: T) -> io::Result<T> {
    if ret.is_minus_one() {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub(crate) trait IsMinusOne {
    fn is_minus_one(&self) -> bool;
}

impl IsMinusOne for libc::c_int {
    fn is_minus_one(&self) -> bool {
        *self == -1
    }
}

impl IsMinusOne for libc::ssize_t {
    fn is_minus_one(&self) -> bool {
        *self == -1
    }
}

/// `getsockopt(fd, level, name)`, starting from `init`: the value comes
/// back only if the system filled all of it, so that no field of `init`
/// is ever taken for the kernel's. `init` is what the caller would rather
/// see than an identity the kernel did not give (fail closed), should a
/// system ever succeed without writing.
///
/// # Safety
///
/// `T` must be the C type the option `(level, name)` writes, as the
/// system's man page gives it, and every bit pattern of it a valid value
/// (integers and structs of integers).
pub(crate) unsafe fn getsockopt<T: Copy>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    init: T,
) -> io::Result<T> {
    let mut value = init;
    let size = mem::size_of::<T>();
    let mut len =
        libc::socklen_t::try_from(size).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `value` is a live, writable `T` of `len` bytes, and the caller
    // guarantees `T` is what this option writes; `fd` is a live descriptor
    // borrowed for the duration of the call.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    })?;
    if usize::try_from(len).ok() != Some(size) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("getsockopt returned {len} bytes where {size} were expected"),
        ));
    }
    Ok(value)
}

cfg_if::cfg_if! {
    // The count type of setgroups(2), as the libc crate declares it.
    if #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "emscripten",
        target_os = "l4re",
        target_os = "hurd",
        target_os = "fuchsia",
    ))] {
        fn setgroups_count(len: usize) -> io::Result<libc::size_t> {
            Ok(len)
        }
    } else {
        // The BSDs, Apple's systems, illumos and Solaris, and the rest.
        fn setgroups_count(len: usize) -> io::Result<libc::c_int> {
            // A list too long for an int is one no system accepts.
            libc::c_int::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
        }
    }
}

/// Sets this process's supplementary groups to exactly `list`, passed on
/// as it is: on the BSDs and Apple's systems the kernel takes `list[0]`
/// as the effective gid, and callers that care put it first.
///
/// Allocates nothing, on success or failure, so that it may run between
/// fork and exec.
pub(crate) fn setgroups(list: &[libc::gid_t]) -> io::Result<()> {
    let len = setgroups_count(list.len())?;
    // SAFETY: `list` is a live slice of `len` gids, which setgroups only
    // reads.
    cvt(unsafe { libc::setgroups(len, list.as_ptr()) }).map(drop)
}
