//! The s6 examples under Debian's s6-supervise: examples/s6/whoami reaches
//! readiness through `-1` and notification-fd, serves a client, and stops
//! cleanly on `s6-svc -d`; examples/s6/whoami-access serves root and
//! refuses others by its rules.
//!
//! The example looks up credentials (it prints the client's uid), so it
//! cannot serve in the build that forces the lookup to be unsupported.
#![cfg(not(feature = "force-unsupported-credentials"))]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{TempDir, TIMEOUT};

/// Kills s6-supervise and the service on every exit path of the test.
struct Supervise {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Supervise {
    fn drop(&mut self) {
        let supervising = matches!(self.child.try_wait(), Ok(None));
        if let Some(pid) = service_pid(&self.dir).filter(|_| supervising) {
            // SAFETY: kill has no memory effects.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        common::kill_group(self.child.id() as i32);
        let _ = self.child.wait();
    }
}

fn s6(tool: &str) -> Command {
    let path = Path::new("/usr/bin").join(tool);
    assert!(
        path.exists(),
        "{} is missing: install Debian's s6 package (.ci/run does)",
        path.display()
    );
    Command::new(path)
}

/// Runs an s6 tool to completion within TIMEOUT; returns (success, stdout).
fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run s6 tool");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn svstat(dir: &Path) -> String {
    run(s6("s6-svstat").arg(dir)).1
}

fn service_pid(dir: &Path) -> Option<i32> {
    let (ok, out) = run(s6("s6-svstat").arg("-p").arg(dir));
    out.trim().parse().ok().filter(|&p| ok && p > 0)
}

/// Copies examples/s6/NAME (its run script with `replace` applied, each
/// string required to be there so that the test notices when the example
/// changes shape, and every other file as it is) into `tmp`, starts
/// s6-supervise on it and waits until the service is ready.
fn start_example(
    tmp: &TempDir,
    name: &str,
    replace: &[(&str, String)],
) -> (Supervise, std::path::PathBuf) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let from = examples.join("s6").join(name);
    let svc = tmp.join(name);
    copy_tree(&from, &svc);
    let run_script = std::fs::read_to_string(from.join("run")).unwrap();
    let mut patched = run_script.clone();
    for (from, to) in replace {
        assert!(
            patched.contains(from),
            "examples/s6/{name}/run no longer has {from:?}"
        );
        patched = patched.replace(from, to);
    }
    assert!(patched.contains(" -1 "), "the s6 example must use -1");
    std::fs::write(svc.join("run"), patched).unwrap();

    let mut cmd = s6("s6-supervise");
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd
        .arg(&svc)
        .stdin(Stdio::null())
        // The service's log (its run script sends stderr to stdout).
        .stdout(std::fs::File::create(tmp.join("log")).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn s6-supervise");
    let sup = Supervise {
        child,
        dir: svc.clone(),
    };

    // Readiness: s6-svwait -U returns once the run script's -1 line arrived
    // on notification-fd. It needs the status file s6-supervise writes
    // first (else "unable to s6_svstatus_read").
    common::eventually("s6-supervise to write its status file", || {
        svc.join("supervise/status").exists()
    });
    let ms = TIMEOUT.as_millis().to_string();
    let (ready, _) = run(s6("s6-svwait").args(["-U", "-t", &ms]).arg(&svc));
    assert!(
        ready,
        "service not ready within {TIMEOUT:?}: {}",
        svstat(&svc)
    );
    assert!(svstat(&svc).contains("ready"), "{}", svstat(&svc));
    (sup, svc)
}

/// `cp -R`, modes kept.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The demo program in the source tree.
fn whoami() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/whoami")
        .display()
        .to_string()
}

#[test]
fn s6_example_service_runs_under_s6_supervise() {
    if common::skip_unless_tool("s6_example_service_runs_under_s6_supervise", "s6-supervise") {
        return;
    }
    let tmp = TempDir::new();
    let sock = tmp.join("whoami.sock");
    let (mut sup, svc) = start_example(
        &tmp,
        "whoami",
        &[
            ("exec s6-ipcserver-rs ", format!("exec {} ", common::bin())),
            ("/run/whoami.sock", sock.display().to_string()),
            ("/usr/local/libexec/ipc-whoami", whoami()),
        ],
    );
    let ms = TIMEOUT.as_millis().to_string();

    // Ready means accepting: connect at once.
    let answer = String::from_utf8(common::request(&sock, b"")).unwrap();
    // SAFETY: geteuid/getegid cannot fail and have no memory effects.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!(
        answer,
        format!("proto=IPC uid={uid} gid={gid} connections=1\n")
    );
    let server = service_pid(&svc).expect("s6-svstat -p gives the server's pid");

    // Down: s6-supervise sends SIGTERM (and SIGCONT); the server exits 0.
    let (ok, _) = run(s6("s6-svc").arg("-d").arg(&svc));
    assert!(ok, "s6-svc -d failed");
    let (down, _) = run(s6("s6-svwait").args(["-D", "-t", &ms]).arg(&svc));
    assert!(
        down,
        "service not down within {TIMEOUT:?}: {}",
        svstat(&svc)
    );
    let status = svstat(&svc);
    assert!(
        status.starts_with("down (exitcode 0)"),
        "the server must exit 0 on SIGTERM: {status}"
    );
    assert!(!common::alive(server), "server {server} still running");
    assert!(sock.exists(), "the socket file is left in place on exit");

    // Exit: s6-supervise itself goes away.
    let (ok, _) = run(s6("s6-svc").arg("-x").arg(&svc));
    assert!(ok, "s6-svc -x failed");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(st) = sup.child.try_wait().unwrap() {
            assert!(st.success(), "s6-supervise exited {st:?}");
            break;
        }
        assert!(Instant::now() < deadline, "s6-supervise did not exit on -x");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn s6_example_with_access_rules_serves_root_and_refuses_others() {
    let test = "s6_example_with_access_rules_serves_root_and_refuses_others";
    if common::skip_unless_tool(test, "s6-supervise")
        || common::skip_unless_tool(test, "s6-ipcclient")
        || common::skip_unless_root(test)
    {
        return;
    }
    let tmp = TempDir::new();
    let sock = tmp.join("whoami-access.sock");
    let (_sup, _svc) = start_example(
        &tmp,
        "whoami-access",
        &[
            ("exec s6-ipcserver-rs ", format!("exec {} ", common::bin())),
            ("/run/whoami-access.sock", sock.display().to_string()),
            (
                "s6-ipcserver-access-rs ",
                format!("{} ", env!("CARGO_BIN_EXE_s6-ipcserver-access")),
            ),
            (
                "s6-connlimit-rs",
                env!("CARGO_BIN_EXE_s6-connlimit").to_string(),
            ),
            ("/usr/local/libexec/ipc-whoami", whoami()),
        ],
    );
    // Root: allowed by rules/uid/0, with IPCCONNMAX=2 under s6-connlimit.
    let answer = String::from_utf8(common::request(&sock, b"")).unwrap();
    assert_eq!(answer, "proto=IPC uid=0 gid=0 connections=1\n");

    // uid 65534 matches no rule: the connection is closed unanswered.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new("timeout")
        .args(["10", "s6-ipcclient"])
        .arg(&sock)
        .args(["sh", "-c", "echo >&7; cat <&6"])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run s6-ipcclient");
    assert_eq!(out.stdout, b"", "uid 65534 is refused");
    // It connected (111 would say it could not); the refusal may reset the
    // connection under its unread line.
    assert_ne!(out.status.code(), Some(111), "{out:?}");
    common::eventually("the denial in the service's log", || {
        std::fs::read_to_string(tmp.join("log")).is_ok_and(|log| {
            log.lines().any(|l| {
                l.starts_with("s6-ipcserver-access: info: deny pid ")
                    && l.ends_with(" uid 65534 gid 65534: No such file or directory")
            })
        })
    });
}
