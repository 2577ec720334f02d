//! Spawning the per-connection program: the connection on fds 0 and 1, an
//! empty signal mask, SIGPIPE at its default, and the inherited environment
//! patched with the per-connection slots.

mod common;

use std::ffi::OsString;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use platform::spawn::{Environ, Program};

use common::serial;

fn argv(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// Spawns `args` on one end of a socketpair, closes the server's copy,
/// sends `input` then end of file, and returns everything the program
/// wrote, once it has exited successfully.
fn run(args: &[&str], env: &mut Environ, input: &[u8]) -> Vec<u8> {
    let mut prog = Program::new(&argv(args)).unwrap();
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let pid = prog.spawn(theirs.as_fd(), env).unwrap();
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
    let entries: Vec<&[u8]> = env.entries().collect();
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
    let mut prog = Program::new(&argv(&[
        "/bin/sh",
        "-c",
        "cat >/dev/null; while echo y; do :; done; exit 3",
    ]))
    .unwrap();
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut env = Environ::inherit(&[]);
    let pid = prog.spawn(theirs.as_fd(), &mut env).unwrap();
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

/// Waits for `pid` and says whether it exited with status 0.
#[cfg(target_os = "linux")]
fn exited_ok(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is writable.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// The child reads its environment until it execs, which may be after
/// `spawn` has returned: it must have its own copy, so that the server can
/// change or drop the `Environ` (here: drop it, then reuse the memory) at
/// once.
#[cfg(target_os = "linux")]
#[test]
fn the_environment_can_be_dropped_right_after_spawn() {
    let _g = serial();
    std::env::set_var("S6IPC_TEST_BASE", "inherited value");
    let mut prog = Program::new(&argv(&["/usr/bin/env"])).unwrap();
    for i in 0..200 {
        let mut env = Environ::inherit(&[]);
        let n = env.slot("S6IPC_TEST_N");
        env.set(n, format!("{i}").as_bytes()).unwrap();
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let pid = prog.spawn(theirs.as_fd(), &mut env).unwrap();
        drop(theirs);
        drop(env);
        // Likely to land where the environment was.
        let scribble: Vec<Vec<u8>> = (0..64).map(|_| vec![b'X'; 4096]).collect();
        let mut out = String::new();
        ours.read_to_string(&mut out).unwrap();
        drop(scribble);
        assert!(exited_ok(pid), "spawn {i}");
        let vars: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("S6IPC_TEST_"))
            .collect();
        assert_eq!(
            vars,
            [
                "S6IPC_TEST_BASE=inherited value",
                format!("S6IPC_TEST_N={i}").as_str()
            ],
            "spawn {i}: {out}"
        );
        assert!(prog.take_failure(pid).is_none());
    }
    std::env::remove_var("S6IPC_TEST_BASE");
}

/// More children than the backend's first launch slots, all started before
/// any is served: each gets its own connection and environment.
#[cfg(target_os = "linux")]
#[test]
fn many_children_start_at_once() {
    let _g = serial();
    let mut prog = Program::new(&argv(&["/bin/sh", "-c", "cat; echo \"$S6IPC_TEST_N\""])).unwrap();
    let mut env = Environ::inherit(&[]);
    let n = env.slot("S6IPC_TEST_N");
    let mut children = Vec::new();
    for i in 0..50 {
        env.set(n, format!("{i}").as_bytes()).unwrap();
        let (ours, theirs) = UnixStream::pair().unwrap();
        let pid = prog.spawn(theirs.as_fd(), &mut env).unwrap();
        children.push((pid, ours));
    }
    for (i, (pid, mut ours)) in children.into_iter().enumerate() {
        ours.write_all(format!("child {i}\n").as_bytes()).unwrap();
        ours.shutdown(Shutdown::Write).unwrap();
        let mut out = String::new();
        ours.read_to_string(&mut out).unwrap();
        assert!(exited_ok(pid), "child {i}");
        assert_eq!(out, format!("child {i}\n{i}\n"));
        assert!(prog.take_failure(pid).is_none());
    }
}

/// Children stopped right after `spawn` (perhaps before their exec: SIGSTOP
/// cannot be blocked) neither stop the next spawns nor hang dropping the
/// `Program`.
#[cfg(target_os = "linux")]
#[test]
fn stopped_children_do_not_block_the_server() {
    let _g = serial();
    let mut prog = Program::new(&argv(&["/bin/true"])).unwrap();
    let mut env = Environ::inherit(&[]);
    let (_ours, theirs) = UnixStream::pair().unwrap();
    let mut stopped = Vec::new();
    for _ in 0..20 {
        let pid = prog.spawn(theirs.as_fd(), &mut env).unwrap();
        // SAFETY: `pid` is our child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        stopped.push(pid);
    }
    let mut others = Vec::new();
    for _ in 0..20 {
        others.push(prog.spawn(theirs.as_fd(), &mut env).unwrap());
    }
    drop(prog);
    for pid in stopped {
        // SAFETY: `pid` is our child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let mut status = 0;
        // SAFETY: as above; `status` is writable.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    }
    for pid in others {
        assert!(exited_ok(pid));
    }
}

#[test]
fn bad_programs_are_errors() {
    let _g = serial();
    let e = Program::new(&[]).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = Program::new(&[OsString::from("a\0b")]).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // A program that does not exist is reported by spawn itself.
    let mut prog = Program::new(&argv(&["/nonexistent/s6ipc-no-such-program"])).unwrap();
    let (_ours, theirs) = UnixStream::pair().unwrap();
    let mut env = Environ::inherit(&[]);
    let e = prog.spawn(theirs.as_fd(), &mut env).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn mechanism_is_named() {
    assert!(!platform::spawn::MECHANISM.is_empty());
}
