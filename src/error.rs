//! The binary's one error type; the exit code of every failure is decided
//! here and nowhere else.

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// The command line is wrong: the program's usage line, exit 100.
    /// A bad command line: what is wrong, then the usage line.
    Usage { usage: &'static str, why: String },
    /// A variable the program reads is missing or invalid (`-U`'s UID,
    /// `${PROTO}REMOTEEUID`...): exit 100.
    Env { name: String, problem: &'static str },
    /// The client is refused (s6-ipcserver-access, s6-connlimit): exit 1,
    /// with the reason if the program says one at its verbosity.
    Denied(Option<String>),
    /// The exec of `prog` failed: exit 127 if it was not found, 126
    /// otherwise, as a shell does.
    Exec { prog: String, source: io::Error },
    /// A system call failed: exit 111. `what` says what was being done.
    Sys { what: String, source: io::Error },
    /// s6-ipcserverd was given no listening Unix stream socket to serve:
    /// exit 100, as the C program.
    NotListening(String),
    /// A refusal that is not a system call failing (a non-socket at path,
    /// a path too long): exit 111, like the bind it stands for.
    Refused(String),
    /// The access rules could not be read, or are wrong: exit 111, or 100
    /// for a rule the C compiler refuses as too big.
    Rules(crate::rules::RulesError),
    /// An internal inconsistency: exit 101.
    Bug(&'static str),
}

impl Error {
    pub fn env(name: impl Into<String>, problem: &'static str) -> Error {
        Error::Env {
            name: name.into(),
            problem,
        }
    }

    pub fn sys(what: impl Into<String>, source: io::Error) -> Error {
        Error::Sys {
            what: what.into(),
            source,
        }
    }

    /// Whether there is a message to print (a denial may have none).
    pub fn says_something(&self) -> bool {
        !matches!(self, Error::Denied(None))
    }

    /// The usage line to print after the message, for a usage error.
    pub fn usage(&self) -> Option<&'static str> {
        match self {
            Error::Usage { usage, .. } => Some(usage),
            _ => None,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Denied(_) => 1,
            Error::Usage { .. } | Error::Env { .. } | Error::NotListening(_) => 100,
            Error::Exec { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            Error::Exec { .. } => 126,
            Error::Rules(crate::rules::RulesError::EnvTooBig { .. }) => 100,
            Error::Sys { .. } | Error::Refused(_) | Error::Rules(_) => 111,
            Error::Bug(_) => 101,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The usage line follows on a line of its own (log::fatal).
            Error::Usage { why, .. } => f.write_str(why),
            Error::Env { name, problem } => {
                write!(f, "fatal: environment variable {name} {problem}")
            }
            Error::Sys { what, source } => write!(f, "fatal: {what}: {}", Os(source)),
            Error::Exec { prog, source } => {
                write!(f, "fatal: unable to exec {prog}: {}", Os(source))
            }
            Error::Denied(Some(why)) => write!(f, "fatal: {why}"),
            Error::Rules(e) => write!(f, "fatal: {e}"),
            Error::Denied(None) => Ok(()),
            Error::Refused(why) | Error::NotListening(why) => write!(f, "fatal: {why}"),
            Error::Bug(what) => write!(f, "fatal: internal error: {what}"),
        }
    }
}

/// A system error as the C programs print it, the C library's
/// `strerror` text (`No such file or directory`), without the
/// ` (os error 2)` that `io::Error` adds to it.
pub struct Os<'a>(pub &'a io::Error);

impl fmt::Display for Os<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        match self.0.raw_os_error() {
            Some(code) => {
                let suffix = format!(" (os error {code})");
                f.write_str(text.strip_suffix(&suffix).unwrap_or(&text))
            }
            None => f.write_str(&text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_errors_read_as_the_c_programs_print_them() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(Os(&e).to_string(), "No such file or directory");
        let e = Error::sys("unable to bind", io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(e.to_string(), "fatal: unable to bind: Permission denied");
        // The C library's words, not another table's (glibc and musl agree
        // on this one; nix's table says "Try again").
        let e = io::Error::from_raw_os_error(libc::EAGAIN);
        assert_eq!(Os(&e).to_string(), "Resource temporarily unavailable");
        let e = io::Error::new(
            io::ErrorKind::InvalidInput,
            "an argument contains a NUL byte",
        );
        assert_eq!(Os(&e).to_string(), "an argument contains a NUL byte");
    }
}
