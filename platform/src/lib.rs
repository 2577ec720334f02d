//! Everything s6-ipcserver does that differs between operating systems.
//!
//! The rest of the program calls these plain functions and never looks at
//! `cfg(target_os)`: each module picks its backend once, at compile time.

pub mod children;
pub mod credentials;
pub mod fd;
// Facts and controls for the tests and tools, never for the server: built
// only with `test-support` (platform/Cargo.toml says who enables it).
#[cfg(feature = "test-support")]
pub mod host;
pub mod privileges;
pub mod signals;
pub mod socket;
pub mod spawn;
mod sys;

// Most modules call it by this path, from before `sys` existed.
pub(crate) use sys::cvt;
