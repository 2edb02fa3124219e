use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tagbump::cli::Cli::parse();
    let update_json = match &cli.command {
        tagbump::cli::Command::Update(args) => {
            Some(args.output == tagbump::cli::OutputFormat::Json)
        }
        _ => None,
    };
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
            // `update`: the error where its results would have gone, for a
            // pipeline that reads them: stdout's JSON and the job summary.
            let failure = tagbump::report::JsonFailure::new(&err);
            // A fleet run with failed images has written its own report,
            // one row per image, the failures among them.
            let reported = tagbump::error::kind(&err) == tagbump::error::Kind::Partial;
            let update_json = update_json.filter(|_| !reported);
            if update_json == Some(true) {
                if let Ok(text) = serde_json::to_string_pretty(&failure) {
                    tagbump::say!("{text}");
                }
            }
            let ci = tagbump::ci::detect(&tagbump::env::process_env);
            if let (Some(_), Some(path)) = (update_json, &ci.github_step_summary) {
                let _ = tagbump::ci::write_step_summary(path, &failure.markdown());
            }
            // In GitHub Actions, also an annotation on the run's page; on
            // stderr, so stdout's results stay parseable (the runner reads
            // workflow commands from both).
            if ci.system == Some(tagbump::ci::System::GitHub) {
                tagbump::note!(
                    "{}",
                    tagbump::ci::github_error_annotation(&failure.error.message)
                );
            }
            ExitCode::from(tagbump::error::kind(&err).exit_code())
        }
    }
}
