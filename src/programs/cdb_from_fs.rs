//! s6-accessrules-cdb-from-fs: compiles a rules directory into the cdb file
//! s6-ipcserver-access reads with `-x`, replacing it atomically.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Command;

use crate::error::Error;
use crate::getopt::{self, value, Parsed};
use crate::log::{Log, Verbosity};
use crate::numbers::perms;
use crate::rules;

pub const NAME: &str = "s6-accessrules-cdb-from-fs";

pub const USAGE: &str = "s6-accessrules-cdb-from-fs [ -m mode ] cdbfile dir";

pub fn command() -> Command {
    let cmd = getopt::program(
        NAME,
        USAGE,
        "Compiles an access rules directory into a cdb file",
        "Compiles the rules directory DIR (uid/N/allow, gid/N/deny, .../env/NAME, .../exec) \
         into CDBFILE, for s6-ipcserver-access -x. The file is written under a temporary \
         name in the same directory, synced, and renamed over CDBFILE: a server reading the \
         old rules never sees a half-written file. It is created with mode 0600 unless -m \
         says otherwise; a server that dropped its privileges needs to be able to read it.",
    )
    .arg(value(
        "mode",
        'm',
        "mode",
        "Create CDBFILE with this octal mode, 0000 to 0777 [default: 0600]",
    ));
    getopt::help_and_version(cmd)
        .arg(
            getopt::path("cdbfile", "CDBFILE", "The cdb file to write")
                .value_hint(clap::ValueHint::FilePath),
        )
        .arg(
            getopt::path("dir", "DIR", "The rules directory to compile")
                .value_hint(clap::ValueHint::DirPath),
        )
}

pub struct Config {
    pub mode: u32,
    pub cdbfile: PathBuf,
    pub dir: PathBuf,
}

pub fn parse(args: &[OsString]) -> Result<Parsed<Config>, Error> {
    let o = match getopt::parse(command(), args, USAGE)? {
        Parsed::Run(o) => o,
        Parsed::Print(text) => return Ok(Parsed::Print(text)),
    };
    Ok(Parsed::Run(Config {
        mode: o
            .last_valid("mode", perms)?
            .unwrap_or(rules::DEFAULT_CDB_MODE),
        cdbfile: o.operand("cdbfile")?,
        dir: o.operand("dir")?,
    }))
}

pub fn run(cfg: Config) -> Result<(), Error> {
    let report = rules::cdb_from_fs(&cfg.dir, &cfg.cdbfile, cfg.mode).map_err(Error::Rules)?;
    let log = Log {
        program: NAME,
        verbosity: Verbosity::Normal,
    };
    for w in report.warnings {
        log.warn(format_args!("{w}"));
    }
    Ok(())
}
