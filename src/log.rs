//! One line per message on stderr, written with a single write(2) so that
//! lines from the server never interleave with its children's. Each line
//! starts with the program's name.

use std::fmt::Arguments;
use std::io::Write;

/// How much a program says: `-q`, `-Q`, `-v` or `-v N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

impl Verbosity {
    /// `-v N` as the C programs read it: 0 quiet, 1 the default, 2 and
    /// above verbose.
    pub fn from_level(level: u32) -> Verbosity {
        match level {
            0 => Verbosity::Quiet,
            1 => Verbosity::Normal,
            _ => Verbosity::Verbose,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Log {
    pub program: &'static str,
    pub verbosity: Verbosity,
}

impl Log {
    fn line(&self, level: &str, args: Arguments<'_>) {
        let mut buf = Vec::with_capacity(128);
        // Writing to a Vec cannot fail.
        let _ = writeln!(buf, "{}: {level}: {args}", self.program);
        // Nothing useful can be done if stderr is gone.
        let _ = std::io::stderr().write_all(&buf);
    }

    /// A line at `level` (info, warning), written at verbosity `least`
    /// and above: for the programs whose lines do not follow the server's
    /// levels (s6-ipcserver-access logs allowed clients by default).
    pub fn at(&self, least: Verbosity, level: &str, args: Arguments<'_>) {
        if self.verbosity >= least {
            self.line(level, args);
        }
    }

    pub fn verbose(&self) -> bool {
        self.verbosity >= Verbosity::Verbose
    }

    /// An info line that ends with `bytes` as they are (a path need not
    /// be UTF-8).
    pub fn info_bytes(&self, text: &str, bytes: &[u8]) {
        if self.verbose() {
            let mut buf = Vec::with_capacity(64 + bytes.len());
            let _ = write!(buf, "{}: info: {text}", self.program);
            buf.extend_from_slice(bytes);
            buf.push(b'\n');
            let _ = std::io::stderr().write_all(&buf);
        }
    }

    pub fn info(&self, args: Arguments<'_>) {
        if self.verbose() {
            self.line("info", args);
        }
    }

    /// Warnings and denials: at the default verbosity and above.
    pub fn warn(&self, args: Arguments<'_>) {
        if self.verbosity >= Verbosity::Normal {
            self.line("warning", args);
        }
    }

    pub fn deny(&self, args: Arguments<'_>) {
        if self.verbosity >= Verbosity::Normal {
            self.line("info", args);
        }
    }
}

/// Prints a fatal error, and for a usage error the usage line after it
/// (naming the program as `invoked`), in one write; used by each `main`
/// whatever the verbosity.
pub fn fatal(program: &str, invoked: &str, e: &crate::error::Error) {
    if !e.says_something() {
        return;
    }
    let mut text = format!("{program}: {e}\n");
    if let Some(usage) = e.usage() {
        let usage = crate::getopt::as_invoked(usage, program, invoked);
        text.push_str(&format!("{program}: usage: {usage}\n"));
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}
