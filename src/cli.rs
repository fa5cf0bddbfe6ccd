/*!
The command line. Without arguments the builder does what Nix runs it for:
build the image that `.attrs.json` describes.
*/

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::attrs::Attrs;
use crate::build;

const USAGE: &str = "\
usage: portable-service-builder [build]

  build   build the image described by .attrs.json ($NIX_ATTRS_JSON_FILE
          or $NIX_BUILD_TOP/.attrs.json); what Nix runs, and the default
";

pub enum Command {
    Build,
    Help,
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command> {
    let args: Vec<OsString> = args.into_iter().collect();
    let args: Vec<&str> =
        args.iter().map(|a| a.to_str().unwrap_or("")).collect();
    match args.as_slice() {
        [] | ["build"] => Ok(Command::Build),
        ["-h" | "--help" | "help"] => Ok(Command::Help),
        _ => bail!("unexpected arguments {args:?}\n{USAGE}"),
    }
}

pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<ExitCode> {
    match parse(args)? {
        Command::Build => build::run(&Attrs::locate()?)?,
        Command::Help => print!("{USAGE}"),
    }
    Ok(ExitCode::SUCCESS)
}
