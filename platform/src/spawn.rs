//! Starting the program for a connection: fds 0 and 1 on the connection,
//! fd 2 inherited, an empty signal mask, SIGPIPE at its default, and an
//! environment prepared once at start-up and patched per connection.
//!
//! On Linux (x86_64, aarch64; glibc and musl), `clone(CLONE_VM)` without
//! waiting for the exec (see spawn/clone_vm.rs: twice the connections/s of
//! `posix_spawn` on two CPUs); `posix_spawn` on other systems that have it
//! (vfork semantics: no copy of the server's memory), or on request with
//! the `posix-spawn` feature, which ci/test uses to test that backend on
//! Linux too; std's `Command` elsewhere (Android), or on request with the
//! `std-command-spawn` feature, which the benchmark compares.

use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

cfg_if::cfg_if! {
    if #[cfg(any(feature = "std-command-spawn", target_os = "android"))] {
        // Builds each child's environment from `Environ::entries`.
        #[path = "spawn/command.rs"]
        mod backend;
    } else if #[cfg(all(
        target_os = "linux",
        any(target_env = "gnu", target_env = "musl"),
        any(target_arch = "x86_64", target_arch = "aarch64"),
        not(feature = "posix-spawn")
    ))] {
        // The system call is made directly (libc's clone() is not used:
        // musl's refuses CLONE_CHILD_CLEARTID, which the launch slots
        // depend on). Each child gets its own copy of the environment
        // (`Environ::render`, then the rendering moves into its slot).
        #[path = "spawn/clone_vm.rs"]
        mod backend;
    } else {
        #[path = "spawn/posix_spawn.rs"]
        mod backend;

        impl Environ {
            /// The null-terminated `envp` array, valid until `self` is next
            /// changed: posix_spawn returns only once the child has exec'd,
            /// so the rendering can stay here.
            fn envp(&mut self) -> *const *const libc::c_char {
                self.render();
                self.rendered.ptrs.as_ptr()
            }
        }
    }
}

pub use backend::Program;

/// The name of the spawn mechanism in this build.
pub const MECHANISM: &str = backend::MECHANISM;

/// Whether this build can keep a standby child on the listener, which
/// takes the next connection itself (`Program::arm`: clone_vm.rs). Where
/// it cannot, `arm` fails with `Unsupported` and the rest are no-ops. The
/// child reads SO_PEERCRED, the credentials backend wherever clone_vm is
/// built (Linux), unless the fallback is forced.
pub const STANDBY: bool = backend::STANDBY && crate::credentials::SUPPORTED;

/// Uids a standby child can count connections for (see `Program::arm`).
pub const STANDBY_UIDS: usize = 32;

/// The per-connection variables a standby child sets itself.
pub struct StandbyVars {
    pub euid: Slot,
    pub egid: Slot,
    pub connnum: Slot,
    pub path: Slot,
}

/// What a standby child did with the connection it was armed for.
#[derive(Debug)]
pub enum Taken {
    /// It accepted one and runs the program on it: from the client
    /// `uid`:`gid`, with `connnum` connections of that uid (this one too).
    Connection {
        pid: libc::pid_t,
        uid: libc::uid_t,
        gid: libc::gid_t,
        connnum: u32,
    },
    /// `accept` failed (for lack of descriptors, say); it exited.
    AcceptFailed(io::Error),
    /// The client's credentials could not be read; it closed the
    /// connection and exited.
    CredentialsFailed(io::Error),
}

/// The standby API where there is no standby child.
#[cfg(any(
    feature = "std-command-spawn",
    target_os = "android",
    not(all(
        target_os = "linux",
        any(target_env = "gnu", target_env = "musl"),
        any(target_arch = "x86_64", target_arch = "aarch64"),
        not(feature = "posix-spawn")
    ))
))]
mod no_standby {
    use std::io;
    use std::os::fd::BorrowedFd;

    use super::{Environ, Program, StandbyVars, Taken};

    impl Program {
        pub fn arm(
            &mut self,
            _listener: BorrowedFd<'_>,
            _env: &mut Environ,
            _vars: &StandbyVars,
            _counts: impl Iterator<Item = (libc::uid_t, u32)>,
        ) -> io::Result<libc::pid_t> {
            Err(io::ErrorKind::Unsupported.into())
        }
        pub fn standby_fd(&self) -> Option<BorrowedFd<'_>> {
            None
        }
        pub fn standby_report(&mut self) -> Option<Taken> {
            None
        }
        pub fn standby_accepted(&self) -> Option<libc::pid_t> {
            None
        }
        pub fn standby_waiting(&self) -> bool {
            false
        }
        pub fn standby_ended(&mut self, _uid: libc::uid_t) {}
        pub fn standby_reaped(&mut self, _pid: libc::pid_t) -> Option<Taken> {
            None
        }
        pub fn disarm(&mut self) -> Option<libc::pid_t> {
            None
        }
    }
}

fn cstring(bytes: Vec<u8>, what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// Turns `prog...` into C strings once.
fn c_argv(argv: &[OsString]) -> io::Result<Vec<CString>> {
    if argv.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no program given",
        ));
    }
    argv.iter()
        .map(|a| cstring(a.clone().into_vec(), "an argument"))
        .collect()
}

/// A handle on one per-connection variable of an [`Environ`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(usize);

struct Var {
    /// `NAME=value\0`.
    buf: Vec<u8>,
    name_len: usize,
    set: bool,
}

/// The children's environment: the server's own, minus the variables the
/// server manages, plus those variables as set for the current connection.
pub struct Environ {
    /// The inherited variables, each `NAME=value\0`, end to end.
    base: Vec<u8>,
    /// Where each inherited variable starts in `base`.
    base_at: Vec<usize>,
    vars: Vec<Var>,
    /// The environment as a C array, rebuilt before each spawn.
    #[cfg(not(any(feature = "std-command-spawn", target_os = "android")))]
    rendered: EnvBlock,
}

/// A self-contained copy of an [`Environ`]: the strings, and the
/// null-terminated `envp` array that points into them and nowhere else, so
/// a child can read it whatever happens to the `Environ` (and to `self`
/// as long as it is not changed or dropped: moving it moves no string).
#[cfg(not(any(feature = "std-command-spawn", target_os = "android")))]
#[derive(Default)]
struct EnvBlock {
    strings: Vec<u8>,
    ptrs: Vec<*const libc::c_char>,
}

impl Environ {
    /// The server's environment without any of the `managed` names.
    pub fn inherit(managed: &[&str]) -> Environ {
        let mut base = Vec::new();
        let mut base_at = Vec::new();
        for (k, v) in std::env::vars_os() {
            // The environment the server got cannot hold NUL bytes, but
            // what `set_var` put there since might.
            if managed.iter().any(|m| OsStr::new(m) == k)
                || k.as_bytes().contains(&0)
                || v.as_bytes().contains(&0)
            {
                continue;
            }
            base_at.push(base.len());
            base.extend_from_slice(k.as_bytes());
            base.push(b'=');
            base.extend_from_slice(v.as_bytes());
            base.push(0);
        }
        Environ {
            base,
            base_at,
            vars: Vec::new(),
            #[cfg(not(any(feature = "std-command-spawn", target_os = "android")))]
            rendered: EnvBlock::default(),
        }
    }

    /// Declares a per-connection variable, unset until [`Environ::set`].
    pub fn slot(&mut self, name: &str) -> Slot {
        let mut buf = Vec::with_capacity(name.len() + 64);
        buf.extend_from_slice(name.as_bytes());
        buf.push(b'=');
        self.vars.push(Var {
            buf,
            name_len: name.len(),
            set: false,
        });
        Slot(self.vars.len() - 1)
    }

    /// Sets `slot` to the text `write` produces. A NUL byte in it is an
    /// error and leaves the variable unset.
    pub fn set_with<F>(&mut self, slot: Slot, write: F) -> io::Result<()>
    where
        F: FnOnce(&mut Vec<u8>) -> io::Result<()>,
    {
        let var = &mut self.vars[slot.0];
        var.buf.truncate(var.name_len + 1);
        var.set = false;
        write(&mut var.buf)?;
        if var.buf[var.name_len + 1..].contains(&0) {
            var.buf.truncate(var.name_len + 1);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an environment value contains a NUL byte",
            ));
        }
        var.buf.push(0);
        var.set = true;
        Ok(())
    }

    pub fn set(&mut self, slot: Slot, value: &[u8]) -> io::Result<()> {
        self.set_with(slot, |buf| buf.write_all(value))
    }

    pub fn unset(&mut self, slot: Slot) {
        self.vars[slot.0].set = false;
    }

    /// `NAME=value` for every variable the child gets, in order.
    pub fn entries(&self) -> impl Iterator<Item = &[u8]> {
        let ends = self.base_at.iter().skip(1).copied();
        let ends = ends.chain(std::iter::once(self.base.len()));
        self.base_at
            .iter()
            .zip(ends)
            // Without the NUL byte that ends each one.
            .map(|(&start, end)| &self.base[start..end - 1])
            .chain(
                self.vars
                    .iter()
                    .filter(|v| v.set)
                    .map(|v| &v.buf[..v.buf.len() - 1]),
            )
    }

    /// Copies the environment as it is now into `self.rendered`: all the
    /// strings (one copy of `base`, then the set variables), then the
    /// pointers to them. The buffers keep their capacity from one call to
    /// the next.
    #[cfg(not(any(feature = "std-command-spawn", target_os = "android")))]
    fn render(&mut self) {
        let out = &mut self.rendered;
        out.strings.clear();
        out.strings.extend_from_slice(&self.base);
        for v in self.vars.iter().filter(|v| v.set) {
            out.strings.extend_from_slice(&v.buf);
        }
        // Pointers are taken once `strings` no longer grows.
        let start = out.strings.as_ptr();
        out.ptrs.clear();
        out.ptrs
            .extend(self.base_at.iter().map(|&at| start.wrapping_add(at).cast()));
        let mut at = self.base.len();
        for v in self.vars.iter().filter(|v| v.set) {
            out.ptrs.push(start.wrapping_add(at).cast());
            at += v.buf.len();
        }
        out.ptrs.push(std::ptr::null());
    }
}
