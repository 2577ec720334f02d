//! s6-ipcserver-socketbinder (programs/socketbinder.rs).

use std::process::ExitCode;

use s6_ipcserver::programs::{self, socketbinder};

fn main() -> ExitCode {
    programs::main(socketbinder::NAME, socketbinder::parse, socketbinder::run)
}
