//! One module per program: its command line (the clap definition that
//! `--help`, the man page and the completions come from, and the checks
//! that turn it into what the program runs) and what it runs. Every
//! `main` is [`main`] over one of them.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use crate::error::Error;
use crate::getopt::{self, Parsed};

pub mod access;
pub mod cdb_from_fs;
pub mod connlimit;
pub mod fs_from_cdb;
pub mod ipcclient;
pub mod ipcserver;
pub mod ipcserverd;
pub mod socketbinder;

macro_rules! program {
    ($module:ident) => {
        Program {
            name: $module::NAME,
            usage: $module::USAGE,
            command: $module::command,
        }
    };
}

/// What the documentation generator needs of each program.
pub struct Program {
    /// The C program's name, and the cargo binary's.
    pub name: &'static str,
    pub usage: &'static str,
    pub command: fn() -> clap::Command,
}

/// Every program of the toolkit, in the order the README lists them.
pub const ALL: &[Program] = &[
    program!(ipcserver),
    program!(ipcserverd),
    program!(socketbinder),
    program!(access),
    program!(connlimit),
    program!(ipcclient),
    program!(cdb_from_fs),
    program!(fs_from_cdb),
];

/// What every program's `main` does: parse the command line (without
/// argv[0]) with `parse`, print what `--help` or `--version` asked for,
/// or `run` what was parsed; on an error, print it (naming the program as
/// it was invoked in usage lines) and exit with its code.
pub fn main<T>(
    program: &'static str,
    parse: impl FnOnce(&[OsString]) -> Result<Parsed<T>, Error>,
    run: impl FnOnce(T) -> Result<(), Error>,
) -> ExitCode {
    let mut args = std::env::args_os();
    let invoked = getopt::invoked_name(args.next().as_deref(), program);
    let args: Vec<_> = args.collect();
    let result = match parse(&args) {
        Ok(Parsed::Print(text)) => {
            let text = getopt::as_invoked(&text, program, &invoked);
            let _ = std::io::stdout().write_all(text.as_bytes());
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Run(parsed)) => run(parsed),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::log::fatal(program, &invoked, &e);
            ExitCode::from(e.exit_code())
        }
    }
}
