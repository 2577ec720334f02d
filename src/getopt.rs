//! The command-line front end every program shares: clap definitions read
//! the POSIX getopt way (options end at the first operand, clustered
//! flags, attached values), the usage errors, `--help` and `--version`
//! under the name the program was invoked as, and the checks of option
//! values. Each program's own options are in `programs/`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::error::Error;
use crate::numbers::decimal;

/// A flag: `-q`, `-d`...
pub fn flag(name: &'static str, short: char, help: &'static str) -> Arg {
    Arg::new(name)
        .short(short)
        .action(ArgAction::SetTrue)
        .help(help)
}

/// An option with a value: `-c maxconn`, `-a perms`...
pub fn value(name: &'static str, short: char, value_name: &'static str, help: &'static str) -> Arg {
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

/// The program a program runs, and its arguments: everything after the
/// options and the other operands.
pub fn prog(help: &'static str) -> Arg {
    Arg::new("prog")
        .value_name("PROG")
        .value_parser(clap::value_parser!(OsString))
        .num_args(1..)
        .required(true)
        .trailing_var_arg(true)
        .allow_hyphen_values(true)
        // Completions offer command names, then that command's arguments.
        .value_hint(clap::ValueHint::CommandWithArguments)
        .help(help)
}

/// A path operand (a socket, a rules directory, a file).
pub fn path(name: &'static str, value_name: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .value_name(value_name)
        .value_parser(clap::value_parser!(OsString))
        .value_hint(clap::ValueHint::AnyPath)
        .required(true)
        .help(help)
}

/// The definition every program starts from: its name, version, usage
/// line and texts, `--help` and `--version` as the only long options, and
/// a later option overriding an earlier one (as getopt reads them).
pub fn program(
    name: &'static str,
    usage: &'static str,
    about: &'static str,
    long_about: &'static str,
) -> Command {
    Command::new(name)
        .version(env!("CARGO_PKG_VERSION"))
        .about(about)
        .long_about(long_about)
        .override_usage(usage)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args_override_self(true)
}

/// `--help` and `--version`, added last so that they come last in the help.
pub fn help_and_version(cmd: Command) -> Command {
    cmd.arg(
        Arg::new("help")
            .long("help")
            .action(ArgAction::Help)
            .help("Print help and exit"),
    )
    .arg(
        Arg::new("version")
            .long("version")
            .action(ArgAction::Version)
            .help("Print version and exit"),
    )
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
pub enum Parsed<T> {
    Run(T),
    Print(String),
}

/// Runs clap over `args` (without argv[0]) split as getopt would: the
/// options, or the text `--help` or `--version` asked for.
pub fn parse(
    cmd: Command,
    args: &[OsString],
    usage: &'static str,
) -> Result<Parsed<Options>, Error> {
    let mut words = vec![OsString::from(cmd.get_name().to_string())];
    let (normalized, unknown) = getopt_normalize(&cmd, args);
    let operands = normalized
        .iter()
        .position(|w| w == "--")
        .map_or(0, |at| normalized.len() - at - 1);
    // The operands every run needs, in order (path and prog...).
    let required: Vec<String> = cmd
        .get_positionals()
        .filter(|a| a.is_required_set())
        .filter_map(|a| {
            a.get_value_names()
                .and_then(|n| n.first())
                .map(|n| n.to_lowercase())
        })
        .collect();
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
        (Ok(m), None) => Ok(Parsed::Run(Options { m, usage })),
        (Err(e), None) => match e.kind() {
            ErrorKind::MissingRequiredArgument => {
                let missing = required.get(operands..).unwrap_or_default();
                match missing.split_last() {
                    Some((last, [])) => bad(format!("missing {last}")),
                    Some((last, first)) => bad(format!("missing {} and {last}", first.join(", "))),
                    None => bad("missing an operand".into()),
                }
            }
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

/// A parsed command line, with the usage line its errors print.
pub struct Options {
    pub m: ArgMatches,
    pub usage: &'static str,
}

impl Options {
    /// A usage error: `why`, then the usage line.
    pub fn bad(&self, why: impl Into<String>) -> Error {
        Error::Usage {
            usage: self.usage,
            why: why.into(),
        }
    }

    pub fn flag(&self, name: &str) -> bool {
        self.m.get_flag(name)
    }

    /// An operand, or an option's last value.
    pub fn os(&self, name: &str) -> Option<&OsStr> {
        self.m.get_one::<OsString>(name).map(|s| s.as_os_str())
    }

    /// The last value of an option given any number of times, once every
    /// value passed `check`: the last one wins, but a bad one anywhere is
    /// an error.
    pub fn last_valid<T>(
        &self,
        name: &str,
        check: impl Fn(&[u8]) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        let mut last = None;
        for v in self.m.get_many::<OsString>(name).into_iter().flatten() {
            last =
                Some(check(v.as_bytes()).ok_or_else(|| self.bad(bad_value(name, v.as_bytes())))?);
        }
        Ok(last)
    }

    /// A path operand, which must not be empty.
    pub fn operand(&self, name: &str) -> Result<std::path::PathBuf, Error> {
        match self.os(name) {
            Some(p) if !p.is_empty() => Ok(p.into()),
            Some(_) => Err(self.bad(format!("{name} is empty"))),
            None => Err(self.bad(format!("missing {name}"))),
        }
    }

    /// `-q`, `-Q` and `-v` as flags (the last one given wins).
    pub fn verbosity_flags(&self) -> crate::log::Verbosity {
        use crate::log::Verbosity;
        if self.flag("quiet") {
            Verbosity::Quiet
        } else if self.flag("verbose") {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }

    /// A decimal option's last value, or `default`.
    pub fn number(&self, name: &str, default: u32) -> Result<u32, Error> {
        Ok(self.last_valid(name, decimal)?.unwrap_or(default))
    }

    /// PROG and its arguments: present, and free of NUL bytes (which no
    /// exec could pass).
    pub fn prog_argv(&self) -> Result<Vec<OsString>, Error> {
        let argv: Vec<OsString> = self
            .m
            .get_many::<OsString>("prog")
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if argv.is_empty() {
            return Err(self.bad("missing prog"));
        }
        if argv.iter().any(|a| a.as_bytes().contains(&0)) {
            return Err(self.bad("an argument of prog contains a NUL byte"));
        }
        Ok(argv)
    }
}
