use std::io::ErrorKind;
use std::process::ExitCode;

fn main() -> ExitCode {
    match portable_service::cli::run(std::env::args_os().skip(1)) {
        Ok(code) => code,
        Err(err) => {
            // A reader that stops early (`inspect | head`) is not a failure.
            let broken_pipe = err.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == ErrorKind::BrokenPipe)
            });
            if broken_pipe {
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
