//! The spawner threads: a spawn that never returns (its child stopped
//! before its exec) holds up its own thread only, and the limits hold
//! whatever the spawners are doing.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{eventually, Server};

/// A PATH of many directories that do not exist before the real ones:
/// `posix_spawnp` tries each in the child before its exec succeeds, which
/// leaves a test the time to stop that child while it still runs the
/// server's code. musl reads no more than PATH_MAX - 1 bytes of PATH, so
/// the same missing directory is named again and again within that.
fn slow_path() -> String {
    let mut path = "/x:".repeat(1300);
    path.push_str("/usr/bin:/bin");
    assert!(path.len() < 4095);
    path
}

/// `-P` where this build can look up no credentials: every test here
/// is about spawning, not about who the client is.
const LOOKUP_OPTION: &str = if cfg!(feature = "force-unsupported-credentials") {
    "-P"
} else {
    "-p"
};

fn start_slow(options: &[&str]) -> Server {
    start_slow_with(options, &["cat"])
}

fn start_slow_with(options: &[&str], prog: &[&str]) -> Server {
    let options = [&[LOOKUP_OPTION][..], options].concat();
    Server::start_with(&options, prog, |cmd| {
        cmd.env("PATH", slow_path());
    })
}

fn exe(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The server's children, read from each thread's list: a child belongs to
/// the thread that made it.
fn thread_children(server: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{server}/task"))
        .unwrap()
        .flatten()
    {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    out
}

/// How many spawner threads the server has.
/// Waits until the server has `n` spawner threads (a new thread takes its
/// name a moment after it starts), and that no more appear meanwhile.
fn wait_spawner_threads(server: i32, n: usize) {
    eventually(&format!("{n} spawner threads"), || {
        let have = spawner_threads(server);
        assert!(have <= n, "{have} spawner threads, more than {n}");
        have == n
    });
}

fn spawner_threads(server: i32) -> usize {
    std::fs::read_dir(format!("/proc/{server}/task"))
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "spawner")
        })
        .count()
}

/// Connects a client and stops its child before the child's exec, while
/// it is still the server's own executable. Returns the client and the
/// stopped child; its spawner is stuck until the child is continued.
fn stuck_spawn(server: &Server, already: &[i32]) -> (UnixStream, i32) {
    let server_exe = exe(server.pid()).unwrap();
    let deadline = Instant::now() + common::TIMEOUT;
    'client: while Instant::now() < deadline {
        let mut client = server.connect();
        if client.write_all(b"hello\n").is_err() {
            // Closed at once: the spawn failed (a process limit that the
            // child of the last try still filled, say). Try again.
            thread::sleep(Duration::from_millis(20));
            continue 'client;
        }
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            for pid in thread_children(server.pid()) {
                if already.contains(&pid) || exe(pid).as_ref() != Some(&server_exe) {
                    continue;
                }
                // SAFETY: kill has no memory effects.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                eventually("the child to stop", || state(pid) != Some('R'));
                if state(pid) == Some('T') && exe(pid).as_ref() == Some(&server_exe) {
                    return (client, pid);
                }
                // It exec'd first: let it be and try another client.
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGCONT) };
                continue 'client;
            }
            thread::yield_now();
        }
    }
    panic!("no child could be stopped before its exec");
}

fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

fn answer(client: &UnixStream) -> String {
    let mut line = String::new();
    BufReader::new(client).read_line(&mut line).unwrap();
    line
}

/// Why the stuck-spawn tests cannot pass with musl's posix_spawn.
const NO_OVERLAP: &str = "musl's posix_spawn holds a process-wide lock until the child execs \
     (platform::host::SPAWNS_OVERLAP): a child stopped before its exec stops every spawn";

#[test]
fn a_child_stopped_before_its_exec_does_not_stop_the_others() {
    let test = "a_child_stopped_before_its_exec_does_not_stop_the_others";
    if common::skip_unless_procfs(test)
        || common::skip_unless(platform::host::SPAWNS_OVERLAP, test, NO_OVERLAP)
    {
        return;
    }
    let server = start_slow(&["-v", "-c", "10"]);
    let (stuck_client, stuck) = stuck_spawn(&server, &[]);
    for i in 0..5 {
        let mut c = server.connect();
        let line = format!("client {i}\n");
        c.write_all(line.as_bytes()).unwrap();
        assert_eq!(answer(&c), line, "served while a spawn is stuck");
    }
    // The stuck one goes on once continued, and is served too.
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(stuck, libc::SIGCONT) };
    assert_eq!(answer(&stuck_client), "hello\n");
    server.wait_log(&format!(" pid {stuck} count "));
}

/// The descriptors above 2 that the server's children inherit: those its
/// own parent passed on (not close-on-exec; cargo's jobserver pipes, say).
fn passed_on(server: i32) -> Vec<i32> {
    const O_CLOEXEC_IN_FDINFO: u32 = 0o2000000;
    common::open_fds(server)
        .into_iter()
        .filter(|&fd| fd > 2)
        .filter(|fd| {
            let info =
                std::fs::read_to_string(format!("/proc/{server}/fdinfo/{fd}")).unwrap_or_default();
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                .is_some_and(|f| f & O_CLOEXEC_IN_FDINFO == 0)
        })
        .collect()
}

/// Whether a stopped child's descriptors are those it execs with: 0 to 2,
/// and what the server's parent passed on. The child is judged only once
/// its connection is on fd 0 (its file actions have begun), and a child
/// that holds more is let go a moment and looked at again, so that one
/// caught between two of its file actions is not mistaken for one that
/// keeps the server's descriptors. `None` if it exec'd first.
fn holds_only_its_own(server: &Server, child: i32) -> Option<Vec<i32>> {
    let server_exe = exe(server.pid());
    let passed = passed_on(server.pid());
    let link = |fd: i32| std::fs::read_link(format!("/proc/{child}/fd/{fd}")).ok();
    let mut seen_holding = false;
    for _ in 0..200 {
        let connected = link(0).is_some_and(|l| l.to_string_lossy().starts_with("socket:"));
        let extra: Vec<i32> = common::open_fds(child)
            .into_iter()
            .filter(|fd| *fd > 2 && !passed.contains(fd))
            // The server keeps the numbers below the highest one passed on
            // occupied with /dev/null: those hold nothing.
            .filter(|&fd| link(fd).is_some_and(|l| l != Path::new("/dev/null")))
            .collect();
        if connected {
            if extra.is_empty() || seen_holding {
                return Some(extra);
            }
            seen_holding = true;
        }
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(child, libc::SIGCONT) };
        thread::sleep(Duration::from_micros(50));
        // SAFETY: as above.
        unsafe { libc::kill(child, libc::SIGSTOP) };
        eventually("the child to stop", || state(child) != Some('R'));
        if exe(child) != server_exe {
            return None;
        }
    }
    panic!("child {child} never got its connection on fd 0");
}

/// A child stopped before its exec (a long PATH search, a hung file
/// system) holds no descriptor of the server's but its own connection on
/// 0 and 1: not the listening socket, not the signal or wake-up
/// descriptors, not other clients' connections. So once the server is
/// gone, connecting to its path is refused at once.
#[test]
fn a_child_stopped_before_its_exec_holds_only_its_connection() {
    let test = "a_child_stopped_before_its_exec_holds_only_its_connection";
    if common::skip_unless_procfs(test)
        || common::skip_unless(platform::host::SPAWNS_OVERLAP, test, NO_OVERLAP)
        || common::skip_unless(
            platform::spawn::CLOSES_BEFORE_EXEC,
            test,
            "this C library's posix_spawn has no close-from action \
             (platform::spawn::CLOSES_BEFORE_EXEC)",
        )
    {
        return;
    }
    let mut server = start_slow(&["-c", "10"]);
    // Other connections, held by children that exec'd.
    let mut others = Vec::new();
    for i in 0..3 {
        let mut c = server.connect();
        let line = format!("other {i}\n");
        c.write_all(line.as_bytes()).unwrap();
        assert_eq!(answer(&c), line);
        others.push(c);
    }
    let mut stuck = Vec::new();
    let (client, child, fds) = loop {
        let (client, child) = stuck_spawn(&server, &stuck);
        stuck.push(child);
        if let Some(fds) = holds_only_its_own(&server, child) {
            break (client, child, fds);
        }
    };
    assert_eq!(
        fds,
        Vec::<i32>::new(),
        "descriptors of the server's in a child before its exec: {:?}",
        fds.iter()
            .map(|fd| std::fs::read_link(format!("/proc/{child}/fd/{fd}")))
            .collect::<Vec<_>>()
    );
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    let refused = UnixStream::connect(&server.path)
        .map(drop)
        .map_err(|e| e.kind());
    assert_eq!(
        refused,
        Err(std::io::ErrorKind::ConnectionRefused),
        "the listening socket outlived the server"
    );
    for pid in stuck {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    drop((client, others));
}

/// A child the server's process had before its exec (a run script's
/// `daemon & exec s6-ipcserver ...`) exits while a spawn is stuck before
/// its exec: the server reaps it, and goes on reaping its own children.
/// With `-c 3` and one spawn stuck, two children left unreaped would stop
/// the service.
#[test]
fn a_strangers_exit_during_a_stuck_spawn_stops_no_reaping() {
    let test = "a_strangers_exit_during_a_stuck_spawn_stops_no_reaping";
    if common::skip_unless_procfs(test)
        || common::skip_unless(platform::host::SPAWNS_OVERLAP, test, NO_OVERLAP)
        || common::skip_unless(
            platform::children::STRANGERS_TOLD_APART,
            test,
            "this system does not tell a child of the loop's thread from a spawner's \
             (platform::children::STRANGERS_TOLD_APART)",
        )
    {
        return;
    }
    let dir = common::TempDir::new();
    let path = dir.join("sock");
    let mut cmd = Command::new("sh");
    cmd.process_group(0)
        .env("PATH", slow_path())
        .args(["-c", "/bin/sleep 1 >/dev/null 2>&1 & exec \"$0\" \"$@\""])
        .arg(common::bin())
        .args(["-1", LOOKUP_OPTION, "-c", "3"])
        .arg(&path)
        .arg("cat");
    let server = Server::spawn_ready(cmd, path, dir);
    let stranger = thread_children(server.pid())
        .into_iter()
        .find(|&pid| exe(pid).is_some_and(|e| e.ends_with("sleep")))
        .expect("the server's process has the sleep as a child");
    let (_stuck_client, stuck) = stuck_spawn(&server, &[]);
    eventually("the stranger to exit", || {
        common::state(stranger).map_or(true, |s| s == 'Z')
    });
    for i in 0..6 {
        let mut c = server.connect();
        let line = format!("client {i}\n");
        c.write_all(line.as_bytes()).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer)
            .unwrap_or_else(|e| panic!("client {i} unanswered ({e}): reaping stopped"));
        assert_eq!(answer, line, "client {i} after the stranger's exit");
    }
    eventually("the stranger reaped", || common::state(stranger).is_none());
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(stuck, libc::SIGKILL) };
}

#[test]
fn with_every_spawner_stuck_clients_wait_and_sigterm_still_ends_the_server() {
    let test = "with_every_spawner_stuck_clients_wait_and_sigterm_still_ends_the_server";
    if common::skip_unless_procfs(test) {
        return;
    }
    // Without overlapping spawns (musl), one stuck child is every spawner
    // stuck: only the SIGTERM part applies.
    let overlap = !common::skip_unless(
        platform::host::SPAWNS_OVERLAP,
        &format!("{test} (all but its SIGTERM part)"),
        NO_OVERLAP,
    );
    let mut server = start_slow(&["-v", "-c", "40"]);
    // Spawners start as spawns overlap, up to two per CPU (2 to 16).
    wait_spawner_threads(server.pid(), 1); // one to start with
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = if overlap { (2 * cpus).clamp(2, 16) } else { 1 };
    let mut stuck = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..n {
        let (c, pid) = stuck_spawn(&server, &stuck);
        stuck.push(pid);
        clients.push(c);
    }
    if overlap {
        wait_spawner_threads(server.pid(), n); // all of them, each stuck
                                               // No spawner is free: the next client waits in the backlog (the
                                               // server does not even accept it), although there is room for 40.
        let fds_before = common::open_fds(server.pid());
        // (A client whose child exec'd before it could be stopped was served
        // above: only what comes after this one counts.)
        let logged_before = server.lines().len();
        let mut waiting = server.connect();
        waiting.write_all(b"waiting\n").unwrap();
        waiting.set_nonblocking(true).unwrap();
        thread::sleep(Duration::from_millis(300));
        let mut b = [0u8; 8];
        assert_eq!(
            waiting.read(&mut b).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock),
            "served with every spawner stuck?"
        );
        let later = server.lines().split_off(logged_before);
        assert!(!later.iter().any(|l| l.contains("allow ")), "{later:#?}");
        assert_eq!(
            common::open_fds(server.pid()),
            fds_before,
            "the server accepted a client that no spawner can take"
        );
    }

    let t0 = Instant::now();
    server.signal(libc::SIGTERM);
    while server.child.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "alive 1 s after SIGTERM with every spawner stuck"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
    for pid in stuck {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// SIGHUP while a spawn is in flight: the child's pid is not known yet,
/// and it gets SIGTERM and SIGCONT as soon as it is.
#[test]
fn sighup_reaches_a_child_whose_spawn_was_in_flight() {
    if common::skip_unless_procfs("sighup_reaches_a_child_whose_spawn_was_in_flight") {
        return;
    }
    let server = start_slow_with(&["-v", "-P"], &["sh", "-c", "exec sleep 30"]);
    let (_client, stuck) = stuck_spawn(&server, &[]);
    server.signal(libc::SIGHUP);
    server.wait_log("received SIGHUP");
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(stuck, libc::SIGCONT) };
    server.wait_log(&format!("end pid {stuck} uid ? signal {}", libc::SIGTERM));
    server.wait_log("status: 0/40");
}

/// SIGQUIT while a spawn is in flight: the server waits for it (up to a
/// second), signals the child, then exits.
#[test]
fn sigquit_waits_for_a_spawn_in_flight_and_signals_its_child() {
    if common::skip_unless_procfs("sigquit_waits_for_a_spawn_in_flight_and_signals_its_child") {
        return;
    }
    let mut server = start_slow_with(&["-v", "-P"], &["sh", "-c", "exec sleep 30"]);
    let (_client, stuck) = stuck_spawn(&server, &[]);
    server.signal(libc::SIGQUIT);
    server.wait_log("received SIGQUIT");
    thread::sleep(Duration::from_millis(200));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "it waits for the spawn"
    );
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(stuck, libc::SIGCONT) };
    assert!(server.wait_exit().success());
    // The child was signalled, not left running: it is gone (reaped by
    // init once the server exited).
    eventually("the child to die of SIGTERM", || !common::alive(stuck));
    assert!(server
        .lines()
        .iter()
        .any(|l| l.ends_with(": info: exiting")));
}

/// The uid a child was told its client has, once it has exec'd.
fn client_uid(pid: i32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|&b| b == 0)
        .find_map(|v| v.strip_prefix(b"IPCREMOTEEUID="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Two uids hammer a server with `-c 2 -C 1` while SIGHUPs kill children
/// and spawns are in flight (the long PATH keeps each in flight for
/// milliseconds): no sample ever sees more than two children, nor two of
/// one uid, and no child is told it is its uid's second connection.
#[test]
fn limits_hold_while_spawns_are_in_flight_and_signals_arrive() {
    let test = "limits_hold_while_spawns_are_in_flight_and_signals_arrive";
    if common::skip_unless_procfs(test)
        || common::skip_unless_root(test)
        || common::skip_unless(
            !cfg!(feature = "force-unsupported-credentials"),
            test,
            "needs a credentials lookup",
        )
        || common::skip_unless_tool(test, "s6-ipcclient")
    {
        return;
    }
    let server = Server::start_with(
        &["-v", "-c", "2", "-C", "1"],
        &["sh", "-c", "echo \"n=$IPCCONNNUM\"; exec sleep 0.05"],
        |cmd| {
            cmd.env("PATH", slow_path());
        },
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(server.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let most_of_one_uid = Arc::new(AtomicUsize::new(0));
    let answers = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));

    let pid = server.pid();
    let watcher = {
        let (stop, most, most_of_one_uid) = (
            Arc::clone(&stop),
            Arc::clone(&most),
            Arc::clone(&most_of_one_uid),
        );
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // The server's own lists, not a pass over all of /proc,
                // which can take longer than a child lives here (25-150 ms
                // under ThreadSanitizer).
                let children = common::alive_together(pid, thread_children(pid));
                most.fetch_max(children.len(), Ordering::Relaxed);
                let mut uids: Vec<String> = children.into_iter().filter_map(client_uid).collect();
                uids.sort();
                let n = uids.len();
                uids.dedup();
                most_of_one_uid.fetch_max(n - uids.len() + usize::from(n > 0), Ordering::Relaxed);
            }
        })
    };
    let hup = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: kill has no memory effects.
                unsafe { libc::kill(pid, libc::SIGHUP) };
                thread::sleep(Duration::from_millis(40));
            }
        })
    };
    let mut clients = Vec::new();
    for uid in [0u32, 65534] {
        for _ in 0..2 {
            let (path, answers) = (server.path.clone(), Arc::clone(&answers));
            clients.push(thread::spawn(move || {
                for _ in 0..60 {
                    let out = std::process::Command::new("s6-ipcclient")
                        .arg(&path)
                        .args(["sh", "-c", "cat <&6"])
                        .uid(uid)
                        .gid(uid)
                        .output()
                        .expect("run s6-ipcclient");
                    let text = String::from_utf8_lossy(&out.stdout).into_owned();
                    answers.lock().unwrap().push(text);
                }
            }));
        }
    }
    for c in clients {
        c.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    hup.join().unwrap();

    let most = most.load(Ordering::Relaxed);
    let most_of_one_uid = most_of_one_uid.load(Ordering::Relaxed);
    let answers = answers.lock().unwrap();
    assert!(
        (1..=2).contains(&most),
        "{most} children at once under -c 2; answers {:?}; log {:#?}",
        &answers[..answers.len().min(20)],
        server.lines().iter().rev().take(20).collect::<Vec<_>>()
    );
    assert_eq!(
        most_of_one_uid, 1,
        "two children of one uid at once under -C 1"
    );
    let served = answers.iter().filter(|a| a.as_str() == "n=1\n").count();
    let wrong: Vec<&String> = answers
        .iter()
        .filter(|a| !a.is_empty() && a.as_str() != "n=1\n")
        .collect();
    assert!(wrong.is_empty(), "IPCCONNNUM above -C 1: {wrong:?}");
    assert!(served > 0, "nothing served: {:?}", &answers[..10]);
    let denials = server
        .lines()
        .iter()
        .filter(|l| l.contains(": info: deny "))
        .count();
    eprintln!(
        "{} connections: {served} served with n=1, {denials} denied, most children {most}",
        answers.len()
    );
    eventually("no children left", || common::children_of(pid).is_empty());
}

/// Spawner threads count toward the user's process limit (RLIMIT_NPROC
/// counts tasks): when it refuses one, the server says so and goes on with
/// those it has; a spawn the limit refuses is a warning for that
/// connection, and the server keeps serving signals.
#[test]
fn a_process_limit_that_refuses_a_spawner_thread_is_a_warning() {
    let test = "a_process_limit_that_refuses_a_spawner_thread_is_a_warning";
    if common::skip_unless_root(test) || common::skip_unless_procfs(test) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = common::TempDir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.join("sock");
    // A uid of its own, as the limit counts every task of the uid: three
    // tasks, the server's main thread, its first spawner and one child.
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg("--nproc=3")
        .arg(common::bin())
        .args(["-1", "-v", LOOKUP_OPTION, "-c", "10"])
        .arg(&path)
        .args(["cat"])
        .env("PATH", slow_path())
        .uid(4242)
        .gid(4242)
        .process_group(0);
    let mut server = Server::spawn_ready(cmd, path, dir);
    wait_spawner_threads(server.pid(), 1);
    // The first spawner is held by a child stopped before its exec; the
    // next client needs a second spawner, which the limit refuses.
    let (first, stuck) = stuck_spawn(&server, &[]);
    let _second = server.connect();
    let warning = server.wait_log("spawner thread");
    assert!(
        warning.ends_with(&format!(
            "warning: unable to start another spawner thread (1 running): {}",
            common::strerror(libc::EAGAIN)
        )),
        "{warning}"
    );
    assert_eq!(spawner_threads(server.pid()), 1);
    // The stopped child goes on and serves its client; the second waited
    // for the one spawner, whose spawn the limit then refuses (the child
    // holds the last task).
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(stuck, libc::SIGCONT) };
    assert_eq!(answer(&first), "hello\n");
    let spawn_warning = server.wait_log("unable to spawn cat");
    assert!(
        spawn_warning.ends_with(&common::strerror(libc::EAGAIN)),
        "{spawn_warning}"
    );
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
}
