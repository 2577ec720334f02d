//! Every other target: there is no known way to ask the kernel who the peer
//! is, so every lookup fails. It fails closed: no identity is ever reported.

use std::io;
use std::os::fd::BorrowedFd;

use super::Credentials;

pub const SUPPORTED: bool = false;
pub const MECHANISM: &str = "none";

pub fn peer(_fd: BorrowedFd<'_>) -> io::Result<Credentials> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "peer credentials lookup is not supported on this platform, use -P",
    ))
}
