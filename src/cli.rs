/*!
The command line. Without arguments the builder does what Nix runs it for:
build the image that `.attrs.json` describes. `inspect` and `verify` read
an image back.
*/

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::build;
use crate::image::{inspect, verify};

const USAGE: &str = "\
usage: portable-service-builder [build]
       portable-service-builder inspect IMAGE [--json]
       portable-service-builder verify IMAGE [--base BASE] [--report FILE]

  build    build the image described by .attrs.json ($NIX_ATTRS_JSON_FILE
           or $NIX_BUILD_TOP/.attrs.json); what Nix runs, and the default
  inspect  show what IMAGE holds: release data, the units portabled
           attaches, symlinks, store paths, compression (--json: as JSON)
  verify   check IMAGE against its closure description (NAR hashes,
           references) and portabled's rules; an extension image's base
           is checked too with --base; --report writes the result to FILE.
           Exit status 0 when all holds, 1 with one line per finding
";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Build,
    Inspect { image: PathBuf, json: bool },
    Verify { image: PathBuf, base: Option<PathBuf>, report: Option<PathBuf> },
    Help,
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command> {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        return Ok(Command::Build);
    };
    let mut rest: Vec<OsString> = args.collect();
    let mut flag = |name: &str| -> Result<Option<PathBuf>> {
        match rest.iter().position(|a| a == name) {
            Some(i) if i + 1 < rest.len() => {
                let value = rest.remove(i + 1);
                rest.remove(i);
                Ok(Some(PathBuf::from(value)))
            }
            Some(_) => bail!("{name} needs a value\n{USAGE}"),
            None => Ok(None),
        }
    };
    let command = match command.to_str().unwrap_or_default() {
        "build" => Command::Build,
        "inspect" => {
            let json = rest.iter().any(|a| a == "--json");
            rest.retain(|a| a != "--json");
            Command::Inspect { image: image(&mut rest)?, json }
        }
        "verify" => {
            let base = flag("--base")?;
            let report = flag("--report")?;
            Command::Verify { image: image(&mut rest)?, base, report }
        }
        "-h" | "--help" | "help" => Command::Help,
        other => bail!("unknown command '{other}'\n{USAGE}"),
    };
    if !rest.is_empty() {
        bail!("unexpected arguments {rest:?}\n{USAGE}");
    }
    Ok(command)
}

/// The one IMAGE argument.
fn image(rest: &mut Vec<OsString>) -> Result<PathBuf> {
    match rest.iter().position(|a| !a.to_string_lossy().starts_with("--")) {
        Some(i) => Ok(PathBuf::from(rest.remove(i))),
        None => bail!("an IMAGE is needed\n{USAGE}"),
    }
}

pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<ExitCode> {
    match parse(args)? {
        Command::Build => build::run()?,
        Command::Inspect { image, json } => inspect::run(&image, json)?,
        Command::Verify { image, base, report } => {
            if !verify::run(&image, base.as_deref(), report.as_deref())? {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Help => print!("{USAGE}"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Command> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn parses_commands() {
        assert_eq!(parse_str(&[]).unwrap(), Command::Build);
        assert_eq!(parse_str(&["build"]).unwrap(), Command::Build);
        assert_eq!(
            parse_str(&["inspect", "--json", "a.raw"]).unwrap(),
            Command::Inspect { image: "a.raw".into(), json: true }
        );
        assert_eq!(
            parse_str(&[
                "verify", "a.raw", "--base", "b.raw", "--report", "r"
            ])
            .unwrap(),
            Command::Verify {
                image: "a.raw".into(),
                base: Some("b.raw".into()),
                report: Some("r".into())
            }
        );
        for bad in [
            &["inspect"][..],
            &["verify", "a", "--base"],
            &["inspect", "a", "b"],
            &["x"],
        ] {
            assert!(parse_str(bad).is_err(), "{bad:?}");
        }
    }
}
