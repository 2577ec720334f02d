//! Messages (README, Reference), seen from the binary: which messages each verbosity lets
//! through. `-q` keeps fatal errors only; `-Q` (the default) adds warnings
//! and denials; `-v` adds every connection, exit and status line.

mod common;

use common::{run_cmd, strerror, TempDir};

#[test]
fn fatal_errors_are_logged_at_every_verbosity() {
    let dir = TempDir::new();
    let path = dir.join("no/such/dir/sock");
    let want = format!(
        "s6-ipcserver: fatal: unable to bind at {}: {}\n",
        path.display(),
        strerror(libc::ENOENT)
    );
    for options in [
        &["-q"][..],
        &[][..],
        &["-Q"][..],
        &["-v"][..],
        &["-v", "-q"][..],
    ] {
        let (status, out, err) = run_cmd(common::command().args(options).arg(&path).arg("true"));
        assert_eq!(status.code(), Some(111), "{options:?}: {err}");
        assert_eq!(err, want, "{options:?}");
        assert!(out.is_empty(), "{options:?}: {out:?}");
    }
}

/// A denial needs a uid to count by: not in the build without a lookup.
#[cfg(not(feature = "force-unsupported-credentials"))]
mod serving {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;

    use super::common::{eventually, strerror, wait_reaped, Server, TempDir};

    /// How each verbosity's run is told apart.
    #[derive(Debug, Clone, Copy)]
    enum Level {
        Quiet,
        Normal,
        Verbose,
    }

    /// The pid in the `served PID` line the program writes first, or
    /// `None` if the connection was closed unserved.
    fn served_pid(s: &std::os::unix::net::UnixStream) -> Option<i32> {
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        if line.is_empty() {
            return None;
        }
        let pid = line
            .strip_prefix("served ")
            .and_then(|p| p.trim_end().parse().ok());
        Some(pid.unwrap_or_else(|| panic!("not 'served PID': {line:?}")))
    }

    /// Starts a server with `options` and `-C 1`, provokes a denial (a
    /// second client of the same uid while the first is held), then a
    /// spawn failure (the program made non-executable once the first
    /// ended), stops it, and returns everything it logged, with the
    /// denial and the warning it should have logged.
    fn log_of(options: &[&str], level: Level) -> (Vec<String>, String, String) {
        let dir = TempDir::new();
        let prog = dir.join("prog");
        std::fs::write(&prog, "#!/bin/sh\necho served $$\nexec cat >/dev/null\n").unwrap();
        let mode = |m| std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(m));
        mode(0o755).unwrap();
        let mut all = options.to_vec();
        all.extend(["-C", "1"]);
        let prog_arg = prog.to_str().unwrap();
        let mut server = Server::start(&all, &[prog_arg]);
        // SAFETY: neither call can fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let deny = format!("s6-ipcserver: info: deny {uid}:{gid} count 1/1");
        let warning = format!(
            "s6-ipcserver: warning: unable to spawn {prog_arg}: {}",
            strerror(libc::EACCES)
        );
        let logs = !matches!(level, Level::Quiet);

        let first = server.connect();
        let pid = served_pid(&first).expect("the first client is served");
        assert_eq!(server.request(b""), b"", "{options:?}: denied, closed");
        if logs {
            server.wait_log(&deny);
        }
        drop(first);
        wait_reaped(server.pid(), &[pid]);

        mode(0o644).unwrap();
        let failed = server.request(b"");
        assert_eq!(failed, b"", "{options:?}: cannot spawn, closed");
        // The warning may follow the close: wait for it where it is due.
        // Where it is not, a client served after the failure (its -C 1
        // slot free again) shows that the server has dealt with the
        // failure, and would have logged it by then.
        if logs {
            server.wait_log(&warning);
        } else {
            mode(0o755).unwrap();
            let mut pid = None;
            // Until then, that client is denied, silently.
            eventually("a client served after the failure", || {
                pid = served_pid(&server.connect());
                pid.is_some()
            });
            wait_reaped(server.pid(), &[pid.unwrap()]);
        }

        server.signal(libc::SIGTERM);
        assert_eq!(server.wait_exit().code(), Some(0), "{options:?}");
        (server.lines(), deny, warning)
    }

    fn check(options: &[&str], level: Level) {
        let (lines, deny, warning) = log_of(options, level);
        let is_verbose_line =
            |l: &String| l.starts_with("s6-ipcserver: info: ") && !l.contains(": info: deny ");
        let rest: Vec<&String> = lines.iter().filter(|l| !is_verbose_line(l)).collect();
        match level {
            Level::Quiet => assert!(lines.is_empty(), "{options:?}: {lines:#?}"),
            Level::Normal => assert_eq!(lines, [deny, warning], "{options:?}"),
            Level::Verbose => {
                assert_eq!(rest, [&deny, &warning], "{options:?}: {lines:#?}");
                for needle in ["allow ", "end pid ", "status: ", "received SIGTERM"] {
                    assert!(
                        lines.iter().any(|l| l.contains(needle)),
                        "{options:?}: no {needle:?} line: {lines:#?}"
                    );
                }
            }
        }
    }

    #[test]
    fn minus_q_suppresses_warnings_and_denials() {
        check(&["-q"], Level::Quiet);
        // The later of a pair wins.
        check(&["-v", "-q"], Level::Quiet);
    }

    #[test]
    fn the_default_logs_warnings_and_denials_only() {
        check(&[], Level::Normal);
        check(&["-Q"], Level::Normal);
        check(&["-v", "-Q"], Level::Normal);
    }

    #[test]
    fn minus_v_keeps_warnings_and_denials() {
        check(&["-v"], Level::Verbose);
        check(&["-q", "-v"], Level::Verbose);
    }
}
