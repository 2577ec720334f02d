//! Binding a socket and dropping privileges, shared by s6-ipcserver and
//! s6-ipcserver-socketbinder: the errors they print, and a socket that is
//! never left behind by a failed start.

use std::path::Path;

use platform::privileges::Target;
use platform::socket::{self, BindError, BindOptions, Bound};

use crate::error::Error;

/// Binds `path` (with `-d`, under the lock on `PATH.lock`, which the
/// caller holds for as long as it serves).
pub fn bind(path: &Path, opts: BindOptions) -> Result<Bound, Error> {
    socket::bind_listener(path, opts).map_err(|e| {
        let path = path.display();
        match e {
            BindError::Sys(call, source) => {
                Error::sys(format!("unable to {call} at {path}"), source)
            }
            other => Error::Refused(format!("{path}: {other}")),
        }
    })
}

/// Drops privileges to `target` once `path` is bound; on failure removes
/// the socket again: bound a moment ago, by this process, nothing else can
/// be using it, and left behind it would only refuse connections.
pub fn drop_privileges(target: &Target, path: &Path) -> Result<(), Error> {
    platform::privileges::drop_to(target).map_err(|e| {
        let _ = std::fs::remove_file(path);
        let needs_root =
            e.source.raw_os_error() == Some(libc::EPERM) && !nix::unistd::geteuid().is_root();
        let hint = if needs_root {
            " (changing the uid, gid or groups needs root)"
        } else {
            ""
        };
        Error::sys(
            format!("unable to drop privileges{hint}: {}", e.step),
            e.source,
        )
    })
}
