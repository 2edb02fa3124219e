use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tagbump::cli::Cli::parse();
    match tagbump::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if tagbump::error::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            if let Some(hint) = tagbump::error::hint(&err) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(tagbump::error::kind(&err).exit_code())
        }
    }
}
