//! s6-ipcserver: binds the socket, drops privileges, serves (the C
//! chain s6-ipcserver-socketbinder, s6-applyuidgid, s6-ipcserverd in one
//! process).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::Command;

use platform::socket::BindOptions;

use crate::bind;
use crate::error::Error;
use crate::getopt::{self, flag, value, Options, Parsed};
use crate::log::Verbosity;
use crate::numbers::{decimal, gidlist, perms};
use crate::server::{self, Serving};

pub const NAME: &str = "s6-ipcserver";

pub const USAGE: &str = "s6-ipcserver [ -1 ] [ -q | -Q | -v ] [ -d | -D ] [ -P | -p ] [ -a perms ] \
[ -c maxconn ] [ -C localmaxconn ] [ -b backlog ] [ -G gidlist ] [ -g gid ] [ -u uid ] [ -U ] path prog...";

const PROG_HELP: &str = "The program, and its arguments, to run for each connection";

pub const DEFAULT_PERMS: u32 = 0o777;

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

/// The clap definition: the source of `--help`, the man page and the
/// completions.
pub fn command() -> Command {
    let cmd = getopt::program(
        NAME,
        USAGE,
        "UCSPI super-server for Unix domain sockets",
        "Binds a Unix domain socket at PATH and, for every client that connects, \
         spawns PROG with its stdin and stdout on the connection and the client's \
         effective uid and gid in IPCREMOTEEUID and IPCREMOTEEGID.",
    )
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
        .arg(flag("env-ids", 'U', "After binding, take uid, gid and groups from UID, GID and GIDLIST in the environment, and keep those from children; a later -u, -g or -G overrides its part"));
    getopt::help_and_version(cmd)
        .arg(
            getopt::path("path", "PATH", "The socket to bind")
                .value_hint(clap::ValueHint::FilePath),
        )
        .arg(getopt::prog(PROG_HELP))
}

/// Parses the command line (without argv[0]); `env` looks up the
/// environment for `-U`.
pub fn parse<E>(args: &[OsString], env: E) -> Result<Parsed<Config>, Error>
where
    E: Fn(&str) -> Option<OsString>,
{
    match getopt::parse(command(), args, USAGE)? {
        Parsed::Run(o) => config(&o, env).map(Parsed::Run),
        Parsed::Print(text) => Ok(Parsed::Print(text)),
    }
}

/// Binds, drops privileges and serves until a signal ends it.
pub fn run(cfg: Config) -> Result<(), Error> {
    let own_from = server::reserve_inherited()?;
    platform::fd::detach_stdio(cfg.notify)
        .map_err(|e| Error::sys("unable to close stdin and stdout", e))?;
    // The lock on PATH.lock (with -d) is held while serving.
    let bound = bind::bind(
        &cfg.path,
        BindOptions::listener(cfg.replace_socket, cfg.perms, cfg.backlog),
    )?;
    bind::drop_privileges(&cfg.target, &cfg.path)?;
    let result = server::run(cfg.serving(), bound.listener, own_from);
    // A fatal error leaves no socket behind that refuses every client;
    // under the lock (-d) no other server can have put its own there
    // since. (SIGTERM leaves it, as the C server does.)
    if result.is_err() && bound.lock.is_some() {
        let _ = std::fs::remove_file(&cfg.path);
    }
    drop(bound.lock);
    result
}

/// `-U`: UID, GID and GIDLIST must all be set and valid.
fn env_target<E>(env: &E) -> Result<platform::privileges::Target, Error>
where
    E: Fn(&str) -> Option<OsString>,
{
    let get = |name: &'static str| env(name).ok_or(Error::env(name, "is not set"));
    let id = |name: &'static str| {
        let v = get(name)?;
        decimal(v.as_bytes()).ok_or(Error::env(name, "is not a decimal id"))
    };
    let uid = id("UID")?;
    let gid = id("GID")?;
    let groups = gidlist(
        get("GIDLIST")?.as_bytes(),
        platform::privileges::ngroups_max(),
    )
    .ok_or(Error::env(
        "GIDLIST",
        "is not a comma-separated list of decimal gids within NGROUPS_MAX",
    ))?;
    Ok(platform::privileges::Target {
        groups: Some(groups),
        gid,
        uid,
    })
}

fn config<E>(o: &Options, env: E) -> Result<Config, Error>
where
    E: Fn(&str) -> Option<OsString>,
{
    let path = o.os("path").ok_or_else(|| o.bad("missing path and prog"))?;
    if path.is_empty() {
        return Err(o.bad("path is empty"));
    }
    let argv = o.prog_argv()?;
    let m = &o.m;

    let perms = o.last_valid("perms", perms)?.unwrap_or(DEFAULT_PERMS);
    let lookup = !o.flag("no-lookup");
    let (maxconn, localmaxconn) = server::limits(o, lookup)?;
    let backlog = o.number("backlog", platform::socket::SOMAXCONN)?;

    let mut target = platform::privileges::Target {
        groups: o.last_valid("gidlist", |v| {
            gidlist(v, platform::privileges::ngroups_max())
        })?,
        gid: o.number("gid", 0)?,
        uid: o.number("uid", 0)?,
    };
    // Options take effect in the order given, as getopt reads them: -U
    // sets all three from the environment, and a -u, -g or -G after it
    // overrides its part (-U -u 1000 runs as uid 1000; -u 1000 -U takes
    // UID). As in the C chain, an id of 0 means "not given": -U -u 0
    // takes UID.
    let env_ids = o.flag("env-ids");
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

    let verbosity = o.verbosity_flags();

    Ok(Config {
        notify: o.flag("notify"),
        verbosity,
        replace_socket: !o.flag("no-replace"),
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
