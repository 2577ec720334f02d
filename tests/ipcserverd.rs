//! s6-ipcserverd, the serving half on its own: behind the C
//! s6-ipcserver-socketbinder (Debian's s6), under systemd-socket-activate,
//! and restarted through a real s6-fdholder-daemon without losing a
//! client. What it shares with s6-ipcserver (the serving loop) is tested
//! at length through s6-ipcserver; this file checks what is its own.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{env_get, eventually, parse_env0, Server, TempDir};

/// `s6-ipcserver-socketbinder DIR/sock s6-ipcserverd -1 OPTIONS PROG...`:
/// the C binder binds and listens, then execs ours with the socket on
/// stdin. Without the C binder (no Debian s6 here), the test binds a
/// listening socket itself and passes it on stdin, and says so once.
fn start(options: &[&str], prog: &[&str]) -> Server {
    start_with(options, prog, |_| {})
}

/// [`start`], with a hook to adjust the command (its environment).
fn start_with(options: &[&str], prog: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
    let dir = TempDir::new();
    let path = dir.join("sock");
    let binder = !common::skip_unless_tool(
        "ipcserverd (behind the C binder; the tests bind the socket themselves)",
        "s6-ipcserver-socketbinder",
    );
    let mut cmd = if binder {
        let mut cmd = Command::new("s6-ipcserver-socketbinder");
        cmd.arg(&path).arg(common::bin_d());
        cmd
    } else {
        Command::new(common::bin_d())
    };
    cmd.arg("-1")
        .arg(LOOKUP_OPTION)
        .args(options)
        .args(prog)
        .process_group(0);
    adjust(&mut cmd);
    if binder {
        return Server::spawn_expecting(cmd, path, dir, b"\n");
    }
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let stdin = Stdio::from(std::os::fd::OwnedFd::from(listener));
    Server::spawn_on(cmd, stdin, path, dir, b"\n")
}

use std::os::unix::process::CommandExt;

const LOOKUP: bool = cfg!(not(feature = "force-unsupported-credentials"));

/// `-P` where this build can look up no credentials, so that the tests of
/// what does not depend on the client's identity run there too.
const LOOKUP_OPTION: &str = if LOOKUP { "-p" } else { "-P" };

fn env_of(server: &Server) -> Vec<(Vec<u8>, Vec<u8>)> {
    parse_env0(&server.request(b""))
}

fn line(client: &UnixStream) -> String {
    let mut l = String::new();
    BufReader::new(client).read_line(&mut l).unwrap();
    l
}

#[test]
fn behind_the_c_socketbinder_it_serves_the_ucspi_environment() {
    let server = start(&[], &["env", "-0"]);
    let env = env_of(&server);
    assert_eq!(env_get(&env, "PROTO"), Some(&b"IPC"[..]));
    if LOOKUP {
        let uid = unsafe_free_ids().0.to_string();
        assert_eq!(env_get(&env, "IPCREMOTEEUID"), Some(uid.as_bytes()));
        assert_eq!(env_get(&env, "IPCCONNNUM"), Some(&b"1"[..]));
        assert!(env_get(&env, "IPCREMOTEEGID").is_some());
    }
    assert_eq!(env_get(&env, "IPCREMOTEPATH"), Some(&b""[..]));
}

/// The test's own effective ids, from /proc (no unsafe needed).
fn unsafe_free_ids() -> (u32, u32) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u32 {
        let l = status.lines().find(|l| l.starts_with(name)).unwrap();
        l.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    (field("Uid:"), field("Gid:"))
}

#[test]
fn minus_capital_p_leaves_the_ids_out() {
    let server = start(&["-P"], &["env", "-0"]);
    let env = env_of(&server);
    assert_eq!(env_get(&env, "IPCREMOTEEUID"), None);
    assert_eq!(env_get(&env, "IPCREMOTEEGID"), None);
    assert_eq!(env_get(&env, "IPCCONNNUM"), Some(&b""[..]));
}

#[test]
fn minus_v2_logs_each_connection_under_its_own_name() {
    let test = "minus_v2_logs_each_connection_under_its_own_name";
    if common::skip_unless(LOOKUP, test, "needs a credentials lookup") {
        return;
    }
    let mut server = start(&["-v", "2"], &["true"]);
    server.request(b"");
    server.wait_log(" end pid ");
    server.wait_log_count("status: 0/40", 2);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    let lines = server.lines();
    let (uid, gid) = unsafe_free_ids();
    let shapes: Vec<String> = lines
        .iter()
        .map(|l| {
            // pids vary; the rest is exact.
            let words: Vec<&str> = l.split(' ').collect();
            match words.iter().position(|w| *w == "pid") {
                Some(i) => {
                    let mut w = words.clone();
                    w[i + 1] = "PID";
                    w.join(" ")
                }
                None => l.clone(),
            }
        })
        .collect();
    assert_eq!(
        shapes,
        [
            "s6-ipcserverd: info: starting - maxconn 40, localmaxconn 40".to_string(),
            "s6-ipcserverd: info: status: 0/40".to_string(),
            format!("s6-ipcserverd: info: allow {uid}:{gid} pid PID count 1/40"),
            "s6-ipcserverd: info: status: 1/40".to_string(),
            format!("s6-ipcserverd: info: end pid PID uid {uid} exitcode 0"),
            "s6-ipcserverd: info: status: 0/40".to_string(),
            "s6-ipcserverd: info: received SIGTERM, quitting".to_string(),
            "s6-ipcserverd: info: exiting".to_string(),
        ]
    );
}

#[test]
fn minus_v0_logs_no_denial_and_the_default_does() {
    let test = "minus_v0_logs_no_denial_and_the_default_does";
    if common::skip_unless(LOOKUP, test, "needs a credentials lookup") {
        return;
    }
    for (options, logged) in [(&["-v", "0"][..], false), (&[][..], true)] {
        let server = start(&[options, &["-C", "1"][..]].concat(), &["sleep", "30"]);
        let _held = server.connect();
        common::wait_children(server.pid(), 1);
        let mut denied = server.connect();
        assert_eq!(common::finish(&mut denied, b""), b"", "denied: closed");
        if logged {
            let (uid, gid) = unsafe_free_ids();
            server.wait_log(&format!("s6-ipcserverd: info: deny {uid}:{gid} count 1/1"));
        } else {
            // A third client is served only after the denial was handled.
            thread::sleep(Duration::from_millis(100));
            assert!(server.lines().is_empty(), "{:?}", server.lines());
        }
    }
}

#[test]
fn minus_c_leaves_extra_clients_waiting() {
    let server = start(&["-c", "1"], &["sh", "-c", "read l; echo \"$l\""]);
    let mut first = server.connect();
    first.write_all(b"first\n").unwrap();
    assert_eq!(line(&first), "first\n");
    // The first child is still waiting... no: it answered and exits.
    let held = server.connect();
    common::wait_children(server.pid(), 1);
    let mut second = server.connect();
    second.write_all(b"second\n").unwrap();
    thread::sleep(Duration::from_millis(200));
    common::assert_unanswered(&second, "served beyond -c 1");
    drop(held);
    assert_eq!(line(&second), "second\n");
}

/// Connects a client to a server with no other, and returns it with the
/// one child that serves it.
fn held_child(server: &Server) -> (UnixStream, i32) {
    let client = server.connect();
    common::wait_children(server.pid(), 1);
    (client, common::children_of(server.pid())[0])
}

#[test]
fn sigterm_leaves_children_running_and_sighup_terminates_them() {
    if common::skip_unless_procfs("sigterm_leaves_children_running_and_sighup_terminates_them") {
        return;
    }
    let server = start(&["-v", "2"], &["sleep", "30"]);
    let (_a, child) = held_child(&server);
    server.signal(libc::SIGHUP);
    server.wait_log("received SIGHUP");
    server.wait_log(&format!("end pid {child} uid "));
    assert!(server
        .lines()
        .iter()
        .any(|l| l.ends_with(&format!("signal {}", libc::SIGTERM))));

    let mut server = server;
    let (_b, child) = held_child(&server);
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    assert!(common::alive(child), "SIGTERM leaves children running");
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(child, libc::SIGKILL) };
}

/// The listening socket the server got on stdin reaches no child: the
/// child has the connection on 0 and 1, stderr on 2, and no other socket.
#[test]
fn the_listening_socket_on_stdin_reaches_no_child() {
    if common::skip_unless_procfs("the_listening_socket_on_stdin_reaches_no_child") {
        return;
    }
    let server = start(&["-v", "2"], &["sleep", "30"]);
    let (_c, child) = held_child(&server);
    common::wait_exec(child, "sleep");
    assert_no_listener_in(child, server.pid());
    // Nor is it on the server's own stdin any more (which a later exec of
    // the server's would pass on): stdin is /dev/null.
    let stdin = std::fs::read_link(format!("/proc/{}/fd/0", server.pid())).unwrap();
    assert_eq!(stdin, Path::new("/dev/null"));
}

fn link(pid: i32, fd: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()
}

/// `child` has its connection on 0 and 1 and no other socket at all.
fn assert_no_listener_in(child: i32, server: i32) {
    let fds = common::open_fds(child);
    assert!(fds.starts_with(&[0, 1, 2]), "{fds:?}");
    assert!(link(child, 0)
        .unwrap()
        .to_string_lossy()
        .starts_with("socket:["));
    assert_eq!(link(child, 0), link(child, 1));
    let sockets: Vec<(i32, PathBuf)> = fds
        .iter()
        .filter(|&&fd| fd > 1)
        .filter_map(|&fd| Some((fd, link(child, fd)?)))
        .filter(|(_, l)| l.to_string_lossy().starts_with("socket:["))
        .collect();
    assert!(
        sockets.is_empty(),
        "sockets beyond 0 and 1 in the child: {sockets:?}; the server has {:?}",
        common::open_fds(server)
            .into_iter()
            .map(|fd| (fd, link(server, fd)))
            .collect::<Vec<_>>()
    );
}

#[test]
fn anything_but_a_listening_unix_stream_socket_on_stdin_is_fatal() {
    use std::os::unix::net::{UnixDatagram, UnixListener};
    let dir = TempDir::new();
    let file = std::fs::File::create(dir.join("file")).unwrap();
    let datagram = UnixDatagram::bind(dir.join("dgram")).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // Bound, not listening.
    let bound = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
    bound
        .bind(&socket2::SockAddr::unix(dir.join("bound")).unwrap())
        .unwrap();
    let listening = UnixListener::bind(dir.join("ok")).unwrap();
    drop(listening);
    let cases: Vec<(Stdio, &str)> = vec![
        (Stdio::from(file), "stdin is not a socket"),
        (Stdio::null(), "stdin is not a socket"),
        (
            Stdio::from(std::os::fd::OwnedFd::from(datagram)),
            "stdin is not a stream socket",
        ),
        (
            Stdio::from(std::os::fd::OwnedFd::from(tcp)),
            "stdin is not a Unix domain socket",
        ),
        (
            Stdio::from(std::os::fd::OwnedFd::from(bound)),
            "stdin is not a listening socket",
        ),
    ];
    for (stdin, why) in cases {
        let out = Command::new(common::bin_d())
            .arg("true")
            .stdin(stdin)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(100), "{why}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "s6-ipcserverd: fatal: {why}: {}\n",
                s6_ipcserver::server::listen::EXPECTED
            )
        );
    }
}

#[test]
fn usage_errors_name_the_program() {
    for args in [&[][..], &["-v", "x", "true"][..], &["-Z", "true"][..]] {
        let out = Command::new(common::bin_d()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(100), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let (why, usage) = err.split_once('\n').unwrap_or(("", ""));
        assert!(why.starts_with("s6-ipcserverd: "), "{args:?}: {err:?}");
        assert_eq!(
            usage,
            format!(
                "s6-ipcserverd: usage: {}\n",
                s6_ipcserver::programs::ipcserverd::USAGE
            )
        );
    }
}

/// More than one descriptor from systemd is refused: this program serves
/// one socket.
#[test]
fn socket_activation_with_two_descriptors_is_fatal() {
    // LISTEN_PID must be the server's own pid: a shell sets it, then execs.
    let out = Command::new("sh")
        .args(["-c", "LISTEN_PID=$$ LISTEN_FDS=2 exec \"$0\" true"])
        .arg(common::bin_d())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "s6-ipcserverd: fatal: LISTEN_FDS is 2: s6-ipcserverd serves exactly one socket\n"
    );
    // Someone else's LISTEN_PID: not for us; stdin is served (here: it is
    // not a socket).
    let out = Command::new(common::bin_d())
        .arg("true")
        .env("LISTEN_PID", "1")
        .env("LISTEN_FDS", "2")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "s6-ipcserverd: fatal: stdin is not a socket: {}\n",
            s6_ipcserver::server::listen::EXPECTED
        )
    );
}

/// Under `systemd-socket-activate -l PATH` (no systemd running): it binds,
/// waits for the first client, then runs our server with the socket on
/// fd 3 and LISTEN_PID/LISTEN_FDS set. The client is served, and neither
/// the LISTEN_ variables nor fd 3 reach the child.
#[test]
fn under_systemd_socket_activation_it_serves_fd_3() {
    let test = "under_systemd_socket_activation_it_serves_fd_3";
    if common::skip_unless_procfs(test)
        || common::skip_unless(
            common::have("systemd-socket-activate"),
            test,
            "needs systemd-socket-activate (Debian's systemd package)",
        )
    {
        return;
    }
    let dir = TempDir::new();
    let path = dir.join("sock");
    let mut activator = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&path)
        .arg(common::bin_d())
        .arg(LOOKUP_OPTION)
        .args([
            "-v",
            "2",
            "sh",
            "-c",
            "env -0; echo; ls -l /proc/self/fd; exec sleep 30",
        ])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It binds, then listens: a connection in between is refused.
    let mut client = None;
    eventually("the activator to listen", || {
        client = UnixStream::connect(&path).ok();
        client.is_some()
    });
    let mut client = client.unwrap(); // eventually returned: it is Some
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    // The child sleeps after its answer: read what it wrote, up to the
    // listing's end.
    client
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let _ = client.read_to_end(&mut out);
    let pid = activator.id() as i32;
    common::kill_group(pid);
    let _ = activator.wait();
    let mut log = String::new();
    activator
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (env_part, fds_part) = text
        .split_once("\0\n")
        .unwrap_or_else(|| panic!("{text:?}; {log}"));
    let env = parse_env0(env_part.as_bytes());
    assert_eq!(env_get(&env, "PROTO"), Some(&b"IPC"[..]), "{log}");
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        assert_eq!(env_get(&env, name), None, "{name} reached the child");
    }
    assert!(log.contains("s6-ipcserverd: info: allow "), "{log}");
    // `ls` lists 0, 1, 2 and its own directory handle: no socket but the
    // connection.
    let sockets = fds_part.lines().filter(|l| l.contains("socket:[")).count();
    assert_eq!(sockets, 2, "only the connection, on 0 and 1: {fds_part}");
}

/// A real s6-fdholder-daemon, allowed to store and retrieve `unix:` ids for
/// root.
struct Holder {
    daemon: std::process::Child,
    sock: PathBuf,
    _dir: TempDir,
    dir: PathBuf,
}

impl Holder {
    fn start() -> Holder {
        let dir = TempDir::new();
        let rules = dir.join("rules/uid/0");
        std::fs::create_dir_all(rules.join("env")).unwrap();
        std::fs::write(rules.join("allow"), "").unwrap();
        std::fs::write(rules.join("env/S6_FDHOLDER_STORE_REGEX"), "^unix:\n").unwrap();
        std::fs::write(rules.join("env/S6_FDHOLDER_RETRIEVE_REGEX"), "^unix:\n").unwrap();
        let sock = dir.join("fdholder");
        let mut daemon = Command::new("s6-fdholder-daemon")
            .arg("-1")
            .arg("-i")
            .arg(dir.join("rules"))
            .arg(&sock)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut ready = [0u8; 1];
        daemon
            .stdout
            .take()
            .unwrap()
            .read_exact(&mut ready)
            .unwrap();
        let path = dir.path().to_path_buf();
        Holder {
            daemon,
            sock,
            _dir: dir,
            dir: path,
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        common::kill_group(self.daemon.id() as i32);
        let _ = self.daemon.wait();
    }
}

/// The listening socket is held by s6-fdholder-daemon; our s6-ipcserverd
/// is started through s6-fdholder-retrieve. Under a load of clients, the
/// server is killed with SIGKILL and started again through the holder:
/// no client is refused (the socket listens throughout) and none is lost.
///
/// The kill comes when every connection slot (`-c 4`) is held by a child,
/// as a SIGSTOPped server shows: then no connection is in the server alone
/// (accepted, its child not yet started), which a SIGKILL would lose with
/// any server.
#[test]
fn a_restart_through_s6_fdholder_loses_no_client() {
    let test = "a_restart_through_s6_fdholder_loses_no_client";
    if common::skip_unless_procfs(test)
        || common::skip_unless_root(test)
        || common::skip_unless(
            common::have("s6-fdholder-daemon"),
            test,
            "needs s6-fdholder-daemon (Debian's s6)",
        )
    {
        return;
    }
    let holder = Holder::start();
    let service = holder.dir.join("service");
    let id = format!("unix:{}", service.display());
    // Bind, listen, and hand the socket to the holder.
    let status = Command::new("s6-ipcserver-socketbinder")
        .arg(&service)
        .arg("s6-fdholder-store")
        .arg(&holder.sock)
        .arg(&id)
        .status()
        .unwrap();
    assert!(status.success(), "s6-fdholder-store");

    let start_server = || {
        let mut cmd = Command::new("s6-fdholder-retrieve");
        cmd.arg(&holder.sock)
            .arg(&id)
            .arg(common::bin_d())
            .arg(LOOKUP_OPTION)
            .args([
                "-1",
                "-v",
                "2",
                "-c",
                "4",
                "sh",
                "-c",
                "read l; sleep 0.1; echo \"$l\"",
            ])
            .process_group(0);
        Server::spawn_expecting(cmd, service.clone(), TempDir::new(), b"\n")
    };
    let mut server = start_server();

    // Eight clients, each making requests one after another.
    let results = Arc::new(Mutex::new(Vec::<Result<Duration, String>>::new()));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (service, results) = (service.clone(), Arc::clone(&results));
            thread::spawn(move || {
                for i in 0..12 {
                    let t0 = Instant::now();
                    let r = (|| {
                        let mut s =
                            UnixStream::connect(&service).map_err(|e| format!("refused: {e}"))?;
                        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        let want = format!("{c}.{i}\n");
                        s.write_all(want.as_bytes())
                            .map_err(|e| format!("write: {e}"))?;
                        let mut got = String::new();
                        BufReader::new(&s)
                            .read_line(&mut got)
                            .map_err(|e| format!("lost: {e}"))?;
                        if got == want {
                            Ok(t0.elapsed())
                        } else {
                            Err(format!("lost: got {got:?} for {want:?}"))
                        }
                    })();
                    results.lock().unwrap().push(r);
                }
            })
        })
        .collect();

    eventually("the load to be under way", || {
        results.lock().unwrap().len() >= 20
    });
    // Stop the server at a moment when all four slots are children.
    let pid = server.pid();
    let deadline = Instant::now() + common::TIMEOUT;
    loop {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        eventually("the server to stop", || common::state(pid) == Some('T'));
        let live = common::children_of(pid)
            .into_iter()
            .filter(|&c| common::state(c).is_some_and(|s| s != 'Z'))
            .count();
        if live == 4 {
            break;
        }
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        assert!(Instant::now() < deadline, "never saw four children at once");
        thread::sleep(Duration::from_millis(3));
    }
    let killed_at = Instant::now();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = server.wait_exit();
    // Clients go on connecting meanwhile: the holder's socket still
    // listens, so they wait in its backlog.
    thread::sleep(Duration::from_millis(300));
    let server2 = start_server();
    let down = killed_at.elapsed();
    for c in clients {
        c.join().unwrap();
    }
    let results = results.lock().unwrap();
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let longest = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .max()
        .copied();
    eprintln!(
        "{} requests, {} failed; server down for {down:?}; longest wait {longest:?}",
        results.len(),
        failed.len()
    );
    assert_eq!(results.len(), 96);
    assert!(failed.is_empty(), "refused or lost: {failed:?}");
    assert!(
        longest.is_some_and(|l| l >= Duration::from_millis(300)),
        "some client waited through the restart: {longest:?}"
    );
    drop(server2);
}

/// IPCREMOTEPID: the pid of the process that connected (here, this test),
/// where the backend records one; never an inherited value, and not with
/// `-P`.
#[test]
fn ipcremotepid_is_the_connecting_process_or_unset() {
    let prog = ["sh", "-c", "echo \"${IPCREMOTEPID-unset}\""];
    let start_inheriting = |options: &[&str]| {
        start_with(options, &prog, |cmd| {
            cmd.env("IPCREMOTEPID", "inherited");
        })
    };
    let server = start_inheriting(&["-P"]);
    assert_eq!(server.request(b""), b"unset\n");
    if !LOOKUP {
        return; // no lookup: nothing is served without -P
    }
    let (a, _b) = UnixStream::pair().unwrap();
    let reports_pids = platform::credentials::peer(&a).is_ok_and(|c| c.pid.is_some());
    let server = start_inheriting(&[]);
    let want = if reports_pids {
        format!("{}\n", std::process::id())
    } else {
        "unset\n".to_string()
    };
    assert_eq!(String::from_utf8(server.request(b"")).unwrap(), want);
}
