//! What a hostile client or an unusual parent tries: a flood of denied
//! clients, a reconnect just after an exit, a shared listening socket, a
//! second server on the same path, odd option orders and a no-op drop of
//! privileges. Each case is one a review found the server failing.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Server, TempDir};

/// Whether this build looks up credentials (not the fail-closed fallback).
const LOOKUP: bool = !cfg!(feature = "force-unsupported-credentials");

fn open_to_all(dir: &TempDir) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
}

/// Clients of this process's uid, connecting and closing as fast as they
/// can until `stop`.
fn flood(path: &Path, stop: &Arc<AtomicBool>, clients: usize) -> Vec<thread::JoinHandle<u64>> {
    (0..clients)
        .map(|_| {
            let path = path.to_path_buf();
            let stop = Arc::clone(stop);
            thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    match UnixStream::connect(&path) {
                        Ok(s) => drop(s),
                        Err(_) => thread::yield_now(),
                    }
                    n += 1;
                }
                n
            })
        })
        .collect()
}

/// uid 65534's request, made again while its connect is refused: the
/// flood keeps the listen backlog full, and a slot frees as the server
/// accepts (s6-ipcclient exits 111 when it cannot connect). A connection
/// that is accepted and closed unanswered (a denial) is not retried.
fn request_as_nobody_through_the_flood(server: &Server) -> Vec<u8> {
    let deadline = Instant::now() + common::TIMEOUT;
    loop {
        let out = common::ipcclient_as_nobody(server);
        if out.status.code() != Some(111) || Instant::now() > deadline {
            return out.stdout;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Root at its `-C 1` limit floods the server with connections that are
/// denied at once. Meanwhile another uid is served three times in a row
/// (each child reaped before the next client), and SIGTERM ends the server
/// within 0.5 s: the accept loop never keeps signals and exits waiting.
#[test]
fn a_flood_of_denied_clients_delays_neither_sigterm_nor_other_uids() {
    let test = "a_flood_of_denied_clients_delays_neither_sigterm_nor_other_uids";
    if common::skip_unless_root(test)
        || common::skip_unless(LOOKUP, test, "needs a credentials lookup")
        || common::skip_unless_tool(test, "s6-ipcclient")
    {
        return;
    }
    // Root's child holds its connection; others answer, read the client's
    // line (closing a socket with unread data resets it, and the client
    // could lose the answer) and exit.
    let prog = [
        "sh",
        "-c",
        r#"echo "$IPCREMOTEEUID"; [ "$IPCREMOTEEUID" = 0 ] && exec cat; read -r _; exit 0"#,
    ];
    let mut server = Server::start(&["-C", "1", "-c", "10"], &prog);
    open_to_all(&server.dir);
    let mut held = server.connect();
    let mut line = String::new();
    BufReader::new(&mut held).read_line(&mut line).unwrap();
    assert_eq!(line, "0\n");

    let stop = Arc::new(AtomicBool::new(false));
    let flooders = flood(&server.path, &stop, 3);
    thread::sleep(Duration::from_millis(200));
    for round in 0..3 {
        assert_eq!(
            request_as_nobody_through_the_flood(&server),
            b"65534\n",
            "round {round}: uid 65534 denied or unanswered during the flood; log tail {:?}",
            server.lines().iter().rev().take(5).collect::<Vec<_>>()
        );
    }
    thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    server.signal(libc::SIGTERM);
    let deadline = t0 + Duration::from_secs(4);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        thread::sleep(Duration::from_millis(2));
    };
    let took = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let attempts: u64 = flooders.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(status.is_some(), "no exit within 4 s of SIGTERM");
    assert!(
        took < Duration::from_millis(500),
        "SIGTERM took {took:?} to end the server during a flood of {attempts} connections"
    );
    assert!(
        server
            .lines()
            .iter()
            .any(|l| l.contains("deny 0:0 count 1/1")),
        "the flood was denied"
    );
}

/// Under `-C 1`, a client that reconnects once its previous child has
/// exited (a zombie, or gone) is served, 200 times in a row: the server
/// reaps before it denies.
#[test]
fn a_client_reconnecting_after_its_child_exited_is_served() {
    let test = "a_client_reconnecting_after_its_child_exited_is_served";
    if common::skip_unless_procfs(test) {
        return;
    }
    let lookup = if cfg!(feature = "force-unsupported-credentials") {
        "-P"
    } else {
        "-p"
    };
    let server = Server::start(&[lookup, "-C", "1"], &["sh", "-c", "echo $$"]);
    // Every CPU busy, so that the server's threads are often descheduled
    // between a spawn and its report: the child may exit first.
    let _busy = common::busy_cpus();
    for round in 0..200 {
        let answer = server.request(b"");
        let text = String::from_utf8_lossy(&answer);
        let pid: i32 = text.trim().parse().unwrap_or_else(|_| {
            panic!(
                "round {round}: no pid in {text:?}: denied? log tail {:?}",
                server.lines().iter().rev().take(3).collect::<Vec<_>>()
            )
        });
        // Reconnect the moment it is a zombie (or gone already): before
        // the server has read its SIGCHLD, as often as not.
        let t0 = Instant::now();
        while common::state(pid).is_some_and(|s| s != 'Z') {
            assert!(t0.elapsed() < common::TIMEOUT, "child {pid} never exited");
            std::hint::spin_loop();
        }
    }
}

/// A listening socket on stdin, bound and made blocking by this test,
/// which keeps its own copy: s6-ipcserverd serves it and leaves the file
/// status flags it shares with every holder as they were.
#[test]
fn s6_ipcserverd_leaves_a_shared_sockets_flags_as_found() {
    let dir = TempDir::new();
    let path = dir.join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    let ours = OwnedFd::from(listener);
    let flags = || {
        // SAFETY: F_GETFL on a live descriptor has no memory effects.
        unsafe { libc::fcntl(ours.as_raw_fd(), libc::F_GETFL) }
    };
    assert_eq!(flags() & libc::O_NONBLOCK, 0, "blocking to begin with");
    let mut cmd = Command::new(common::bin_d());
    cmd.process_group(0).args(["-1", "-P", "echo", "served"]);
    let stdin = Stdio::from(ours.try_clone().unwrap());
    let server = Server::spawn_on(cmd, stdin, path, dir, b"\n");
    for _ in 0..5 {
        assert_eq!(server.request(b""), b"served\n");
    }
    assert_eq!(
        flags() & libc::O_NONBLOCK,
        0,
        "the server made the shared socket non-blocking"
    );
}

/// systemd's LISTEN_PID naming the server with LISTEN_FDS unset means no
/// descriptors were passed (sd_listen_fds(3)): stdin is served.
#[test]
fn listen_pid_without_listen_fds_serves_stdin() {
    let dir = TempDir::new();
    let path = dir.join("sock");
    let listener = OwnedFd::from(UnixListener::bind(&path).unwrap());
    let mut cmd = Command::new("sh");
    cmd.process_group(0)
        .args(["-c", "LISTEN_PID=$$ exec \"$0\" -1 -P echo served"])
        .arg(common::bin_d())
        .env_remove("LISTEN_FDS");
    let server = Server::spawn_on(cmd, Stdio::from(listener), path, dir, b"\n");
    assert_eq!(server.request(b""), b"served\n");
}

/// A server running as 65534:65534, told to become 65534:65534 with no
/// supplementary groups, which it already is: nothing to change, nothing
/// that needs root.
#[test]
fn a_drop_to_what_the_server_already_is_needs_no_privilege() {
    let test = "a_drop_to_what_the_server_already_is_needs_no_privilege";
    if common::skip_unless_root(test) {
        return;
    }
    for options in [
        &["-u", "65534"][..],
        &["-g", "65534"][..],
        &["-u", "65534", "-g", "65534", "-G", ""][..],
    ] {
        let dir = TempDir::new();
        open_to_all(&dir);
        let path = dir.join("sock");
        let mut cmd = common::command();
        cmd.uid(65534).gid(65534).args(["-1", "-P"]).args(options);
        cmd.arg(&path).args(["sh", "-c", "id -u; id -G"]);
        let server = Server::spawn_ready(cmd, path, dir);
        assert_eq!(server.request(b""), b"65534\n65534\n", "{options:?}");
    }
}

/// The signals glibc and musl keep for themselves (32 up to SIGRTMIN)
/// are not left ignored in the child: it starts with the dispositions the
/// server was given, and those at their default.
#[test]
fn children_start_with_no_signal_the_c_library_ignored() {
    let test = "children_start_with_no_signal_the_c_library_ignored";
    if common::skip_unless_procfs(test) {
        return;
    }
    let server = Server::start(&["-P"], &["cat", "/proc/self/status"]);
    let status = String::from_utf8(server.request(b"")).unwrap();
    let ignored = common::signal_set(&status, "SigIgn");
    let server_ignored = common::signal_set(
        &std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap(),
        "SigIgn",
    );
    // The server ignores SIGPIPE itself; its child gets the default back.
    // The C library's own signals are at their default in the child
    // whatever the server got (a parent that spawned the server with
    // glibc's posix_spawn, as this test does, left them ignored).
    let reserved: u64 = (32..=34).map(common::sig_bit).sum();
    let inherited = server_ignored & !common::sig_bit(libc::SIGPIPE) & !reserved;
    assert_eq!(
        ignored, inherited,
        "child SigIgn {ignored:#x}, server's (less SIGPIPE) {inherited:#x}"
    );
    for sig in 32..=34 {
        assert_eq!(ignored & common::sig_bit(sig), 0, "signal {sig} ignored");
    }
}

fn uid_of(pid: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().to_string()
}

/// `-U` reads UID, GID and GIDLIST, which then reach no child, as with the
/// C chain (`s6-applyuidgid -z`); an option after `-U` overrides its part,
/// and `-U` after an option overrides that.
#[test]
fn minus_u_keeps_its_variables_from_children_and_options_apply_in_order() {
    let test = "minus_u_keeps_its_variables_from_children_and_options_apply_in_order";
    if common::skip_unless_root(test) || common::skip_unless_procfs(test) {
        return;
    }
    let ids = |cmd: &mut Command| {
        cmd.env("UID", "65534")
            .env("GID", "65534")
            .env("GIDLIST", "65534");
    };
    for (options, uid) in [
        (&["-U"][..], "65534"),
        (&["-U", "-u", "1000"][..], "1000"),
        (&["-u", "1000", "-U"][..], "65534"),
        (&["-U", "-u", "0"][..], "65534"),
    ] {
        let dir = TempDir::new();
        open_to_all(&dir);
        let path = dir.join("sock");
        let mut cmd = common::command();
        ids(&mut cmd);
        cmd.args(["-1", "-P"]).args(options).arg(&path).arg("env");
        let server = Server::spawn_ready(cmd, path, dir);
        assert_eq!(uid_of(server.pid()), uid, "{options:?}");
        let env = String::from_utf8(server.request(b"")).unwrap();
        for name in ["UID=", "GID=", "GIDLIST="] {
            assert!(
                !env.lines().any(|l| l.starts_with(name)),
                "{options:?}: {name} reached the child"
            );
        }
    }
    // Without -U they are the parent's business, and pass.
    let server = Server::start_with(&["-P"], &["env"], ids);
    let env = String::from_utf8(server.request(b"")).unwrap();
    assert!(env.lines().any(|l| l == "UID=65534"), "{env}");
}

/// Holds the fcntl write lock on `path` from this process (another process
/// than the server's, as fcntl locks go).
fn hold_lock(path: &Path) -> OwnedFd {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .unwrap();
    // SAFETY: all-zero is a valid flock record; the fields are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    // SAFETY: F_SETLK reads the live record.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) };
    assert_eq!(r, 0, "lock {}", path.display());
    file.into()
}

/// One server per path: a second one started on the path of a live
/// server exits 111 naming PATH.lock, and the first keeps its clients; a
/// lock held by anyone else (the C s6-ipcserver-socketbinder takes the same
/// one) stops it too, and once released the server starts.
#[test]
fn a_second_server_on_a_live_path_is_refused() {
    let first = Server::start(&["-P"], &["echo", "first"]);
    let (status, _, err) = common::run(&["-P", first.path.to_str().unwrap(), "echo", "second"]);
    let lock = format!("{}.lock", first.path.display());
    assert_eq!(status.code(), Some(111), "{err}");
    assert_eq!(
        err,
        format!(
            "s6-ipcserver: fatal: {}: another server holds the lock on {lock} and serves this \
             socket: Device or resource busy\n",
            first.path.display()
        )
    );
    assert_eq!(first.request(b""), b"first\n", "the first server serves on");

    if common::have("s6-ipcserver-socketbinder") {
        let out = Command::new("s6-ipcserver-socketbinder")
            .args(["-d"])
            .arg(&first.path)
            .arg("true")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(111), "the C binder took the path");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("busy"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(first.request(b""), b"first\n");
    } else {
        common::record_skip(
            "a_second_server_on_a_live_path_is_refused (against the C binder)",
            "needs s6-ipcserver-socketbinder (Debian package s6)",
        );
    }

    let dir = TempDir::new();
    let path = dir.join("sock");
    let held = hold_lock(&dir.join("sock.lock"));
    let (status, _, err) = common::run(&["-P", path.to_str().unwrap(), "true"]);
    assert_eq!(status.code(), Some(111), "{err}");
    assert!(err.contains("sock.lock"), "{err}");
    drop(held);
    let server = Server::spawn_ready(
        {
            let mut cmd = common::command();
            cmd.args(["-1", "-P"]).arg(&path).args(["echo", "free"]);
            cmd
        },
        path,
        dir,
    );
    assert_eq!(server.request(b""), b"free\n");
}

/// A symbolic link planted at PATH.lock (a socket directory others can
/// write to, a server started as root) is never followed: the server
/// refuses to start, and nothing is created where the link points.
#[test]
fn a_symlink_at_the_lock_path_is_not_followed() {
    let dir = TempDir::new();
    let target = dir.join("elsewhere");
    std::os::unix::fs::symlink(&target, dir.join("sock.lock")).unwrap();
    let path = dir.join("sock");
    let (status, _, err) = common::run(&["-P", path.to_str().unwrap(), "true"]);
    assert_eq!(status.code(), Some(111), "{err}");
    assert!(err.contains(".lock file"), "{err}");
    assert!(!target.exists(), "the lock was created through the link");
    assert!(!path.exists(), "bound without the lock");
}

/// The `starting` line gives the path byte for byte, even where it is not
/// UTF-8.
#[test]
fn the_starting_line_gives_the_path_as_it_is() {
    let dir = TempDir::new();
    let name = std::ffi::OsStr::from_bytes(b"s\xffock");
    let path = dir.join(name);
    let mut child = common::command()
        .args(["-1", "-v", "-P"])
        .arg(&path)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut ready)
        .unwrap();
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let mut want = b" - listening on ".to_vec();
    want.extend_from_slice(path.as_os_str().as_bytes());
    want.push(b'\n');
    assert!(
        out.stderr.windows(want.len()).any(|w| w == want),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}
