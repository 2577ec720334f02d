//! s6-accessrules-fs-from-cdb (programs/fs_from_cdb.rs).

use std::process::ExitCode;

use s6_ipcserver::programs::{self, fs_from_cdb};

fn main() -> ExitCode {
    programs::main(fs_from_cdb::NAME, fs_from_cdb::parse, fs_from_cdb::run)
}
