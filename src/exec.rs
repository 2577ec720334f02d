//! The end of every program that runs another: replace this process by
//! `prog...`, found in `PATH` as execvp does, with the environment
//! changed as said; if the exec fails, the error says why (exit 127 if
//! prog was not found, 126 otherwise).

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::error::Error;

/// A change to the environment prog gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvChange {
    Set(OsString, OsString),
    Unset(OsString),
}

/// Execs `argv` (at least prog) with `changes` applied in order over this
/// process's environment. Returns only on failure.
pub fn exec(argv: &[OsString], changes: &[EnvChange]) -> Error {
    let Some((prog, args)) = argv.split_first() else {
        return Error::Bug("exec with no program");
    };
    let mut cmd = Command::new(prog);
    cmd.args(args);
    for change in changes {
        match change {
            EnvChange::Set(name, value) => cmd.env(name, value),
            EnvChange::Unset(name) => cmd.env_remove(name),
        };
    }
    let source = cmd.exec();
    Error::Exec {
        prog: display(prog),
        source,
    }
}

/// A program name for a message.
fn display(prog: &OsStr) -> String {
    prog.to_string_lossy().into_owned()
}
