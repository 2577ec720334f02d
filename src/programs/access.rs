//! s6-ipcserver-access: access control for a client of s6-ipcserver, by
//! the uid and gid the server found. Looks the client up in the rules
//! (rules/), then execs prog (or the rule's `exec`) with the rule's
//! environment, or exits 1.

use std::ffi::OsString;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use clap::Command;

use crate::error::Error;
use crate::exec::{exec, EnvChange};
use crate::getopt::{self, flag, value, Parsed};
use crate::log::{Log, Verbosity};
use crate::numbers::{decimal, gidlist};
use crate::rules::{self, Decision, Rules, UidGidQuery};

pub const NAME: &str = "s6-ipcserver-access";

pub const USAGE: &str = "s6-ipcserver-access [ -v verbosity ] [ -e | -E ] [ -l localname ] \
[ -i rulesdir | -x rulesfile ] [ -g ] prog...";

pub fn command() -> Command {
    let cmd = getopt::program(
        NAME,
        USAGE,
        "Access control for the clients of s6-ipcserver, by uid and gid",
        "Reads PROTO, ${PROTO}REMOTEEUID and ${PROTO}REMOTEEGID (set by s6-ipcserver) and \
         looks the client up in a rules directory (-i) or a rules file (-x, made by \
         s6-accessrules-cdb-from-fs): uid/self (if the client's euid is this program's), \
         uid/EUID, gid/self (likewise), gid/EGID, with -g gid/G for each of the client's \
         supplementary groups in ${PROTO}REMOTEGIDLIST, then uid/default; the first key \
         with a rule decides. If it allows, execs PROG (or the rule's exec, with execlineb -Pc) with \
         the rule's environment; otherwise, or if no key has a rule, exits 1.",
    )
    .arg(value("verbosity", 'v', "verbosity", "0: fatal errors only; 1: also log allowed clients (default); 2: also denied clients and warnings"))
    .arg(flag("env", 'e', "Set ${PROTO}LOCALPATH to the -l value or the socket's own address (default)").overrides_with("no-env"))
    .arg(flag("no-env", 'E', "Remove PROTO and ${PROTO}REMOTEEUID, REMOTEEGID, REMOTEPID, REMOTEGIDLIST, REMOTEPATH, LOCALPATH and CONNNUM, even if the rule set them; the rest of the rule's environment applies").overrides_with("env"))
    .arg(value("localname", 'l', "localname", "Set ${PROTO}LOCALPATH to localname, without asking the socket (with -e)"))
    .arg(value("rulesdir", 'i', "rulesdir", "Rules in a directory: rulesdir/uid/N/allow and so on").value_hint(clap::ValueHint::DirPath).overrides_with("rulesfile"))
    .arg(value("rulesfile", 'x', "rulesfile", "Rules in a cdb file made by s6-accessrules-cdb-from-fs").value_hint(clap::ValueHint::FilePath).overrides_with("rulesdir"))
    .arg(flag("groups", 'g', "Also try gid/G for every G of ${PROTO}REMOTEGIDLIST, in order, after gid/EGID and before uid/default; refuse the client if the variable is unset. Only behind this package's s6-ipcserver or s6-ipcserverd, which set or remove it for every client: behind another server, a value it inherited would be trusted"));
    getopt::help_and_version(cmd).arg(getopt::prog(
        "The program, and its arguments, to exec for an allowed client",
    ))
}

/// Where the rules are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Dir(OsString),
    File(OsString),
    /// Neither -i nor -x: every client is allowed, with a warning.
    None,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub verbosity: Verbosity,
    pub keep_env: bool,
    pub localname: Option<OsString>,
    pub source: Source,
    /// `-g`: the client's supplementary groups are keys too.
    pub groups: bool,
    pub argv: Vec<OsString>,
}

pub fn parse(args: &[OsString]) -> Result<Parsed<Config>, Error> {
    let o = match getopt::parse(command(), args, USAGE)? {
        Parsed::Run(o) => o,
        Parsed::Print(text) => return Ok(Parsed::Print(text)),
    };
    let source = match (o.os("rulesdir"), o.os("rulesfile")) {
        (Some(dir), _) => Source::Dir(dir.to_os_string()),
        (None, Some(file)) => Source::File(file.to_os_string()),
        (None, None) => Source::None,
    };
    let argv = o.prog_argv()?;
    // As the C program: an empty prog is a usage error, not a failed exec
    // (prog_argv returns at least one word).
    if argv[0].is_empty() {
        return Err(o.bad("prog is empty"));
    }
    Ok(Parsed::Run(Config {
        verbosity: Verbosity::from_level(o.last_valid("verbosity", decimal)?.unwrap_or(1)),
        keep_env: !o.flag("no-env"),
        localname: o.os("localname").map(|l| l.to_os_string()),
        source,
        groups: o.flag("groups"),
        argv,
    }))
}

/// The client, as the server described it.
struct Client {
    proto: OsString,
    uid: u32,
    gid: u32,
    /// With `-g`: its supplementary groups.
    groups: Vec<u32>,
}

fn client(env: &impl Fn(&str) -> Option<OsString>, groups: bool) -> Result<Client, Error> {
    let proto = env("PROTO").ok_or_else(|| Error::env("PROTO", "is not set"))?;
    let id = |suffix: &str| {
        let name = format!("{}{suffix}", proto.to_string_lossy());
        let v = env(&name).ok_or_else(|| Error::env(name.clone(), "is not set"))?;
        decimal(v.as_bytes()).ok_or_else(|| Error::env(name, "is not a decimal id"))
    };
    let uid = id("REMOTEEUID")?;
    let gid = id("REMOTEEGID")?;
    // Never matched on the primary gid alone: a server that did not look
    // the groups up (-P) or a system that does not record them leaves
    // the variable unset, and -g then refuses the client.
    let groups = if groups {
        let name = format!("{}REMOTEGIDLIST", proto.to_string_lossy());
        let v = env(&name).ok_or_else(|| {
            Error::env(
                name.clone(),
                "is not set: -g needs the client's groups, which the server gives where the system records them, and not with -P",
            )
        })?;
        gidlist(v.as_bytes(), usize::MAX)
            .ok_or_else(|| Error::env(name, "is not a comma-separated list of decimal gids"))?
    } else {
        Vec::new()
    };
    Ok(Client {
        uid,
        gid,
        groups,
        proto,
    })
}

pub fn run(cfg: Config) -> Result<(), Error> {
    let c = client(&|name| std::env::var_os(name), cfg.groups)?;
    let rules = match &cfg.source {
        Source::Dir(dir) => Some(Rules::dir(dir)),
        Source::File(file) => Some(Rules::cdb(file).map_err(Error::Rules)?),
        Source::None => None,
    };
    let log = Log {
        program: NAME,
        verbosity: cfg.verbosity,
    };
    let pid = std::process::id();
    let allow = match rules {
        None => {
            log.at(
                Verbosity::Verbose,
                "warning",
                format_args!("invoked without a ruleset!"),
            );
            rules::Allow::default()
        }
        Some(rules) => {
            let query = UidGidQuery {
                client_uid: c.uid,
                client_gid: c.gid,
                self_euid: nix::unistd::geteuid().as_raw(),
                self_egid: nix::unistd::getegid().as_raw(),
                extra_gids: &c.groups,
            };
            // The reasons the C program gives at -v2, errno texts of its
            // lookup: a rule that denies, or no rule at all.
            match rules::check_uidgid(&rules, &query).map_err(Error::Rules)? {
                Some(rules::Match {
                    decision: Decision::Allow(allow),
                    ..
                }) => allow,
                found => {
                    let why = match found {
                        Some(_) => "Permission denied",
                        None => "No such file or directory",
                    };
                    log.at(
                        Verbosity::Verbose,
                        "info",
                        format_args!("deny pid {pid} uid {} gid {}: {why}", c.uid, c.gid),
                    );
                    return Err(Error::Denied(None));
                }
            }
        }
    };
    log.at(
        Verbosity::Normal,
        "info",
        format_args!("allow pid {pid} uid {} gid {}", c.uid, c.gid),
    );
    // The rule's environment first, then ours over it, as the C program
    // applies them: a rule's env/IPCLOCALPATH gives way to -e's value,
    // and with -E a rule's env/PROTO is unset all the same.
    let mut env = Vec::new();
    for change in allow.env {
        env.push(match change {
            rules::EnvChange::Set { name, value } => {
                EnvChange::Set(OsString::from_vec(name), OsString::from_vec(value))
            }
            rules::EnvChange::Unset { name } => EnvChange::Unset(OsString::from_vec(name)),
        });
    }
    let var = |suffix: &str| {
        let mut name = c.proto.clone();
        name.push(suffix);
        name
    };
    if cfg.keep_env {
        let local = match cfg.localname {
            Some(l) => l,
            None => OsString::from_vec(local_path()?),
        };
        env.push(EnvChange::Set(var("LOCALPATH"), local));
    } else {
        for suffix in [
            "REMOTEEUID",
            "REMOTEEGID",
            "REMOTEPID",
            "REMOTEGIDLIST",
            "REMOTEPATH",
            "LOCALPATH",
            "CONNNUM",
        ] {
            env.push(EnvChange::Unset(var(suffix)));
        }
        env.push(EnvChange::Unset("PROTO".into()));
    }
    let argv = match allow.exec {
        None => cfg.argv,
        Some(mut line) => {
            // As the C program's argv would, the command line ends at a NUL.
            if let Some(end) = line.iter().position(|&b| b == 0) {
                line.truncate(end);
            }
            vec!["execlineb".into(), "-Pc".into(), OsString::from_vec(line)]
        }
    };
    Err(exec(&argv, &env))
}

/// The address of the socket the client connected to: the server's, read
/// from the connection on stdin.
fn local_path() -> Result<Vec<u8>, Error> {
    // A closed or non-socket fd 0 is an error the call reports.
    let stdin = std::io::stdin();
    let fd: BorrowedFd<'_> = std::os::fd::AsFd::as_fd(&stdin);
    let mut addr = platform::socket::PeerAddr::default();
    platform::socket::local_addr(fd, &mut addr).map_err(|e| {
        Error::sys(
            "unable to read the local address of the connection on stdin",
            e,
        )
    })?;
    let mut out = Vec::new();
    addr.remote().write_env_value(&mut out);
    Ok(out)
}
