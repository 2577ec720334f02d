//! The standby child (platform/src/spawn/clone_vm.rs, `Program::arm`): on
//! Linux with clone(CLONE_VM), a child waits on the listener and serves the
//! next connection itself. What it does must be what the server would have
//! done, and it must never outlive the server or serve for nobody. Every
//! test looks credentials up, so none runs in the build that forces the
//! lookup to be unsupported (which has no standby child either).
#![cfg(not(feature = "force-unsupported-credentials"))]

mod common;

use std::io::Read;

use common::{alive, all_children_of, children_of, eventually, standby_child, Server};

/// Whether this build keeps a standby child (platform::spawn::STANDBY): the
/// clone_vm backend, with the SO_PEERCRED credentials backend.
const STANDBY: bool = platform::spawn::STANDBY;

fn line(s: &mut std::os::unix::net::UnixStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).unwrap() == 1 && b[0] != b'\n' {
        out.push(b[0]);
    }
    String::from_utf8(out).unwrap()
}

fn ids() -> String {
    // SAFETY: plain queries.
    let (u, g) = unsafe { (libc::geteuid(), libc::getegid()) };
    format!("{u}:{g}")
}

#[test]
fn the_standby_child_serves_the_next_client_as_the_server_would() {
    if common::skip_unless_procfs("the_standby_child_serves_the_next_client_as_the_server_would") {
        return;
    }
    let script = "echo $IPCREMOTEEUID:$IPCREMOTEEGID:$IPCCONNNUM:$PROTO; cat >/dev/null";
    let server = Server::start(&[], &["sh", "-c", script]);
    if !STANDBY {
        // Nothing stands by: every child is a connection.
        let _c = server.connect();
        eventually("the connection's child", || {
            all_children_of(server.pid()).len() == 1
        });
        assert_eq!(standby_child(server.pid()), None);
        return;
    }
    eventually("a standby child", || standby_child(server.pid()).is_some());
    let first = standby_child(server.pid()).unwrap();
    let mut held = Vec::new();
    for n in 1..=3 {
        let mut c = server.connect();
        assert_eq!(line(&mut c), format!("{}:{n}:IPC", ids()));
        held.push(c);
    }
    let conns = children_of(server.pid());
    assert_eq!(conns.len(), 3);
    assert!(
        conns.contains(&first),
        "the first standby child serves the first client: {first} in {conns:?}"
    );
    eventually("a new standby child", || {
        standby_child(server.pid()).is_some_and(|p| !conns.contains(&p))
    });
    drop(held);
    eventually("all three ended", || children_of(server.pid()).is_empty());
    let mut c = server.connect();
    assert_eq!(
        line(&mut c),
        format!("{}:1:IPC", ids()),
        "counts drop when children exit"
    );
}

/// The cases it cannot handle alone go to the server: `-v` logs an allow
/// line per connection, `-P` looks nothing up, and with no room left there
/// is nothing to stand by for.
#[test]
fn no_standby_child_with_v_or_p_or_without_room() {
    if common::skip_unless_procfs("no_standby_child_with_v_or_p_or_without_room") {
        return;
    }
    for opts in [&["-v"][..], &["-P"][..]] {
        let server = Server::start(opts, &["sh", "-c", "echo up; cat >/dev/null"]);
        let mut c = server.connect();
        assert_eq!(line(&mut c), "up");
        assert_eq!(all_children_of(server.pid()).len(), 1, "{opts:?}");
        assert_eq!(standby_child(server.pid()), None, "{opts:?}");
    }
    // -c 1: the one connection there is room for is held.
    let server = Server::start(&["-c", "1"], &["sh", "-c", "echo up; cat >/dev/null"]);
    let mut c = server.connect();
    assert_eq!(line(&mut c), "up");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(all_children_of(server.pid()).len(), 1);
    drop(c);
    if STANDBY {
        eventually("room again: a standby child", || {
            standby_child(server.pid()).is_some()
        });
    }
}

/// Its descriptors are the server's (a copy taken at clone): the listener,
/// the signal and report descriptors must all be gone by the program, as
/// they are for a child the server spawns itself (tests/serving.rs).
#[test]
fn a_client_served_by_the_standby_child_gets_only_0_1_and_2() {
    if common::skip_unless_procfs("a_client_served_by_the_standby_child_gets_only_0_1_and_2") {
        return;
    }
    let server = Server::start(&[], &["sh", "-c", "echo up; exec sleep 30"]);
    if STANDBY {
        eventually("a standby child", || standby_child(server.pid()).is_some());
    }
    let mut c = server.connect();
    assert_eq!(line(&mut c), "up");
    let kids = children_of(server.pid());
    assert_eq!(kids.len(), 1);
    let server_fds = common::open_fds(server.pid()).len();
    assert!(server_fds > 3, "the server has its own descriptors");
    eventually("the child is sleep", || {
        std::fs::read_to_string(format!("/proc/{}/comm", kids[0])).is_ok_and(|c| c == "sleep\n")
    });
    // Beyond 0, 1 and 2, only what this test process passed down to the
    // server (the harness's own descriptors) may be there.
    let link = |pid: &str, fd: i32| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok();
    let child = kids[0].to_string();
    for fd in common::open_fds(kids[0]).into_iter().filter(|&fd| fd > 2) {
        assert!(
            link(&child, fd).is_some() && link(&child, fd) == link("self", fd),
            "fd {fd} of the child ({:?}) is the server's own",
            link(&child, fd)
        );
    }
}

#[test]
fn the_standby_child_goes_with_the_server() {
    if !STANDBY || common::skip_unless_procfs("the_standby_child_goes_with_the_server") {
        return;
    }
    // An orderly exit calls it off.
    let mut server = Server::start(&[], &["true"]);
    eventually("a standby child", || standby_child(server.pid()).is_some());
    let standby = standby_child(server.pid()).unwrap();
    server.signal(libc::SIGTERM);
    server.wait_exit();
    eventually("the standby child is gone", || !alive(standby));
    assert!(
        std::os::unix::net::UnixStream::connect(&server.path).is_err(),
        "nobody accepts on the socket any more"
    );

    // So does a server killed outright (SIGKILL cannot be caught): the
    // child asked for SIGKILL on its parent's death.
    let mut server = Server::start(&[], &["true"]);
    eventually("a standby child", || standby_child(server.pid()).is_some());
    let standby = standby_child(server.pid()).unwrap();
    server.signal(libc::SIGKILL);
    server.wait_exit();
    eventually("the standby child is gone", || !alive(standby));
}

/// The program must not die of what was sent to the standby child before
/// it took its connection (to the server's process group, say): blocked
/// there, it would be delivered once the program's mask is emptied.
#[test]
fn signals_sent_to_the_standby_child_do_not_reach_the_program() {
    if !STANDBY
        || common::skip_unless_procfs("signals_sent_to_the_standby_child_do_not_reach_the_program")
    {
        return;
    }
    let server = Server::start(&[], &["sh", "-c", "sleep 0.2; echo alive"]);
    eventually("a standby child", || standby_child(server.pid()).is_some());
    let standby = standby_child(server.pid()).unwrap();
    // SIGTERM and SIGHUP are trapped, so blocked in the standby child.
    for sig in [libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(standby, sig) };
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(alive(standby), "blocked, not acted on");
    let mut c = server.connect();
    assert_eq!(line(&mut c), "alive");
}

/// A client of another uid gets its own ids and count from the standby
/// child too.
#[test]
fn another_uid_is_counted_apart_by_the_standby_child() {
    if common::skip_unless_root("another_uid_is_counted_apart_by_the_standby_child")
        || common::skip_unless_procfs("another_uid_is_counted_apart_by_the_standby_child")
    {
        return;
    }
    // The child answers, then waits for a line (or the end) from its client.
    let server = Server::start(
        &[],
        &[
            "sh",
            "-c",
            "echo $IPCREMOTEEUID:$IPCREMOTEEGID:$IPCCONNNUM; read x",
        ],
    );
    let mut mine = server.connect();
    assert_eq!(line(&mut mine), format!("{}:1", ids()));
    if STANDBY {
        eventually("a standby child", || standby_child(server.pid()).is_some());
    }
    assert_eq!(common::request_as_nobody(&server), b"65534:65534:1\n");
}

/// A standby child that cannot accept (stopped: SIGSTOP cannot be blocked)
/// must not hold clients up for good: the server finds a client waiting
/// through two checks (a second apart), kills it, and accepts itself.
#[test]
fn a_stopped_standby_child_is_replaced_by_the_server() {
    if !STANDBY || common::skip_unless_procfs("a_stopped_standby_child_is_replaced_by_the_server") {
        return;
    }
    let server = Server::start(&[], &["sh", "-c", "echo served"]);
    eventually("a standby child", || standby_child(server.pid()).is_some());
    let standby = standby_child(server.pid()).unwrap();
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(standby, libc::SIGSTOP) };
    let t0 = std::time::Instant::now();
    let mut c = server.connect();
    assert_eq!(line(&mut c), "served");
    let waited = t0.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(900),
        "served by the server only after its checks: {waited:?}"
    );
    eventually("the stopped child is gone", || !alive(standby));
    server.wait_log("the standby child does not accept");
}
