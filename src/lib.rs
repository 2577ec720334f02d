//! The s6 local-service toolkit as a library. Each program is a module of
//! `programs/` (its command line, and what it runs) and a few lines of
//! `src/bin/`; the parts they share are named for what they are:
//!
//! - `getopt`: the command-line front end (POSIX getopt over clap);
//! - `numbers`: decimal ids, octal modes, gid lists;
//! - `error` and `log`: exit codes and messages;
//! - `bind`: binding a socket and dropping privileges;
//! - `server`: the serving loop of s6-ipcserver and s6-ipcserverd;
//! - `rules`: access rules, in a directory or a cdb file.
//!
//! Everything that differs between systems is in the `platform` crate.

pub mod bind;
pub mod error;
pub mod exec;
pub mod getopt;
pub mod log;
pub mod numbers;
pub mod programs;
pub mod rules;
pub mod server;
