//! Peer credentials over real sockets: the ids the kernel recorded at
//! connect (or socketpair) time, effective ids only. In the
//! `force-unsupported-credentials` build, every lookup must fail closed.

#![allow(clippy::bool_assert_comparison)] // SUPPORTED is a constant: that is the point.

mod common;

use common::serial;

#[cfg(not(feature = "force-unsupported-credentials"))]
mod supported {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    use platform::credentials::{self, Credentials};
    use platform::socket::{self, BindOptions, PeerAddr};

    use super::common::{self, in_child, serial, TempDir};
    use crate::{ensure, needs_root};

    const NOBODY: libc::uid_t = 65534;
    const NOGROUP: libc::gid_t = 65534;

    fn me() -> Credentials {
        // SAFETY: geteuid and getegid cannot fail.
        unsafe {
            Credentials {
                uid: libc::geteuid(),
                gid: libc::getegid(),
            }
        }
    }

    /// A listening socket anyone can connect to.
    fn listener(dir: &TempDir) -> (std::os::fd::OwnedFd, std::path::PathBuf) {
        let path = dir.join("sock");
        let fd = socket::bind_listener(
            &path,
            BindOptions {
                replace_socket: true,
                perms: 0o777,
                backlog: 8,
            },
        )
        .unwrap();
        (fd, path)
    }

    /// Forks a client that runs `client` (setting ids, connecting, ...)
    /// and returns the credentials the server side sees for it.
    fn served<F>(client: F) -> Credentials
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
                // The client writes one byte once it has done everything
                // it wanted to do after connecting.
                let mut b = [0u8; 1];
                conn.read_exact(&mut b).unwrap();
                let c = credentials::peer(&conn).unwrap();
                conn.write_all(b"k").unwrap();
                c
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

    fn done(mut s: UnixStream) -> Result<(), String> {
        s.write_all(b"x").map_err(|e| format!("write: {e}"))?;
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
            Credentials { uid: 0, gid: 0 }
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
            ensure!(
                c == Credentials {
                    uid: NOBODY,
                    gid: NOGROUP
                },
                "got {c:?}"
            );
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
            ensure!(
                c == Credentials {
                    uid: NOBODY,
                    gid: 65533
                },
                "got {c:?}"
            );
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
            ensure!(c == Credentials { uid: 0, gid: 0 }, "got {c:?}");
            Ok(())
        });
    }

    #[test]
    fn bound_socket_root_client_gives_zero() {
        needs_root!();
        let _g = serial();
        let c = served(|path| done(connect(path)?));
        assert_eq!(c, Credentials { uid: 0, gid: 0 });
    }

    #[test]
    fn bound_socket_client_as_nobody() {
        needs_root!();
        let _g = serial();
        let c = served(|path| {
            common::set_groups(&[NOGROUP])?;
            common::set_ids(NOGROUP, NOGROUP, NOBODY, NOBODY)?;
            done(connect(path)?)
        });
        assert_eq!(
            c,
            Credentials {
                uid: NOBODY,
                gid: NOGROUP
            }
        );
    }

    #[test]
    fn bound_socket_reports_effective_not_real_ids() {
        needs_root!();
        let _g = serial();
        // Distinct values everywhere, so a uid/gid or real/effective mix-up
        // cannot go unnoticed.
        let c = served(|path| {
            common::set_ids(1001, 65533, 1000, NOBODY)?;
            done(connect(path)?)
        });
        assert_eq!(
            c,
            Credentials {
                uid: NOBODY,
                gid: 65533
            }
        );
    }

    #[test]
    fn bound_socket_ids_changed_after_connect_do_not_count() {
        needs_root!();
        let _g = serial();
        // Root connects, then drops for good.
        let c = served(|path| {
            let s = connect(path)?;
            common::set_groups(&[NOGROUP])?;
            common::set_ids(NOGROUP, NOGROUP, NOBODY, NOBODY)?;
            done(s)
        });
        assert_eq!(c, Credentials { uid: 0, gid: 0 });
        // Effective ids dropped while connecting, root taken back after.
        let c = served(|path| {
            common::set_ids(0, 65533, 0, NOBODY)?;
            let s = connect(path)?;
            common::set_ids(0, 0, 0, 0)?;
            done(s)
        });
        assert_eq!(
            c,
            Credentials {
                uid: NOBODY,
                gid: 65533
            }
        );
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
