//! Spawning the per-connection program: the connection on fds 0 and 1, an
//! empty signal mask, SIGPIPE at its default, and the inherited environment
//! patched with the per-connection slots.

mod common;

use std::ffi::OsString;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use platform::fd::OwnFrom;
use platform::spawn::{Environ, Job, Program, Report, Spawner};

use common::serial;

/// The test process's descriptors are all its own: children keep only 0
/// to 2.
const OWN_FROM: i32 = 3;

fn argv(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// Spawns `args` on one end of a socketpair, closes the server's copy,
/// sends `input` then end of file, and returns everything the program
/// wrote, once it has exited successfully.
fn run(args: &[&str], env: &mut Environ, input: &[u8]) -> Vec<u8> {
    let mut prog = Program::new(&argv(args), OWN_FROM).unwrap();
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let pid = prog.spawn(theirs.as_fd(), &env.render()).unwrap();
    drop(theirs);
    ours.write_all(input).unwrap();
    ours.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    ours.read_to_end(&mut out).unwrap();
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is writable.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{args:?} exited with status {status:#x}"
    );
    out
}

#[test]
fn connection_is_on_stdin_and_stdout() {
    let _g = serial();
    let mut env = Environ::inherit(&[]);
    // Found through PATH, and by absolute path.
    for cat in ["cat", "/bin/cat"] {
        let out = run(&[cat], &mut env, b"hello\nworld\n");
        assert_eq!(out, b"hello\nworld\n");
    }
}

#[test]
fn environment_is_inherited_minus_managed_plus_slots() {
    let _g = serial();
    std::env::set_var("S6IPC_TEST_KEPT", "kept");
    std::env::set_var("S6IPC_TEST_MANAGED", "from the server");
    let mut env = Environ::inherit(&["S6IPC_TEST_MANAGED", "IPCREMOTEEUID"]);
    std::env::remove_var("S6IPC_TEST_KEPT");
    std::env::remove_var("S6IPC_TEST_MANAGED");
    let euid = env.slot("IPCREMOTEEUID");
    let managed = env.slot("S6IPC_TEST_MANAGED");
    let unset = env.slot("S6IPC_TEST_UNSET");

    let vars = |env: &mut Environ| -> Vec<String> {
        let out = run(&["/usr/bin/env"], env, b"");
        let mut v: Vec<String> = String::from_utf8(out)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("S6IPC_TEST_") || l.starts_with("IPCREMOTE"))
            .map(String::from)
            .collect();
        v.sort();
        v
    };

    env.set(euid, b"65534").unwrap();
    env.set(unset, b"soon gone").unwrap();
    env.unset(unset);
    assert_eq!(
        vars(&mut env),
        ["IPCREMOTEEUID=65534", "S6IPC_TEST_KEPT=kept"]
    );

    // The next connection: values are patched in place.
    env.set(euid, b"0").unwrap();
    env.set_with(managed, |b| write!(b, "{}:{}", 1, 2)).unwrap();
    assert_eq!(
        vars(&mut env),
        [
            "IPCREMOTEEUID=0",
            "S6IPC_TEST_KEPT=kept",
            "S6IPC_TEST_MANAGED=1:2"
        ]
    );

    // A NUL byte cannot go into the environment: the variable is unset.
    let e = env.set(managed, b"a\0b").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(vars(&mut env), ["IPCREMOTEEUID=0", "S6IPC_TEST_KEPT=kept"]);
    let block = env.render();
    let entries: Vec<&[u8]> = block.entries().collect();
    assert!(entries.contains(&&b"IPCREMOTEEUID=0"[..]));
    assert!(!entries
        .iter()
        .any(|e| e.starts_with(b"S6IPC_TEST_MANAGED=")));
}

/// The child starts with an empty signal mask and SIGPIPE at its default,
/// although the server blocks signals and ignores SIGPIPE.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn signal_mask_is_empty_and_sigpipe_default() {
    use nix::sys::signal::{
        pthread_sigmask, sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal,
    };
    let _g = serial();
    let mut block = SigSet::empty();
    block.add(Signal::SIGUSR1);
    block.add(Signal::SIGCHLD);
    block.add(Signal::SIGTERM);
    let mut old_mask = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&block), Some(&mut old_mask)).unwrap();
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: ignoring a signal installs no code.
    let old_pipe = unsafe { sigaction(Signal::SIGPIPE, &ign) }.unwrap();

    let mut env = Environ::inherit(&[]);
    let out = run(
        &["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"],
        &mut env,
        b"",
    );

    // SAFETY: puts back what was there.
    unsafe { sigaction(Signal::SIGPIPE, &old_pipe) }.unwrap();
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None).unwrap();

    let out = String::from_utf8(out).unwrap();
    let field = |name: &str| -> u64 {
        let line = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {out:?}"));
        u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
    };
    assert_eq!(field("SigBlk:"), 0, "{out}");
    let sigpipe_bit = 1u64 << (libc::SIGPIPE - 1);
    assert_eq!(field("SigIgn:") & sigpipe_bit, 0, "{out}");
}

/// Portable variant: a child writing to a closed connection dies of
/// SIGPIPE instead of getting EPIPE, even though we ignore SIGPIPE. It
/// writes only after seeing end of file, so that no unread data turns the
/// error into ECONNRESET (which raises no signal).
#[test]
fn sigpipe_kills_the_child() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let _g = serial();
    let ign = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: ignoring a signal installs no code.
    let old_pipe = unsafe { sigaction(Signal::SIGPIPE, &ign) }.unwrap();
    let mut prog = Program::new(
        &argv(&[
            "/bin/sh",
            "-c",
            "cat >/dev/null; while echo y; do :; done; exit 3",
        ]),
        OWN_FROM,
    )
    .unwrap();
    let (ours, theirs) = UnixStream::pair().unwrap();
    let env = Environ::inherit(&[]);
    let pid = prog.spawn(theirs.as_fd(), &env.render()).unwrap();
    drop(theirs);
    drop(ours);
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is writable.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    // SAFETY: puts back what was there.
    unsafe { sigaction(Signal::SIGPIPE, &old_pipe) }.unwrap();
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGPIPE,
        "status {status:#x}"
    );
}

#[test]
fn bad_programs_are_errors() {
    let _g = serial();
    let e = Program::new(&[], OWN_FROM).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = Program::new(&[OsString::from("a\0b")], OWN_FROM)
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // A program that does not exist is reported by spawn itself.
    let mut prog = Program::new(&argv(&["/nonexistent/s6ipc-no-such-program"]), OWN_FROM).unwrap();
    let (_ours, theirs) = UnixStream::pair().unwrap();
    let env = Environ::inherit(&[]);
    let e = prog.spawn(theirs.as_fd(), &env.render()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

/// Hands `jobs` to a pool of `threads` spawners, no more at once than it
/// has room for, and returns every report.
fn through_pool(args: &[&str], threads: usize, jobs: Vec<Job>) -> Vec<Report> {
    let mut spawner = Spawner::start(&argv(args), threads, OwnFrom(OWN_FROM)).unwrap();
    let total = jobs.len();
    let mut jobs = jobs.into_iter();
    let mut reports = Vec::new();
    while reports.len() < total {
        while spawner.has_room() {
            match jobs.next() {
                Some(job) => spawner.submit(job),
                None => break,
            }
        }
        let mut fds = [libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&spawner.fd()),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: `fds` is a live array of one pollfd.
        assert!(
            unsafe { libc::poll(fds.as_mut_ptr(), 1, 10_000) } > 0,
            "no report in 10 s"
        );
        spawner.take_reports(&mut reports);
    }
    assert_eq!(spawner.in_flight(), 0);
    reports
}

/// Many connections through a pool of spawners at once: each child gets
/// its own connection and its own environment, and each job is reported
/// once with its token.
#[cfg(target_os = "linux")]
#[test]
fn a_pool_of_spawners_keeps_each_connection_and_environment_apart() {
    let _g = serial();
    let mut env = Environ::inherit(&[]);
    let n = env.slot("S6IPC_TEST_N");
    let mut ours = Vec::new();
    let mut jobs = Vec::new();
    for i in 0..50u64 {
        env.set(n, format!("{i}").as_bytes()).unwrap();
        let (mine, theirs) = UnixStream::pair().unwrap();
        ours.push(mine);
        jobs.push(Job {
            token: i,
            conn: theirs.into(),
            env: env.render(),
        });
    }
    let reports = through_pool(&["/bin/sh", "-c", "cat; echo \"$S6IPC_TEST_N\""], 4, jobs);
    let mut tokens: Vec<u64> = reports.iter().map(|r| r.token).collect();
    tokens.sort();
    assert_eq!(
        tokens,
        (0..50).collect::<Vec<_>>(),
        "each job reported once"
    );
    for (i, mut mine) in ours.into_iter().enumerate() {
        mine.write_all(format!("child {i}\n").as_bytes()).unwrap();
        mine.shutdown(Shutdown::Write).unwrap();
        let mut out = String::new();
        mine.read_to_string(&mut out).unwrap();
        assert_eq!(
            out,
            format!("child {i}\n{i}\n"),
            "the spawner closed its copy"
        );
    }
    for r in reports {
        let pid = r.pid.unwrap();
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is writable.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
}

/// A program that cannot be executed comes back as the report's error.
#[test]
fn a_spawn_that_fails_is_reported_as_such() {
    let _g = serial();
    let (_ours, theirs) = UnixStream::pair().unwrap();
    let job = Job {
        token: 7,
        conn: theirs.into(),
        env: Environ::inherit(&[]).render(),
    };
    let reports = through_pool(&["/nonexistent/s6ipc-no-such-program"], 2, vec![job]);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].token, 7);
    let e = reports[0].pid.as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

/// Spawner threads block every signal: a signal sent to the process
/// reaches whatever thread leaves it unblocked (the event loop's), and
/// with a signalfd a spawner that took SIGCHLD would lose it. One starts
/// with the pool; more start as spawns overlap, up to the maximum.
#[cfg(target_os = "linux")]
#[test]
fn spawner_threads_start_as_needed_and_block_every_signal() {
    let _g = serial();
    let spawners = || -> Vec<u64> {
        let mut masks = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() != "spawner" {
                continue;
            }
            let status = std::fs::read_to_string(task.path().join("status")).unwrap();
            masks.push(
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("SigBlk:"))
                    .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
                    .unwrap(),
            );
        }
        masks
    };
    let wait_for = |n: usize| {
        let t0 = std::time::Instant::now();
        while spawners().len() != n {
            assert!(
                t0.elapsed().as_secs() < 10,
                "{} spawners, wanted {n}",
                spawners().len()
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    let mut spawner = Spawner::start(&argv(&["/bin/true"]), 3, OwnFrom(OWN_FROM)).unwrap();
    wait_for(1);
    assert_eq!(spawner.threads(), 1, "one to start with");
    let mut ours = Vec::new();
    for token in 0..5 {
        if !spawner.has_room() {
            break;
        }
        let (mine, theirs) = UnixStream::pair().unwrap();
        ours.push(mine);
        spawner.submit(Job {
            token,
            conn: theirs.into(),
            env: Environ::inherit(&[]).render(),
        });
    }
    assert_eq!(ours.len(), 3, "room for three spawns in flight");
    assert_eq!(
        spawner.threads(),
        3,
        "a spawner for each spawn in flight, at most three"
    );
    wait_for(3);
    // Every standard signal but SIGKILL and SIGSTOP, which cannot be.
    let wanted = ((1u64 << 31) - 1) & !(1 << (libc::SIGKILL - 1)) & !(1 << (libc::SIGSTOP - 1));
    for blk in spawners() {
        assert_eq!(blk & wanted, wanted, "SigBlk {blk:#x}");
    }
    let mut reports = Vec::new();
    while reports.len() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        spawner.take_reports(&mut reports);
    }
    for r in reports {
        let pid = r.pid.unwrap();
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is writable.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    }
    assert!(spawner.take_shortfall().is_none());
}
