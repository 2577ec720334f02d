//! Signals (README, Reference): what each signal does to the server and its children, and what
//! it logs with -v. The socket file stays in place on exit.

mod common;

use std::io::Read;

use common::{alive, eventually, sig_bit, signal_set, wait_children, wait_no_children, Server};

/// Starts a verbose server whose children run `script`, opens `n`
/// connections, and returns the server, the held clients and the pids.
fn with_children(
    script: &str,
    n: usize,
) -> (Server, Vec<std::os::unix::net::UnixStream>, Vec<i32>) {
    let server = Server::start(&["-v", "-P"], &["sh", "-c", script]);
    let mut clients = Vec::new();
    for _ in 0..n {
        let mut c = server.connect();
        // Each child says it is ready (its traps are set) before we go on.
        let mut ready = [0u8; 6];
        c.read_exact(&mut ready).unwrap();
        assert_eq!(&ready, b"ready\n");
        clients.push(c);
    }
    server.wait_log_count("allow ", n);
    let pids: Vec<i32> = server
        .lines()
        .iter()
        .filter_map(|l| l.split(" pid ").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(pids.len(), n);
    // One child per held connection, no more.
    wait_children(server.pid(), n);
    (server, clients, pids)
}

const PLAIN: &str = "echo ready; exec sleep 60";
const IGNORES_TERM: &str = "trap '' TERM; echo ready; while :; do sleep 1; done";

fn kill_all(pids: &[i32]) {
    for &p in pids {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

fn info_tail(server: &Server, n: usize) -> Vec<String> {
    let lines = server.lines();
    lines[lines.len() - n..].to_vec()
}

#[test]
fn sigterm_exits_0_and_leaves_children_running() {
    let (mut server, _clients, pids) = with_children(PLAIN, 2);
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit().code(), Some(0));
    assert_eq!(
        info_tail(&server, 2),
        [
            "s6-ipcserver: info: received SIGTERM, quitting",
            "s6-ipcserver: info: exiting"
        ]
    );
    assert!(pids.iter().all(|&p| alive(p)), "children are left running");
    assert!(server.path.exists(), "the socket file is left in place");
    kill_all(&pids);
}

#[test]
fn sighup_terminates_and_continues_children_and_keeps_serving() {
    let (server, _clients, pids) = with_children(PLAIN, 2);
    let (stubborn_server, _stubborn_client, stubborn) = with_children(IGNORES_TERM, 1);
    // A stopped child must be woken (SIGCONT) to die of the SIGTERM.
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pids[1], libc::SIGSTOP) };
    eventually("child stopped", || {
        std::fs::read_to_string(format!("/proc/{}/stat", pids[1]))
            .map(|s| s.contains(") T "))
            .unwrap_or(false)
    });
    server.signal(libc::SIGHUP);
    stubborn_server.signal(libc::SIGHUP);
    server.wait_log(
        "s6-ipcserver: info: received SIGHUP, sending SIGTERM+SIGCONT to all connections",
    );
    server.wait_log(&format!("end pid {} uid ? signal 15", pids[0]));
    server.wait_log(&format!("end pid {} uid ? signal 15", pids[1]));
    stubborn_server.wait_log("received SIGHUP");
    assert!(
        alive(stubborn[0]),
        "a child that ignores SIGTERM survives SIGHUP"
    );
    wait_no_children(server.pid());
    wait_children(stubborn_server.pid(), 1);
    // The server goes on serving.
    let mut c = server.connect();
    let mut ready = [0u8; 6];
    c.read_exact(&mut ready).unwrap();
    assert!(alive(server.pid()));
    wait_children(server.pid(), 1);
    kill_all(&stubborn);
}

#[test]
fn sigquit_terminates_children_then_exits_0() {
    let (mut server, _clients, pids) = with_children(PLAIN, 2);
    server.signal(libc::SIGQUIT);
    assert_eq!(server.wait_exit().code(), Some(0));
    assert_eq!(
        info_tail(&server, 2),
        [
            "s6-ipcserver: info: received SIGQUIT, sending SIGTERM+SIGCONT to all connections and quitting",
            "s6-ipcserver: info: exiting"
        ]
    );
    eventually("children got SIGTERM", || pids.iter().all(|&p| !alive(p)));
    assert!(server.path.exists(), "the socket file is left in place");
}

#[test]
fn sigabrt_kills_every_child_then_exits_0() {
    let (mut server, _clients, pids) = with_children(IGNORES_TERM, 2);
    server.signal(libc::SIGABRT);
    assert_eq!(server.wait_exit().code(), Some(0));
    assert_eq!(
        info_tail(&server, 2),
        [
            "s6-ipcserver: info: received SIGABRT, sending SIGKILL to all connections and quitting",
            "s6-ipcserver: info: exiting"
        ]
    );
    eventually("children got SIGKILL", || pids.iter().all(|&p| !alive(p)));
}

#[test]
fn without_minus_v_signals_are_silent() {
    let server = Server::start(&["-P"], &["true"]);
    let mut server = server;
    server.signal(libc::SIGHUP);
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit().code(), Some(0));
    assert!(server.lines().is_empty(), "{:?}", server.lines());
}

/// A parent that ignored SIGHUP and SIGCHLD and blocked SIGTERM changes
/// nothing: the server still reaps its children and acts on each signal,
/// and its children get none of them ignored or blocked.
#[test]
fn signals_the_parent_ignored_or_blocked_are_still_caught() {
    if common::skip_unless_procfs("signals_the_parent_ignored_or_blocked_are_still_caught") {
        return;
    }
    // The program reads its own status: through `sh -c` it would read a
    // shell's, and dash empties its mask when it starts.
    let prog = ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"];
    let mut server = Server::start_with(&["-v", "-P"], &prog, |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec only async-signal-safe calls
        // (signal, sigemptyset, sigaddset, sigprocmask) on local data.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                libc::signal(libc::SIGCHLD, libc::SIG_IGN);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                Ok(())
            })
        };
    });
    let out = String::from_utf8(server.request(b"")).unwrap();
    assert_eq!(
        signal_set(&out, "SigBlk"),
        0,
        "the child's mask is empty: {out:?}"
    );
    for sig in [libc::SIGHUP, libc::SIGCHLD, libc::SIGTERM] {
        assert_eq!(
            signal_set(&out, "SigIgn") & sig_bit(sig),
            0,
            "signal {sig} ignored: {out:?}"
        );
    }
    // SIGCHLD reaches the server: the child is reaped and logged.
    server.wait_log("s6-ipcserver: info: end pid ");
    server.signal(libc::SIGHUP);
    server.wait_log("received SIGHUP");
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit().code(), Some(0));
}

/// A child that ended before the server trapped SIGCHLD (inherited from
/// whatever ran in the process before its exec) is reaped at start, not
/// left a zombie until the first connection ends.
#[test]
fn a_zombie_inherited_across_exec_is_reaped_at_start() {
    if common::skip_unless_procfs("a_zombie_inherited_across_exec_is_reaped_at_start") {
        return;
    }
    let server = Server::start_with(&[], &["true"], |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec only async-signal-safe calls (fork,
        // _exit, nanosleep); the grandchild only exits.
        unsafe {
            cmd.pre_exec(|| {
                if libc::fork() == 0 {
                    libc::_exit(0);
                }
                // Long enough for the grandchild to be a zombie at exec.
                let t = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 200_000_000,
                };
                libc::nanosleep(&t, std::ptr::null_mut());
                Ok(())
            })
        };
    });
    wait_no_children(server.pid());
}
