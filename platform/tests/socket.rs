//! The listening socket (exact mode, path length, the non-socket guard,
//! replacing an old socket), accept's view of the client's address, and the
//! close-on-exec / non-blocking pipe.

mod common;

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use platform::socket::{self, BindError, BindOptions, PeerAddr, RemoteAddr};

use common::{serial, TempDir};

fn opts(perms: u32) -> BindOptions {
    BindOptions::listener(true, perms, 8)
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn fd_flags(fd: BorrowedFd<'_>) -> (bool, bool) {
    // SAFETY: fcntl queries on a live descriptor.
    let (fdfl, flfl) = unsafe {
        (
            libc::fcntl(fd.as_raw_fd(), libc::F_GETFD),
            libc::fcntl(fd.as_raw_fd(), libc::F_GETFL),
        )
    };
    assert!(fdfl >= 0 && flfl >= 0);
    (fdfl & libc::FD_CLOEXEC != 0, flfl & libc::O_NONBLOCK != 0)
}

/// Sets the umask for the duration of a closure.
fn with_umask<T>(mask: libc::mode_t, f: impl FnOnce() -> T) -> T {
    // SAFETY: umask only swaps the process's mask; tests are serialised.
    let old = unsafe { libc::umask(mask) };
    let t = f();
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    t
}

#[test]
fn mode_is_exact_whatever_the_umask() {
    let _g = serial();
    let dir = TempDir::new("mode");
    for (umask, perms) in [
        (0o022, 0o777),
        (0o077, 0o666),
        (0o000, 0o600),
        (0o777, 0o750),
        (0o002, 0o700),
    ] {
        let path = dir.join(format!("s-{umask:o}-{perms:o}"));
        let (fd, after) = with_umask(umask, || {
            let fd = socket::bind_listener(&path, opts(perms)).map(|b| b.listener);
            // SAFETY: reading the mask means setting it; put it straight back.
            let after = unsafe {
                let m = libc::umask(0o022);
                libc::umask(m);
                m
            };
            (fd, after)
        });
        assert_eq!(mode(&path), perms, "umask {umask:o}");
        // bind_listener puts the caller's umask back.
        assert_eq!(after, umask);
        drop(fd.unwrap());
    }
}

#[test]
fn listener_is_cloexec_nonblocking_and_listening() {
    let _g = serial();
    let dir = TempDir::new("flags");
    let path = dir.join("s");
    let fd = socket::bind_listener(&path, opts(0o777)).unwrap().listener;
    assert_eq!(fd_flags(fd.as_fd()), (true, true));
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_socket());
    let mut peer = PeerAddr::default();
    // Nobody connected yet: a non-blocking accept says so.
    let e = socket::accept(fd.as_fd(), &mut peer).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    let _c = socket::connect(path.as_os_str(), None).unwrap();
    let conn = socket::accept(fd.as_fd(), &mut peer).unwrap();
    // The connection is close-on-exec and blocking, whatever the listener.
    assert_eq!(fd_flags(conn.as_fd()), (true, false));
}

#[test]
fn too_long_a_path_is_an_error_not_a_truncation() {
    let _g = serial();
    let dir = TempDir::new("long");
    let max = socket::max_path_len();
    let base = dir.path().as_os_str().len() + 1;
    assert!(base < max);
    // One byte over: refused, and nothing is created.
    let long = dir.join("x".repeat(max + 1 - base));
    assert_eq!(long.as_os_str().len(), max + 1);
    match socket::bind_listener(&long, opts(0o777)) {
        Err(BindError::PathTooLong { len, max: m }) => {
            assert_eq!((len, m), (max + 1, max));
        }
        other => panic!("expected PathTooLong, got {other:?}"),
    }
    assert!(std::fs::symlink_metadata(&long).is_err());
    let msg = socket::bind_listener(&long, opts(0o777))
        .unwrap_err()
        .to_string();
    assert!(msg.contains(&format!("{}", max + 1)), "{msg}");
    // Exactly the maximum fits.
    let fits = dir.join("y".repeat(max - base));
    assert_eq!(fits.as_os_str().len(), max);
    let fd = socket::bind_listener(&fits, opts(0o777)).unwrap().listener;
    drop(socket::connect(fits.as_os_str(), None).unwrap());
    drop(fd);
}

#[test]
fn a_non_socket_is_refused_and_left_intact() {
    let _g = serial();
    let dir = TempDir::new("guard");
    let file = dir.join("file");
    std::fs::write(&file, b"precious").unwrap();
    let sub = dir.join("dir");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("inside"), b"also precious").unwrap();
    let link = dir.join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();

    for (path, what) in [
        (&file, "a regular file"),
        (&sub, "a directory"),
        (&link, "a symbolic link"),
        (&dangling, "a symbolic link"),
    ] {
        match socket::bind_listener(path, opts(0o777)) {
            Err(BindError::NotASocket(w)) => assert_eq!(w, what),
            other => panic!("{path:?}: expected NotASocket, got {other:?}"),
        }
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");
    assert_eq!(std::fs::read(sub.join("inside")).unwrap(), b"also precious");
    assert_eq!(std::fs::read_link(&link).unwrap(), file);
    assert!(std::fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    // The link's target is untouched as well.
    assert!(std::fs::symlink_metadata(dir.join("nowhere")).is_err());
}

#[test]
fn an_existing_socket_is_replaced_with_d_and_kept_with_big_d() {
    let _g = serial();
    let dir = TempDir::new("replace");
    let path = dir.join("s");
    let old = socket::bind_listener(&path, opts(0o700)).unwrap().listener;
    // -D: never remove, so bind fails on the existing socket.
    let keep = BindOptions {
        replace_socket: false,
        ..opts(0o777)
    };
    match socket::bind_listener(&path, keep) {
        Err(BindError::Sys(call, e)) => {
            assert_eq!(call, "bind");
            assert_eq!(e.kind(), ErrorKind::AddrInUse);
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    assert_eq!(mode(&path), 0o700);
    // -d: the old socket goes, the new one answers with the new mode.
    let new = socket::bind_listener(&path, opts(0o777)).unwrap().listener;
    assert_eq!(mode(&path), 0o777);
    drop(old);
    let _c = socket::connect(path.as_os_str(), None).unwrap();
    let mut peer = PeerAddr::default();
    socket::accept(new.as_fd(), &mut peer).unwrap();
}

#[test]
fn a_missing_directory_is_a_bind_error() {
    let _g = serial();
    let dir = TempDir::new("nodir");
    match socket::bind_listener(&dir.join("no/such/s"), opts(0o777)) {
        Err(BindError::Sys(_, e)) => assert_eq!(e.kind(), ErrorKind::NotFound),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// Accepts one client, bound to `bind` if given, and hands its remote
/// address to `check`.
fn accepted(bind: Option<&OsStr>, check: impl FnOnce(RemoteAddr<'_>)) {
    let dir = TempDir::new("accept");
    let path = dir.join("s");
    let listener = socket::bind_listener(&path, opts(0o777)).unwrap().listener;
    let _client: OwnedFd = socket::connect(path.as_os_str(), bind).unwrap();
    let mut peer = PeerAddr::default();
    let _conn = socket::accept(listener.as_fd(), &mut peer).unwrap();
    check(peer.remote());
}

#[test]
fn remote_of_an_unbound_client_is_unnamed() {
    let _g = serial();
    accepted(None, |r| assert_eq!(r, RemoteAddr::Unnamed));
}

#[test]
fn remote_path_is_exact_bytes() {
    let _g = serial();
    let dir = TempDir::new("client");
    // A newline and a byte that is not UTF-8: passed through untouched.
    let client = dir.join_bytes(b"cli\nent\xff");
    accepted(Some(client.as_os_str()), |r| {
        assert_eq!(r, RemoteAddr::Path(client.as_os_str().as_bytes()));
    });
    // The storage is reused: a later unbound client is unnamed again.
    let dir2 = TempDir::new("reuse");
    let path = dir2.join("s");
    let listener = socket::bind_listener(&path, opts(0o777)).unwrap().listener;
    let mut peer = PeerAddr::default();
    let named = dir2.join("named");
    let _a = socket::connect(path.as_os_str(), Some(named.as_os_str())).unwrap();
    let _ca = socket::accept(listener.as_fd(), &mut peer).unwrap();
    assert_eq!(
        peer.remote(),
        RemoteAddr::Path(named.as_os_str().as_bytes())
    );
    let _b = socket::connect(path.as_os_str(), None).unwrap();
    let _cb = socket::accept(listener.as_fd(), &mut peer).unwrap();
    assert_eq!(peer.remote(), RemoteAddr::Unnamed);
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn remote_abstract_name_loses_its_leading_nul() {
    let _g = serial();
    let name = format!("\0s6ipc-test-{}\nx\u{e9}", std::process::id());
    accepted(Some(OsStr::new(&name)), |r| {
        assert_eq!(r, RemoteAddr::Abstract(&name.as_bytes()[1..]));
    });
}

#[test]
fn pipe_is_cloexec_and_nonblocking_at_both_ends() {
    let _g = serial();
    let (r, w) = platform::fd::pipe_cloexec_nonblocking().unwrap();
    assert_eq!(fd_flags(r.as_fd()), (true, true));
    assert_eq!(fd_flags(w.as_fd()), (true, true));
    let mut b = [0u8; 4];
    // SAFETY: `b` is a live writable buffer.
    let n = unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
    assert_eq!(n, -1);
    assert_eq!(
        std::io::Error::last_os_error().kind(),
        ErrorKind::WouldBlock
    );
    // SAFETY: writes one byte from a live buffer.
    assert_eq!(
        unsafe { libc::write(w.as_raw_fd(), b"s".as_ptr().cast(), 1) },
        1
    );
    // SAFETY: as above.
    let n = unsafe { libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), b.len()) };
    assert_eq!((n, b[0]), (1, b's'));
}

#[test]
fn set_cloexec_and_nonblocking_toggle() {
    let _g = serial();
    let (r, _w) = platform::fd::pipe_cloexec_nonblocking().unwrap();
    platform::fd::set_cloexec(r.as_fd(), false).unwrap();
    platform::fd::set_nonblocking(r.as_fd(), false).unwrap();
    assert_eq!(fd_flags(r.as_fd()), (false, false));
    platform::fd::set_cloexec(r.as_fd(), true).unwrap();
    assert_eq!(fd_flags(r.as_fd()), (true, false));
}
