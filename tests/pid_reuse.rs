//! A crowded pid space: in a pid namespace of 326 pids, a program whose
//! exec fails half the time (its exec bit flips) and many clients. glibc's
//! posix_spawn reaps a failed exec's child itself; a server that reaps it
//! first frees a pid the kernel soon gives to a new child, which glibc then
//! reaps in its place: a live connection counted as ended for good.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::TempDir;

const PID_MAX: u32 = 326;
const RUN_SECS: u64 = 10;

/// Whether this process can make a pid namespace whose pid_max it sets
/// (root, unshare(1), Linux 6.14 or later).
fn namespaces_with_pid_max() -> bool {
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c"])
        .arg(format!("echo {PID_MAX} > /proc/sys/kernel/pid_max"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn set_exec(path: &Path, on: bool) {
    let mode = if on { 0o755 } else { 0o644 };
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// One client: the program's answer, or nothing (a failed spawn closes
/// the connection at once).
fn ask(path: &Path) -> Vec<u8> {
    let Ok(mut s) = UnixStream::connect(path) else {
        return Vec::new();
    };
    let _ = s.set_read_timeout(Some(common::TIMEOUT));
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn failed_execs_in_a_crowded_pid_space_leak_no_count() {
    let test = "failed_execs_in_a_crowded_pid_space_leak_no_count";
    if common::skip_unless_root(test)
        || common::skip_unless(
            !cfg!(feature = "force-unsupported-credentials"),
            test,
            "needs a credentials lookup (IPCCONNNUM)",
        )
        || common::skip_unless(
            namespaces_with_pid_max(),
            test,
            "needs unshare(1) and a pid namespace with its own pid_max (Linux 6.14+)",
        )
    {
        return;
    }
    let dir = TempDir::new();
    let _keep = &dir;
    let path = dir.join("sock");
    let prog = dir.join("prog");
    std::fs::write(&prog, "#!/bin/sh\necho \"$IPCCONNNUM\"\n").unwrap();
    set_exec(&prog, true);

    let mut ns = Command::new("unshare");
    ns.args(["--pid", "--fork", "--mount-proc", "sh", "-c"])
        .arg(format!(
            "echo {PID_MAX} > /proc/sys/kernel/pid_max && exec \"$0\" \"$@\""
        ))
        .arg(common::bin())
        .args(["-c", "20", "-C", "20"])
        .arg(&path)
        .arg(&prog)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // unshare's own process keeps stdout open: readiness is a connect.
    let server = KillGroup(ns.spawn().unwrap());
    common::eventually("the server to listen", || {
        UnixStream::connect(&path).is_ok()
    });

    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = Arc::clone(&stop);
        let prog = prog.clone();
        thread::spawn(move || {
            let mut on = false;
            while !stop.load(Ordering::Relaxed) {
                set_exec(&prog, on);
                on = !on;
                thread::sleep(Duration::from_micros(500));
            }
            set_exec(&prog, true);
        })
    };
    // Busy CPUs stretch the moment between a failed exec's child exit and
    // the C library's waitpid for it.
    let busy = common::busy_cpus();
    let clients: Vec<_> = (0..24)
        .map(|_| {
            let stop = Arc::clone(&stop);
            let path = path.clone();
            thread::spawn(move || {
                let mut answered = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    if !ask(&path).is_empty() {
                        answered += 1;
                    }
                }
                answered
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(RUN_SECS));
    stop.store(true, Ordering::Relaxed);
    let answered: u32 = clients.into_iter().map(|t| t.join().unwrap()).sum();
    flipper.join().unwrap();
    drop(busy);
    assert!(answered > 0, "no client was answered");

    // Every child has ended or is about to: a lone client is the only
    // connection, IPCCONNNUM 1. A count leaked for good never gets there.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = Vec::new();
    while Instant::now() < deadline {
        last = ask(&path);
        if last == b"1\n" {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    drop(server);
    panic!(
        "after {answered} answers, a lone client still reads IPCCONNNUM {:?}: counts leaked",
        String::from_utf8_lossy(&last),
    );
}

/// The server's process group, killed when the test ends.
struct KillGroup(std::process::Child);

impl Drop for KillGroup {
    fn drop(&mut self) {
        common::kill_group(self.0.id() as i32);
        let _ = self.0.wait();
    }
}
