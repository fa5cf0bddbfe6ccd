use std::process::ExitCode;

fn main() -> ExitCode {
    match portable_service::cli::run(std::env::args_os().skip(1)) {
        Ok(code) => code,
        Err(err) => {
            // A reader that stops early (`inspect | head`) is not a failure.
            if portable_service::pipe::closed(&err) {
                return ExitCode::SUCCESS;
            }
            // Messages quote names from images: no raw control bytes.
            let message = format!("{err:#}");
            eprintln!(
                "portable-service-builder: error: {}",
                portable_service::text::escape_message(&message)
            );
            ExitCode::from(2)
        }
    }
}
