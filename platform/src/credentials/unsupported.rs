//! Every other target: there is no known way to ask the kernel who the peer
//! is, so every lookup fails. It fails closed: no identity is ever reported.

use std::io;
use std::os::fd::BorrowedFd;

use super::{Credentials, Groups};

pub const SUPPORTED: bool = false;
pub const MECHANISM: &str = "none";
pub const GROUPS_MECHANISM: Option<&str> = None;
pub const MAX_KNOWN_GROUPS: usize = 0;

/// No groups are read.
pub fn groups_room() -> usize {
    0
}

pub fn peer(_fd: BorrowedFd<'_>, _groups: Option<&mut Groups>) -> io::Result<Credentials> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "peer credentials lookup is not supported on this platform, use -P",
    ))
}
