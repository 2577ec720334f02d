//! The serving half, shared by s6-ipcserver and s6-ipcserverd: where the
//! listening socket comes from (`listen`), the event loop (`serve`), and
//! the connection table it keeps (`table`).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::Error;
use crate::getopt::Options;
use crate::log::Verbosity;

pub mod listen;
pub mod serve;
pub mod table;

pub use listen::{inherit, reserve_inherited};
pub use serve::run;

/// The C program's defaults and limits.
pub const DEFAULT_MAXCONN: u32 = 40;
pub const DEFAULT_LOCALMAXCONN: u32 = 40;
pub const MAXCONN_LIMIT: u32 = 1000;

/// What serving needs, whichever program serves: validated and clamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// The name messages start with.
    pub program: &'static str,
    /// For `-1`: what to write to stdout before closing it.
    pub notify: Option<Vec<u8>>,
    /// For the `starting` line: the path bound and the listen backlog, if
    /// this program bound it.
    pub listening_on: Option<(PathBuf, u32)>,
    /// Variables that never reach a child (beside those the server sets).
    pub unset: &'static [&'static str],
    pub verbosity: Verbosity,
    pub lookup: bool,
    pub maxconn: u32,
    pub localmaxconn: u32,
    pub argv: Vec<OsString>,
}

/// `-c` and `-C`, clamped as the C program clamps them.
pub fn limits(o: &Options, lookup: bool) -> Result<(u32, u32), Error> {
    let maxconn = o
        .number("maxconn", DEFAULT_MAXCONN)?
        .clamp(1, MAXCONN_LIMIT);
    let localmaxconn = if lookup {
        o.number("localmaxconn", DEFAULT_LOCALMAXCONN)?
            .clamp(1, maxconn)
    } else {
        o.number("localmaxconn", DEFAULT_LOCALMAXCONN)?; // still validated
        maxconn
    };
    Ok((maxconn, localmaxconn))
}
