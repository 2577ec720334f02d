//! s6-ipcserver: binds a socket, drops privileges, and runs a program for
//! every client (programs/ipcserver.rs).

use std::process::ExitCode;

use s6_ipcserver::programs::{self, ipcserver};

fn main() -> ExitCode {
    programs::main(
        ipcserver::NAME,
        |args| ipcserver::parse(args, |name| std::env::var_os(name)),
        ipcserver::run,
    )
}
