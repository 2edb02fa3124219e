use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tagbump::cli::Cli::parse();
    match tagbump::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if tagbump::error::is_broken_pipe(&err) => ExitCode::SUCCESS,
        // Stopped by a signal, which may have failed a system call here
        // first: the handler's thread reports it, removes the clones and
        // exits (143); this thread only waits for it.
        Err(_) if tagbump::interrupt::stopping() => {
            std::thread::sleep(std::time::Duration::from_secs(10));
            ExitCode::from(1)
        }
        Err(err) => {
            // Scrubbed: a library may echo something it was given.
            tagbump::note!("error: {}", tagbump::secret::scrub(&format!("{err:#}")));
            for hint in tagbump::error::hints(&err) {
                tagbump::note!("hint: {}", tagbump::secret::scrub(hint));
            }
            // In GitHub Actions, also an annotation on the run's page.
            let ci = tagbump::ci::detect(&tagbump::settings::process_env);
            if ci.system == Some(tagbump::ci::System::GitHub) {
                let message = tagbump::secret::scrub(&format!("{err:#}"));
                tagbump::say!("{}", tagbump::ci::github_error_annotation(&message));
            }
            ExitCode::from(tagbump::error::kind(&err).exit_code())
        }
    }
}
