//! Who is on the other end of a connected Unix stream socket.
//!
//! Every backend answers with the *effective* uid and gid the client had when
//! it called `connect()`, as the kernel recorded them, and the client's pid
//! where the system records one. Exactly one backend is compiled on every
//! target; the fallback fails closed and never reports an identity.

use std::io;
use std::os::fd::AsFd;

/// The client's effective ids, as recorded by the kernel at connect time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    /// The client's pid, where the system records it; `None` when this
    /// system has no way to say, or said it did not know.
    pub pid: Option<libc::pid_t>,
}

cfg_if::cfg_if! {
    if #[cfg(feature = "force-unsupported-credentials")] {
        #[path = "credentials/unsupported.rs"]
        mod backend;
    } else if #[cfg(feature = "force-getpeereid")] {
        // DragonFly's backend on Linux, over libbsd.
        #[path = "credentials/getpeereid.rs"]
        mod backend;
    } else if #[cfg(feature = "force-getpeerucred")] {
        // illumos's backend on Linux, over a counting stand-in.
        #[path = "credentials/getpeerucred.rs"]
        mod backend;
        #[path = "credentials/ucred_shim.rs"]
        mod ucred_shim;
    } else if #[cfg(any(target_os = "linux", target_os = "android"))] {
        #[path = "credentials/so_peercred.rs"]
        mod backend;
    } else if #[cfg(target_vendor = "apple")] {
        #[path = "credentials/local_peerpid.rs"]
        mod backend;
    } else if #[cfg(target_os = "freebsd")] {
        #[path = "credentials/local_peercred.rs"]
        mod backend;
    } else if #[cfg(target_os = "netbsd")] {
        #[path = "credentials/local_peereid.rs"]
        mod backend;
    } else if #[cfg(target_os = "openbsd")] {
        #[path = "credentials/sockpeercred.rs"]
        mod backend;
    } else if #[cfg(target_os = "dragonfly")] {
        #[path = "credentials/getpeereid.rs"]
        mod backend;
    } else if #[cfg(any(target_os = "illumos", target_os = "solaris"))] {
        #[path = "credentials/getpeerucred.rs"]
        mod backend;
    } else {
        #[path = "credentials/unsupported.rs"]
        mod backend;
    }
}

/// Whether [`peer`] can ever succeed on this build. When it is false, every
/// lookup fails with [`io::ErrorKind::Unsupported`] and the server is only
/// usable with `-P`.
pub const SUPPORTED: bool = backend::SUPPORTED;

/// The name of the mechanism this build uses, for `--version` and logs.
pub const MECHANISM: &str = backend::MECHANISM;

/// The credentials of the peer of the connected Unix stream socket `fd`.
pub fn peer<F: AsFd>(fd: &F) -> io::Result<Credentials> {
    backend::peer(fd.as_fd())
}

/// How many `ucred_t` the test stand-in for illumos's `getpeerucred` has
/// allocated and not yet seen freed: a lookup that leaves it changed leaks.
#[cfg(all(feature = "force-getpeerucred", feature = "test-support"))]
pub fn shim_live_ucreds() -> isize {
    ucred_shim::live()
}
