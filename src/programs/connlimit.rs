//! s6-connlimit: refuses a client whose connection count is over the
//! limit its rules gave it, or execs prog.

use std::ffi::OsString;

use clap::Command;

use crate::error::Error;
use crate::exec::exec;
use crate::getopt::{self, Parsed};
use crate::numbers::decimal;

pub const NAME: &str = "s6-connlimit";

pub const USAGE: &str = "s6-connlimit prog...";

pub fn command() -> Command {
    getopt::help_and_version(getopt::program(
        NAME,
        USAGE,
        "Refuses a client over its connection limit",
        "Reads PROTO, then ${PROTO}CONNNUM (this client's connections, the new one included, \
         as s6-ipcserver sets IPCCONNNUM) and ${PROTO}CONNMAX (a limit, typically set by an \
         access rule's env/ directory). If CONNNUM is above CONNMAX, exits 1 with a message; \
         otherwise, or if CONNMAX is unset, execs PROG. IPCCONNMAX=N admits N connections \
         of one uid at once.",
    ))
    .arg(getopt::prog(
        "The program, and its arguments, to exec if the client is admitted",
    ))
}

/// What was parsed: prog and its arguments.
pub struct Config {
    pub argv: Vec<OsString>,
}

pub fn parse(args: &[OsString]) -> Result<Parsed<Config>, Error> {
    match getopt::parse(command(), args, USAGE)? {
        Parsed::Run(o) => Ok(Parsed::Run(Config {
            argv: o.prog_argv()?,
        })),
        Parsed::Print(text) => Ok(Parsed::Print(text)),
    }
}

pub fn run(cfg: Config) -> Result<(), Error> {
    check(|name| std::env::var_os(name))?;
    Err(exec(&cfg.argv, &[]))
}

/// The decision, from the environment `env` reads. As the C program
/// (s6 2.11): PROTO must be set and non-empty, and ${PROTO}CONNNUM set and
/// decimal, whether or not a limit is set; the message quotes CONNMAX as
/// it was written.
pub fn check(env: impl Fn(&str) -> Option<OsString>) -> Result<(), Error> {
    let proto = env("PROTO").ok_or_else(|| Error::env("PROTO", "is not set"))?;
    if proto.is_empty() {
        return Err(Error::env("PROTO", "is empty"));
    }
    let proto = proto.to_string_lossy();
    let number = |suffix: &str| -> Result<Option<(u32, OsString)>, Error> {
        let name = format!("{proto}{suffix}");
        match env(&name) {
            None => Ok(None),
            Some(v) => decimal(v.as_encoded_bytes())
                .map(|n| Some((n, v)))
                .ok_or_else(|| Error::env(name, "is not a decimal number")),
        }
    };
    let (num, _) =
        number("CONNNUM")?.ok_or_else(|| Error::env(format!("{proto}CONNNUM"), "is not set"))?;
    // No limit set: nothing more to check.
    let Some((max, written)) = number("CONNMAX")? else {
        return Ok(());
    };
    if num > max {
        return Err(Error::Denied(Some(format!(
            "number of connections from this client limited to {}",
            written.to_string_lossy()
        ))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn decide(vars: &[(&str, &str)]) -> Result<(), Error> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        check(|name| map.get(name).cloned())
    }

    #[test]
    fn the_new_connection_counts_so_max_n_admits_n() {
        let at = |n: &str| decide(&[("PROTO", "IPC"), ("IPCCONNNUM", n), ("IPCCONNMAX", "2")]);
        assert!(at("1").is_ok());
        assert!(at("2").is_ok());
        let e = at("3").unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.to_string(),
            "fatal: number of connections from this client limited to 2"
        );
    }

    #[test]
    fn without_a_limit_anything_goes_and_bad_values_are_named() {
        assert!(decide(&[("PROTO", "UNIX"), ("UNIXCONNNUM", "7")]).is_ok());
        // CONNNUM is checked even without a limit, as in C.
        let e = decide(&[("PROTO", "UNIX"), ("UNIXCONNNUM", "x")]).unwrap_err();
        assert_eq!(e.exit_code(), 100);
        let e = decide(&[("PROTO", "UNIX")]).unwrap_err();
        assert!(e.to_string().contains("UNIXCONNNUM is not set"), "{e}");
        let e = decide(&[("PROTO", ""), ("CONNNUM", "3"), ("CONNMAX", "2")]).unwrap_err();
        assert_eq!(e.exit_code(), 100);
        let e = decide(&[("PROTO", "UNIX"), ("UNIXCONNMAX", "2")]).unwrap_err();
        assert_eq!(
            (
                e.exit_code(),
                e.to_string().contains("UNIXCONNNUM is not set")
            ),
            (100, true)
        );
        let e = decide(&[("PROTO", "IPC"), ("IPCCONNNUM", "1"), ("IPCCONNMAX", "-1")]).unwrap_err();
        assert_eq!(
            (e.exit_code(), e.to_string().contains("IPCCONNMAX")),
            (100, true)
        );
        let e = decide(&[]).unwrap_err();
        assert_eq!(
            (e.exit_code(), e.to_string().contains("PROTO")),
            (100, true)
        );
    }
}
