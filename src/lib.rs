//! s6-ipcserver as a library: the binary is a thin `main` over it, and the
//! man page generator and the fuzz targets reuse its command-line parser.

pub mod cli;
pub mod error;
pub mod listen;
pub mod log;
pub mod serve;
pub mod table;
