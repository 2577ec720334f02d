//! The command lines of both programs: their clap definitions (also the
//! source of the man pages and the completions), a POSIX getopt front end,
//! and the checks that turn words into a [`Config`] (s6-ipcserver) or a
//! [`Serving`] (s6-ipcserverd) before anything is touched.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::error::Error;

pub const USAGE: &str = "s6-ipcserver [ -1 ] [ -q | -Q | -v ] [ -d | -D ] [ -P | -p ] [ -a perms ] \
[ -c maxconn ] [ -C localmaxconn ] [ -b backlog ] [ -G gidlist ] [ -g gid ] [ -u uid ] [ -U ] path prog...";

pub const USAGE_D: &str = "s6-ipcserverd [ -1 ] [ -v verbosity ] [ -P | -p ] [ -c maxconn ] \
[ -C localmaxconn ] prog...";

/// The C program's defaults and limits.
pub const DEFAULT_MAXCONN: u32 = 40;
pub const DEFAULT_LOCALMAXCONN: u32 = 40;
pub const MAXCONN_LIMIT: u32 = 1000;
pub const DEFAULT_PERMS: u32 = 0o777;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// What serving needs, whichever program serves: validated and clamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// The name messages start with.
    pub program: &'static str,
    /// For `-1`: what to write to stdout before closing it.
    pub notify: Option<Vec<u8>>,
    /// For the `starting` line: the path bound and the listen backlog, if
    /// this program bound it.
    pub listening_on: Option<(PathBuf, u32)>,
    /// Variables that never reach a child (beside those the server sets).
    pub unset: &'static [&'static str],
    pub verbosity: Verbosity,
    pub lookup: bool,
    pub maxconn: u32,
    pub localmaxconn: u32,
    pub argv: Vec<OsString>,
}

/// Everything s6-ipcserver needs, validated and clamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub notify: bool,
    pub verbosity: Verbosity,
    pub replace_socket: bool,
    pub lookup: bool,
    pub perms: u32,
    pub maxconn: u32,
    pub localmaxconn: u32,
    pub backlog: u32,
    pub target: platform::privileges::Target,
    /// `-U` was given: UID, GID and GIDLIST were read, and never reach a
    /// child (as `s6-applyuidgid -z` in the C chain).
    pub env_ids: bool,
    pub path: PathBuf,
    pub argv: Vec<OsString>,
}

impl Config {
    /// What the serving half needs of it.
    pub fn serving(&self) -> Serving {
        let mut line = self.path.as_os_str().as_bytes().to_vec();
        line.push(b'\n');
        Serving {
            program: "s6-ipcserver",
            notify: self.notify.then_some(line),
            listening_on: Some((self.path.clone(), self.backlog)),
            unset: if self.env_ids {
                &["UID", "GID", "GIDLIST"]
            } else {
                &[]
            },
            verbosity: self.verbosity,
            lookup: self.lookup,
            maxconn: self.maxconn,
            localmaxconn: self.localmaxconn,
            argv: self.argv.clone(),
        }
    }
}

fn flag(name: &'static str, short: char, help: &'static str) -> Arg {
    Arg::new(name)
        .short(short)
        .action(ArgAction::SetTrue)
        .help(help)
}

fn value(name: &'static str, short: char, value_name: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .short(short)
        .value_name(value_name)
        // Every occurrence is kept: getopt programs check each value as
        // they meet it, so `-c x -c 1` is an error, not `-c 1`.
        .action(ArgAction::Append)
        .value_parser(clap::value_parser!(OsString))
        // Numbers and modes: completions offer no file names for them.
        .value_hint(clap::ValueHint::Other)
        .help(help)
}

/// The clap definition. Only options are parsed by clap's rules; the
/// getopt front end in [`parse`] decides where the options end.
pub fn command() -> Command {
    Command::new("s6-ipcserver")
        .version(env!("CARGO_PKG_VERSION"))
        .about("UCSPI super-server for Unix domain sockets")
        .long_about(
            "Binds a Unix domain socket at PATH and, for every client that connects, \
             spawns PROG with its stdin and stdout on the connection and the client's \
             effective uid and gid in IPCREMOTEEUID and IPCREMOTEEGID.",
        )
        .override_usage(USAGE)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args_override_self(true)
        .arg(flag("notify", '1', "Write PATH and a newline to stdout once the socket accepts connections, then close stdout"))
        .arg(flag("quiet", 'q', "Log fatal errors only").overrides_with_all(["normal", "verbose"]))
        .arg(flag("normal", 'Q', "Log warnings and denials too (default)").overrides_with_all(["quiet", "verbose"]))
        .arg(flag("verbose", 'v', "Log every connection, exit and status").overrides_with_all(["quiet", "normal"]))
        .arg(flag("replace", 'd', "Remove an existing socket at PATH before binding, under the lock on PATH.lock (default); never anything but a socket").overrides_with("no-replace"))
        .arg(flag("no-replace", 'D', "Never remove PATH: binding fails if it exists").overrides_with("replace"))
        .arg(flag("no-lookup", 'P', "Do not look up client credentials; IPCREMOTEEUID and IPCREMOTEEGID are unset").overrides_with("lookup"))
        .arg(flag("lookup", 'p', "Look up client credentials (default)").overrides_with("no-lookup"))
        .arg(value("perms", 'a', "perms", "Mode of the socket file, octal 0000 to 0777, whatever the umask [default: 0777]"))
        .arg(value("maxconn", 'c', "maxconn", "Serve at most maxconn clients at once; 0 means 1, above 1000 means 1000 [default: 40]"))
        .arg(value("localmaxconn", 'C', "localmaxconn", "Serve at most localmaxconn clients of one uid at once; 0 means 1, never above maxconn [default: 40]"))
        .arg(value("backlog", 'b', "backlog", "Listen backlog [default: SOMAXCONN]"))
        .arg(value("gidlist", 'G', "gidlist", "After binding, set the supplementary groups to this comma-separated gid list"))
        .arg(value("gid", 'g', "gid", "After binding, set the gid (0: leave as is)"))
        .arg(value("uid", 'u', "uid", "After binding, set the uid (0: leave as is)"))
        .arg(flag("env-ids", 'U', "After binding, take uid, gid and groups from UID, GID and GIDLIST in the environment, and keep those from children; a later -u, -g or -G overrides its part"))
        .arg(Arg::new("help").long("help").action(ArgAction::Help).help("Print help and exit"))
        .arg(Arg::new("version").long("version").action(ArgAction::Version).help("Print version and exit"))
        .arg(
            Arg::new("path")
                .value_name("PATH")
                .value_parser(clap::value_parser!(OsString))
                .value_hint(clap::ValueHint::FilePath)
                .required(true)
                .help("The socket to bind"),
        )
        .arg(prog())
}

fn prog() -> Arg {
    Arg::new("prog")
        .value_name("PROG")
        .value_parser(clap::value_parser!(OsString))
        .num_args(1..)
        .required(true)
        .trailing_var_arg(true)
        .allow_hyphen_values(true)
        // Completions offer command names, then that command's arguments.
        .value_hint(clap::ValueHint::CommandWithArguments)
        .help("The program, and its arguments, to run for each connection")
}

/// The clap definition of s6-ipcserverd, the serving half on its own.
pub fn command_d() -> Command {
    Command::new("s6-ipcserverd")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Serves a listening Unix domain socket: the serving half of s6-ipcserver")
        .long_about(
            "Serves the listening Unix stream socket on its stdin (or, under systemd socket \
             activation, on fd 3): for every client that connects, spawns PROG with its stdin \
             and stdout on the connection and the client's effective uid and gid in \
             IPCREMOTEEUID and IPCREMOTEEGID. Binding and dropping privileges are other \
             programs' work (s6-ipcserver-socketbinder, s6-applyuidgid, s6-fdholder-retrieve, \
             systemd).",
        )
        .override_usage(USAGE_D)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args_override_self(true)
        .arg(flag("notify", '1', "Write a newline to stdout once connections are accepted, then close stdout"))
        .arg(value("verbosity", 'v', "verbosity", "0: fatal errors only; 1: warnings and denials too (default); 2: every connection, exit and status"))
        .arg(flag("no-lookup", 'P', "Do not look up client credentials; IPCREMOTEEUID and IPCREMOTEEGID are unset").overrides_with("lookup"))
        .arg(flag("lookup", 'p', "Look up client credentials (default)").overrides_with("no-lookup"))
        .arg(value("maxconn", 'c', "maxconn", "Serve at most maxconn clients at once; 0 means 1, above 1000 means 1000 [default: 40]"))
        .arg(value("localmaxconn", 'C', "localmaxconn", "Serve at most localmaxconn clients of one uid at once; 0 means 1, never above maxconn [default: 40]"))
        .arg(Arg::new("help").long("help").action(ArgAction::Help).help("Print help and exit"))
        .arg(Arg::new("version").long("version").action(ArgAction::Version).help("Print version and exit"))
        .arg(prog())
}

/// Splits `args` (without argv[0]) the way POSIX getopt does, and returns it
/// re-written for clap: every option its own word, every option argument
/// its own word, then `--`, then the operands untouched; and the first
/// unknown option character met, if any.
fn getopt_normalize(cmd: &Command, args: &[OsString]) -> (Vec<OsString>, Option<u8>) {
    let mut unknown = None;
    let takes_value = |c: u8| {
        cmd.get_arguments().any(|a| {
            a.get_short() == Some(c as char) && matches!(a.get_action(), ArgAction::Append)
        })
    };
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_bytes();
        if word == b"--" {
            i += 1;
            break;
        }
        if word.len() < 2 || word[0] != b'-' {
            break; // the first operand: options end here
        }
        if word.starts_with(b"--") {
            out.push(args[i].clone()); // --help, --version, or an error for clap
            i += 1;
            continue;
        }
        let mut j = 1;
        while j < word.len() {
            let c = word[j];
            // '-' is never an option character ("-1-a" is an error), and
            // "-" would read as the end of the options: clap gets an
            // unknown long option instead, which it rejects in turn, unless
            // the first operand takes hyphenated words (s6-ipcserverd's
            // prog): so an unknown option character is also reported.
            if c == b'-'
                || !cmd
                    .get_arguments()
                    .any(|a| a.get_short() == Some(c as char))
            {
                out.push(OsString::from("---"));
                unknown.get_or_insert(c);
                break;
            }
            out.push(OsStr::from_bytes(&[b'-', c]).to_os_string());
            if takes_value(c) {
                if j + 1 < word.len() {
                    out.push(OsStr::from_bytes(&word[j + 1..]).to_os_string());
                } else if i + 1 < args.len() {
                    i += 1;
                    out.push(args[i].clone());
                }
                break;
            }
            j += 1;
        }
        i += 1;
    }
    out.push(OsString::from("--"));
    out.extend_from_slice(&args[i..]);
    (out, unknown)
}

/// The name the program was invoked as (the last component of argv[0]),
/// or `program` where there is none to use. Usage, help and version say
/// it, so that `s6-ipcserver-rs --help` reads `s6-ipcserver-rs`; log
/// lines keep `program`, which log parsers look for.
pub fn invoked_name(argv0: Option<&OsStr>, program: &'static str) -> String {
    argv0
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && !n.contains(char::is_whitespace))
        .unwrap_or(program)
        .to_string()
}

/// `text` (the version line, the help, or a usage line) with `program`
/// named as `invoked` where it names the program: first in the version
/// line and a usage line, after `Usage: ` in the help.
pub fn as_invoked(text: &str, program: &str, invoked: &str) -> String {
    let (from, to) = (format!("{program} "), format!("{invoked} "));
    if let Some(rest) = text.strip_prefix(&from) {
        return format!("{to}{rest}");
    }
    text.replacen(&format!("Usage: {from}"), &format!("Usage: {to}"), 1)
}

/// What parsing decided: run, or print something and exit 0.
#[derive(Debug)]
pub enum Parsed<T = Config> {
    Run(T),
    Print(String),
}

/// Runs clap over `args` (without argv[0]) split as getopt would.
fn matches(
    cmd: Command,
    args: &[OsString],
    usage: &'static str,
) -> Result<Parsed<ArgMatches>, Error> {
    let mut words = vec![OsString::from(cmd.get_name().to_string())];
    let (normalized, unknown) = getopt_normalize(&cmd, args);
    let operands = normalized
        .iter()
        .position(|w| w == "--")
        .map_or(0, |at| normalized.len() - at - 1);
    let takes_path = cmd.get_arguments().any(|a| a.get_id() == "path");
    words.extend(normalized);
    let bad = |why: String| Err(Error::Usage { usage, why });
    use clap::error::ErrorKind;
    // --help and --version print whatever else the line holds; otherwise
    // the first unknown option character is what is wrong.
    match (cmd.try_get_matches_from(words), unknown) {
        (Err(e), _) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            Ok(Parsed::Print(e.render().to_string()))
        }
        (_, Some(c)) => bad(unknown_option(c)),
        (Ok(m), None) => Ok(Parsed::Run(m)),
        (Err(e), None) => match e.kind() {
            ErrorKind::MissingRequiredArgument if takes_path && operands == 0 => {
                bad("missing path and prog".into())
            }
            ErrorKind::MissingRequiredArgument => bad("missing prog".into()),
            ErrorKind::UnknownArgument => {
                bad("unknown option (only --help and --version are long options)".into())
            }
            // An option without its argument (last, or followed by a word
            // starting with '-', which is not taken as one).
            _ => match e.get(clap::error::ContextKind::InvalidArg) {
                Some(clap::error::ContextValue::String(arg)) => bad(format!("{arg} needs a value")),
                _ => bad("invalid command line".into()),
            },
        },
    }
}

fn unknown_option(c: u8) -> String {
    if c.is_ascii_graphic() {
        format!("-{} is not an option", c as char)
    } else {
        format!("byte {c:#04x} is not an option")
    }
}

/// What is wrong with `value`, given to the option `name` (a clap id).
fn bad_value(name: &str, value: &[u8]) -> String {
    let v = String::from_utf8_lossy(value);
    let digits = !value.is_empty() && value.iter().all(u8::is_ascii_digit);
    match name {
        "uid" | "gid" if !digits => format!(
            "-{} takes a numeric {name}: use s6-envuidgid and -U for names",
            &name[..1]
        ),
        "uid" | "gid" => format!(
            "-{}: {v:?} is not a {name} (at most 4294967295)",
            &name[..1]
        ),
        "perms" => format!("-a: {v:?} is not an octal mode from 0000 to 0777"),
        "gidlist" => format!(
            "-G: {v:?} is not a comma-separated list of decimal gids, at most NGROUPS_MAX ({})",
            platform::privileges::ngroups_max()
        ),
        _ => {
            let opt = match name {
                "maxconn" => "-c",
                "localmaxconn" => "-C",
                "backlog" => "-b",
                "verbosity" => "-v",
                other => other,
            };
            if digits {
                format!("{opt}: {v:?} is too large")
            } else {
                format!("{opt}: {v:?} is not a decimal number")
            }
        }
    }
}

/// Parses s6-ipcserver's command line (without argv[0]); `env` looks up
/// the environment for `-U`.
pub fn parse<E>(args: &[OsString], env: E) -> Result<Parsed, Error>
where
    E: Fn(&str) -> Option<OsString>,
{
    match matches(command(), args, USAGE)? {
        Parsed::Run(m) => config(&m, env).map(Parsed::Run),
        Parsed::Print(text) => Ok(Parsed::Print(text)),
    }
}

/// Parses s6-ipcserverd's command line (without argv[0]).
pub fn parse_d(args: &[OsString]) -> Result<Parsed<Serving>, Error> {
    let m = match matches(command_d(), args, USAGE_D)? {
        Parsed::Run(m) => m,
        Parsed::Print(text) => return Ok(Parsed::Print(text)),
    };
    serving_d(&m).map(Parsed::Run).map_err(|e| match e {
        Error::Usage { why, .. } => Error::Usage {
            usage: USAGE_D,
            why,
        },
        e => e,
    })
}

fn serving_d(m: &ArgMatches) -> Result<Serving, Error> {
    let argv = prog_argv(m)?;
    let lookup = !m.get_flag("no-lookup");
    let (maxconn, localmaxconn) = limits(m, lookup)?;
    // As the C program: 0 quiet, 1 the default, 2 and above verbose.
    let verbosity = match last_valid(m, "verbosity", decimal)?.unwrap_or(1) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    };
    Ok(Serving {
        program: "s6-ipcserverd",
        notify: m.get_flag("notify").then(|| b"\n".to_vec()),
        listening_on: None,
        // systemd's socket activation variables are for this program.
        unset: &["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"],
        verbosity,
        lookup,
        maxconn,
        localmaxconn,
        argv,
    })
}

fn os<'a>(m: &'a ArgMatches, name: &str) -> Option<&'a OsStr> {
    m.get_one::<OsString>(name).map(|s| s.as_os_str())
}

/// The last value of an option given any number of times, once every value
/// passed `check`: the last one wins, but a bad one anywhere is an error.
fn last_valid<T>(
    m: &ArgMatches,
    name: &str,
    check: impl Fn(&[u8]) -> Option<T>,
) -> Result<Option<T>, Error> {
    let mut last = None;
    for v in m.get_many::<OsString>(name).into_iter().flatten() {
        last = Some(check(v.as_bytes()).ok_or_else(|| Error::Usage {
            usage: USAGE,
            why: bad_value(name, v.as_bytes()),
        })?);
    }
    Ok(last)
}

/// Plain unsigned decimal: no sign, no prefix, not empty, in range.
pub fn decimal(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Octal `0000` to `0777`.
pub fn perms(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.iter().all(|c| (b'0'..=b'7').contains(c)) {
        return None;
    }
    let v = u32::from_str_radix(std::str::from_utf8(s).ok()?, 8).ok()?;
    (v <= 0o777).then_some(v)
}

/// A comma-separated list of decimal gids, at most `max` of them. The empty
/// string is the empty list.
pub fn gidlist(s: &[u8], max: usize) -> Option<Vec<libc::gid_t>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    let list: Option<Vec<_>> = s.split(|&c| c == b',').map(decimal).collect();
    list.filter(|l| l.len() <= max)
}

fn number(m: &ArgMatches, name: &str, default: u32) -> Result<u32, Error> {
    Ok(last_valid(m, name, decimal)?.unwrap_or(default))
}

/// `-U`: UID, GID and GIDLIST must all be set and valid.
fn env_target<E>(env: &E) -> Result<platform::privileges::Target, Error>
where
    E: Fn(&str) -> Option<OsString>,
{
    let get = |name: &'static str| {
        env(name).ok_or(Error::Env {
            name,
            problem: "is not set",
        })
    };
    let id = |name: &'static str| {
        let v = get(name)?;
        decimal(v.as_bytes()).ok_or(Error::Env {
            name,
            problem: "is not a decimal id",
        })
    };
    let uid = id("UID")?;
    let gid = id("GID")?;
    let groups = gidlist(
        get("GIDLIST")?.as_bytes(),
        platform::privileges::ngroups_max(),
    )
    .ok_or(Error::Env {
        name: "GIDLIST",
        problem: "is not a comma-separated list of decimal gids within NGROUPS_MAX",
    })?;
    Ok(platform::privileges::Target {
        groups: Some(groups),
        gid,
        uid,
    })
}

fn prog_argv(m: &ArgMatches) -> Result<Vec<OsString>, Error> {
    let bad = |why: &str| Error::Usage {
        usage: USAGE,
        why: why.to_string(),
    };
    let argv: Vec<OsString> = m
        .get_many::<OsString>("prog")
        .ok_or_else(|| bad("missing prog"))?
        .cloned()
        .collect();
    if argv.is_empty() {
        return Err(bad("missing prog"));
    }
    if argv.iter().any(|a| a.as_bytes().contains(&0)) {
        return Err(bad("an argument of prog contains a NUL byte"));
    }
    Ok(argv)
}

/// `-c` and `-C`, clamped as the C program clamps them.
fn limits(m: &ArgMatches, lookup: bool) -> Result<(u32, u32), Error> {
    let maxconn = number(m, "maxconn", DEFAULT_MAXCONN)?.clamp(1, MAXCONN_LIMIT);
    let localmaxconn = if lookup {
        number(m, "localmaxconn", DEFAULT_LOCALMAXCONN)?.clamp(1, maxconn)
    } else {
        number(m, "localmaxconn", DEFAULT_LOCALMAXCONN)?; // still validated
        maxconn
    };
    Ok((maxconn, localmaxconn))
}

fn config<E>(m: &ArgMatches, env: E) -> Result<Config, Error>
where
    E: Fn(&str) -> Option<OsString>,
{
    let bad = |why: &str| Error::Usage {
        usage: USAGE,
        why: why.to_string(),
    };
    let path = os(m, "path").ok_or_else(|| bad("missing path and prog"))?;
    if path.is_empty() {
        return Err(bad("path is empty"));
    }
    let argv = prog_argv(m)?;

    let perms = last_valid(m, "perms", perms)?.unwrap_or(DEFAULT_PERMS);
    let lookup = !m.get_flag("no-lookup");
    let (maxconn, localmaxconn) = limits(m, lookup)?;
    let backlog = number(m, "backlog", platform::socket::SOMAXCONN)?;

    let mut target = platform::privileges::Target {
        groups: last_valid(m, "gidlist", |v| {
            gidlist(v, platform::privileges::ngroups_max())
        })?,
        gid: number(m, "gid", 0)?,
        uid: number(m, "uid", 0)?,
    };
    // Options take effect in the order given, as getopt reads them: -U
    // sets all three from the environment, and a -u, -g or -G after it
    // overrides its part (-U -u 1000 runs as uid 1000; -u 1000 -U takes
    // UID). As in the C chain, an id of 0 means "not given": -U -u 0
    // takes UID.
    let env_ids = m.get_flag("env-ids");
    if env_ids {
        let from_env = env_target(&env)?;
        let at = m.index_of("env-ids");
        let env_last = |name: &str| at > m.indices_of(name).and_then(|mut i| i.next_back());
        if env_last("uid") || target.uid == 0 {
            target.uid = from_env.uid;
        }
        if env_last("gid") || target.gid == 0 {
            target.gid = from_env.gid;
        }
        if env_last("gidlist") {
            target.groups = from_env.groups;
        }
    }

    let verbosity = if m.get_flag("quiet") {
        Verbosity::Quiet
    } else if m.get_flag("verbose") {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };

    Ok(Config {
        notify: m.get_flag("notify"),
        verbosity,
        replace_socket: !m.get_flag("no-replace"),
        lookup,
        perms,
        maxconn,
        localmaxconn,
        backlog,
        target,
        env_ids,
        path: PathBuf::from(path),
        argv,
    })
}
