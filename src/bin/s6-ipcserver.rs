//! s6-ipcserver: parse the command line, run the server, exit with the code
//! the error decides.

use std::io::Write;
use std::process::ExitCode;

use s6_ipcserver::{cli, listen, log, serve};

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let invoked = cli::invoked_name(args.next().as_deref(), "s6-ipcserver");
    let args: Vec<_> = args.collect();
    let result = match cli::parse(&args, |name| std::env::var_os(name)) {
        Ok(cli::Parsed::Print(text)) => {
            let text = cli::as_invoked(&text, "s6-ipcserver", &invoked);
            let _ = std::io::stdout().write_all(text.as_bytes());
            return ExitCode::SUCCESS;
        }
        Ok(cli::Parsed::Run(cfg)) => listen::reserve_inherited().and_then(|own_from| {
            // The lock on PATH.lock (with -d) is held while serving.
            let bound = listen::bind(&cfg)?;
            let result = serve::run(cfg.serving(), bound.listener, own_from);
            // A fatal error leaves no socket behind that refuses every
            // client; under the lock (-d) no other server can have put its
            // own there since. (SIGTERM leaves it, as the C server does.)
            if result.is_err() && bound.lock.is_some() {
                let _ = std::fs::remove_file(&cfg.path);
            }
            drop(bound.lock);
            result
        }),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::fatal("s6-ipcserver", &invoked, &e);
            // Exit codes are 100, 101 and 111 (error.rs).
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
