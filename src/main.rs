//! s6-ipcserver: parse the command line, run the server, exit with the code
//! the error decides.

use std::process::ExitCode;

use s6_ipcserver::{cli, log, server};

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let result = match cli::parse(&args, |name| std::env::var_os(name)) {
        Ok(cli::Parsed::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(cli::Parsed::Run(cfg)) => server::run(cfg),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::fatal(&e);
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
