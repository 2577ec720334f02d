//! Bad input: arbitrary command lines and `-U` environments thrown at the
//! parser, odd client addresses, and odd things at `path`.
//!
//! The parser properties run 256 cases in the test suite; `ci/fuzz` runs
//! them for as long as asked (PROPTEST_CASES, fresh seeds in a loop).

mod common;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use proptest::prelude::*;
use s6_ipcserver::error::Error;
use s6_ipcserver::getopt::Parsed;
use s6_ipcserver::numbers;
use s6_ipcserver::programs::ipcserver;

// ---------------------------------------------------------------------
// The command-line and -U environment parser.

/// A word of a command line: mostly things that look like options, option
/// arguments and numbers, sometimes arbitrary bytes.
fn word() -> impl Strategy<Value = OsString> {
    let flags = "[-][1qQvdDPpaUcCbGgu]{1,5}";
    prop_oneof![
        3 => flags.prop_map(OsString::from),
        2 => number_like().prop_map(OsString::from),
        1 => Just(OsString::from("--")),
        1 => Just(OsString::from("-")),
        1 => Just(OsString::from("")),
        1 => prop::sample::select(vec!["--help", "--version", "--foo", "-x", "-c", "-a", "-G", "-U"])
            .prop_map(OsString::from),
        1 => "[-/a-z0-9_.]{1,12}".prop_map(OsString::from),
        // No NUL byte: a command line cannot carry one. The parser must
        // still never panic on arbitrary other bytes.
        2 => prop::collection::vec(1u8..=255, 0..12).prop_map(OsString::from_vec),
    ]
}

/// Numbers and near-numbers: what validation has to sort out.
fn number_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,12}",
        "[0-7]{1,5}",
        "[-+]?[0-9]{0,3}",
        "0x[0-9a-f]{1,4}",
        "[0-9]{1,4}(,[0-9]{0,6}){0,4},?",
        Just("4294967295".to_string()),
        Just("4294967296".to_string()),
        Just("99999999999999999999".to_string()),
        "[0-9 ,x]{0,6}",
    ]
}

/// An environment value for UID, GID or GIDLIST: absent, valid, or junk.
fn env_value() -> impl Strategy<Value = Option<OsString>> {
    prop_oneof![
        1 => Just(None),
        3 => number_like().prop_map(|s| Some(OsString::from(s))),
        1 => prop::collection::vec(1u8..=255, 0..10).prop_map(|b| Some(OsString::from_vec(b))),
    ]
}

fn env_map() -> impl Strategy<Value = HashMap<&'static str, OsString>> {
    (env_value(), env_value(), env_value()).prop_map(|(u, g, l)| {
        let mut m = HashMap::new();
        for (k, v) in [("UID", u), ("GID", g), ("GIDLIST", l)] {
            if let Some(v) = v {
                m.insert(k, v);
            }
        }
        m
    })
}

fn parse(
    args: &[OsString],
    env: &HashMap<&'static str, OsString>,
) -> Result<Parsed<ipcserver::Config>, Error> {
    ipcserver::parse(args, |name| env.get(name).cloned())
}

/// What the README's Reference says about each `-U` variable, independently of the parser:
/// the first bad one, in the order UID, GID, GIDLIST.
fn first_bad_env_var(env: &HashMap<&'static str, OsString>) -> Option<&'static str> {
    let decimal_ok = |v: &OsStr| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.iter().all(u8::is_ascii_digit)
            && std::str::from_utf8(b).unwrap().parse::<u32>().is_ok()
    };
    for name in ["UID", "GID"] {
        match env.get(name) {
            Some(v) if decimal_ok(v) => {}
            _ => return Some(name),
        }
    }
    match env.get("GIDLIST") {
        None => Some("GIDLIST"),
        Some(v) if v.is_empty() => None,
        Some(v) => {
            let items: Vec<&[u8]> = v.as_bytes().split(|&c| c == b',').collect();
            let ngroups = platform_ngroups_max();
            if items.len() <= ngroups && items.iter().all(|i| decimal_ok(OsStr::from_bytes(i))) {
                None
            } else {
                Some("GIDLIST")
            }
        }
    }
}

fn platform_ngroups_max() -> usize {
    // SAFETY: sysconf only reads a limit.
    let n = unsafe { libc::sysconf(libc::_SC_NGROUPS_MAX) };
    if n > 0 {
        n as usize
    } else {
        8
    }
}

/// What POSIX getopt makes of a command line, written independently of the
/// parser: a usage error, a request for help or version, or the index of
/// the first operand (`path`). `bad_value`: an option argument seen so far
/// can never be valid; whether a later `--help` still prints is left open.
#[derive(Debug, PartialEq)]
enum Getopt {
    Usage,
    Print {
        bad_value: bool,
    },
    Operands {
        path: usize,
        bad_value: bool,
        env_ids: bool,
    },
}

fn getopt_reference(args: &[OsString]) -> Getopt {
    const FLAGS: &[u8] = b"1qQvdDPpU";
    const VALUED: &[u8] = b"acCbGgu";
    let mut bad_value = false;
    let mut env_ids = false;
    let mut i = 0;
    while i < args.len() {
        let w = args[i].as_bytes();
        if w == b"--" {
            i += 1;
            break;
        }
        if w.len() < 2 || w[0] != b'-' {
            break;
        }
        if w.starts_with(b"--") {
            if w == b"--help" || w == b"--version" {
                return Getopt::Print { bad_value };
            }
            return Getopt::Usage;
        }
        for (j, &c) in w.iter().enumerate().skip(1) {
            if VALUED.contains(&c) {
                let value = if j + 1 == w.len() {
                    if i + 1 == args.len() {
                        return Getopt::Usage; // missing option argument
                    }
                    i += 1;
                    args[i].as_bytes()
                } else {
                    &w[j + 1..]
                };
                let valid = match c {
                    b'a' => numbers::perms(value).is_some(),
                    b'G' => numbers::gidlist(value, platform_ngroups_max()).is_some(),
                    _ => numbers::decimal(value).is_some(),
                };
                bad_value |= !valid;
                break;
            }
            if !FLAGS.contains(&c) {
                return Getopt::Usage; // unknown option character, '-' included
            }
            env_ids |= c == b'U';
        }
        i += 1;
    }
    if args.len() < i + 2 {
        return Getopt::Usage; // path and prog are required
    }
    Getopt::Operands {
        path: i,
        bad_value,
        env_ids,
    }
}

/// The rules every outcome of `parse` must follow, whatever the input.
fn check_outcome(
    args: &[OsString],
    env: &HashMap<&'static str, OsString>,
    result: Result<Parsed<ipcserver::Config>, Error>,
) -> Result<(), TestCaseError> {
    let reference = getopt_reference(args);
    match (&reference, &result) {
        (Getopt::Usage, r) => prop_assert!(
            matches!(r, Err(Error::Usage { .. })),
            "getopt rejects {:?}; parse gave {:?}",
            args,
            r
        ),
        (Getopt::Print { bad_value: false }, r) => {
            prop_assert!(matches!(r, Ok(Parsed::Print(_))), "{:?}", r)
        }
        (Getopt::Print { bad_value: true }, r) => prop_assert!(
            matches!(r, Ok(Parsed::Print(_)) | Err(Error::Usage { .. })),
            "{:?}",
            r
        ),
        (
            Getopt::Operands {
                bad_value: true, ..
            },
            r,
        ) => prop_assert!(
            matches!(r, Err(Error::Usage { .. })),
            "a bad option argument in {:?}; parse gave {:?}",
            args,
            r
        ),
        (Getopt::Operands { path, .. }, Ok(Parsed::Run(cfg))) => {
            prop_assert_eq!(cfg.path.as_os_str(), args[*path].as_os_str());
            prop_assert_eq!(&cfg.argv[..], &args[path + 1..]);
        }
        (Getopt::Operands { path, env_ids, .. }, Err(e)) => {
            // Only an empty path, a NUL byte or the -U environment.
            let env_bad = *env_ids && first_bad_env_var(env).is_some();
            prop_assert!(
                args[*path].is_empty() || env_bad,
                "{:?} rejected ({:?})",
                args,
                e
            );
        }
        (Getopt::Operands { .. }, Ok(Parsed::Print(_))) => {
            prop_assert!(false, "only --help and --version print: {:?}", args)
        }
    }
    match result {
        Ok(Parsed::Print(text)) => {
            prop_assert!(!text.is_empty(), "--help/--version print something");
        }
        Ok(Parsed::Run(cfg)) => {
            prop_assert!((1..=s6_ipcserver::server::MAXCONN_LIMIT).contains(&cfg.maxconn));
            prop_assert!((1..=cfg.maxconn).contains(&cfg.localmaxconn));
            if !cfg.lookup {
                prop_assert_eq!(cfg.localmaxconn, cfg.maxconn);
            }
            prop_assert!(cfg.perms <= 0o777);
            prop_assert!(!cfg.path.as_os_str().is_empty());
            prop_assert!(!cfg.argv.is_empty());
            // The operands are taken verbatim: prog is the tail of args.
            prop_assert!(
                args.ends_with(&cfg.argv),
                "prog is the tail of the command line"
            );
            if let Some(groups) = &cfg.target.groups {
                prop_assert!(groups.len() <= platform_ngroups_max());
            }
        }
        Err(e) => {
            prop_assert_eq!(e.exit_code(), 100, "every rejection exits 100: {}", e);
            let text = e.to_string();
            match &e {
                Error::Usage { usage, why } => {
                    prop_assert_eq!(*usage, ipcserver::USAGE);
                    prop_assert!(!why.is_empty(), "a usage error says what is wrong");
                    prop_assert_eq!(&text, why);
                }
                Error::Env { name, .. } => {
                    prop_assert!(["UID", "GID", "GIDLIST"].contains(&name.as_str()));
                    prop_assert!(
                        text.contains(name.as_str()),
                        "message names the variable: {}",
                        text
                    );
                    // Only -U reads the environment, and only a bad
                    // variable is reported: the first bad one.
                    prop_assert!(args.iter().any(|a| a.as_bytes().contains(&b'U')));
                    prop_assert_eq!(Some(name.as_str()), first_bad_env_var(env));
                }
                other => prop_assert!(false, "parse returned a non-usage error: {other:?}"),
            }
        }
    }
    Ok(())
}

proptest! {
    /// Arbitrary argument vectors and environments: no panic, and every
    /// rejection is a usage error (exit 100, the usage line) or names the
    /// `-U` variable at fault.
    #[test]
    fn parser_never_panics_and_rejects_with_100(
        args in prop::collection::vec(word(), 0..10),
        env in env_map(),
    ) {
        let result = parse(&args, &env);
        check_outcome(&args, &env, result)?;
    }

    /// A valid command line with `-U`: the outcome is decided by the
    /// environment alone, exactly as the README's Reference says.
    #[test]
    fn env_ids_follow_the_spec(env in env_map(), lead in prop::sample::select(vec!["-U", "-vU", "-Uq", "-1U"])) {
        let args: Vec<OsString> = [lead, "/tmp/s", "prog", "-v"].iter().map(OsString::from).collect();
        let result = parse(&args, &env);
        match (first_bad_env_var(&env), &result) {
            (None, Ok(Parsed::Run(cfg))) => {
                let num = |k: &str| env[k].to_str().unwrap().parse::<u32>().unwrap();
                prop_assert_eq!(cfg.target.uid, num("UID"));
                prop_assert_eq!(cfg.target.gid, num("GID"));
                let list = env["GIDLIST"].to_str().unwrap();
                let want: Vec<u32> = if list.is_empty() {
                    Vec::new()
                } else {
                    list.split(',').map(|g| g.parse().unwrap()).collect()
                };
                prop_assert_eq!(cfg.target.groups.as_ref(), Some(&want));
                prop_assert_eq!(&cfg.argv, &args[2..].to_vec());
            }
            (Some(bad), Err(Error::Env { name, .. })) => prop_assert_eq!(bad, name.as_str()),
            (want, got) => prop_assert!(false, "first bad variable {:?}, parse gave {:?}", want, got),
        }
        check_outcome(&args, &env, result)?;
    }

    /// Numbers in every option slot, attached or separate.
    #[test]
    fn option_values_are_checked(
        opt in prop::sample::select(vec!['a', 'c', 'C', 'b', 'G', 'g', 'u']),
        value in number_like(),
        attached in any::<bool>(),
    ) {
        let mut args: Vec<OsString> = Vec::new();
        if attached {
            args.push(format!("-{opt}{value}").into());
        } else {
            args.push(format!("-{opt}").into());
            args.push(value.clone().into());
        }
        args.push("/tmp/s".into());
        args.push("prog".into());
        let env = HashMap::new();
        let result = parse(&args, &env);
        let ok = match opt {
            'a' => numbers::perms(value.as_bytes()).is_some(),
            'G' => numbers::gidlist(value.as_bytes(), platform_ngroups_max()).is_some(),
            _ => numbers::decimal(value.as_bytes()).is_some(),
        };
        // An empty attached value is no value: the next word ("/tmp/s") is
        // taken as the argument, then "prog" is the path and prog is missing.
        if !(attached && value.is_empty()) {
            prop_assert_eq!(result.is_ok(), ok, "-{} {:?}: {:?}", opt, value, result);
        }
        check_outcome(&args, &env, result)?;
    }
}

/// Findings of the fuzz run, kept as plain cases: a '-' inside a cluster
/// once read as the end of the options (`-1-a` parsed as path `-a`), and a
/// bad option argument was forgotten when the option came again (`-CC -C1`
/// ran with localmaxconn 1).
#[test]
fn getopt_findings_stay_fixed() {
    let env = HashMap::new();
    for args in [
        &["-1-a"][..],
        &["-1-a", "/tmp/s", "prog"],
        &["-v-", "/tmp/s", "prog"],
        &["-CC", "-C1", "/tmp/s", "prog"],
        &["-c", "x", "-c", "1", "/tmp/s", "prog"],
        &["-a999", "-a0700", "/tmp/s", "prog"],
        &["-G1,x", "-G", "1", "/tmp/s", "prog"],
        &["-u-1", "-u", "1", "/tmp/s", "prog"],
    ] {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let result = parse(&args, &env);
        assert!(
            matches!(result, Err(Error::Usage { .. })),
            "{args:?} must be a usage error, got {result:?}"
        );
    }
    // The last of several good values wins.
    let args: Vec<OsString> = ["-c5", "-c", "7", "-a0700", "-a", "0750", "/tmp/s", "prog"]
        .iter()
        .map(OsString::from)
        .collect();
    match parse(&args, &env) {
        Ok(Parsed::Run(cfg)) => {
            assert_eq!(cfg.maxconn, 7);
            assert_eq!(cfg.perms, 0o750);
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------
// Client addresses: IPCREMOTEPATH reaches the child byte for byte.

mod addresses {
    use super::common::{self, env_get, parse_env0, Server};
    use std::ffi::OsStr;
    use std::io::Read;
    use std::os::fd::{FromRawFd, IntoRawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixStream;

    /// Connects from a socket bound to `bind` (raw bytes; a leading NUL is
    /// a Linux abstract name) and returns IPCREMOTEPATH as the child saw it.
    fn remote_path_seen(server: &Server, bind: &[u8]) -> Vec<u8> {
        let fd = platform::socket::connect(server.path.as_os_str(), Some(OsStr::from_bytes(bind)))
            .unwrap_or_else(|e| panic!("connect bound to {bind:?}: {e}"));
        // SAFETY: `fd` is a connected Unix stream socket that we own.
        let mut s = unsafe { UnixStream::from_raw_fd(fd.into_raw_fd()) };
        s.set_read_timeout(Some(common::TIMEOUT)).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let env = parse_env0(&out);
        env_get(&env, "IPCREMOTEPATH")
            .expect("IPCREMOTEPATH is set")
            .to_vec()
    }

    fn in_dir(server: &Server, name: &[u8]) -> Vec<u8> {
        let mut p = server.dir.path().as_os_str().as_bytes().to_vec();
        p.push(b'/');
        p.extend_from_slice(name);
        p
    }

    /// Without a lookup (`-P`) and with one. (No lookup works in the
    /// build that forces it unsupported.)
    const BOTH: &[&[&str]] = if cfg!(feature = "force-unsupported-credentials") {
        &[&["-P"]]
    } else {
        &[&["-P"], &[]]
    };

    #[test]
    fn odd_client_paths_reach_the_child_byte_for_byte() {
        for &opts in BOTH {
            odd_client_paths(opts);
        }
    }

    fn odd_client_paths(opts: &[&str]) {
        let server = Server::start(opts, &["env", "-0"]);
        let max = platform::socket::max_path_len();
        let dir_len = in_dir(&server, b"").len();
        let longest = vec![b'L'; max - dir_len];
        let names: [&[u8]; 5] = [
            b"line\nbreak",
            b"\xff\xfe not utf-8 \xc3\x28",
            b"\n",
            b"tab\tand space and = sign",
            &longest,
        ];
        for name in names {
            let bound = in_dir(&server, name);
            assert!(bound.len() <= max);
            assert_eq!(remote_path_seen(&server, &bound), bound, "{name:?}");
        }
        assert_eq!(in_dir(&server, &longest).len(), max, "the longest sun_path");
    }

    /// Abstract names may hold any byte, NUL included, which no environment
    /// variable can: they are shown as `ss` shows them, '@' for the leading
    /// NUL and for every NUL inside.
    #[test]
    fn abstract_client_addresses_are_shown_with_at_signs() {
        if common::skip_unless_abstract_addresses(
            "abstract_client_addresses_are_shown_with_at_signs",
        ) {
            return;
        }
        for &opts in BOTH {
            abstract_addresses(opts);
        }
    }

    fn abstract_addresses(opts: &[&str]) {
        let server = Server::start(opts, &["env", "-0"]);
        let pid = std::process::id();
        let max = platform::socket::max_path_len();
        let longest = {
            let mut n = format!("\0s6ipc-long-{pid}-").into_bytes();
            n.resize(max + 1, b'x'); // the whole of sun_path
            n
        };
        let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (
                format!("\0s6ipc-{pid}").into_bytes(),
                format!("@s6ipc-{pid}").into_bytes(),
            ),
            (
                format!("\0s6ipc-{pid}\0with\0nuls\0").into_bytes(),
                format!("@s6ipc-{pid}@with@nuls@").into_bytes(),
            ),
            (
                format!("\0s6ipc-{pid}-\n\u{e9}\u{1}").into_bytes(),
                format!("@s6ipc-{pid}-\n\u{e9}\u{1}").into_bytes(),
            ),
            (longest.clone(), {
                let mut shown = longest.clone();
                shown[0] = b'@';
                shown
            }),
        ];
        for (bind, shown) in cases {
            assert_eq!(remote_path_seen(&server, &bind), shown, "{bind:?}");
        }
    }
}

// ---------------------------------------------------------------------
// Odd things at `path`: nothing but a socket is ever deleted.

mod odd_paths {
    use super::common::{self, command, run_cmd, TempDir};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};
    use std::os::unix::net::UnixListener;
    use std::os::unix::process::CommandExt;
    use std::path::Path;

    /// Runs the server on `path` (default options plus `opts`) and expects
    /// it to refuse: exit 111 and one fatal line naming the path and
    /// containing `reason`.
    fn refuses(path: &Path, opts: &[&str], reason: &str, as_nobody: bool) {
        let mut cmd = command();
        cmd.args(opts).arg(path).arg("true");
        if as_nobody {
            cmd.uid(65534).gid(65534);
        }
        let (status, out, err) = run_cmd(&mut cmd);
        assert_eq!(status.code(), Some(111), "stderr: {err}");
        assert!(out.is_empty());
        assert!(
            err.starts_with("s6-ipcserver: fatal: ") && err.lines().count() == 1,
            "one fatal line: {err:?}"
        );
        assert!(
            err.contains(&path.display().to_string()),
            "the message names the path: {err:?}"
        );
        assert!(err.contains(reason), "the message says {reason:?}: {err:?}");
    }

    fn is_socket(p: &Path) -> bool {
        std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())
    }

    #[test]
    fn a_regular_file_is_never_removed() {
        let dir = TempDir::new();
        let path = dir.join("file");
        std::fs::write(&path, "precious\n").unwrap();
        refuses(&path, &[], "is a regular file, not a socket", false);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
        refuses(&path, &["-D"], "in use", false);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
    }

    #[test]
    fn a_symlink_to_a_file_is_never_removed_nor_followed() {
        let dir = TempDir::new();
        let target = dir.join("target");
        std::fs::write(&target, "precious\n").unwrap();
        let path = dir.join("link");
        symlink(&target, &path).unwrap();
        refuses(&path, &[], "is a symbolic link, not a socket", false);
        assert_eq!(std::fs::read_link(&path).unwrap(), target);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[test]
    fn a_symlink_to_a_socket_is_never_removed_nor_followed() {
        let dir = TempDir::new();
        let target = dir.join("real.sock");
        let _listener = UnixListener::bind(&target).unwrap();
        let path = dir.join("link");
        symlink(&target, &path).unwrap();
        refuses(&path, &[], "is a symbolic link, not a socket", false);
        assert_eq!(std::fs::read_link(&path).unwrap(), target);
        assert!(is_socket(&target), "the socket it points to is untouched");
    }

    #[test]
    fn a_dangling_symlink_is_never_removed() {
        let dir = TempDir::new();
        let path = dir.join("link");
        symlink(dir.join("nowhere"), &path).unwrap();
        refuses(&path, &[], "is a symbolic link, not a socket", false);
        assert!(std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert!(!dir.join("nowhere").exists(), "nothing created through it");
    }

    #[test]
    fn a_directory_is_never_removed() {
        let dir = TempDir::new();
        let path = dir.join("dir");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), "precious\n").unwrap();
        refuses(&path, &[], "is a directory, not a socket", false);
        assert_eq!(
            std::fs::read_to_string(path.join("inside")).unwrap(),
            "precious\n"
        );
    }

    #[test]
    fn a_fifo_is_never_removed() {
        let dir = TempDir::new();
        let path = dir.join("fifo");
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a live NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        refuses(&path, &[], "is a named pipe, not a socket", false);
        assert!(std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_fifo());
    }

    #[test]
    fn an_existing_socket_is_kept_with_no_replace() {
        let dir = TempDir::new();
        let path = dir.join("sock");
        let _listener = UnixListener::bind(&path).unwrap();
        refuses(&path, &["-D"], "in use", false);
        assert!(is_socket(&path));
    }

    /// A server that cannot write the directory: nothing is removed, and
    /// the refusal says why.
    #[test]
    fn in_a_directory_the_server_cannot_write() {
        if common::skip_unless_root("in_a_directory_the_server_cannot_write") {
            return;
        }
        let dir = TempDir::new();
        // Root's directory, readable and searchable by all, writable by none
        // but root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let sock = dir.join("sock");
        let _listener = UnixListener::bind(&sock).unwrap();
        refuses(&sock, &[], "Permission denied", true);
        assert!(is_socket(&sock), "an old socket it may not remove stays");

        let file = dir.join("file");
        std::fs::write(&file, "precious\n").unwrap();
        refuses(&file, &[], "is a regular file, not a socket", true);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious\n");

        let fresh = dir.join("fresh");
        refuses(&fresh, &[], "Permission denied", true);
        assert!(!fresh.exists());
    }
}
