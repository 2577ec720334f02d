//! Serving connections (README, Reference): the child's environment, descriptors and
//! signal state, the limits, denials, spawn failures, reaping and the
//! verbose lines.

mod common;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use common::{
    assert_children_stay_at_most, children_of, env_get, parse_env0, wait_children, wait_exec,
    wait_no_children, Server, TempDir,
};

fn env_of(server: &Server) -> Vec<(Vec<u8>, Vec<u8>)> {
    parse_env0(&server.request(b""))
}

/// The pids the server reported in its `allow` lines, in order.
fn allowed_pids(server: &Server) -> Vec<i32> {
    server
        .lines()
        .iter()
        .filter_map(|l| l.split(" pid ").nth(1)?.split(' ').next()?.parse().ok())
        .collect()
}

/// Connects from a socket bound to `bind` (raw bytes).
fn connect_bound(server: &Server, bind: &[u8]) -> UnixStream {
    let fd = platform::socket::connect(server.path.as_os_str(), Some(OsStr::from_bytes(bind)))
        .expect("bound connect");
    // SAFETY: `fd` is a connected Unix stream socket we own.
    let s = unsafe { UnixStream::from_raw_fd(fd.into_raw_fd()) };
    s.set_read_timeout(Some(common::TIMEOUT)).unwrap();
    s
}

#[test]
fn the_child_gets_the_ucspi_environment() {
    let server = Server::start_with(&["-P"], &["env", "-0"], |c| {
        c.env("FOO", "bar baz")
            .env("IPCREMOTEPATH", "stale")
            .env("PROTO", "TCP");
    });
    let env = env_of(&server);
    assert_eq!(env_get(&env, "PROTO"), Some(&b"IPC"[..]));
    assert_eq!(
        env_get(&env, "FOO"),
        Some(&b"bar baz"[..]),
        "the server's environment passes through"
    );
    assert_eq!(
        env_get(&env, "IPCREMOTEPATH"),
        Some(&b""[..]),
        "an unbound client has an empty path"
    );
    assert_eq!(
        env.iter().filter(|(k, _)| k == b"PROTO").count(),
        1,
        "each variable once"
    );
}

#[test]
fn without_lookup_the_ids_are_unset_and_connnum_empty() {
    let server = Server::start_with(&["-P"], &["env", "-0"], |c| {
        c.env("IPCREMOTEEUID", "5")
            .env("IPCREMOTEEGID", "6")
            .env("IPCCONNNUM", "7");
    });
    let env = env_of(&server);
    assert_eq!(env_get(&env, "IPCREMOTEEUID"), None);
    assert_eq!(env_get(&env, "IPCREMOTEEGID"), None);
    assert_eq!(env_get(&env, "IPCCONNNUM"), Some(&b""[..]));
}

#[test]
fn remote_paths_reach_the_child_byte_for_byte() {
    let server = Server::start(&["-P"], &["printenv", "IPCREMOTEPATH"]);
    let dir = TempDir::new();
    let mut names: Vec<Vec<u8>> = vec![
        b"with space".to_vec(),
        b"new\nline".to_vec(),
        b"non-utf8-\xff\xfe".to_vec(),
    ];
    // The longest path sun_path holds.
    let base = dir.path().as_os_str().as_bytes().len() + 1;
    names.push(vec![b'L'; platform::socket::max_path_len() - base]);
    for name in names {
        let mut path = dir.path().as_os_str().as_bytes().to_vec();
        path.push(b'/');
        path.extend_from_slice(&name);
        let mut s = connect_bound(&server, &path);
        let got = common::finish(&mut s, b"");
        let mut want = path.clone();
        want.push(b'\n');
        assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&path));
    }
}

#[test]
fn the_child_gets_the_connection_on_0_and_1_and_nothing_else() {
    let server = Server::start(&["-v", "-P"], &["sleep", "30"]);
    let _client = server.connect();
    server.wait_log("allow ");
    let pid = allowed_pids(&server)[0];
    // Until the exec, the descriptors are the spawner's, not the program's.
    wait_exec(pid, "sleep");
    // Beyond 0, 1 and 2 the child may only have what the server itself
    // inherited from this test (nothing the server opened).
    let inherited: Vec<i32> = common::open_fds(std::process::id() as i32)
        .into_iter()
        .filter(|fd| {
            *fd > 2 && fd_link(0, *fd).is_some() && fd_link(0, *fd) == fd_link(server.pid(), *fd)
        })
        .collect();
    let extra: Vec<i32> = common::open_fds(pid)
        .into_iter()
        .filter(|fd| *fd > 2)
        .collect();
    assert!(
        extra
            .iter()
            .all(|fd| inherited.contains(fd) && fd_link(pid, *fd) == fd_link(0, *fd)),
        "no listening socket, no signal pipe: child has {:?}, inherited {inherited:?}",
        extra
            .iter()
            .map(|&fd| (fd, fd_link(pid, fd), fd_link(server.pid(), fd)))
            .collect::<Vec<_>>()
    );
    let server_opened: Vec<_> = common::open_fds(server.pid())
        .into_iter()
        .filter(|fd| *fd > 2 && !inherited.contains(fd))
        .collect();
    assert!(
        server_opened.len() >= 2,
        "the test sees the server's own fds: {server_opened:?}"
    );
    let link = |fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
    assert!(link(0).to_string_lossy().starts_with("socket:["));
    assert_eq!(link(0), link(1), "stdin and stdout are the same connection");
    assert_eq!(
        link(2),
        std::fs::read_link(format!("/proc/{}/fd/2", server.pid())).unwrap(),
        "stderr is the server's"
    );
}

/// Where `/proc/PID/fd/FD` points; pid 0 is this test process.
fn fd_link(pid: i32, fd: i32) -> Option<std::path::PathBuf> {
    let pid = if pid == 0 {
        std::process::id() as i32
    } else {
        pid
    };
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()
}

#[test]
fn the_child_has_an_empty_mask_and_default_sigpipe() {
    // Start the server with signals blocked and SIGPIPE ignored, so the test
    // fails if the server passes its own state on. The program reports its
    // own status: a shell in between (`sh -c`) would report the shell's,
    // and dash empties its mask when it starts.
    let prog = ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"];
    let server = Server::start_with(&["-v", "-P"], &prog, |cmd| {
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR1);
                libc::sigaddset(&mut set, libc::SIGINT);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
                Ok(())
            });
        }
    });
    let own = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let blocked = common::sig_bit(libc::SIGUSR1) | common::sig_bit(libc::SIGINT);
    assert_eq!(
        common::signal_set(&own, "SigBlk") & blocked,
        blocked,
        "the test set up a blocked mask the server keeps"
    );
    let out = String::from_utf8(server.request(b"")).unwrap();
    assert_eq!(
        common::signal_set(&out, "SigBlk"),
        0,
        "empty signal mask: {out:?}"
    );
    assert_eq!(
        common::signal_set(&out, "SigIgn") & common::sig_bit(libc::SIGPIPE),
        0,
        "SIGPIPE at its default disposition: {out:?}"
    );
}

#[test]
fn the_server_keeps_no_copy_of_the_connection() {
    // The child closes its stdin and stdout but lives on: the client must
    // see end of file, which it only does if the server closed its copy.
    let server = Server::start(&["-P"], &["sh", "-c", "exec <&- >&-; sleep 30"]);
    let mut s = server.connect();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).expect("EOF, not a timeout"), 0);
}

#[test]
fn maxconn_leaves_extra_clients_waiting_in_the_backlog() {
    let server = Server::start(
        &["-v", "-P", "-c", "2"],
        &["sh", "-c", "echo served; cat >/dev/null"],
    );
    let mut a = server.connect();
    let mut b = server.connect();
    let mut line = [0u8; 7];
    a.read_exact(&mut line).unwrap();
    b.read_exact(&mut line).unwrap();
    server.wait_log("status: 2/2");
    wait_children(server.pid(), 2);
    // The third connects (the kernel queues it) but is not served...
    let mut c = server.connect();
    assert_children_stay_at_most(server.pid(), 2);
    common::assert_unanswered(&c, "not served while 2/2");
    // ...until one ends.
    drop(a);
    c.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"served\n");
    common::assert_children_at_most(server.pid(), 2);
}

#[test]
fn a_program_that_cannot_start_is_reported_and_the_server_goes_on() {
    let dir = TempDir::new();
    let not_exec = dir.join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cases = [
        ("/nonexistent/prog".to_string(), "No such file or directory"),
        (
            "no-such-program-in-path".to_string(),
            "No such file or directory",
        ),
        (not_exec.display().to_string(), "Permission denied"),
    ];
    for (prog, why) in cases {
        let server = Server::start(&["-P"], &[&prog]);
        for _ in 0..3 {
            assert_eq!(
                server.request(b""),
                b"",
                "the client's connection is closed"
            );
        }
        server.wait_log_count(
            &format!("s6-ipcserver: warning: unable to spawn {prog}: {why}"),
            3,
        );
        assert!(common::alive(server.pid()), "the server goes on");
    }
}

#[test]
fn children_are_reaped() {
    let server = Server::start(&["-v", "-P"], &["true"]);
    for _ in 0..20 {
        server.request(b"");
    }
    server.wait_log_count("end pid ", 20);
    // No zombie left.
    wait_no_children(server.pid());
    // The status line follows the last `end` line in a write of its own.
    common::eventually("the last line says status: 0/40", || {
        server.lines().last().map(String::as_str) == Some("s6-ipcserver: info: status: 0/40")
    });
}

/// One child per connection: the server started with `options`
/// has no child while idle, exactly one per held client, each running the
/// program, and none once they end.
fn one_child_per_connection(options: &[&str]) {
    let server = Server::start(options, &["sh", "-c", "echo ready; exec cat >/dev/null"]);
    let pid = server.pid();
    assert_children_stay_at_most(pid, 0);
    let mut held = Vec::new();
    for n in 1..=3 {
        let mut c = server.connect();
        let mut ready = [0u8; 6];
        c.read_exact(&mut ready).unwrap();
        held.push(c);
        wait_children(pid, n);
    }
    for kid in children_of(pid) {
        wait_exec(kid, "cat");
    }
    assert_children_stay_at_most(pid, 3);
    assert_eq!(children_of(pid).len(), 3, "{options:?}");
    drop(held);
    wait_no_children(pid);
    assert_children_stay_at_most(pid, 0);
}

/// `-P`: no pid either, even an inherited one.
#[test]
fn without_lookup_ipcremotepid_is_unset_even_if_inherited() {
    let server = Server::start_with(
        &["-P"],
        &["sh", "-c", "echo \"${IPCREMOTEPID-unset}\""],
        |cmd| {
            cmd.env("IPCREMOTEPID", "inherited");
        },
    );
    assert_eq!(server.request(b""), b"unset\n");
}

#[test]
fn one_child_per_connection_without_lookup() {
    for options in [&["-P"][..], &["-P", "-q"][..], &["-P", "-v"][..]] {
        one_child_per_connection(options);
    }
}

#[test]
fn verbose_lines_without_lookup() {
    let server = Server::start(&["-v", "-P"], &["sh", "-c", "kill -9 $$"]);
    server.request(b"");
    server.wait_log_count("status: 0/40", 2);
    let pid = allowed_pids(&server)[0];
    let lines = server.lines();
    let tail: Vec<&str> = lines[2..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            format!("s6-ipcserver: info: allow ?:? pid {pid} count ?/40").as_str(),
            "s6-ipcserver: info: status: 1/40",
            format!("s6-ipcserver: info: end pid {pid} uid ? signal 9").as_str(),
            "s6-ipcserver: info: status: 0/40",
        ]
    );
}

#[cfg(not(feature = "force-unsupported-credentials"))]
mod lookup {
    use super::*;
    use common::wait_reaped;

    /// Whether this build's credentials backend reports the client's pid
    /// (SO_PEERCRED does; the forced getpeereid backend, as on DragonFly,
    /// does not).
    fn backend_reports_pids() -> bool {
        let (a, _b) = UnixStream::pair().unwrap();
        platform::credentials::peer(&a).unwrap().pid.is_some()
    }

    /// IPCREMOTEPID is the pid of the process that connected: this test
    /// process, then an s6-ipcclient that execs a shell (the same process)
    /// which prints its own `$$`. Unset, even if inherited, where the
    /// system records no pid.
    #[test]
    fn the_child_learns_the_clients_pid() {
        let server = Server::start_with(
            &[],
            &["sh", "-c", "echo \"${IPCREMOTEPID-unset}\""],
            |cmd| {
                cmd.env("IPCREMOTEPID", "inherited");
            },
        );
        let answer = String::from_utf8(server.request(b"")).unwrap();
        if !backend_reports_pids() {
            assert_eq!(answer, "unset\n", "no pid known: removed, though inherited");
            return;
        }
        assert_eq!(answer, format!("{}\n", std::process::id()));
        if common::skip_unless_tool(
            "the_child_learns_the_clients_pid (through s6-ipcclient)",
            "s6-ipcclient",
        ) {
            return;
        }
        let out = std::process::Command::new("s6-ipcclient")
            .arg(&server.path)
            .args(["sh", "-c", "echo \"$$\"; cat <&6"])
            .output()
            .expect("run s6-ipcclient");
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        assert_eq!(
            lines[0], lines[1],
            "the server's child names the shell that connected"
        );
    }

    fn me() -> (u32, u32) {
        // SAFETY: neither call can fail.
        unsafe { (libc::geteuid(), libc::getegid()) }
    }

    #[test]
    fn the_child_learns_the_clients_effective_ids() {
        let server = Server::start(&[], &["env", "-0"]);
        let env = env_of(&server);
        let (uid, gid) = me();
        assert_eq!(
            env_get(&env, "IPCREMOTEEUID"),
            Some(uid.to_string().as_bytes())
        );
        assert_eq!(
            env_get(&env, "IPCREMOTEEGID"),
            Some(gid.to_string().as_bytes())
        );
        assert_eq!(env_get(&env, "IPCCONNNUM"), Some(&b"1"[..]));
    }

    /// The first line a child of [`CONNNUM`] writes: its `IPCCONNNUM` and
    /// its pid.
    fn connnum_and_pid(s: &UnixStream) -> (String, i32) {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line).unwrap();
        let (num, pid) = line
            .trim_end()
            .split_once(' ')
            .unwrap_or_else(|| panic!("not 'IPCCONNNUM PID': {line:?}"));
        (num.to_string(), pid.parse().unwrap())
    }

    const CONNNUM: &str = "echo $IPCCONNNUM $$; exec cat >/dev/null";

    #[test]
    fn connnum_counts_this_uids_connections_including_this_one() {
        for options in [&[][..], &["-v"][..]] {
            let server = Server::start(options, &["sh", "-c", CONNNUM]);
            let mut held = Vec::new();
            let mut pids = Vec::new();
            for n in 1..=3 {
                let s = server.connect();
                let (num, pid) = connnum_and_pid(&s);
                assert_eq!(num, n.to_string(), "{options:?}: {} held", n - 1);
                pids.push(pid);
                held.push(s);
            }
            let kids = children_of(server.pid());
            assert!(
                pids.iter().all(|p| kids.contains(p)),
                "{options:?}: {pids:?} are children of the server: {kids:?}"
            );
            drop(held);
            wait_reaped(server.pid(), &pids);
            let (num, _) = connnum_and_pid(&server.connect());
            assert_eq!(num, "1", "{options:?}: counts drop when children exit");
        }
    }

    /// No `-P`: every client's credentials are looked up, at every
    /// verbosity.
    #[test]
    fn one_child_per_connection_with_lookup_at_every_verbosity() {
        for options in [&[][..], &["-Q"][..], &["-q"][..], &["-v"][..]] {
            one_child_per_connection(options);
        }
    }

    #[test]
    fn another_uid_is_seen_as_such() {
        if common::skip_unless_root("another_uid_is_seen_as_such")
            || common::skip_unless_tool("another_uid_is_seen_as_such", "s6-ipcclient")
        {
            return;
        }
        let server = Server::start(
            &[],
            &[
                "sh",
                "-c",
                "read x; echo $IPCREMOTEEUID:$IPCREMOTEEGID:$IPCCONNNUM",
            ],
        );
        assert_eq!(common::request_as_nobody(&server), b"65534:65534:1\n");
    }

    #[test]
    fn localmaxconn_denies_per_uid_and_logs_it() {
        let server = Server::start(&["-C", "1"], &["sh", "-c", "echo served; read x"]);
        let mut first = server.connect();
        let mut line = [0u8; 7];
        first.read_exact(&mut line).unwrap();
        // The same uid again: denied, closed at once.
        assert_eq!(server.request(b""), b"");
        let (uid, gid) = me();
        let deny = server.wait_log("deny ");
        assert_eq!(
            deny,
            format!("s6-ipcserver: info: deny {uid}:{gid} count 1/1")
        );
        // Another uid still gets in while the first is held.
        let part = "localmaxconn_denies_per_uid_and_logs_it (another uid)";
        if !common::skip_unless_root(part) && !common::skip_unless_tool(part, "s6-ipcclient") {
            assert_eq!(common::request_as_nobody(&server), b"served\n");
        }
        drop(first);
    }

    #[test]
    fn verbose_lines_with_lookup() {
        let server = Server::start(&["-v", "-c", "5", "-C", "2"], &["sh", "-c", "exit 3"]);
        server.request(b"");
        // The start-up status, then the one after the end.
        server.wait_log_count("status: 0/5", 2);
        let pid = allowed_pids(&server)[0];
        let (uid, gid) = me();
        let lines = server.lines();
        let tail: Vec<&str> = lines[2..].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                format!("s6-ipcserver: info: allow {uid}:{gid} pid {pid} count 1/2").as_str(),
                "s6-ipcserver: info: status: 1/5",
                format!("s6-ipcserver: info: end pid {pid} uid {uid} exitcode 3").as_str(),
                "s6-ipcserver: info: status: 0/5",
            ]
        );
    }

    #[test]
    fn the_c_s6_ipcclient_talks_to_our_server() {
        if common::skip_unless_tool("the_c_s6_ipcclient_talks_to_our_server", "s6-ipcclient") {
            return;
        }
        let server = Server::start(
            &[],
            &["sh", "-c", "echo \"hello $IPCREMOTEEUID\"; head -n 1"],
        );
        let out = std::process::Command::new("timeout")
            .args(["10", "s6-ipcclient"])
            .arg(&server.path)
            .args(["sh", "-c", "echo ping >&7; cat <&6"])
            .output()
            .expect("run s6-ipcclient (Debian package s6)");
        let (uid, _) = me();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("hello {uid}\nping\n")
        );
        assert!(out.status.success());
    }
}

/// Without a lookup mechanism, `-p` drops every connection with a warning
/// and the server goes on.
#[cfg(feature = "force-unsupported-credentials")]
#[test]
fn without_a_lookup_mechanism_every_connection_is_dropped() {
    let server = Server::start(&["-p"], &["echo", "served"]);
    for _ in 0..3 {
        assert_eq!(server.request(b""), b"");
    }
    server.wait_log_count(
        "s6-ipcserver: warning: unable to get the client's credentials: peer credentials lookup is not supported on this platform, use -P",
        3,
    );
    let server = Server::start(&["-P"], &["echo", "served"]);
    assert_eq!(server.request(b""), b"served\n", "-P works everywhere");
}

#[test]
fn echo_with_payload() {
    let server = Server::start(&["-P"], &["cat"]);
    let payload: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    let mut s = server.connect();
    let writer = {
        let mut w = s.try_clone().unwrap();
        let p = payload.clone();
        std::thread::spawn(move || {
            w.write_all(&p).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(got, payload);
}
