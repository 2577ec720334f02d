//! Helpers shared by the platform tests: one lock that serialises every
//! test of a binary (the umask, the signal dispositions and fork are
//! process-wide), forked children that report back through a pipe, and
//! scratch directories.

#![allow(dead_code)] // Each test binary uses a different part of this.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

static LOCK: Mutex<()> = Mutex::new(());

/// Taken by every test: bind_listener swaps the process's umask, and a
/// fork must not race with another test changing process-wide state.
pub fn serial() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[path = "../../../tests/common/skipped.rs"]
mod skipped;
#[allow(unused_imports)] // only the binaries that skip
pub use skipped::record_skip;

/// The path of the function it is written in, below the crate
/// (`module::test_name`).
#[macro_export]
macro_rules! test_name {
    () => {{
        fn here() {}
        fn name_of<T>(_: T) -> &'static str {
            std::any::type_name::<T>()
        }
        let path = name_of(here);
        let path = path.strip_suffix("::here").unwrap_or(path);
        path.split_once("::").map_or(path, |(_crate, below)| below)
    }};
}

/// Returns from the test, recording the skip ([`record_skip`]), when it
/// is not run as root.
#[macro_export]
macro_rules! needs_root {
    () => {
        if !$crate::common::is_root() {
            $crate::common::record_skip($crate::test_name!(), "needs root");
            return;
        }
    };
}

/// Runs `f` in a forked child and panics with its message if it returns
/// an error, panics, or dies. The child never returns into the harness.
pub fn in_child<F: FnOnce() -> Result<(), String>>(f: F) {
    if let Err(msg) = run_child(f) {
        panic!("{msg}");
    }
}

/// Runs `f` in a forked child; the error is the child's message when it
/// returned an error, panicked or died.
pub fn run_child<F: FnOnce() -> Result<(), String>>(f: F) -> Result<(), String> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    // SAFETY: pipe succeeded; we own both ends.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: every test holds `serial()`, so no other test thread is in the
    // middle of something the child could inherit half-done; the child only
    // runs `f` and then _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        drop(r);
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let (code, msg) = match res {
            Ok(Ok(())) => (0, String::new()),
            Ok(Err(m)) => (1, m),
            Err(_) => (2, "child panicked".to_string()),
        };
        let mut w = std::fs::File::from(w);
        let _ = std::io::Write::write_all(&mut w, msg.as_bytes());
        drop(w);
        // SAFETY: leaves the child at once, without running the harness's
        // atexit handlers or destructors that belong to the parent.
        unsafe { libc::_exit(code) };
    }
    drop(w);
    let mut msg = String::new();
    std::fs::File::from(r).read_to_string(&mut msg).unwrap();
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is writable.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(format!("child failed (status {status:#x}): {msg}"))
    }
}

/// Checks a condition inside a child, turning it into an error message.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// A scratch directory searchable by everyone (so that clients running as
/// another uid can reach a socket in it), removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("s6ipc-platform-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }

    /// A path in this directory from raw bytes (newlines, non-UTF-8...).
    pub fn join_bytes(&self, name: &[u8]) -> PathBuf {
        self.0.join(OsString::from_vec(name.to_vec()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The current supplementary groups, sorted.
pub fn groups() -> Vec<libc::gid_t> {
    // SAFETY: a count of 0 only asks for the number of groups.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    assert!(n >= 0);
    let mut v = vec![0; n as usize + 1];
    // SAFETY: `v` has room for `v.len()` gids.
    let n = unsafe { libc::getgroups(v.len() as libc::c_int, v.as_mut_ptr()) };
    assert!(n >= 0);
    v.truncate(n as usize);
    v.sort_unstable();
    v.dedup();
    v
}

/// Sets the supplementary groups (as root), for setting up a test.
pub fn set_groups(list: &[libc::gid_t]) -> Result<(), String> {
    platform::host::set_groups(list).map_err(|e| format!("setgroups: {e}"))
}

/// Sets real and effective gid, then uid (as root), for setting up a test.
pub fn set_ids(
    rgid: libc::gid_t,
    egid: libc::gid_t,
    ruid: libc::uid_t,
    euid: libc::uid_t,
) -> Result<(), String> {
    // SAFETY: plain integer arguments, no memory effects.
    if unsafe { libc::setregid(rgid, egid) } != 0 {
        return Err(format!("setregid: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: as above.
    if unsafe { libc::setreuid(ruid, euid) } != 0 {
        return Err(format!("setreuid: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}
