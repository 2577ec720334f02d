//! Dropping root after the socket is bound: supplementary groups, then gid,
//! then uid, then a check that the uid cannot be taken back.
//!
//! What differs per system is hidden here: the BSD rule that the first
//! entry of the list is the effective gid, and `NGROUPS_MAX` (the count type
//! of `setgroups(2)` is `crate::sys`'s).

use std::fmt;
use std::io;

use crate::cvt;

/// What the caller asked to become. A gid or uid of 0 means "leave as is",
/// as in the C s6-ipcserver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The exact supplementary group list, when one was given.
    pub groups: Option<Vec<libc::gid_t>>,
    pub gid: libc::gid_t,
    pub uid: libc::uid_t,
}

impl Target {
    /// Whether there is anything to do at all.
    pub fn is_noop(&self) -> bool {
        self.groups.is_none() && self.gid == 0 && self.uid == 0
    }
}

/// The step of the drop that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Setgroups,
    Setgid,
    Setuid,
    RegainCheck,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Setgroups => "setgroups",
            Step::Setgid => "setgid",
            Step::Setuid => "setuid",
            Step::RegainCheck => "regain check",
        })
    }
}

#[derive(Debug)]
pub struct Error {
    pub step: Step,
    pub source: io::Error,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.step, self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The largest supplementary group list this system accepts.
pub fn ngroups_max() -> usize {
    // SAFETY: sysconf has no memory effects; it only reads a limit.
    let n = unsafe { libc::sysconf(libc::_SC_NGROUPS_MAX) };
    if n > 0 {
        n as usize
    } else {
        // POSIX's minimum for NGROUPS_MAX.
        8
    }
}

/// Drops to `target`, in the order the C chain drops: groups, gid, uid.
///
/// Without a group list, a gid or uid drop still resets the supplementary
/// groups to the primary gid in effect after the drop, so that none of
/// root's groups survives.
///
/// A drop that changes nothing (a server already running as the uid, gid
/// and groups it is told to take) does nothing, so that it needs no
/// privilege; the check that uid 0 cannot be regained still runs.
pub fn drop_to(target: &Target) -> Result<(), Error> {
    if target.is_noop() {
        return Ok(());
    }
    let primary = if target.gid != 0 {
        target.gid
    } else {
        // SAFETY: getegid cannot fail and has no memory effects.
        unsafe { libc::getegid() }
    };
    let step = |step| move |source| Error { step, source };
    if already(target, primary) {
        return regain_check(target.uid);
    }

    match &target.groups {
        Some(list) => set_groups(primary, list).map_err(step(Step::Setgroups))?,
        None => set_groups(primary, &[primary]).map_err(step(Step::Setgroups))?,
    }
    if target.gid != 0 {
        // SAFETY: setgid takes a plain integer and has no memory effects.
        cvt(unsafe { libc::setgid(target.gid) }).map_err(step(Step::Setgid))?;
    }
    if target.uid != 0 {
        // SAFETY: setuid takes a plain integer and has no memory effects.
        cvt(unsafe { libc::setuid(target.uid) }).map_err(step(Step::Setuid))?;
    }
    regain_check(target.uid)
}

/// After a drop to a non-zero uid: fails if uid 0 can be taken back
/// (a saved set-user-id still 0).
fn regain_check(uid: libc::uid_t) -> Result<(), Error> {
    // SAFETY: setuid takes a plain integer and has no memory effects; this
    // call must fail.
    if uid != 0 && unsafe { libc::setuid(0) } == 0 {
        return Err(Error {
            step: Step::RegainCheck,
            source: io::Error::new(
                io::ErrorKind::PermissionDenied,
                "uid 0 could be regained after dropping it",
            ),
        });
    }
    Ok(())
}

/// Whether the process already is what `target` asks: real and effective
/// ids equal to the targets, and the supplementary groups exactly the list
/// given (as a set). Without a list, and with uid and gid unchanged, there
/// is nothing to reset.
fn already(target: &Target, primary: libc::gid_t) -> bool {
    // SAFETY: these four calls cannot fail and have no memory effects.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    let uid_same = target.uid == 0 || (uid == target.uid && euid == target.uid);
    let gid_same = target.gid == 0 || (gid == target.gid && egid == target.gid);
    let groups_same = match &target.groups {
        None => true,
        Some(list) => current_groups().is_some_and(|now| same_groups(primary, list, now)),
    };
    uid_same && gid_same && groups_same
}

/// The supplementary groups now, or `None` if they cannot be read.
/// Asked for their number first, then for exactly that many: a size above
/// `NGROUPS_MAX` is refused by some implementations (qemu-user's), and
/// musl's `NGROUPS_MAX` (32) is below what Linux allows (65536). Start-up
/// is single-threaded, so the number cannot change in between.
fn current_groups() -> Option<Vec<libc::gid_t>> {
    // SAFETY: a size of 0 asks only for the number; nothing is written.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let mut list = vec![0; usize::try_from(n).ok()?];
    // SAFETY: `list` is a live, writable array of `n` gids.
    let got = unsafe { libc::getgroups(n, list.as_mut_ptr()) };
    list.truncate(usize::try_from(got).ok()?);
    Some(list)
}

cfg_if::cfg_if! {
    if #[cfg(any(
        target_os = "freebsd",
        target_os = "dragonfly",
        target_os = "netbsd",
        target_os = "openbsd",
        target_vendor = "apple",
    ))] {
        /// Whether `now` (as getgroups(2) gives it, the effective gid
        /// first) is what `set_groups(primary, list)` would set.
        fn same_groups(primary: libc::gid_t, list: &[libc::gid_t], now: Vec<libc::gid_t>) -> bool {
            let mut want = list.to_vec();
            want.push(primary);
            same_set(&want, now)
        }

        /// On the BSDs the kernel keeps the effective gid as the first entry
        /// of the group list, and `setgroups` overwrites it from `list[0]`:
        /// put the primary gid first so that no listed group becomes the
        /// effective gid by accident.
        fn set_groups(primary: libc::gid_t, list: &[libc::gid_t]) -> io::Result<()> {
            let mut all = Vec::with_capacity(list.len() + 1);
            all.push(primary);
            all.extend(list.iter().copied().filter(|&g| g != primary));
            crate::sys::setgroups(&all)
        }
    } else {
        // Linux, Android, illumos, Solaris and the rest keep the effective
        // gid apart from the list: it is set as given.
        fn same_groups(_primary: libc::gid_t, list: &[libc::gid_t], now: Vec<libc::gid_t>) -> bool {
            same_set(list, now)
        }

        fn set_groups(_primary: libc::gid_t, list: &[libc::gid_t]) -> io::Result<()> {
            crate::sys::setgroups(list)
        }
    }
}

/// Whether two gid lists hold the same groups.
fn same_set(list: &[libc::gid_t], mut now: Vec<libc::gid_t>) -> bool {
    let mut want = list.to_vec();
    want.sort_unstable();
    want.dedup();
    now.sort_unstable();
    now.dedup();
    want == now
}
