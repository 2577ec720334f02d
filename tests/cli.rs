//! The command line (README, Reference), against the real binary. Every
//! rejection is exit 100, a line saying what is wrong, then the exact usage
//! line, and leaves nothing on disk.

mod common;

use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

use common::{run, run_cmd, Server, TempDir};

const USAGE: &str = "s6-ipcserver: usage: s6-ipcserver [ -1 ] [ -q | -Q | -v ] [ -d | -D ] [ -P | -p ] \
[ -a perms ] [ -c maxconn ] [ -C localmaxconn ] [ -b backlog ] [ -G gidlist ] [ -g gid ] [ -u uid ] [ -U ] path prog...\n";

/// Runs the binary with `args` (the socket path inside a temp dir is
/// appended as `SOCK` where it appears) and asserts a usage error that left
/// no socket behind.
fn assert_usage(args: &[&str]) {
    let dir = TempDir::new();
    let sock = dir.join("sock");
    let sock = sock.to_str().unwrap();
    let args: Vec<&str> = args
        .iter()
        .map(|a| if *a == "SOCK" { sock } else { a })
        .collect();
    let (status, out, err) = run(&args);
    assert_eq!(
        status.code(),
        Some(100),
        "{args:?}: exit code; stderr {err:?}"
    );
    let (why, usage) = err
        .split_once('\n')
        .unwrap_or_else(|| panic!("{args:?}: two lines: {err:?}"));
    assert_eq!(
        usage, USAGE,
        "{args:?}: the exact usage line, after the reason"
    );
    assert!(
        why.starts_with("s6-ipcserver: ") && why.len() > "s6-ipcserver: ".len(),
        "{args:?}: a line saying what is wrong first: {err:?}"
    );
    assert_eq!(out, "", "{args:?}: nothing on stdout");
    assert!(
        !dir.join("sock").exists(),
        "{args:?}: no socket may be created"
    );
}

#[test]
fn no_arguments_is_a_usage_error() {
    assert_usage(&[]);
}

#[test]
fn missing_prog_is_a_usage_error() {
    assert_usage(&["SOCK"]);
    assert_usage(&["-v", "SOCK"]);
    assert_usage(&["--", "SOCK"]);
}

#[test]
fn empty_path_is_a_usage_error() {
    assert_usage(&["", "true"]);
}

#[test]
fn unknown_options_are_usage_errors() {
    for opt in ["-x", "-h", "-V", "--frobnicate", "-1x"] {
        assert_usage(&[opt, "SOCK", "true"]);
    }
}

#[test]
fn options_missing_their_argument_are_usage_errors() {
    for opt in ["-c", "-C", "-b", "-a", "-G", "-g", "-u"] {
        assert_usage(&[opt]);
    }
}

#[test]
fn numbers_must_be_plain_unsigned_decimal() {
    for opt in ["-c", "-C", "-b", "-g", "-u"] {
        for bad in [
            "",
            "+1",
            "-1",
            "0x10",
            "1e3",
            " 1",
            "1 ",
            "4294967296",
            "99999999999999999999",
            "ten",
            "=10",
        ] {
            assert_usage(&[opt, bad, "SOCK", "true"]);
            let attached = format!("{opt}{bad}");
            if !bad.is_empty() {
                assert_usage(&[&attached, "SOCK", "true"]);
            }
        }
    }
}

#[test]
fn perms_must_be_octal_up_to_0777() {
    for bad in [
        "", "8", "0778", "1000", "01000", "0x1ff", "-1", "rwx", "00777",
    ] {
        assert_usage(&["-a", bad, "SOCK", "true"]);
    }
}

#[test]
fn gidlists_reject_trailing_junk() {
    for bad in ["1,x", "1,", ",1", "1,,2", "x", "-1", "1;2", "1, 2"] {
        assert_usage(&["-G", bad, "SOCK", "true"]);
    }
}

/// A list over NGROUPS_MAX cannot reach the binary on Linux (65537 entries
/// exceed the kernel's 128 KiB limit on one argument), so the parser the
/// binary uses is checked directly, and the binary's limit is the system's.
#[test]
fn gidlists_longer_than_ngroups_max_are_rejected() {
    use s6_ipcserver::numbers::gidlist;
    assert_eq!(gidlist(b"1,2,3", 3), Some(vec![1, 2, 3]));
    assert_eq!(gidlist(b"1,2,3,4", 3), None);
    assert_eq!(gidlist(b"", 3), Some(vec![]), "the empty list is valid");
    // SAFETY: sysconf only reads a limit.
    let max = unsafe { libc::sysconf(libc::_SC_NGROUPS_MAX) } as usize;
    assert_eq!(platform::privileges::ngroups_max(), max);
}

#[test]
fn help_and_version_exit_zero() {
    let (status, out, _) = run(&["--help"]);
    assert_eq!(status.code(), Some(0));
    assert!(out.contains("Usage: s6-ipcserver [ -1 ]"), "{out}");
    for flag in [
        "-1", "-q", "-Q", "-v", "-d", "-D", "-P", "-p", "-a", "-c", "-C", "-b", "-G", "-g", "-u",
        "-U",
    ] {
        assert!(
            out.contains(&format!("  {flag}")),
            "--help documents {flag}:\n{out}"
        );
    }
    let (status, out, _) = run(&["--version"]);
    assert_eq!(status.code(), Some(0));
    assert_eq!(out, format!("s6-ipcserver {}\n", env!("CARGO_PKG_VERSION")));
}

/// A usage message written to a pipe nobody reads is an EPIPE, not a
/// death by SIGPIPE: the exit code stays 100. (std's start-up, which
/// main.rs skips, would ignore SIGPIPE; main does it itself. The child
/// starts with SIGPIPE at its default: std's Command puts it back.)
#[test]
fn a_closed_stderr_does_not_turn_a_usage_error_into_sigpipe() {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both were just made by pipe(2) and are owned here only.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    let status = Command::new(common::bin())
        .arg("-Z")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(write))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(100), "{status:?}");
}

/// -U: each of UID, GID, GIDLIST must be set and valid; the message names
/// the variable, the exit code is 100, and no socket is left behind.
#[test]
fn bad_u_environment_names_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("GID", "1"), ("GIDLIST", "")], "UID"),
        (&[("UID", "1"), ("GIDLIST", "")], "GID"),
        (&[("UID", "1"), ("GID", "1")], "GIDLIST"),
        (&[("UID", "x"), ("GID", "1"), ("GIDLIST", "")], "UID"),
        (&[("UID", ""), ("GID", "1"), ("GIDLIST", "")], "UID"),
        (&[("UID", "1"), ("GID", "-1"), ("GIDLIST", "")], "GID"),
        (&[("UID", "1"), ("GID", "1"), ("GIDLIST", "1,")], "GIDLIST"),
        (&[("UID", "1"), ("GID", "1"), ("GIDLIST", "a,b")], "GIDLIST"),
    ];
    for (vars, culprit) in cases {
        let dir = TempDir::new();
        let mut cmd = common::command();
        cmd.env_remove("UID")
            .env_remove("GID")
            .env_remove("GIDLIST");
        cmd.envs(vars.iter().copied())
            .arg("-U")
            .arg(dir.join("sock"))
            .arg("true");
        let (status, _, err) = run_cmd(&mut cmd);
        assert_eq!(status.code(), Some(100), "{vars:?}: {err}");
        assert!(
            err.starts_with(&format!(
                "s6-ipcserver: fatal: environment variable {culprit} "
            )),
            "{vars:?}: message names {culprit}: {err:?}"
        );
        assert!(
            !dir.join("sock").exists(),
            "{vars:?}: no socket left behind"
        );
    }
}

/// Prints what the child received as arguments, one per line.
const ECHO_ARGS: &[&str] = &[
    "sh",
    "-c",
    "for a in \"$@\"; do printf '%s\\n' \"$a\"; done",
    "prog",
];

fn args_seen(server: &Server) -> String {
    String::from_utf8(server.request(b"")).unwrap()
}

#[test]
fn parsing_stops_at_path_and_prog_options_reach_prog() {
    let mut prog = ECHO_ARGS.to_vec();
    prog.extend(["-v", "--help", "-c", "x", "--", "-1"]);
    let server = Server::start(&["-P"], &prog);
    assert_eq!(args_seen(&server), "-v\n--help\n-c\nx\n--\n-1\n");
}

#[test]
fn double_dash_ends_the_options() {
    let dir = TempDir::new();
    let path = dir.join("-sock");
    let mut cmd = common::command();
    cmd.args(["-1", "-P", "--"])
        .arg(&path)
        .args(ECHO_ARGS)
        .arg("-q");
    let server = Server::spawn_ready(cmd, path, dir);
    assert_eq!(args_seen(&server), "-q\n");
}

#[test]
fn clusters_and_attached_arguments_parse_like_getopt() {
    // -1 is given by the harness; -vPd is a cluster, -c7 attached, -C 3 separate.
    let server = Server::start(&["-vPd", "-c7", "-C", "3"], &["true"]);
    server.wait_log("s6-ipcserver: info: status: 0/7");
    // A cluster ending in an option that takes the next word.
    let server = Server::start(&["-vPc", "9"], &["true"]);
    server.wait_log("s6-ipcserver: info: status: 0/9");
}

#[test]
fn the_later_flag_of_a_pair_wins() {
    let server = Server::start(&["-q", "-v", "-P"], &["true"]);
    server.wait_log("info: starting");
    let mut quiet = Server::start(&["-v", "-q", "-P"], &["true"]);
    quiet.request(b"");
    quiet.signal(libc::SIGTERM);
    assert_eq!(quiet.wait_exit().code(), Some(0));
    assert!(
        quiet.lines().is_empty(),
        "-v -q is quiet: {:?}",
        quiet.lines()
    );

    // -P -p looks up: the child sees its client's uid.
    let server = Server::start(&["-P", "-p"], &["printenv", "IPCREMOTEEUID"]);
    let answer = server.request(b"");
    if cfg!(feature = "force-unsupported-credentials") {
        assert!(answer.is_empty(), "lookup is attempted and fails closed");
    } else {
        // SAFETY: geteuid cannot fail.
        assert_eq!(
            answer,
            format!("{}\n", unsafe { libc::geteuid() }).into_bytes()
        );
    }
    // -p -P does not.
    let server = Server::start(&["-p", "-P"], &["sh", "-c", "echo ${IPCREMOTEEUID-unset}"]);
    assert_eq!(server.request(b""), b"unset\n");
}

#[test]
fn repeated_options_take_the_last_value() {
    let server = Server::start(&["-v", "-P", "-c", "5", "-c", "6"], &["true"]);
    server.wait_log("s6-ipcserver: info: status: 0/6");
}

/// Before the usage line, one line says what is wrong.
#[test]
fn a_usage_error_says_what_is_wrong() {
    let dir = TempDir::new();
    let sock = dir.join("sock");
    let sock = sock.to_str().unwrap();
    for (args, why) in [
        (
            vec!["-c", "abc", sock, "true"],
            "-c: \"abc\" is not a decimal number",
        ),
        (
            vec!["-C", "99999999999", sock, "true"],
            "-C: \"99999999999\" is too large",
        ),
        (
            vec!["-u", "nobody", sock, "true"],
            "-u takes a numeric uid: use s6-envuidgid and -U for names",
        ),
        (
            vec!["-g", "staff", sock, "true"],
            "-g takes a numeric gid: use s6-envuidgid and -U for names",
        ),
        (
            vec!["-a", "0999", sock, "true"],
            "-a: \"0999\" is not an octal mode from 0000 to 0777",
        ),
        (vec![sock], "missing prog"),
        (vec![], "missing path and prog"),
        (vec!["-x", sock, "true"], "-x is not an option"),
        (vec!["", "true"], "path is empty"),
    ] {
        let (status, _, err) = run(&args);
        assert_eq!(status.code(), Some(100), "{args:?}");
        assert_eq!(err, format!("s6-ipcserver: {why}\n{USAGE}"), "{args:?}");
    }
}

/// Usage, help and version name the program as it was invoked (the
/// packages install it as s6-ipcserver-rs); log lines keep the name log
/// parsers look for.
#[test]
fn usage_help_and_version_name_the_program_as_invoked() {
    let dir = TempDir::new();
    for (bin, program) in [
        (common::bin(), "s6-ipcserver"),
        (common::bin_d(), "s6-ipcserverd"),
    ] {
        let renamed = dir.join(format!("{program}-rs"));
        std::os::unix::fs::symlink(bin, &renamed).unwrap();
        let out = Command::new(&renamed).arg("--version").output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{program}-rs {}\n", env!("CARGO_PKG_VERSION"))
        );
        let out = Command::new(&renamed).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains(&format!("Usage: {program}-rs [ -1 ]")),
            "{help}"
        );
        let out = Command::new(&renamed).arg("-Z").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(100));
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert_eq!(lines[0], format!("{program}: -Z is not an option"));
        assert!(
            lines[1].starts_with(&format!("{program}: usage: {program}-rs [ -1 ]")),
            "the message keeps the log name; the usage line names the program as invoked: {err}"
        );
    }
}
