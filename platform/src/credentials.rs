//! Who is on the other end of a connected Unix stream socket.
//!
//! Every backend answers with the *effective* uid and gid the client had when
//! it called `connect()`, as the kernel recorded them, the client's pid
//! where the system records one, and its supplementary groups where the
//! system records all of them. Exactly one backend is compiled on every
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

/// The client's supplementary groups at `connect()`, in the order the
/// system gives them, or unknown: where the system does not record them,
/// or its record may have been cut short. Made once, with room for
/// `NGROUPS_MAX` groups, and refilled for every connection, so that a
/// lookup allocates nothing.
#[derive(Debug, Clone)]
pub struct Groups {
    list: Vec<libc::gid_t>,
    known: bool,
}

impl Default for Groups {
    fn default() -> Self {
        Groups::new()
    }
}

impl Groups {
    pub fn new() -> Groups {
        // Room for every group the backend can give (Linux allows 65536,
        // whatever the C library's NGROUPS_MAX says: musl's is 32). Pages a
        // lookup never writes stay out of the resident set.
        let room = backend::groups_room();
        Groups {
            list: Vec::with_capacity(room),
            known: false,
        }
    }

    /// The list, or `None` when unknown.
    pub fn get(&self) -> Option<&[libc::gid_t]> {
        self.known.then_some(&self.list[..])
    }

    pub(crate) fn set_unknown(&mut self) {
        self.list.clear();
        self.known = false;
    }

    pub(crate) fn set(&mut self, groups: &[libc::gid_t]) {
        self.list.clear();
        self.list.extend_from_slice(groups);
        self.known = true;
    }

    /// The storage, for a backend that has the system write into it: the
    /// list is empty and unknown until [`Groups::mark_known`].
    #[allow(dead_code)] // only the backends that read into it
    pub(crate) fn storage(&mut self) -> &mut Vec<libc::gid_t> {
        self.set_unknown();
        &mut self.list
    }

    #[allow(dead_code)] // only the backends that read into it
    pub(crate) fn mark_known(&mut self) {
        self.known = true;
    }
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
        #[path = "credentials/so_peergroups.rs"]
        mod so_peergroups;
    } else if #[cfg(feature = "force-xucred")] {
        // FreeBSD's backend on Linux, over a stand-in for LOCAL_PEERCRED.
        #[path = "credentials/local_peercred.rs"]
        mod backend;
        #[path = "credentials/xucred_shim.rs"]
        mod xucred_shim;
        #[path = "credentials/so_peergroups.rs"]
        mod so_peergroups;
    } else if #[cfg(any(target_os = "linux", target_os = "android"))] {
        #[path = "credentials/so_peercred.rs"]
        mod backend;
        #[path = "credentials/so_peergroups.rs"]
        mod so_peergroups;
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

/// The name of the mechanism this build uses (for the tests and the
/// platform table).
pub const MECHANISM: &str = backend::MECHANISM;

/// Where this build reads the client's groups from, or `None` where it
/// cannot: every lookup then leaves them unknown.
pub const GROUPS_MECHANISM: Option<&str> = backend::GROUPS_MECHANISM;

/// The most supplementary groups a lookup can give in full; a client with
/// more has them unknown. 0 where they are never known; `usize::MAX` where
/// the system records every group.
pub const MAX_KNOWN_GROUPS: usize = backend::MAX_KNOWN_GROUPS;

/// The credentials of the peer of the connected Unix stream socket `fd`.
pub fn peer<F: AsFd>(fd: &F) -> io::Result<Credentials> {
    backend::peer(fd.as_fd(), None)
}

/// [`peer`], and the peer's supplementary groups into `groups` (unknown if
/// the system did not give all of them).
pub fn peer_with_groups<F: AsFd>(fd: &F, groups: &mut Groups) -> io::Result<Credentials> {
    groups.set_unknown();
    backend::peer(fd.as_fd(), Some(groups))
}

/// The groups of a `struct xucred` (FreeBSD, DragonFly, macOS):
/// `cr_groups[0]` is the effective gid and the supplementary groups follow,
/// up to `cr_ngroups`; the array holds at most its length, so a full array
/// may have been cut short, and is unknown.
#[allow(dead_code)] // only the xucred backends
fn xucred_groups(ngroups: libc::c_short, array: &[libc::gid_t], out: &mut Groups) {
    match usize::try_from(ngroups) {
        Ok(n) if n >= 1 && n < array.len() => out.set(&array[1..n]),
        _ => out.set_unknown(),
    }
}

/// How many `ucred_t` the test stand-in for illumos's `getpeerucred` has
/// allocated and not yet seen freed: a lookup that leaves it changed leaks.
#[cfg(all(feature = "force-getpeerucred", feature = "test-support"))]
pub fn shim_live_ucreds() -> isize {
    ucred_shim::live()
}
