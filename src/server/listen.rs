//! Where s6-ipcserverd's listening socket comes from: the one it was
//! given, on its stdin or by systemd's socket activation. (s6-ipcserver
//! binds its own: bind.rs.) Either way stdin and stdout are released, and
//! serving (serve.rs) starts from a listening socket that no child can
//! inherit.

use std::ffi::OsString;
use std::os::fd::OwnedFd;

use platform::socket::{self, InheritError};

use crate::error::Error;

/// What s6-ipcserverd needs, said when it is not there.
pub const EXPECTED: &str = "s6-ipcserverd serves a listening Unix stream socket that \
another program bound and passed on its stdin (s6-ipcserver-socketbinder, s6-fdholder-retrieve) \
or as fd 3 (systemd); s6-ipcserver binds one itself";

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// s6-ipcserverd: takes over the listening socket on stdin, or on fd 3
/// when systemd's `LISTEN_PID` names this process and `LISTEN_FDS` is 1;
/// then releases stdin and stdout (all but the readiness line of `-1`).
pub fn inherit<E>(notify: bool, env: E) -> Result<OwnedFd, Error>
where
    E: Fn(&str) -> Option<OsString>,
{
    let (fd, name) = match activated(&env)? {
        true => (LISTEN_FDS_START, "fd 3 (LISTEN_FDS)"),
        false => (0, "stdin"),
    };
    let listener = socket::take_listener(fd).map_err(|e| match e {
        InheritError::Sys(what, source) => Error::sys(format!("{name}: {what}"), source),
        other => Error::NotListening(format!("{name} {other}: {EXPECTED}")),
    })?;
    platform::fd::detach_stdio(notify)
        .map_err(|e| Error::sys("unable to close stdin and stdout", e))?;
    Ok(listener)
}

/// Whether systemd passed the socket (sd_listen_fds(3)): `LISTEN_PID` is
/// this process, and `LISTEN_FDS` says how many descriptors follow fd 2.
/// This program serves one.
fn activated<E>(env: &E) -> Result<bool, Error>
where
    E: Fn(&str) -> Option<OsString>,
{
    let ours = env("LISTEN_PID")
        .and_then(|v| crate::numbers::decimal(v.as_encoded_bytes()))
        .is_some_and(|pid| pid == std::process::id());
    if !ours {
        return Ok(false);
    }
    // sd_listen_fds(3) reads an unset LISTEN_FDS as none.
    let Some(fds) = env("LISTEN_FDS") else {
        return Ok(false);
    };
    match crate::numbers::decimal(fds.as_encoded_bytes()) {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        Some(n) => Err(Error::NotListening(format!(
            "LISTEN_FDS is {n}: s6-ipcserverd serves exactly one socket"
        ))),
        None => Err(Error::NotListening(format!(
            "LISTEN_FDS is {:?}, not a number of descriptors",
            fds
        ))),
    }
}

/// Before anything is opened: the descriptors the parent passed on stay
/// where they are, for the children, and everything this program opens
/// comes after them (platform::fd::reserve_inherited).
pub fn reserve_inherited() -> Result<platform::fd::OwnFrom, Error> {
    platform::fd::reserve_inherited()
        .map_err(|e| Error::sys("unable to survey the inherited descriptors", e))
}
