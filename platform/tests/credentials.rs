//! Peer credentials over real sockets: the ids the kernel recorded at
//! connect (or socketpair) time, effective ids only, and the pid of the
//! process that connected where the backend has one. In the
//! `force-unsupported-credentials` build, every lookup must fail closed.

#![allow(clippy::bool_assert_comparison)] // SUPPORTED is a constant: that is the point.

mod common;

use common::serial;

#[cfg(not(feature = "force-unsupported-credentials"))]
mod supported {
    use std::io::{Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::process::{Command, Stdio};

    use platform::credentials::{self, Credentials};
    use platform::socket::{self, BindOptions, PeerAddr};

    use super::common::{self, in_child, serial, TempDir};
    use crate::{ensure, needs_root};

    const NOBODY: libc::uid_t = 65534;
    const NOGROUP: libc::gid_t = 65534;

    /// Whether the backend gives the pid: all but getpeereid (DragonFly's,
    /// and libbsd's on Linux with `force-getpeereid`). FreeBSD gives it
    /// since 13.
    const GIVES_PID: bool = !(cfg!(feature = "force-getpeereid") || cfg!(target_os = "dragonfly"));

    /// What a lookup must say for a peer with these effective ids and pid.
    fn who(uid: libc::uid_t, gid: libc::gid_t, pid: u32) -> Credentials {
        Credentials {
            uid,
            gid,
            pid: GIVES_PID.then_some(pid as libc::pid_t),
        }
    }

    /// The calling process, with its effective ids.
    fn me() -> Credentials {
        // SAFETY: geteuid and getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        who(uid, gid, std::process::id())
    }

    /// A listening socket anyone can connect to.
    fn listener(dir: &TempDir) -> (std::os::fd::OwnedFd, std::path::PathBuf) {
        let path = dir.join("sock");
        let fd = socket::bind_listener(&path, BindOptions::listener(true, 0o777, 8))
            .unwrap()
            .listener;
        (fd, path)
    }

    /// Forks a client that runs `client` (setting ids, connecting, ...)
    /// and returns the credentials the server side sees for it, with the
    /// client's pid.
    fn served<F>(client: F) -> (Credentials, u32)
    where
        F: FnOnce(&std::path::Path) -> Result<(), String> + Send,
    {
        let dir = TempDir::new("cred");
        let (lfd, path) = listener(&dir);
        // The listener is non-blocking: make accept wait for the client.
        platform::fd::set_nonblocking(std::os::fd::AsFd::as_fd(&lfd), false).unwrap();
        let mut creds = None;
        std::thread::scope(|s| {
            let server = s.spawn(|| {
                let mut peer = PeerAddr::default();
                let conn = socket::accept(std::os::fd::AsFd::as_fd(&lfd), &mut peer).unwrap();
                let mut conn = UnixStream::from(conn);
                // The client writes its pid once it has done everything it
                // wanted to do after connecting.
                let mut pid = [0u8; 4];
                conn.read_exact(&mut pid).unwrap();
                let c = credentials::peer(&conn).unwrap();
                conn.write_all(b"k").unwrap();
                (c, u32::from_ne_bytes(pid))
            });
            in_child(|| client(&path));
            creds = Some(server.join().unwrap());
        });
        creds.unwrap()
    }

    /// Connects, waits for nothing, and tells the server it is done.
    fn connect(path: &std::path::Path) -> Result<UnixStream, String> {
        UnixStream::connect(path).map_err(|e| format!("connect: {e}"))
    }

    /// Tells the server, which is waiting for it, the client's pid.
    fn done(mut s: UnixStream) -> Result<(), String> {
        s.write_all(&std::process::id().to_ne_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).map_err(|e| format!("read: {e}"))
    }

    #[test]
    fn backend_is_supported_on_this_target() {
        assert_eq!(credentials::SUPPORTED, true);
        assert_ne!(credentials::MECHANISM, "none");
    }

    #[test]
    fn socketpair_gives_own_effective_ids() {
        let _g = serial();
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(credentials::peer(&a).unwrap(), me());
        assert_eq!(credentials::peer(&b).unwrap(), me());
    }

    #[test]
    fn socketpair_root_gives_zero() {
        needs_root!();
        let _g = serial();
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(
            credentials::peer(&a).unwrap(),
            who(0, 0, std::process::id())
        );
    }

    #[test]
    fn socketpair_after_switching_to_nobody() {
        needs_root!();
        let _g = serial();
        in_child(|| {
            common::set_groups(&[NOGROUP])?;
            common::set_ids(NOGROUP, NOGROUP, NOBODY, NOBODY)?;
            let (a, _b) = UnixStream::pair().map_err(|e| e.to_string())?;
            let c = credentials::peer(&a).map_err(|e| e.to_string())?;
            let want = who(NOBODY, NOGROUP, std::process::id());
            ensure!(c == want, "got {c:?}, want {want:?}");
            Ok(())
        });
    }

    #[test]
    fn socketpair_real_and_effective_differ() {
        needs_root!();
        let _g = serial();
        in_child(|| {
            common::set_ids(1001, 65533, 1000, NOBODY)?;
            let (a, _b) = UnixStream::pair().map_err(|e| e.to_string())?;
            let c = credentials::peer(&a).map_err(|e| e.to_string())?;
            let want = who(NOBODY, 65533, std::process::id());
            ensure!(c == want, "got {c:?}, want {want:?}");
            Ok(())
        });
    }

    #[test]
    fn socketpair_keeps_creation_time_ids() {
        needs_root!();
        let _g = serial();
        in_child(|| {
            let (a, _b) = UnixStream::pair().map_err(|e| e.to_string())?;
            common::set_ids(NOGROUP, NOGROUP, NOBODY, NOBODY)?;
            let c = credentials::peer(&a).map_err(|e| e.to_string())?;
            let want = who(0, 0, std::process::id());
            ensure!(c == want, "got {c:?}, want {want:?}");
            Ok(())
        });
    }

    #[test]
    fn bound_socket_root_client_gives_zero() {
        needs_root!();
        let _g = serial();
        let (c, client) = served(|path| done(connect(path)?));
        assert_eq!(c, who(0, 0, client));
    }

    #[test]
    fn bound_socket_client_as_nobody() {
        needs_root!();
        let _g = serial();
        let (c, client) = served(|path| {
            common::set_groups(&[NOGROUP])?;
            common::set_ids(NOGROUP, NOGROUP, NOBODY, NOBODY)?;
            done(connect(path)?)
        });
        assert_eq!(c, who(NOBODY, NOGROUP, client));
    }

    #[test]
    fn bound_socket_reports_effective_not_real_ids() {
        needs_root!();
        let _g = serial();
        // Distinct values everywhere, so a uid/gid or real/effective mix-up
        // cannot go unnoticed.
        let (c, client) = served(|path| {
            common::set_ids(1001, 65533, 1000, NOBODY)?;
            done(connect(path)?)
        });
        assert_eq!(c, who(NOBODY, 65533, client));
    }

    #[test]
    fn bound_socket_ids_changed_after_connect_do_not_count() {
        needs_root!();
        let _g = serial();
        // Root connects, then drops for good.
        let (c, client) = served(|path| {
            let s = connect(path)?;
            common::set_groups(&[NOGROUP])?;
            common::set_ids(NOGROUP, NOGROUP, NOBODY, NOBODY)?;
            done(s)
        });
        assert_eq!(c, who(0, 0, client));
        // Effective ids dropped while connecting, root taken back after.
        let (c, client) = served(|path| {
            common::set_ids(0, 65533, 0, NOBODY)?;
            let s = connect(path)?;
            common::set_ids(0, 0, 0, 0)?;
            done(s)
        });
        assert_eq!(c, who(NOBODY, 65533, client));
    }

    #[test]
    fn socketpair_gives_own_pid() {
        let _g = serial();
        let (a, _b) = UnixStream::pair().unwrap();
        let c = credentials::peer(&a).unwrap();
        let pid = std::process::id() as libc::pid_t;
        assert_eq!(c.pid, GIVES_PID.then_some(pid), "{c:?}");
    }

    #[test]
    fn connected_stream_gives_own_pid_on_both_ends() {
        let _g = serial();
        let dir = TempDir::new("cred-pid");
        let path = dir.join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        let client = UnixStream::connect(&path).unwrap();
        let (server, _) = listener.accept().unwrap();
        // The server end sees the process that connected; the client end,
        // the one that listened: both are this one.
        assert_eq!(credentials::peer(&server).unwrap(), me());
        assert_eq!(credentials::peer(&client).unwrap(), me());
    }

    #[test]
    fn bound_socket_gives_the_forked_clients_pid() {
        let _g = serial();
        let (c, client) = served(|path| done(connect(path)?));
        assert_ne!(client, std::process::id(), "the client is another process");
        // SAFETY: geteuid and getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        assert_eq!(c, who(uid, gid, client));
    }

    #[test]
    fn bound_socket_gives_a_spawned_clients_pid() {
        let _g = serial();
        if Command::new("socat").arg("-V").output().is_err() {
            common::record_skip(crate::test_name!(), "no socat");
            return;
        }
        let dir = TempDir::new("cred-socat");
        let path = dir.join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        // socat connects and stays until its stdin closes: the pid that
        // connected is the one Command started, known without asking it.
        let mut child = Command::new("socat")
            .arg("STDIN")
            .arg(format!("UNIX-CONNECT:{}", path.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let (server, _) = listener.accept().unwrap();
        let c = credentials::peer(&server);
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        let c = c.unwrap();
        // SAFETY: geteuid and getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        assert_eq!(c, who(uid, gid, child.id()));
        assert!(status.success(), "socat: {status}");
    }

    /// The feature that forces a backend really picks it.
    #[test]
    fn backend_is_the_one_this_build_asks_for() {
        if cfg!(feature = "force-getpeereid") {
            assert_eq!(credentials::MECHANISM, "getpeereid");
        } else if cfg!(feature = "force-getpeerucred") {
            assert_eq!(credentials::MECHANISM, "getpeerucred");
        } else if cfg!(feature = "force-xucred") {
            assert_eq!(credentials::MECHANISM, "LOCAL_PEERCRED");
            assert_eq!(credentials::GROUPS_MECHANISM, Some("LOCAL_PEERCRED"));
        } else if cfg!(any(target_os = "linux", target_os = "android")) {
            assert_eq!(credentials::MECHANISM, "SO_PEERCRED");
        }
    }
}

/// illumos's backend over the counting stand-in: every `ucred_t` that
/// getpeerucred allocates is freed, whichever way the lookup ends.
#[cfg(feature = "force-getpeerucred")]
mod getpeerucred {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::net::UnixStream;

    use platform::credentials::{self, shim_live_ucreds};

    use super::common::serial;

    #[test]
    fn a_lookup_that_succeeds_frees_its_ucred() {
        let _g = serial();
        let before = shim_live_ucreds();
        let (a, _b) = UnixStream::pair().unwrap();
        credentials::peer(&a).unwrap();
        assert_eq!(shim_live_ucreds(), before, "ucred_t left alive");
    }

    #[test]
    fn a_lookup_on_a_non_socket_frees_everything() {
        let _g = serial();
        let before = shim_live_ucreds();
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(credentials::peer(&f).is_err());
        assert_eq!(shim_live_ucreds(), before, "ucred_t left alive");
    }

    /// getpeerucred succeeds and allocates, but the ucred_t holds no
    /// effective ids: the lookup fails, and must still free it.
    #[test]
    fn a_lookup_on_a_socket_without_a_peer_fails_and_frees_its_ucred() {
        let _g = serial();
        // SAFETY: plain integer arguments; the descriptor is checked and
        // owned from here on.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: `fd` is a new descriptor nothing else owns.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let before = shim_live_ucreds();
        let e = credentials::peer(&sock).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        assert_eq!(shim_live_ucreds(), before, "ucred_t left alive");
    }
}

#[cfg(feature = "force-unsupported-credentials")]
mod unsupported {
    use std::io::ErrorKind;
    use std::os::unix::net::UnixStream;

    use platform::credentials;

    use super::common::serial;

    #[test]
    fn backend_says_unsupported() {
        assert_eq!(credentials::SUPPORTED, false);
        assert_eq!(credentials::MECHANISM, "none");
    }

    #[test]
    fn lookup_fails_closed_and_points_to_dash_p() {
        let _g = serial();
        let (a, _b) = UnixStream::pair().unwrap();
        let e = credentials::peer(&a).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let msg = e.to_string();
        assert!(msg.contains("not supported on this platform"), "{msg}");
        assert!(msg.contains("-P"), "{msg}");
    }
}

/// Both builds: a lookup on something that is not a connected socket never
/// yields an identity.
#[test]
fn lookup_on_a_non_socket_fails() {
    let _g = serial();
    let f = std::fs::File::open("/dev/null").unwrap();
    assert!(platform::credentials::peer(&f).is_err());
}
