//! s6-accessrules-fs-from-cdb: decompiles a rules cdb file into a new
//! rules directory (note the operands' order: the output comes first, as
//! in the C program).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Command;

use crate::error::Error;
use crate::getopt::{self, Parsed};
use crate::rules;

pub const NAME: &str = "s6-accessrules-fs-from-cdb";

pub const USAGE: &str = "s6-accessrules-fs-from-cdb dir cdbfile";

pub fn command() -> Command {
    getopt::help_and_version(getopt::program(
        NAME,
        USAGE,
        "Decompiles an access rules cdb file into a rules directory",
        "Decompiles CDBFILE, made by s6-accessrules-cdb-from-fs, into the directory DIR, \
         which must not exist; if decompiling fails, what was made of DIR is removed. DIR \
         then gives s6-ipcserver-access -i the same rules as CDBFILE gives -x.",
    ))
    .arg(
        getopt::path("dir", "DIR", "The rules directory to create")
            .value_hint(clap::ValueHint::DirPath),
    )
    .arg(
        getopt::path("cdbfile", "CDBFILE", "The cdb file to read")
            .value_hint(clap::ValueHint::FilePath),
    )
}

pub struct Config {
    pub dir: PathBuf,
    pub cdbfile: PathBuf,
}

pub fn parse(args: &[OsString]) -> Result<Parsed<Config>, Error> {
    let o = match getopt::parse(command(), args, USAGE)? {
        Parsed::Run(o) => o,
        Parsed::Print(text) => return Ok(Parsed::Print(text)),
    };
    Ok(Parsed::Run(Config {
        dir: o.operand("dir")?,
        cdbfile: o.operand("cdbfile")?,
    }))
}

pub fn run(cfg: Config) -> Result<(), Error> {
    rules::fs_from_cdb(&cfg.dir, &cfg.cdbfile).map_err(Error::Rules)
}
