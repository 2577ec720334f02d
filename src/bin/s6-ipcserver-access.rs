//! s6-ipcserver-access (programs/access.rs).

use std::process::ExitCode;

use s6_ipcserver::programs::{self, access};

fn main() -> ExitCode {
    programs::main(access::NAME, access::parse, access::run)
}
