//! s6-ipcclient: the UCSPI client. Connects to a Unix socket and execs
//! prog with the connection on fds 6 (read) and 7 (write).

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use clap::Command;

use crate::error::Error;
use crate::exec::{exec, EnvChange};
use crate::getopt::{self, flag, value, Parsed};
use crate::log::{Log, Verbosity};

pub const NAME: &str = "s6-ipcclient";

pub const USAGE: &str =
    "s6-ipcclient [ -q | -Q | -v ] [ -p bindpath ] [ -l localname ] path prog...";

pub fn command() -> Command {
    let cmd = getopt::program(
        NAME,
        USAGE,
        "UCSPI client for Unix domain sockets",
        "Connects to the Unix domain socket at PATH and execs PROG with descriptor 6 reading \
         from the connection and descriptor 7 writing to it, PROTO set to IPC and IPCLOCALPATH \
         to the client's own address (the -l value, the -p path, or empty).",
    )
    .arg(flag("quiet", 'q', "Log fatal errors only").overrides_with_all(["normal", "verbose"]))
    .arg(flag("normal", 'Q', "Log warnings too (default)").overrides_with_all(["quiet", "verbose"]))
    .arg(flag("verbose", 'v', "Also say when connected").overrides_with_all(["quiet", "normal"]))
    .arg(
        value(
            "bindpath",
            'p',
            "bindpath",
            "Bind the client's socket to bindpath before connecting; it is never removed",
        )
        .value_hint(clap::ValueHint::FilePath),
    )
    .arg(
        value(
            "localname",
            'l',
            "localname",
            "Set IPCLOCALPATH to localname",
        )
        .value_hint(clap::ValueHint::Other),
    );
    getopt::help_and_version(cmd)
        .arg(
            getopt::path("path", "PATH", "The socket to connect to")
                .value_hint(clap::ValueHint::FilePath),
        )
        .arg(getopt::prog(
            "The program, and its arguments, to exec once connected",
        ))
}

pub struct Config {
    pub verbosity: Verbosity,
    pub bindpath: Option<OsString>,
    pub localname: Option<OsString>,
    pub path: OsString,
    pub argv: Vec<OsString>,
}

pub fn parse(args: &[OsString]) -> Result<Parsed<Config>, Error> {
    let o = match getopt::parse(command(), args, USAGE)? {
        Parsed::Run(o) => o,
        Parsed::Print(text) => return Ok(Parsed::Print(text)),
    };
    let path = o
        .os("path")
        .ok_or_else(|| o.bad("missing path and prog"))?
        .to_os_string();
    if path.is_empty() {
        return Err(o.bad("path is empty"));
    }
    let verbosity = o.verbosity_flags();
    Ok(Parsed::Run(Config {
        verbosity,
        bindpath: o.os("bindpath").map(|p| p.to_os_string()),
        localname: o.os("localname").map(|p| p.to_os_string()),
        argv: o.prog_argv()?,
        path,
    }))
}

pub fn run(cfg: Config) -> Result<(), Error> {
    let socket = platform::socket::connect(&cfg.path, cfg.bindpath.as_deref()).map_err(|e| {
        let (what, path) = match e.step {
            platform::socket::ConnectStep::Bind => ("bind socket to", cfg.bindpath.as_deref()),
            platform::socket::ConnectStep::Connect => ("connect to", Some(cfg.path.as_os_str())),
        };
        let path = path
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        Error::sys(format!("unable to {what} {path}"), e.source)
    })?;
    let log = Log {
        program: NAME,
        verbosity: cfg.verbosity,
    };
    log.info_bytes("connected to ", cfg.path.as_bytes());
    platform::fd::hand_over(socket, &[6, 7])
        .map_err(|e| Error::sys("unable to put the connection on fds 6 and 7", e))?;
    let local = cfg.localname.or(cfg.bindpath).unwrap_or_default();
    let env = [
        EnvChange::Set("PROTO".into(), "IPC".into()),
        EnvChange::Set("IPCLOCALPATH".into(), local),
    ];
    Err(exec(&cfg.argv, &env))
}
