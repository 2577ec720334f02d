//! s6-ipcserverd: the serving half on its own. Parse the command line, take
//! over the listening socket, serve; exit with the code the error decides.

use std::io::Write;
use std::process::ExitCode;

use s6_ipcserver::{cli, listen, log, serve};

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    let invoked = cli::invoked_name(args.next().as_deref(), "s6-ipcserverd");
    let args: Vec<_> = args.collect();
    let result = match cli::parse_d(&args) {
        Ok(cli::Parsed::Print(text)) => {
            let text = cli::as_invoked(&text, "s6-ipcserverd", &invoked);
            let _ = std::io::stdout().write_all(text.as_bytes());
            return ExitCode::SUCCESS;
        }
        Ok(cli::Parsed::Run(cfg)) => listen::reserve_inherited().and_then(|own_from| {
            let listener = listen::inherit(cfg.notify.is_some(), |name| std::env::var_os(name))?;
            serve::run(cfg, listener, own_from)
        }),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::fatal("s6-ipcserverd", &invoked, &e);
            // The exit codes are 100, 101 and 111 (error.rs).
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
