//! The s6 example (examples/s6/whoami) under Debian's s6-supervise: the
//! service reaches readiness through `-1` and notification-fd, serves a
//! client, and stops cleanly on `s6-svc -d`.
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

#[test]
fn s6_example_service_runs_under_s6_supervise() {
    if common::skip_unless_tool("s6_example_service_runs_under_s6_supervise", "s6-supervise") {
        return;
    }
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let tmp = TempDir::new();
    let svc = tmp.join("whoami");
    let sock = tmp.join("whoami.sock");
    std::fs::create_dir(&svc).unwrap();

    // The example, pointed at the freshly built binary, a private socket and
    // the demo program in the source tree. Each replaced string must be
    // there, so the test notices if the example changes shape.
    let run_script = std::fs::read_to_string(examples.join("s6/whoami/run")).unwrap();
    let mut patched = run_script.clone();
    for (from, to) in [
        ("exec s6-ipcserver-rs ", format!("exec {} ", common::bin())),
        ("/run/whoami.sock", sock.display().to_string()),
        (
            "/usr/local/libexec/ipc-whoami",
            examples.join("whoami").display().to_string(),
        ),
    ] {
        assert!(
            patched.contains(from),
            "examples/s6/whoami/run no longer has {from:?}"
        );
        patched = patched.replacen(from, &to, 1);
    }
    assert!(patched.contains(" -1 "), "the s6 example must use -1");
    std::fs::write(svc.join("run"), patched).unwrap();
    std::fs::set_permissions(
        svc.join("run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::copy(
        examples.join("s6/whoami/notification-fd"),
        svc.join("notification-fd"),
    )
    .unwrap();

    let mut cmd = s6("s6-supervise");
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd
        .arg(&svc)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn s6-supervise");
    let mut sup = Supervise {
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
