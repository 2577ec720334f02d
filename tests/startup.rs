//! Start-up (README, Reference), in order: clamps, stdio, the socket, privileges,
//! signals, the verbose start lines and the `-1` line.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;

use common::{eventually, run_cmd, strerror, Server, TempDir};

fn fd_target(pid: i32, fd: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("<{e}>"))
}

fn status_field(pid: i32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in status"))
        .trim()
        .to_string()
}

fn has_signal(mask_hex: &str, sig: i32) -> bool {
    let mask = u64::from_str_radix(mask_hex, 16).unwrap();
    mask & (1 << (sig - 1)) != 0
}

#[test]
fn maxconn_is_clamped_to_1_and_1000() {
    let s = Server::start(&["-v", "-c", "0"], &["true"]);
    s.wait_log("s6-ipcserver: info: status: 0/1");
    let s = Server::start(&["-v", "-c", "5000"], &["true"]);
    s.wait_log("s6-ipcserver: info: status: 0/1000");
    let s = Server::start(&["-v", "-c", "1000"], &["true"]);
    s.wait_log("s6-ipcserver: info: status: 0/1000");
}

#[test]
fn localmaxconn_is_clamped_to_maxconn() {
    let s = Server::start(&["-v", "-P", "-c", "10", "-C", "3"], &["true"]);
    s.request(b"");
    let allow = s.wait_log("allow ");
    assert!(
        allow.ends_with(" count ?/10"),
        "with -P localmaxconn is maxconn: {allow}"
    );
    if cfg!(not(feature = "force-unsupported-credentials")) {
        let s = Server::start(&["-v", "-c", "10", "-C", "50"], &["true"]);
        s.request(b"");
        let allow = s.wait_log("allow ");
        assert!(allow.ends_with(" count 1/10"), "{allow}");
        let s = Server::start(&["-v", "-C", "0"], &["true"]);
        let start = s.wait_log("starting");
        assert!(
            start.contains(" - maxconn 40, localmaxconn 1, backlog "),
            "the start line gives the limits in effect: {start}"
        );
        s.request(b"");
        let allow = s.wait_log("allow ");
        assert!(allow.ends_with(" count 1/1"), "0 becomes 1: {allow}");
    }
}

#[test]
fn verbose_start_lines_come_first() {
    let s = Server::start(&["-v"], &["true"]);
    s.wait_log("status: 0/40");
    let lines = s.lines();
    assert_eq!(
        lines[..2],
        [
            format!(
                "s6-ipcserver: info: starting - maxconn 40, localmaxconn 40, backlog {} \
                 - listening on {}",
                libc::SOMAXCONN,
                s.path.display()
            ),
            "s6-ipcserver: info: status: 0/40".to_string()
        ]
    );
}

#[test]
fn stdin_and_stdout_are_released() {
    // With -1: stdout got the line, then end of file (the harness checks the
    // exact bytes and EOF); neither descriptor points where it did.
    let s = Server::start(&[], &["true"]);
    assert_eq!(fd_target(s.pid(), 0), "/dev/null");
    assert_eq!(fd_target(s.pid(), 1), "/dev/null");

    // Without -1, stdout is released at start: a reader sees EOF at once.
    let dir = TempDir::new();
    let path = dir.join("sock");
    let mut child = common::command()
        .arg(&path)
        .arg("true")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut out = Vec::new();
    std::io::Read::read_to_end(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(out.is_empty());
    eventually("socket bound", || path.exists());
    assert_eq!(fd_target(pid, 0), "/dev/null");
    assert_eq!(fd_target(pid, 1), "/dev/null");
    common::kill_group(pid);
    let _ = child.wait();
}

#[test]
fn an_existing_socket_is_replaced() {
    for opts in [&[][..], &["-d"][..], &["-D", "-d"][..]] {
        let dir = TempDir::new();
        let path = dir.join("sock");
        drop(UnixListener::bind(&path).unwrap());
        let mut cmd = common::command();
        cmd.arg("-1")
            .args(opts)
            .arg("-P")
            .arg(&path)
            .arg("echo")
            .arg("hi");
        let s = Server::spawn_ready(cmd, path, dir);
        assert_eq!(s.request(b""), b"hi\n", "{opts:?}");
    }
}

#[test]
fn minus_d_never_removes_anything_but_a_socket() {
    let dir = TempDir::new();
    let file = dir.join("file");
    std::fs::write(&file, "precious").unwrap();
    let subdir = dir.join("dir");
    std::fs::create_dir(&subdir).unwrap();
    std::fs::write(subdir.join("inside"), "also precious").unwrap();
    for (path, what) in [(&file, "a regular file"), (&subdir, "a directory")] {
        let (status, _, err) = run_cmd(common::command().arg("-d").arg(path).arg("true"));
        assert_eq!(status.code(), Some(111), "{err}");
        assert_eq!(
            err,
            format!(
                "s6-ipcserver: fatal: {}: path exists and is {what}, not a socket: refusing to remove it\n",
                path.display()
            )
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
    assert_eq!(
        std::fs::read_to_string(subdir.join("inside")).unwrap(),
        "also precious"
    );
}

#[test]
fn minus_capital_d_never_removes_and_fails_to_bind() {
    let dir = TempDir::new();
    let path = dir.join("sock");
    drop(UnixListener::bind(&path).unwrap());
    let (status, _, err) = run_cmd(common::command().arg("-D").arg(&path).arg("true"));
    assert_eq!(status.code(), Some(111));
    // In the C library's words (glibc and musl word EADDRINUSE
    // differently), without Rust's "(os error 98)".
    assert_eq!(
        err,
        format!(
            "s6-ipcserver: fatal: unable to bind at {}: {}\n",
            path.display(),
            common::strerror(libc::EADDRINUSE)
        )
    );
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_socket());
}

fn mode_with_umask(opts: &[&str], umask: libc::mode_t) -> u32 {
    let dir = TempDir::new();
    let path = dir.join("sock");
    let mut cmd = common::command();
    cmd.arg("-1").args(opts).arg(&path).arg("true");
    // SAFETY: umask is async-signal-safe and only changes the child's mask.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask);
            Ok(())
        });
    }
    let s = Server::spawn_ready(cmd, path, dir);
    std::fs::metadata(&s.path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_socket_gets_exactly_the_requested_mode_whatever_the_umask() {
    assert_eq!(mode_with_umask(&[], 0o022), 0o777);
    assert_eq!(mode_with_umask(&[], 0o777), 0o777);
    assert_eq!(mode_with_umask(&["-a", "0600"], 0o077), 0o600);
    assert_eq!(mode_with_umask(&["-a", "0600"], 0o000), 0o600);
    assert_eq!(mode_with_umask(&["-a", "660"], 0o022), 0o660);
    assert_eq!(mode_with_umask(&["-a0"], 0o022), 0);
}

#[test]
fn a_path_too_long_for_sun_path_is_a_clear_error() {
    let dir = TempDir::new();
    let name = "x".repeat(120);
    let path = dir.join(&name);
    let (status, _, err) = run_cmd(common::command().arg(&path).arg("true"));
    assert_eq!(status.code(), Some(111));
    let len = path.as_os_str().len();
    assert_eq!(
        err,
        format!(
            "s6-ipcserver: fatal: {}: path is {len} bytes long, longer than the 107 bytes a Unix socket address holds\n",
            path.display()
        )
    );
    assert!(!path.exists());
}

#[test]
fn a_missing_directory_is_a_system_error() {
    let dir = TempDir::new();
    let path = dir.join("no/such/dir/sock");
    let (status, _, err) = run_cmd(common::command().arg(&path).arg("true"));
    assert_eq!(status.code(), Some(111));
    assert!(
        err.starts_with(&format!(
            "s6-ipcserver: fatal: unable to bind at {}: No such file",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn signals_are_trapped_and_sigpipe_ignored() {
    let s = Server::start(&[], &["true"]);
    // Trapped: caught by a handler (self-pipe), or blocked and read from a
    // signalfd (Linux).
    let caught = status_field(s.pid(), "SigCgt");
    let blocked = status_field(s.pid(), "SigBlk");
    for sig in [
        libc::SIGCHLD,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGABRT,
    ] {
        assert!(
            has_signal(&caught, sig) || has_signal(&blocked, sig),
            "signal {sig} is trapped: caught {caught}, blocked {blocked}"
        );
    }
    let ignored = status_field(s.pid(), "SigIgn");
    assert!(
        has_signal(&ignored, libc::SIGPIPE),
        "SIGPIPE is ignored: {ignored}"
    );
}

#[test]
fn privileges_are_dropped_after_binding() {
    if common::skip_unless_root("privileges_are_dropped_after_binding") {
        return;
    }
    // The socket is in a directory only root may write: binding must happen
    // before the drop, and the server runs as 65534 afterwards.
    let dir = TempDir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join("sock");
    let mut cmd = common::command();
    cmd.args(["-1", "-P", "-u", "65534", "-g", "65534"])
        .arg(&path)
        .args(["id", "-u"]);
    let s = Server::spawn_ready(cmd, path, dir);
    assert_eq!(status_field(s.pid(), "Uid"), "65534\t65534\t65534\t65534");
    assert_eq!(status_field(s.pid(), "Gid"), "65534\t65534\t65534\t65534");
    assert_eq!(status_field(s.pid(), "Groups"), "65534");
    assert_eq!(s.request(b""), b"65534\n");
}

/// How a test makes a step of the drop fail from the outside.
#[derive(Clone, Copy)]
enum Runner {
    /// The server runs as root.
    Root,
    /// The server runs as 65534:65534, which cannot change its groups.
    Nobody,
    /// The server runs as root under `setpriv` with these options.
    Setpriv(&'static [&'static str]),
}

/// Runs the server with `options` (at each verbosity) the way `runner`
/// says and checks that it exits 111 with exactly
/// `fatal: unable to drop privileges: STEP: WHY`.
fn assert_drop_fails(runner: Runner, options: &[&str], step: &str, why: &str) {
    let dir = TempDir::new();
    // Writable by 65534, so that binding succeeds and the drop is reached.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // Not root: the message says what dropping privileges needs.
    let hint = if matches!(runner, Runner::Nobody) {
        " (changing the uid, gid or groups needs root)"
    } else {
        ""
    };
    let want = format!("s6-ipcserver: fatal: unable to drop privileges{hint}: {step}: {why}\n");
    // A fatal error is logged at every verbosity, before any start line.
    for verbosity in [&[][..], &["-q"][..], &["-v"][..]] {
        let path = dir.join("sock");
        let mut cmd = match runner {
            Runner::Setpriv(with) => {
                let mut cmd = std::process::Command::new("setpriv");
                cmd.args(with).arg(common::bin()).process_group(0);
                cmd
            }
            Runner::Root | Runner::Nobody => common::command(),
        };
        if let Runner::Nobody = runner {
            cmd.uid(65534).gid(65534);
        }
        cmd.args(verbosity).args(options).arg(&path).arg("true");
        let (status, _, err) = run_cmd(&mut cmd);
        assert_eq!(
            (status.code(), err.as_str()),
            (Some(111), want.as_str()),
            "{verbosity:?} {options:?}"
        );
        assert!(
            !path.exists(),
            "{verbosity:?} {options:?}: the socket bound before the failed drop is left behind"
        );
    }
}

/// Whether `setpriv` (util-linux) is there; records the skip if not.
fn skip_unless_setpriv(test: &str) -> bool {
    let have = std::process::Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    common::skip_unless(have, test, "needs setpriv (util-linux)")
}

#[test]
fn a_failed_setgroups_is_fatal_and_names_the_step() {
    if common::skip_unless_root("a_failed_setgroups_is_fatal_and_names_the_step") {
        return;
    }
    // An unprivileged server cannot change its groups.
    assert_drop_fails(
        Runner::Nobody,
        &["-u", "1"],
        "setgroups",
        &strerror(libc::EPERM),
    );
}

/// setgroups needs the privilege setgid needs, and comes first: from the
/// outside, setgid can only be made to fail on a gid the kernel refuses,
/// (gid_t)-1, with an empty list so that setgroups has no gid to refuse.
#[test]
fn a_failed_setgid_is_fatal_and_names_the_step() {
    if common::skip_unless_root("a_failed_setgid_is_fatal_and_names_the_step") {
        return;
    }
    let options = ["-G", "", "-g", "4294967295"];
    assert_drop_fails(Runner::Root, &options, "setgid", &strerror(libc::EINVAL));
}

#[test]
fn a_failed_setuid_is_fatal_and_names_the_step() {
    if common::skip_unless_root("a_failed_setuid_is_fatal_and_names_the_step") {
        return;
    }
    // A uid the kernel refuses.
    let options = ["-G", "", "-u", "4294967295"];
    assert_drop_fails(Runner::Root, &options, "setuid", &strerror(libc::EINVAL));
    if skip_unless_setpriv("a_failed_setuid_is_fatal_and_names_the_step (setpriv)") {
        return;
    }
    // Root without CAP_SETUID: setgroups works, setuid does not.
    let no_setuid = Runner::Setpriv(&["--bounding-set", "-setuid"]);
    assert_drop_fails(no_setuid, &["-u", "1000"], "setuid", &strerror(libc::EPERM));
}

/// With SECBIT_NO_SETUID_FIXUP (kept across exec), setuid leaves root's
/// capabilities in place, so uid 0 can be taken back after the drop.
#[test]
fn a_uid_that_can_be_regained_is_fatal_and_names_the_check() {
    if common::skip_unless_root("a_uid_that_can_be_regained_is_fatal_and_names_the_check")
        || skip_unless_setpriv("a_uid_that_can_be_regained_is_fatal_and_names_the_check")
    {
        return;
    }
    let keeps_caps = Runner::Setpriv(&["--securebits", "+no_setuid_fixup"]);
    assert_drop_fails(
        keeps_caps,
        &["-u", "1000", "-g", "1000"],
        "regain check",
        "uid 0 could be regained after dropping it",
    );
}

/// The listen backlog, as `ss` reports it for a listening Unix socket
/// (its Send-Q column).
fn backlog_of(path: &std::path::Path) -> Option<u32> {
    let out = std::process::Command::new("ss")
        .args(["-xlH", "src"])
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(3)?.parse().ok()
}

#[test]
fn the_backlog_reaches_listen() {
    if common::skip_unless_procfs("the_backlog_reaches_listen") {
        return;
    }
    let have_ss = std::process::Command::new("ss").arg("-V").output().is_ok();
    if common::skip_unless(have_ss, "the_backlog_reaches_listen", "needs ss (iproute2)") {
        return;
    }
    let s = Server::start(&["-b", "7"], &["true"]);
    assert_eq!(backlog_of(&s.path), Some(7));
    // The default is SOMAXCONN, which the kernel caps at net.core.somaxconn.
    let cap: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let s = Server::start(&[], &["true"]);
    assert_eq!(backlog_of(&s.path), Some((libc::SOMAXCONN as u32).min(cap)));
}

/// A program that cannot run is found out at start-up, with the reason,
/// and the server starts all the same (the program may appear later);
/// one that can run gives no warning.
#[test]
fn a_program_that_cannot_run_is_warned_about_at_start() {
    let dir = TempDir::new();
    let plain = dir.join("plain");
    std::fs::write(&plain, "not a program").unwrap();
    let plain = plain.to_str().unwrap().to_string();
    for (prog, why) in [
        ("s6ipc-no-such-program", "not found in PATH".to_string()),
        ("/nonexistent/s6ipc-prog", strerror(libc::ENOENT)),
        (plain.as_str(), strerror(libc::EACCES)),
    ] {
        let s = Server::start(&["-P"], &[prog]);
        let line = s.wait_log("cannot be run now");
        assert_eq!(
            line,
            format!(
                "s6-ipcserver: warning: {prog} cannot be run now: {why}; until it can, \
                 each client's connection is closed at once"
            )
        );
        assert_eq!(s.request(b""), b"", "{prog}: the client is closed at once");
    }
    let s = Server::start(&["-v", "-P"], &["true"]);
    s.wait_log("status: 0/40");
    assert!(
        !s.lines().iter().any(|l| l.contains("cannot be run")),
        "{:?}",
        s.lines()
    );
}
