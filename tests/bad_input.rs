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
use s6_ipcserver::cli::{self, Parsed};
use s6_ipcserver::error::Error;

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

fn parse(args: &[OsString], env: &HashMap<&'static str, OsString>) -> Result<Parsed, Error> {
    cli::parse(args, |name| env.get(name).cloned())
}

/// What SPEC 1 says about each `-U` variable, independently of the parser:
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
                    b'a' => cli::perms(value).is_some(),
                    b'G' => cli::gidlist(value, platform_ngroups_max()).is_some(),
                    _ => cli::decimal(value).is_some(),
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
    result: Result<Parsed, Error>,
) -> Result<(), TestCaseError> {
    let reference = getopt_reference(args);
    match (&reference, &result) {
        (Getopt::Usage, r) => prop_assert!(
            matches!(r, Err(Error::Usage)),
            "getopt rejects {:?}; parse gave {:?}",
            args,
            r
        ),
        (Getopt::Print { bad_value: false }, r) => {
            prop_assert!(matches!(r, Ok(Parsed::Print(_))), "{:?}", r)
        }
        (Getopt::Print { bad_value: true }, r) => prop_assert!(
            matches!(r, Ok(Parsed::Print(_)) | Err(Error::Usage)),
            "{:?}",
            r
        ),
        (
            Getopt::Operands {
                bad_value: true, ..
            },
            r,
        ) => prop_assert!(
            matches!(r, Err(Error::Usage)),
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
            prop_assert!((1..=cli::MAXCONN_LIMIT).contains(&cfg.maxconn));
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
                Error::Usage => {
                    prop_assert_eq!(text, format!("usage: {}", cli::USAGE));
                }
                Error::Env { name, .. } => {
                    prop_assert!(["UID", "GID", "GIDLIST"].contains(name));
                    prop_assert!(text.contains(name), "message names the variable: {}", text);
                    // Only -U reads the environment, and only a bad
                    // variable is reported: the first bad one.
                    prop_assert!(args.iter().any(|a| a.as_bytes().contains(&b'U')));
                    prop_assert_eq!(Some(*name), first_bad_env_var(env));
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
    /// environment alone, exactly as SPEC 1 says.
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
            (Some(bad), Err(Error::Env { name, .. })) => prop_assert_eq!(bad, *name),
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
            'a' => cli::perms(value.as_bytes()).is_some(),
            'G' => cli::gidlist(value.as_bytes(), platform_ngroups_max()).is_some(),
            _ => cli::decimal(value.as_bytes()).is_some(),
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
            matches!(result, Err(Error::Usage)),
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
