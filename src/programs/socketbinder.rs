//! s6-ipcserver-socketbinder: binds a Unix socket and execs prog with it
//! on stdin (the first link of the C s6-ipcserver chain; in front of
//! s6-ipcserverd, s6-applyuidgid, s6-fdholder...). Binding is the same
//! code as s6-ipcserver's (bind.rs).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Command;
use platform::socket::BindOptions;

use crate::bind;
use crate::error::Error;
use crate::exec::exec;
use crate::getopt::{self, flag, value, Parsed};
use crate::numbers::perms;

pub const NAME: &str = "s6-ipcserver-socketbinder";

pub const USAGE: &str = "s6-ipcserver-socketbinder [ -d | -D ] [ -b backlog ] [ -M | -m ] \
[ -a perms ] [ -B ] path prog...";

pub fn command() -> Command {
    let cmd = getopt::program(
        NAME,
        USAGE,
        "Binds a Unix domain socket and execs a program with it on stdin",
        "Binds a Unix domain socket at PATH with the mode given, listens on it, and execs \
         PROG with the socket as its stdin (non-blocking unless -B), typically \
         s6-ipcserverd or a program that drops privileges first.",
    )
    .arg(flag("replace", 'd', "Remove an existing socket at PATH before binding, under the lock on PATH.lock, held until the exec (default); never anything but a socket").overrides_with("no-replace"))
    .arg(flag("no-replace", 'D', "Never remove PATH: binding fails if it exists").overrides_with("replace"))
    .arg(value("backlog", 'b', "backlog", "Listen backlog; 0: do not listen [default: SOMAXCONN]"))
    .arg(flag("stream", 'M', "A stream socket (SOCK_STREAM, default)").overrides_with("datagram"))
    .arg(flag("datagram", 'm', "A datagram socket (SOCK_DGRAM); give -b 0 with it").overrides_with("stream"))
    .arg(value("perms", 'a', "perms", "Mode of the socket file, octal 0000 to 0777, whatever the umask [default: 0777]"))
    .arg(flag("blocking", 'B', "Leave the socket blocking (default: non-blocking)"));
    getopt::help_and_version(cmd)
        .arg(
            getopt::path("path", "PATH", "The socket to bind")
                .value_hint(clap::ValueHint::FilePath),
        )
        .arg(getopt::prog(
            "The program, and its arguments, to exec with the socket on stdin",
        ))
}

pub struct Config {
    pub path: PathBuf,
    pub options: BindOptions,
    pub argv: Vec<OsString>,
}

pub fn parse(args: &[OsString]) -> Result<Parsed<Config>, Error> {
    let o = match getopt::parse(command(), args, USAGE)? {
        Parsed::Run(o) => o,
        Parsed::Print(text) => return Ok(Parsed::Print(text)),
    };
    let path = o.os("path").ok_or_else(|| o.bad("missing path and prog"))?;
    if path.is_empty() {
        return Err(o.bad("path is empty"));
    }
    let backlog = o.number("backlog", platform::socket::SOMAXCONN)?;
    Ok(Parsed::Run(Config {
        path: PathBuf::from(path),
        options: BindOptions {
            replace_socket: !o.flag("no-replace"),
            perms: o.last_valid("perms", perms)?.unwrap_or(0o777),
            backlog,
            listen: backlog != 0,
            datagram: o.flag("datagram"),
            nonblocking: !o.flag("blocking"),
        },
        argv: o.prog_argv()?,
    }))
}

pub fn run(cfg: Config) -> Result<(), Error> {
    // The lock on PATH.lock (with -d) is close-on-exec: it is released at
    // the exec, as the C binder's is.
    let bound = bind::bind(&cfg.path, cfg.options)?;
    platform::fd::hand_over(bound.listener, &[0]).map_err(|e| {
        let _ = std::fs::remove_file(&cfg.path);
        Error::sys("unable to put the socket on stdin", e)
    })?;
    Err(exec(&cfg.argv, &[]))
}
