//! s6-ipcserver: parse the command line, run the server, exit with the code
//! the error decides.
//!
//! `no_main`: the C `main` below is the entry point, and std's start-up
//! (`lang_start`) is skipped. On this program's start-up path that start-up
//! is not free: on glibc it reads /proc/self/maps to find the main thread's
//! stack guard, maps and installs an alternate signal stack with SIGSEGV and
//! SIGBUS handlers, and polls fds 0 to 2 — about a dozen system calls and
//! 45,000 instructions before the first line of ours (callgrind). What it
//! provided is done here instead, or not needed:
//! - the arguments come from `argv` itself, on every platform;
//! - SIGPIPE is ignored first thing, as std would, so that a usage message
//!   written to a closed stderr is an EPIPE, not a death by signal;
//! - stdout is flushed before returning, as std's exit path would;
//! - fds 0 to 2 need no check: `detach_stdio` fills the slots itself;
//! - a main-thread stack overflow is a plain SIGSEGV rather than std's
//!   message (the server does not recurse).
#![no_main]

use std::ffi::{CStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStringExt;

use s6_ipcserver::{cli, listen, log, serve};

/// The C entry point. The return value is the exit code.
#[no_mangle]
pub extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    // A usage message to a closed stderr must not kill us; server::run
    // sets this again for itself.
    let _ = platform::signals::ignore_sigpipe();
    let args = args_of(argc, argv);
    let code = run(&args);
    let _ = std::io::stdout().flush();
    code
}

/// The arguments after the program name, copied out of `argv`.
fn args_of(argc: libc::c_int, argv: *const *const libc::c_char) -> Vec<OsString> {
    let argc = usize::try_from(argc).unwrap_or(0);
    let mut args = Vec::with_capacity(argc.saturating_sub(1));
    for i in 1..argc {
        // SAFETY: C's `main` contract: `argv` holds `argc` pointers to
        // NUL-terminated strings (then a null pointer), alive and unchanged
        // for the whole run; `i < argc`.
        let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
        args.push(OsString::from_vec(arg.to_bytes().to_vec()));
    }
    args
}

fn run(args: &[OsString]) -> libc::c_int {
    let result = match cli::parse(args, |name| std::env::var_os(name)) {
        Ok(cli::Parsed::Print(text)) => {
            print!("{text}");
            return 0;
        }
        Ok(cli::Parsed::Run(cfg)) => listen::bind(&cfg).and_then(|l| serve::run(cfg.serving(), l)),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            log::fatal("s6-ipcserver", &e);
            e.exit_code()
        }
    }
}
