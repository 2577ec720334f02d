//! Everything s6-ipcserver does that differs between operating systems.
//!
//! The rest of the program calls these plain functions and never looks at
//! `cfg(target_os)`: each module picks its backend once, at compile time.

pub mod children;
pub mod credentials;
pub mod fd;
pub mod host;
pub mod privileges;
pub mod signals;
pub mod socket;
pub mod spawn;

use std::io;

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
