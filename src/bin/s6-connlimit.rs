//! s6-connlimit (programs/connlimit.rs).

use std::process::ExitCode;

use s6_ipcserver::programs::{self, connlimit};

fn main() -> ExitCode {
    programs::main(connlimit::NAME, connlimit::parse, connlimit::run)
}
