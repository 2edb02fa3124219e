use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tagbump::cli::Cli::parse();
    match tagbump::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if tagbump::error::is_broken_pipe(&err) => ExitCode::SUCCESS,
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
