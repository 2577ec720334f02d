//! s6-accessrules-cdb-from-fs (programs/cdb_from_fs.rs).

use std::process::ExitCode;

use s6_ipcserver::programs::{self, cdb_from_fs};

fn main() -> ExitCode {
    programs::main(cdb_from_fs::NAME, cdb_from_fs::parse, cdb_from_fs::run)
}
