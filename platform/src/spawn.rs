//! Starting the program for a connection: fds 0 and 1 on the connection,
//! fd 2 inherited, an empty signal mask, SIGPIPE at its default, and an
//! environment prepared once at start-up and patched per connection.
//!
//! On Linux with glibc (x86_64, aarch64), `clone(CLONE_VM)` without waiting for the
//! exec (see spawn/clone_vm.rs: twice the connections/s of `posix_spawn` on
//! two CPUs); `posix_spawn` on other systems that have it (vfork semantics:
//! no copy of the server's memory); std's `Command` elsewhere (Android), or
//! on request with the `std-command-spawn` feature, which the benchmark
//! compares.

use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

cfg_if::cfg_if! {
    if #[cfg(any(feature = "std-command-spawn", target_os = "android"))] {
        #[path = "spawn/command.rs"]
        mod backend;
    } else if #[cfg(all(
        target_os = "linux",
        target_env = "gnu",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))] {
        // Not on musl: its clone() refuses CLONE_CHILD_CLEARTID (EINVAL),
        // which the launch slots depend on. musl gets posix_spawn, so the
        // test suite runs both backends (ci/test: glibc and musl).
        #[path = "spawn/clone_vm.rs"]
        mod backend;
    } else {
        #[path = "spawn/posix_spawn.rs"]
        mod backend;
    }
}

pub use backend::Program;

/// The name of the spawn mechanism in this build.
pub const MECHANISM: &str = backend::MECHANISM;

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
    base: Vec<CString>,
    vars: Vec<Var>,
    /// Pointers to `base`, then to the set `vars`, then null; rebuilt in
    /// place before each spawn.
    ptrs: Vec<*const libc::c_char>,
}

impl Environ {
    /// The server's environment without any of the `managed` names.
    pub fn inherit(managed: &[&str]) -> Environ {
        let base = std::env::vars_os()
            .filter(|(k, _)| !managed.iter().any(|m| OsStr::new(m) == k))
            .filter_map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                // The environment the server got cannot hold NUL bytes.
                CString::new(kv).ok()
            })
            .collect();
        Environ {
            base,
            vars: Vec::new(),
            ptrs: Vec::new(),
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
        self.base.iter().map(|c| c.as_bytes()).chain(
            self.vars
                .iter()
                .filter(|v| v.set)
                .map(|v| &v.buf[..v.buf.len() - 1]),
        )
    }

    /// A copy of the environment as it is now, for a child that reads it
    /// while `self` changes: the set variables are copied into `strings`,
    /// and `ptrs` becomes the null-terminated `envp` array. Both keep their
    /// capacity from one call to the next.
    #[allow(dead_code)] // Not every backend copies.
    fn render(&self, ptrs: &mut Vec<*const libc::c_char>, strings: &mut Vec<u8>) {
        strings.clear();
        for v in self.vars.iter().filter(|v| v.set) {
            strings.extend_from_slice(&v.buf);
        }
        ptrs.clear();
        ptrs.extend(self.base.iter().map(|c| c.as_ptr()));
        // Pointers are taken once `strings` no longer grows.
        let mut at = 0;
        for v in self.vars.iter().filter(|v| v.set) {
            ptrs.push(strings[at..].as_ptr().cast());
            at += v.buf.len();
        }
        ptrs.push(std::ptr::null());
    }

    /// The null-terminated `envp` array, valid until `self` is next changed.
    #[allow(dead_code)] // Not every backend takes a C array.
    fn envp(&mut self) -> *const *const libc::c_char {
        self.ptrs.clear();
        self.ptrs.extend(self.base.iter().map(|c| c.as_ptr()));
        self.ptrs.extend(
            self.vars
                .iter()
                .filter(|v| v.set)
                .map(|v| v.buf.as_ptr().cast::<libc::c_char>()),
        );
        self.ptrs.push(std::ptr::null());
        self.ptrs.as_ptr()
    }
}
