//! Fault injection: the server out of descriptors, clients that vanish or
//! never read, children that crash, ignore SIGTERM or are stopped, a
//! thousand children at once, and a program that cannot be started. In
//! every case the server keeps serving, never spins, and reaps everything.
//! Every test reads /proc and skips, saying so, on systems without it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    alive, assert_children_at_most, assert_children_stay_at_most, children_of, eventually,
    open_fds, stat_fields, state, wait_children, wait_exec, wait_no_children, Server,
};

/// The sum of the proc(5) stat fields `first..=last` of `pid` (CPU times
/// in clock ticks), or `None` once it is gone.
fn ticks(pid: i32, first: usize, last: usize) -> Option<u64> {
    let fields = stat_fields(pid)?;
    let times = fields.get(first - 3..=last - 3)?;
    times.iter().map(|f| f.parse::<u64>().ok()).sum()
}

/// User plus system CPU time of `pid` (utime, stime), in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    ticks(pid, 14, 15).expect("read stat")
}

fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as u64
}

/// Sets the soft descriptor limit of a running process.
fn set_nofile(pid: i32, soft: u64) {
    platform::host::set_nofile_limit(pid, soft)
        .unwrap_or_else(|e| panic!("set the descriptor limit of {pid} to {soft}: {e}"));
}

/// Raises this test process's own descriptor limit to at least `n`.
fn raise_own_nofile(n: u64) {
    platform::host::raise_nofile_limit(n).expect("raise the descriptor limit");
}

fn count(server: &Server, needle: &str) -> usize {
    server.lines().iter().filter(|l| l.contains(needle)).count()
}

/// The last `status:` line the server logged.
fn last_status(server: &Server) -> Option<String> {
    server
        .lines()
        .into_iter()
        .rev()
        .find(|l| l.contains("status: "))
}

/// Waits until the server has no child at all (none running, no zombie)
/// and its last status line says so.
fn wait_all_reaped(server: &Server, max: u32) {
    wait_no_children(server.pid());
    let want = format!("status: 0/{max}");
    eventually("the last status line says 0", || {
        last_status(server).is_some_and(|l| l.ends_with(&want))
    });
}

/// Reads one line (the answers here are one line each).
fn read_line(s: &UnixStream) -> String {
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line
}

/// Sends a line and reads one line back.
fn ask(s: &mut UnixStream, line: &str) -> String {
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    read_line(s).trim_end().to_string()
}

const ACCEPT_WARNING: &str = "unable to accept";

/// Whether this build can look up peer credentials; without, every server
/// here runs with -P (nothing below depends on the client's identity).
const LOOKUP: bool = cfg!(not(feature = "force-unsupported-credentials"));

fn start(options: &[&str], prog: &[&str]) -> Server {
    let mut all = vec![if LOOKUP { "-p" } else { "-P" }];
    all.extend_from_slice(options);
    Server::start(&all, prog)
}

// Descriptor baselines are taken once the server has handled a first
// connection: right after the readiness line it may still hold the
// /dev/null it is putting on stdout.

#[test]
fn out_of_descriptors_backs_off_without_spinning_and_recovers() {
    if common::skip_unless_procfs("out_of_descriptors_backs_off_without_spinning_and_recovers") {
        return;
    }
    let mut server = start(&["-v", "-c", "10"], &["cat"]);
    let pid = server.pid();

    // A first client is served and stays: its child exiting later is what
    // frees a slot and wakes the server up.
    let mut first = server.connect();
    assert_eq!(ask(&mut first, "first"), "first");
    // The allow line comes once the spawner has closed its copy of the
    // connection (the child may answer before that).
    server.wait_log("allow ");
    let baseline = open_fds(pid);

    // The lowest free descriptor number is where accept would put the
    // connection: a limit of exactly that makes accept fail with EMFILE.
    let lowest_free = (0..).find(|fd| !baseline.contains(fd)).unwrap();
    set_nofile(pid, lowest_free as u64);

    let mut waiting = server.connect();
    waiting.write_all(b"waiting\n").unwrap();
    let warning = server.wait_log(ACCEPT_WARNING);
    assert!(
        warning.ends_with(&format!(
            ": warning: unable to accept, pausing until a connection ends: {}",
            common::strerror(libc::EMFILE)
        )),
        "the warning says why, as the C program does (no \"(os error 24)\"): {warning}"
    );

    // While it waits, it must not spin: measure its CPU over a second.
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    let mut next = server.connect();
    next.write_all(b"next\n").unwrap();
    thread::sleep(Duration::from_millis(1200));
    let wall = t0.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid) - c0) as f64 / ticks_per_second() as f64;
    assert!(
        cpu < 0.3 * wall,
        "the server used {cpu:.2}s of CPU in {wall:.2}s while out of descriptors: busy loop"
    );
    assert_eq!(
        count(&server, ACCEPT_WARNING),
        1,
        "one line per episode, however many retries: {:#?}",
        server.lines()
    );
    assert_eq!(children_of(pid).len(), 1, "no client was served meanwhile");

    // Descriptors free up and a child exits: both clients are served.
    set_nofile(pid, 1024);
    drop(first);
    assert_eq!(
        read_line(&waiting),
        "waiting\n",
        "the client that waited is served"
    );
    assert_eq!(read_line(&next), "next\n", "the next client is served");
    drop((waiting, next));
    wait_all_reaped(&server, 10);

    // A second shortage is a second episode, logged once again.
    set_nofile(pid, lowest_free as u64);
    let mut third = server.connect();
    third.write_all(b"third\n").unwrap();
    server.wait_log_count(ACCEPT_WARNING, 2);
    set_nofile(pid, 1024);
    assert_eq!(common::finish(&mut third, b""), b"third\n");
    wait_all_reaped(&server, 10);
    assert_eq!(count(&server, ACCEPT_WARNING), 2);
    assert_eq!(open_fds(pid), baseline, "no descriptor leaked");
    assert!(server.child.try_wait().unwrap().is_none(), "still running");
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
}

#[test]
fn clients_that_vanish_before_the_program_starts() {
    if common::skip_unless_procfs("clients_that_vanish_before_the_program_starts") {
        return;
    }
    // One child at a time: the others wait in the backlog, and their
    // clients are gone by the time they are accepted. The program writes
    // first, into a connection nobody reads any more.
    let server = start(&["-v", "-c", "1"], &["sh", "-c", "echo hello; exec cat"]);
    let pid = server.pid();
    // The baseline is taken with no connection in flight: the server closes
    // its copy right after the spawn, which may be after the child spoke.
    assert_eq!(server.request(b"warm-up"), b"hello\nwarm-up");
    wait_all_reaped(&server, 1);
    let baseline = open_fds(pid);
    let mut holder = server.connect();
    let mut hello = [0u8; 6];
    holder.read_exact(&mut hello).unwrap();
    for _ in 0..50 {
        drop(server.connect());
    }
    drop(holder);
    // All 51 were accepted and their children ended, one way or another.
    server.wait_log_count("end pid ", 52);
    wait_all_reaped(&server, 1);
    assert_eq!(server.request(b"still here"), b"hello\nstill here");
    wait_all_reaped(&server, 1);
    assert_eq!(open_fds(pid), baseline, "no descriptor leaked");
}

#[test]
fn clients_that_never_read_hold_only_their_own_child() {
    if common::skip_unless_procfs("clients_that_never_read_hold_only_their_own_child") {
        return;
    }
    let script = "read w; if [ \"$w\" = flood ]; then exec cat /dev/zero; else echo \"$w\"; fi";
    let server = start(&["-v"], &["sh", "-c", script]);
    let pid = server.pid();
    // Two clients ask for an endless answer and never read it.
    let mut stuck = Vec::new();
    for _ in 0..2 {
        let mut s = server.connect();
        s.write_all(b"flood\n").unwrap();
        stuck.push(s);
    }
    wait_children(pid, 2);
    let kids = children_of(pid);
    for &k in &kids {
        // Blocked in `cat`'s write, not in the shell's read.
        wait_exec(k, "cat");
        eventually("a writer blocked", || state(k) == Some('S'));
    }
    // Everybody else is served as usual.
    for i in 0..20 {
        let word = format!("w{i}");
        assert_eq!(
            server.request(format!("{word}\n").as_bytes()),
            format!("{word}\n").as_bytes()
        );
    }
    // Theirs are the only children left: one per live connection.
    wait_children(pid, 2);
    assert_children_stay_at_most(pid, 2);
    assert_eq!(children_of(pid), kids, "the same two");
    // When they give up, their children die of SIGPIPE and are reaped.
    drop(stuck);
    wait_all_reaped(&server, 40);
    assert_eq!(count(&server, "signal 13"), 2, "{:#?}", server.lines());
}

#[test]
fn children_that_crash_are_reaped_and_reported() {
    if common::skip_unless_procfs("children_that_crash_are_reaped_and_reported") {
        return;
    }
    let server = start(&["-v"], &["sh", "-c", "ulimit -c 0; kill -SEGV $$"]);
    for _ in 0..10 {
        assert_eq!(server.request(b""), b"", "the connection closes");
    }
    server.wait_log_count(" signal 11", 10);
    wait_all_reaped(&server, 40);
    // And the server itself is unharmed.
    assert!(alive(server.pid()));
    assert_eq!(server.request(b""), b"");
    server.wait_log_count(" signal 11", 11);
}

#[test]
fn children_that_ignore_sigterm_survive_sighup_and_die_of_sigabrt() {
    if common::skip_unless_procfs("children_that_ignore_sigterm_survive_sighup_and_die_of_sigabrt")
    {
        return;
    }
    // An ignored signal stays ignored across exec.
    let mut server = start(&["-v"], &["sh", "-c", "trap '' TERM; echo ready; exec cat"]);
    let pid = server.pid();
    let mut clients: Vec<UnixStream> = (0..3).map(|_| server.connect()).collect();
    for c in &mut clients {
        let mut ready = [0u8; 6];
        c.read_exact(&mut ready).unwrap();
    }
    let kids = children_of(pid);
    assert_eq!(kids.len(), 3);

    server.signal(libc::SIGHUP);
    server.wait_log("received SIGHUP");
    // The server sent SIGTERM and SIGCONT and carries on; the children
    // chose to live.
    assert_eq!(server.request(b"x"), b"ready\nx");
    for &k in &kids {
        assert!(alive(k), "a child that ignores SIGTERM is not forced");
    }
    assert_eq!(ask(&mut clients[0], "still"), "still");
    // The child that served `x` is reaped; the three remain.
    wait_children(pid, 3);

    // SIGABRT is SIGKILL for every child.
    server.signal(libc::SIGABRT);
    assert!(server.wait_exit().success());
    eventually("children killed", || kids.iter().all(|&k| !alive(k)));
}

/// Starts three children that block in `cat`, and stops them.
fn stopped_children(server: &Server) -> (Vec<UnixStream>, Vec<i32>) {
    let mut clients: Vec<UnixStream> = (0..3).map(|_| server.connect()).collect();
    for c in &mut clients {
        let mut ready = [0u8; 6];
        c.read_exact(&mut ready).unwrap();
    }
    let kids = children_of(server.pid());
    assert_eq!(kids.len(), 3);
    for &k in &kids {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(k, libc::SIGSTOP) };
    }
    eventually("children stopped", || {
        kids.iter().all(|&k| state(k) == Some('T'))
    });
    (clients, kids)
}

#[test]
fn stopped_children_are_woken_to_die_on_sighup() {
    if common::skip_unless_procfs("stopped_children_are_woken_to_die_on_sighup") {
        return;
    }
    let server = start(&["-v"], &["sh", "-c", "echo ready; exec cat"]);
    let (_clients, kids) = stopped_children(&server);
    server.signal(libc::SIGHUP);
    // SIGTERM alone would wait forever behind the stop: SIGCONT lets it in.
    wait_all_reaped(&server, 40);
    assert_eq!(count(&server, " signal 15"), 3, "{:#?}", server.lines());
    for &k in &kids {
        assert!(!alive(k));
    }
    assert_eq!(server.request(b"after"), b"ready\nafter", "still serving");
}

#[test]
fn stopped_children_are_woken_to_die_on_sigquit() {
    if common::skip_unless_procfs("stopped_children_are_woken_to_die_on_sigquit") {
        return;
    }
    // Once the server is gone its stopped children would make an orphaned
    // process group, and the kernel would send them SIGHUP and SIGCONT
    // itself. Adopting them here keeps the group attached, so only the
    // server's own SIGCONT can let its SIGTERM in; and it lets this test
    // see how they died.
    platform::host::become_child_subreaper().expect("become a child subreaper");
    let mut server = start(&["-v"], &["sh", "-c", "echo ready; exec cat"]);
    let (mut clients, kids) = stopped_children(&server);
    server.signal(libc::SIGQUIT);
    assert!(server.wait_exit().success());
    for &k in &kids {
        let mut status = 0;
        eventually("a stopped child ends", || {
            // SAFETY: `status` is writable; WNOHANG never blocks. The
            // child is ours once the server is gone.
            unsafe { libc::waitpid(k, &mut status, libc::WNOHANG) == k }
        });
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGTERM,
            "child {k} ended by SIGTERM, status {status:#x}"
        );
    }
    // Their connections are closed: each client reads end of file.
    for c in &mut clients {
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
}

#[test]
fn a_thousand_children_at_once() {
    if common::skip_unless_procfs("a_thousand_children_at_once") {
        return;
    }
    const N: usize = 1000;
    // The test holds a connection per child.
    raise_own_nofile(4 * N as u64);
    let server = start(&["-v", "-c", "1000", "-C", "1000"], &["cat"]);
    let pid = server.pid();
    assert_eq!(server.request(b"warm-up"), b"warm-up");
    let baseline = open_fds(pid);
    let mut clients: Vec<UnixStream> = (0..N).map(|_| server.connect()).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(format!("{i}\n").as_bytes()).unwrap();
    }
    // Every one of them is answered by its own live child.
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(read_line(c), format!("{i}\n"));
    }
    assert_eq!(children_of(pid).len(), N);
    server.wait_log("status: 1000/1000");
    if LOOKUP {
        assert!(
            server.lines().iter().any(|l| l.contains("count 1000/1000")),
            "one uid, 1000 connections"
        );
    }

    // At the limit the next client waits in the backlog.
    let mut extra = server.connect();
    extra.write_all(b"extra\n").unwrap();
    assert_children_stay_at_most(pid, N);
    common::assert_unanswered(&extra, "no 1001st client served at 1000/1000");

    drop(clients);
    assert_eq!(read_line(&extra), "extra\n", "served once a slot frees up");
    // Its child, and what is left of the thousand being reaped.
    assert_children_at_most(pid, N);
    drop(extra);
    wait_all_reaped(&server, 1000);
    assert_eq!(count(&server, "end pid "), N + 2);
    assert_eq!(open_fds(pid), baseline, "no descriptor leaked");
}

#[test]
fn a_program_that_cannot_be_started_under_a_burst() {
    if common::skip_unless_procfs("a_program_that_cannot_be_started_under_a_burst") {
        return;
    }
    let dir = common::TempDir::new();
    let not_exec = dir.join("not-executable");
    std::fs::write(&not_exec, "#!/bin/sh\necho never\n").unwrap();
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).unwrap();
    let missing = dir.join("missing");
    let cases: [(&str, &str); 3] = [
        (missing.to_str().unwrap(), "No such file"),
        (not_exec.to_str().unwrap(), "Permission denied"),
        ("s6-ipcserver-no-such-program-in-path", "No such file"),
    ];
    for (prog, reason) in cases {
        let server = start(&["-v"], &[prog]);
        let pid = server.pid();
        assert_eq!(server.request(b""), b"");
        server.wait_log("unable to spawn");
        let baseline = open_fds(pid);
        // A burst: all connected at once, then all read.
        let mut clients: Vec<UnixStream> = (0..50).map(|_| server.connect()).collect();
        for c in &mut clients {
            let mut out = Vec::new();
            c.read_to_end(&mut out).unwrap();
            assert!(out.is_empty(), "the connection is closed at once");
        }
        server.wait_log_count("unable to spawn", 51);
        let warning = server.wait_log("unable to spawn");
        assert!(
            warning.contains("s6-ipcserver: warning: ")
                && warning.contains(prog)
                && warning.contains(reason),
            "the warning names the program and the reason: {warning}"
        );
        assert!(alive(pid), "the server keeps serving");
        // No child, no zombie: a failed spawn leaves nothing behind.
        assert_children_at_most(pid, 0);
        assert_eq!(open_fds(pid), baseline, "no descriptor leaked");
        assert_eq!(
            last_status(&server)
                .as_deref()
                .map(|l| l.ends_with("status: 0/40")),
            Some(true)
        );
    }
}
