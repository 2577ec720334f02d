//! s6-ipcserverd: serves a listening socket it was given
//! (programs/ipcserverd.rs).

use std::process::ExitCode;

use s6_ipcserver::programs::{self, ipcserverd};

fn main() -> ExitCode {
    programs::main(ipcserverd::NAME, ipcserverd::parse, ipcserverd::run)
}
