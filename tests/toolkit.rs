//! The small programs of the toolkit beside the C ones of Debian's s6
//! (2.11.3.2): s6-connlimit, s6-ipcclient, s6-ipcserver-socketbinder, and
//! the canonical chain of s6-ipcserver, s6-ipcserver-access and
//! s6-ipcclient with our programs only. Every case checks our result on
//! its own; where the C program is installed, its result must be the same
//! (a missing one is a recorded skip of that comparison).

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{output_within, Server, TempDir};

const CONNLIMIT: &str = env!("CARGO_BIN_EXE_s6-connlimit");
const IPCCLIENT: &str = env!("CARGO_BIN_EXE_s6-ipcclient");
const BINDER: &str = env!("CARGO_BIN_EXE_s6-ipcserver-socketbinder");
const ACCESS: &str = env!("CARGO_BIN_EXE_s6-ipcserver-access");

/// The C program `name`, or `None` (the skip recorded for `test`).
fn c_tool(test: &str, name: &str) -> Option<PathBuf> {
    if common::skip_unless_tool(test, name) {
        return None;
    }
    Some(common::executable(name))
}

/// Ours first, then the C one if there is one.
fn programs(ours: &str, c: &Option<PathBuf>) -> Vec<PathBuf> {
    std::iter::once(PathBuf::from(ours))
        .chain(c.clone())
        .collect()
}

fn stderr(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "a panic: {err}");
    err
}

fn run(cmd: &mut Command) -> Output {
    output_within(cmd.stdin(Stdio::null()))
}

// s6-connlimit

/// Environment variables, as pairs.
type Vars<'a> = &'a [(&'a str, &'a str)];

#[test]
fn connlimit_exits_as_the_c_program() {
    let c = c_tool("connlimit_exits_as_the_c_program", "s6-connlimit");
    let cases: &[(Vars, i32, &str)] = &[
        // Below, at and above the limit: IPCCONNMAX=N admits N.
        (
            &[("PROTO", "IPC"), ("IPCCONNNUM", "1"), ("IPCCONNMAX", "2")],
            0,
            "",
        ),
        (
            &[("PROTO", "IPC"), ("IPCCONNNUM", "2"), ("IPCCONNMAX", "2")],
            0,
            "",
        ),
        (
            &[("PROTO", "IPC"), ("IPCCONNNUM", "3"), ("IPCCONNMAX", "2")],
            1,
            "limited to 2",
        ),
        (
            &[("PROTO", "IPC"), ("IPCCONNNUM", "1"), ("IPCCONNMAX", "0")],
            1,
            "limited to 0",
        ),
        // The limit is quoted as written.
        (
            &[("PROTO", "IPC"), ("IPCCONNNUM", "3"), ("IPCCONNMAX", "02")],
            1,
            "limited to 02",
        ),
        (
            &[
                ("PROTO", "UNIX"),
                ("UNIXCONNNUM", "5"),
                ("UNIXCONNMAX", "4"),
            ],
            1,
            "limited to 4",
        ),
        // No limit: admitted, but CONNNUM must still be there and valid.
        (&[("PROTO", "IPC"), ("IPCCONNNUM", "9")], 0, ""),
        (&[("PROTO", "IPC")], 100, "IPCCONNNUM"),
        (&[("PROTO", "IPC"), ("IPCCONNNUM", "x")], 100, "IPCCONNNUM"),
        (&[("PROTO", "IPC"), ("IPCCONNMAX", "2")], 100, "IPCCONNNUM"),
        (
            &[("PROTO", "IPC"), ("IPCCONNNUM", "x"), ("IPCCONNMAX", "2")],
            100,
            "IPCCONNNUM",
        ),
        (
            &[("PROTO", "IPC"), ("IPCCONNNUM", ""), ("IPCCONNMAX", "2")],
            100,
            "IPCCONNNUM",
        ),
        (
            &[("PROTO", "IPC"), ("IPCCONNNUM", "1"), ("IPCCONNMAX", "-1")],
            100,
            "IPCCONNMAX",
        ),
        (
            &[
                ("PROTO", "IPC"),
                ("IPCCONNNUM", "99999999999"),
                ("IPCCONNMAX", "2"),
            ],
            100,
            "IPCCONNNUM",
        ),
        (&[("IPCCONNNUM", "3"), ("IPCCONNMAX", "2")], 100, "PROTO"),
        (
            &[("PROTO", ""), ("CONNNUM", "3"), ("CONNMAX", "2")],
            100,
            "PROTO",
        ),
    ];
    for (vars, code, says) in cases {
        for bin in programs(CONNLIMIT, &c) {
            let out = run(Command::new(&bin)
                .env_clear()
                .envs(vars.iter().copied())
                .args(["echo", "ran"]));
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(*code), "{bin:?} {vars:?}: {err}");
            let ran = out.stdout == b"ran\n";
            assert_eq!(ran, *code == 0, "{bin:?} {vars:?}: prog runs iff admitted");
            assert!(err.contains(says), "{bin:?} {vars:?}: {err}");
            assert_eq!(err.is_empty(), says.is_empty(), "{bin:?} {vars:?}: {err}");
        }
    }
}

#[test]
fn connlimit_exec_failures_exit_127_and_126() {
    let c = c_tool("connlimit_exec_failures_exit_127_and_126", "s6-connlimit");
    let t = TempDir::new();
    let plain = t.join("plain");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let missing = t.join("missing");
    for bin in programs(CONNLIMIT, &c) {
        for (prog, code) in [(&missing, 127), (&plain, 126)] {
            let out = run(Command::new(&bin)
                .env_clear()
                .env("PROTO", "IPC")
                .env("IPCCONNNUM", "1")
                .arg(prog));
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(code), "{bin:?} {prog:?}: {err}");
            assert!(err.contains(prog.to_str().unwrap()), "{err}");
        }
    }
}

// s6-ipcclient

const LOOKUP: bool = cfg!(not(feature = "force-unsupported-credentials"));

/// `-P` for our servers where this build can look up no credentials
/// (they would refuse every client), `-p` (the default) elsewhere.
const LOOKUP_OPTION: &str = if LOOKUP { "-p" } else { "-P" };

/// A server (ours) whose child reads a line and answers it, then says
/// what it knows of the client.
fn echo_server() -> Server {
    Server::start(
        &[LOOKUP_OPTION],
        &[
            "sh",
            "-c",
            "IFS= read -r l; printf 'echo=%s\\nremotepath=%s\\n' \"$l\" \"$IPCREMOTEPATH\"",
        ],
    )
}

/// What the client's child reports: it writes a line on fd 7, reads the
/// answer from fd 6, and prints its environment and fds 6 and 7.
const CLIENT: &str = "echo hello >&7; cat <&6; \
printf 'proto=%s\\nlocal=%s\\nset=%s\\n' \"$PROTO\" \"$IPCLOCALPATH\" \"${IPCLOCALPATH+yes}\"; \
if [ -e /proc/self/fd ]; then printf 'fd6=%s\\nfd7=%s\\n' \"$(readlink /proc/self/fd/6)\" \"$(readlink /proc/self/fd/7)\"; fi";

fn client(bin: &Path, options: &[&str], path: &Path) -> Output {
    run(Command::new(bin)
        .args(options)
        .arg(path)
        .args(["sh", "-c", CLIENT]))
}

fn field<'a>(out: &'a Output, name: &str) -> Option<&'a str> {
    std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
}

#[test]
fn ipcclient_gives_its_child_the_connection_on_6_and_7() {
    let c = c_tool(
        "ipcclient_gives_its_child_the_connection_on_6_and_7",
        "s6-ipcclient",
    );
    let server = echo_server();
    let dir = TempDir::new();
    for (n, bin) in programs(IPCCLIENT, &c).iter().enumerate() {
        let out = client(bin, &[], &server.path);
        assert!(out.status.success(), "{bin:?}: {}", stderr(&out));
        assert_eq!(field(&out, "echo"), Some("hello"), "{bin:?}: {out:?}");
        assert_eq!(field(&out, "proto"), Some("IPC"));
        assert_eq!(field(&out, "set"), Some("yes"), "IPCLOCALPATH is set");
        assert_eq!(field(&out, "local"), Some(""));
        assert_eq!(field(&out, "remotepath"), Some(""), "an unbound client");
        if platform::host::PROCFS {
            let fd6 = field(&out, "fd6").unwrap();
            assert!(fd6.starts_with("socket:"), "{bin:?}: fd 6 is {fd6}");
            assert_eq!(field(&out, "fd7"), Some(fd6), "one socket on 6 and 7");
        }
        // -l: IPCLOCALPATH says so, nothing else changes.
        let out = client(bin, &["-l", "named"], &server.path);
        assert_eq!(field(&out, "local"), Some("named"), "{bin:?}: {out:?}");
        assert_eq!(field(&out, "remotepath"), Some(""));
        // -p: the client binds there; the server sees it, IPCLOCALPATH
        // says it, and the socket file stays.
        let bound = dir.join(format!("client{n}"));
        let bound_s = bound.to_str().unwrap();
        let out = client(bin, &["-p", bound_s], &server.path);
        assert!(out.status.success(), "{bin:?}: {}", stderr(&out));
        assert_eq!(field(&out, "remotepath"), Some(bound_s), "{out:?}");
        assert_eq!(field(&out, "local"), Some(bound_s));
        let md = std::fs::symlink_metadata(&bound).expect("-p's socket stays");
        assert!(md.file_type().is_socket());
        // -l wins over -p for IPCLOCALPATH; binding the same path again
        // fails, 111, naming it.
        let out = client(bin, &["-p", bound_s, "-l", "L"], &server.path);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(111), "{bin:?}: {err}");
        assert!(
            err.contains(bound_s) && says(&err, libc::EADDRINUSE, "Address already in use"),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "the child must not run");
        std::fs::remove_file(&bound).unwrap();
        let out = client(bin, &["-p", bound_s, "-l", "L"], &server.path);
        assert_eq!(field(&out, "local"), Some("L"), "{bin:?}: {out:?}");
        assert_eq!(field(&out, "remotepath"), Some(bound_s));
    }
}

#[test]
fn ipcclient_failures_exit_as_the_c_program() {
    let c = c_tool("ipcclient_failures_exit_as_the_c_program", "s6-ipcclient");
    let server = echo_server();
    let t = TempDir::new();
    let plain = t.join("plain");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let missing_sock = t.join("nosock");
    let sock = server.path.to_str().unwrap();
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (
            vec![missing_sock.to_str().unwrap(), "true"],
            111,
            format!("{}: No such file or directory", missing_sock.display()),
        ),
        (vec![sock], 100, "usage".into()),
        (vec![], 100, "usage".into()),
        (
            vec![sock, "/nonexistent/prog"],
            127,
            "/nonexistent/prog".into(),
        ),
        (
            vec![sock, plain.to_str().unwrap()],
            126,
            plain.display().to_string(),
        ),
        (vec!["-Z", sock, "true"], 100, "usage".into()),
    ];
    for (args, code, says) in cases {
        for bin in programs(IPCCLIENT, &c) {
            let out = run(Command::new(&bin).args(&args));
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(code), "{bin:?} {args:?}: {err}");
            assert!(err.contains(&says), "{bin:?} {args:?}: {err}");
        }
    }
}

// s6-ipcserver-socketbinder

/// The C s6-ipcserverd if installed (the skip recorded otherwise).
fn c_ipcserverd(test: &str) -> Option<PathBuf> {
    c_tool(test, "s6-ipcserverd")
}

/// `BINDER -a 0700 DIR/sock SERVERD -1 sh -c 'echo served'`, ready.
fn served_behind(binder: &Path, serverd: &Path) -> Server {
    let dir = TempDir::new();
    let path = dir.join("sock");
    let mut cmd = Command::new(binder);
    cmd.args(["-a", "0700"]).arg(&path).arg(serverd).arg("-1");
    if serverd == Path::new(common::bin_d()) {
        cmd.arg(LOOKUP_OPTION);
    }
    cmd.args(["sh", "-c", "echo served"]).process_group(0);
    Server::spawn_expecting(cmd, path, dir, b"\n")
}

#[test]
fn socketbinder_feeds_our_serverd_and_the_c_one() {
    let test = "socketbinder_feeds_our_serverd_and_the_c_one";
    let mut serverds = vec![PathBuf::from(common::bin_d())];
    serverds.extend(c_ipcserverd(test));
    for serverd in serverds {
        let server = served_behind(Path::new(BINDER), &serverd);
        assert_eq!(server.request(b""), b"served\n", "behind {serverd:?}");
        let mode = std::fs::metadata(&server.path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

/// Runs `BINDER OPTIONS DIR/sock PROG...` under `umask`, and returns its
/// output; the socket file stays.
fn bind_with(binder: &Path, umask: &str, options: &[&str], path: &Path, prog: &[&str]) -> Output {
    run(Command::new("sh")
        .args(["-c", &format!("umask {umask}; exec \"$@\""), "sh"])
        .arg(binder)
        .args(options)
        .arg(path)
        .args(prog))
}

#[test]
fn socketbinder_gives_the_mode_whatever_the_umask() {
    let c = c_tool(
        "socketbinder_gives_the_mode_whatever_the_umask",
        "s6-ipcserver-socketbinder",
    );
    let t = TempDir::new();
    for (n, bin) in programs(BINDER, &c).iter().enumerate() {
        for (umask, options, want) in [
            ("077", &["-a", "0755"][..], 0o755),
            ("000", &["-a", "0600"][..], 0o600),
            ("027", &["-a", "0777"][..], 0o777),
            ("077", &[][..], 0o777),
        ] {
            let path = t.join(format!("s{n}-{umask}-{want:o}"));
            let out = bind_with(bin, umask, options, &path, &["true"]);
            assert!(out.status.success(), "{bin:?}: {}", stderr(&out));
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, want, "{bin:?} umask {umask} {options:?}");
        }
    }
}

/// The socket at `path` as /proc/net/unix shows it while `prog` runs:
/// its type (1 stream, 2 datagram) and whether it listens.
fn socket_kind(bin: &Path, options: &[&str], path: &Path) -> (u32, bool) {
    let out = bind_with(bin, "022", options, path, &["cat", "/proc/net/unix"]);
    assert!(
        out.status.success(),
        "{bin:?} {options:?}: {}",
        stderr(&out)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.ends_with(&format!(" {}", path.display())))
        .unwrap_or_else(|| panic!("{path:?} not in /proc/net/unix: {text}"));
    // Num RefCount Protocol Flags Type St Inode Path
    let f: Vec<&str> = line.split_whitespace().collect();
    let flags = u32::from_str_radix(f[3], 16).unwrap();
    let kind = u32::from_str_radix(f[4], 16).unwrap();
    (kind, flags & 0x10000 != 0) // __SO_ACCEPTCON
}

#[test]
fn socketbinder_backlog_zero_and_datagrams() {
    let test = "socketbinder_backlog_zero_and_datagrams";
    if common::skip_unless_procfs(test) {
        return;
    }
    let c = c_tool(test, "s6-ipcserver-socketbinder");
    let t = TempDir::new();
    for (n, bin) in programs(BINDER, &c).iter().enumerate() {
        let p = |name: &str| t.join(format!("{name}{n}"));
        assert_eq!(socket_kind(bin, &[], &p("stream")), (1, true), "{bin:?}");
        assert_eq!(socket_kind(bin, &["-b", "0"], &p("b0")), (1, false));
        assert_eq!(socket_kind(bin, &["-m", "-b0"], &p("dgram")), (2, false));
        // A datagram socket cannot listen: -m alone fails, 111.
        let out = bind_with(bin, "022", &["-m"], &p("mlisten"), &["true"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(111), "{bin:?}: {err}");
        assert!(
            says(&err, libc::EOPNOTSUPP, "Operation not supported"),
            "{err}"
        );
    }
}

#[test]
fn a_socket_that_does_not_listen_is_refused_by_serverd() {
    let test = "a_socket_that_does_not_listen_is_refused_by_serverd";
    let c = c_tool(test, "s6-ipcserver-socketbinder");
    let t = TempDir::new();
    for (n, bin) in programs(BINDER, &c).iter().enumerate() {
        let path = t.join(format!("s{n}"));
        let out = bind_with(bin, "022", &["-b", "0"], &path, &[common::bin_d(), "true"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(100), "{bin:?}: {err}");
        assert!(err.contains("not a listening socket"), "{err}");
    }
    // The C s6-ipcserverd refuses it too, exit 111 ("trouble with
    // socket"): ours says 100, a usage error, on purpose (it is how the
    // program was started that is wrong, not the system).
    if let Some(serverd) = c_ipcserverd(test) {
        let path = t.join("c");
        let out = bind_with(
            Path::new(BINDER),
            "022",
            &["-b", "0"],
            &path,
            &[serverd.to_str().unwrap(), "true"],
        );
        assert_eq!(out.status.code(), Some(111), "{}", stderr(&out));
    }
}

/// The `flags:` of /proc/self/fdinfo/0 that `prog` sees behind the binder.
fn stdin_nonblocking(bin: &Path, options: &[&str], path: &Path) -> bool {
    let out = bind_with(bin, "022", options, path, &["cat", "/proc/self/fdinfo/0"]);
    assert!(out.status.success(), "{bin:?}: {}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .unwrap_or_else(|| panic!("no flags in {text}"));
    let flags = u32::from_str_radix(flags.trim(), 8).unwrap();
    flags & libc::O_NONBLOCK as u32 != 0
}

#[test]
fn socketbinder_leaves_the_socket_non_blocking_unless_minus_capital_b() {
    let test = "socketbinder_leaves_the_socket_non_blocking_unless_minus_capital_b";
    if common::skip_unless_procfs(test) {
        return;
    }
    let c = c_tool(test, "s6-ipcserver-socketbinder");
    let t = TempDir::new();
    for (n, bin) in programs(BINDER, &c).iter().enumerate() {
        assert!(
            stdin_nonblocking(bin, &[], &t.join(format!("d{n}"))),
            "{bin:?}"
        );
        assert!(
            !stdin_nonblocking(bin, &["-B"], &t.join(format!("b{n}"))),
            "{bin:?}"
        );
    }
}

#[test]
fn minus_d_never_removes_what_is_not_a_socket() {
    let c = c_tool(
        "minus_d_never_removes_what_is_not_a_socket",
        "s6-ipcserver-socketbinder",
    );
    let t = TempDir::new();
    let file = t.join("file");
    std::fs::write(&file, "precious\n").unwrap();
    for options in [&["-d"][..], &[][..]] {
        let out = bind_with(Path::new(BINDER), "022", options, &file, &["echo", "ran"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(111), "{options:?}: {err}");
        assert!(
            err.contains("regular file") && err.contains(file.to_str().unwrap()),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "prog must not run");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious\n");
    }
    // An old socket, though, is replaced.
    let sock = t.join("sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let out = bind_with(Path::new(BINDER), "022", &["-d"], &sock, &["true"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The C binder removes the regular file and binds in its place: ours
    // refuses on purpose (a typo in PATH must not cost a file).
    if let Some(c) = c {
        let cfile = t.join("cfile");
        std::fs::write(&cfile, "precious\n").unwrap();
        let out = bind_with(&c, "022", &["-d"], &cfile, &["true"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let md = std::fs::symlink_metadata(&cfile).unwrap();
        assert!(md.file_type().is_socket(), "the C binder replaced the file");
    }
}

#[test]
fn minus_capital_d_fails_on_an_existing_socket() {
    let c = c_tool(
        "minus_capital_d_fails_on_an_existing_socket",
        "s6-ipcserver-socketbinder",
    );
    let t = TempDir::new();
    for (n, bin) in programs(BINDER, &c).iter().enumerate() {
        let sock = t.join(format!("s{n}"));
        let out = bind_with(bin, "022", &["-D"], &sock, &["true"]);
        assert!(out.status.success(), "{bin:?}: {}", stderr(&out));
        let out = bind_with(bin, "022", &["-D"], &sock, &["echo", "ran"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(111), "{bin:?}: {err}");
        assert!(
            says(&err, libc::EADDRINUSE, "Address already in use"),
            "{err}"
        );
        assert!(out.stdout.is_empty());
        assert!(std::fs::symlink_metadata(&sock)
            .unwrap()
            .file_type()
            .is_socket());
    }
}

/// Takes the write lock on `path` (an fcntl lock, as the binders take)
/// for as long as the returned file is open.
fn hold_lock(path: &Path) -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    // SAFETY: a zeroed flock is valid; fcntl reads the record only.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    // SAFETY: as above; the fd is open.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &lock) };
    assert_eq!(r, 0, "lock {path:?}: {}", std::io::Error::last_os_error());
    f
}

#[test]
fn the_lock_on_path_dot_lock_is_taken_and_released_at_exec() {
    let c = c_tool(
        "the_lock_on_path_dot_lock_is_taken_and_released_at_exec",
        "s6-ipcserver-socketbinder",
    );
    let t = TempDir::new();
    let binders = programs(BINDER, &c);
    for (n, bin) in binders.iter().enumerate() {
        // Held by another process: -d refuses to replace the socket.
        let sock = t.join(format!("s{n}"));
        let lockfile = t.join(format!("s{n}.lock"));
        let held = hold_lock(&lockfile);
        let out = bind_with(bin, "022", &["-d"], &sock, &["echo", "ran"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(111), "{bin:?}: {err}");
        assert!(err.contains("Device or resource busy"), "{err}");
        assert!(out.stdout.is_empty());
        drop(held);
        // Released at exec: a process that prog starts (not prog itself,
        // which would own any lock the binder's process kept) binds the
        // same path with -d, every binder in turn.
        for inner in &binders {
            let script = format!("\"{}\" -d \"$0\" true; echo rc=$?", inner.display());
            let out = bind_with(
                bin,
                "022",
                &["-d"],
                &sock,
                &["sh", "-c", &script, sock.to_str().unwrap()],
            );
            let err = stderr(&out);
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "rc=0\n",
                "{inner:?} behind {bin:?}: {err}"
            );
        }
    }
}

// The canonical chain, with our programs only (and the C s6-envuidgid).

#[test]
fn the_canonical_chain_serves_an_allowed_client() {
    let test = "the_canonical_chain_serves_an_allowed_client";
    if common::skip_unless_root(test)
        || common::skip_unless_tool(test, "s6-envuidgid")
        || common::skip_unless(LOOKUP, test, "needs a credentials lookup")
    {
        return;
    }
    let dir = TempDir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let rules = dir.join("rules");
    let client_uid = 4321u32;
    let rule = rules.join(format!("uid/{client_uid}"));
    std::fs::create_dir_all(rule.join("env")).unwrap();
    std::fs::write(rule.join("allow"), "").unwrap();
    std::fs::write(rule.join("env/RULEVAR"), "from the rule\n").unwrap();
    std::fs::write(rule.join("env/HOME"), "").unwrap();
    for d in [
        "",
        "uid",
        &format!("uid/{client_uid}"),
        &format!("uid/{client_uid}/env"),
    ] {
        std::fs::set_permissions(rules.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = dir.join("sock");
    let mut cmd = Command::new("s6-envuidgid");
    cmd.env("HOME", "/root")
        .args(["nobody", common::bin(), "-U", "-1", "--"])
        .arg(&path)
        .args([ACCESS, "-v2", "-l0", "-i"])
        .arg(&rules)
        .args([
            "--",
            "sh",
            "-c",
            "IFS= read -r l; env -0; printf 'RUNAS=%s\\0GOT=%s\\0' \"$(id -u)\" \"$l\"",
        ])
        .process_group(0);
    let server = Server::spawn_ready(cmd, path.clone(), TempDir::new());
    let out = run(Command::new(IPCCLIENT)
        .arg(&path)
        .args(["sh", "-c", "echo hi >&7; cat <&6"])
        .uid(client_uid)
        .gid(client_uid));
    assert!(out.status.success(), "client: {}", stderr(&out));
    let env = common::parse_env0(&out.stdout);
    let get =
        |name: &str| common::env_get(&env, name).map(|v| String::from_utf8_lossy(v).into_owned());
    assert_eq!(
        get("IPCREMOTEEUID"),
        Some(client_uid.to_string()),
        "{env:?}"
    );
    assert_eq!(get("IPCREMOTEEGID"), Some(client_uid.to_string()));
    assert_eq!(get("PROTO").as_deref(), Some("IPC"));
    assert_eq!(get("RULEVAR").as_deref(), Some("from the rule"));
    assert_eq!(get("HOME"), None, "the rule's empty env/HOME unsets it");
    assert_eq!(get("IPCLOCALPATH").as_deref(), Some("0"));
    assert_eq!(
        get("GOT").as_deref(),
        Some("hi"),
        "what the client wrote on fd 7"
    );
    for gone in ["UID", "GID", "GIDLIST"] {
        assert_eq!(get(gone), None, "{gone} must not reach the program");
    }
    let nobody = run(Command::new("id").args(["-u", "nobody"]));
    let nobody = String::from_utf8(nobody.stdout).unwrap();
    assert_eq!(
        get("RUNAS").as_deref(),
        Some(nobody.trim()),
        "-U dropped root"
    );
    let allow = server.wait_log("s6-ipcserver-access: info: allow pid ");
    assert!(
        allow.ends_with(&format!(" uid {client_uid} gid {client_uid}")),
        "{allow}"
    );
    // Another uid has no rule: refused, the child never runs.
    let out = run(Command::new(IPCCLIENT)
        .arg(&path)
        .args(["sh", "-c", "echo hi >&7; cat <&6"])
        .uid(client_uid + 1)
        .gid(client_uid + 1));
    assert!(out.stdout.is_empty(), "{out:?}");
    server.wait_log(&format!(
        "uid {} gid {}: No such file or directory",
        client_uid + 1,
        client_uid + 1
    ));
}

/// Whether `err` gives the system error `errno` in the words of this
/// build's C library (ours, musl or glibc) or of glibc's (Debian's C
/// programs).
fn says(err: &str, errno: i32, glibc: &str) -> bool {
    err.contains(&common::strerror(errno)) || err.contains(glibc)
}
