//! s6-ipcclient (programs/ipcclient.rs).

use std::process::ExitCode;

use s6_ipcserver::programs::{self, ipcclient};

fn main() -> ExitCode {
    programs::main(ipcclient::NAME, ipcclient::parse, ipcclient::run)
}
