//! s6-ipcserverd: the serving half on its own, for a listening socket
//! another program bound (s6-ipcserver-socketbinder, s6-fdholder-retrieve,
//! systemd's socket activation).

use std::ffi::OsString;

use clap::Command;

use crate::error::Error;
use crate::getopt::{self, flag, value, Options, Parsed};
use crate::log::Verbosity;
use crate::numbers::decimal;
use crate::server::{self, Serving};

pub const NAME: &str = "s6-ipcserverd";

pub const USAGE: &str = "s6-ipcserverd [ -1 ] [ -v verbosity ] [ -P | -p ] [ -c maxconn ] \
[ -C localmaxconn ] prog...";

/// The clap definition: the source of `--help`, the man page and the
/// completions.
pub fn command() -> Command {
    let cmd = getopt::program(
        NAME,
        USAGE,
        "Serves a listening Unix domain socket: the serving half of s6-ipcserver",
        "Serves the listening Unix stream socket on its stdin (or, under systemd socket \
         activation, on fd 3): for every client that connects, spawns PROG with its stdin \
         and stdout on the connection and the client's effective uid and gid in \
         IPCREMOTEEUID and IPCREMOTEEGID. Binding and dropping privileges are other \
         programs' work (s6-ipcserver-socketbinder, s6-applyuidgid, s6-fdholder-retrieve, \
         systemd).",
    )
    .arg(flag("notify", '1', "Write a newline to stdout once connections are accepted, then close stdout"))
    .arg(value("verbosity", 'v', "verbosity", "0: fatal errors only; 1: warnings and denials too (default); 2: every connection, exit and status"))
    .arg(flag("no-lookup", 'P', "Do not look up client credentials; IPCREMOTEEUID and IPCREMOTEEGID are unset").overrides_with("lookup"))
    .arg(flag("lookup", 'p', "Look up client credentials (default)").overrides_with("no-lookup"))
    .arg(value("maxconn", 'c', "maxconn", "Serve at most maxconn clients at once; 0 means 1, above 1000 means 1000 [default: 40]"))
    .arg(value("localmaxconn", 'C', "localmaxconn", "Serve at most localmaxconn clients of one uid at once; 0 means 1, never above maxconn [default: 40]"));
    getopt::help_and_version(cmd).arg(getopt::prog(
        "The program, and its arguments, to run for each connection",
    ))
}

/// Parses the command line (without argv[0]).
pub fn parse(args: &[OsString]) -> Result<Parsed<Serving>, Error> {
    match getopt::parse(command(), args, USAGE)? {
        Parsed::Run(o) => serving(&o).map(Parsed::Run),
        Parsed::Print(text) => Ok(Parsed::Print(text)),
    }
}

/// Takes over the listening socket it was given and serves it until a
/// signal ends it.
pub fn run(cfg: Serving) -> Result<(), Error> {
    let own_from = server::reserve_inherited()?;
    let listener = server::inherit(cfg.notify.is_some(), |name| std::env::var_os(name))?;
    server::run(cfg, listener, own_from)
}

fn serving(o: &Options) -> Result<Serving, Error> {
    let argv = o.prog_argv()?;
    let lookup = !o.flag("no-lookup");
    let (maxconn, localmaxconn) = server::limits(o, lookup)?;
    let verbosity = Verbosity::from_level(o.last_valid("verbosity", decimal)?.unwrap_or(1));
    Ok(Serving {
        program: NAME,
        notify: o.flag("notify").then(|| b"\n".to_vec()),
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
