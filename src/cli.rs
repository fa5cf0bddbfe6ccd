/*!
The command line. Without arguments the builder does what Nix runs it for:
the job that `.attrs.json` describes. `inspect` and `verify` read an image
back, and `sbom` writes its CycloneDX document; `sign` signs a disk image,
outside Nix, where the key is; `publish` adds releases to a feed that
hosts follow.
*/

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::builder;
use crate::ddi::signature::{Openssl, Signer};
use crate::image::{inspect, sbom, sign, verify};
use crate::publish;

const USAGE: &str = "\
usage: portable-service-builder [build]
       portable-service-builder inspect IMAGE [--json]
       portable-service-builder verify IMAGE [--base BASE] [--certificate CERT.pem] [--report FILE]
       portable-service-builder sbom IMAGE [--output FILE]
       portable-service-builder sign IMAGE --key KEY.pem --certificate CERT.pem --output OUT.raw [--passin ARG]
       portable-service-builder publish DIR [RELEASE|FILE...] [--keep N] [--gpg-key ID [--gpg-homedir DIR]]

  build    do the job .attrs.json describes ($NIX_ATTRS_JSON_FILE or
           $NIX_BUILD_TOP/.attrs.json): what Nix runs, and the default
  inspect  show what IMAGE holds: release data, the units portabled
           attaches, symlinks, store paths, compression, and a disk image's
           partitions and root hash (--json: as JSON)
  verify   check IMAGE against its manifest (NAR hashes,
           references) and portabled's rules, and a disk image's hash tree;
           an extension image's base is checked too with --base; with
           --certificate, a disk image's signature; --report writes the
           result to FILE. Exit status 0 when all holds, 1 with one line
           per finding, 2 on an error
  sbom     write IMAGE's CycloneDX 1.6 SBOM (JSON) to standard output, or
           to FILE: its store paths with their hashes, references and
           licences, from the manifest; no timestamp unless
           SOURCE_DATE_EPOCH is set
  sign     write OUT.raw: the disk image IMAGE, which must pass verify,
           with a signature of its root hash by KEY.pem (with `openssl`;
           --passin as openssl takes it, for an encrypted key) and
           CERT.pem, its certificate and no other
  publish  add releases (directories with a SHA256SUMS, as passthru.release
           builds them) or files to the feed DIR, which a web server serves
           to hosts that follow it with systemd-sysupdate, and rewrite its
           SHA256SUMS over every file there; --keep N keeps the newest N
           versions of each image name; --gpg-key signs SHA256SUMS
           (SHA256SUMS.gpg) with gpg and that key, from --gpg-homedir's
           keyring or gpg's own
";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Build,
    Inspect {
        image: PathBuf,
        json: bool,
    },
    Verify {
        image: PathBuf,
        base: Option<PathBuf>,
        certificate: Option<PathBuf>,
        report: Option<PathBuf>,
    },
    Sbom {
        image: PathBuf,
        output: Option<PathBuf>,
    },
    Sign {
        image: PathBuf,
        key: PathBuf,
        certificate: PathBuf,
        output: PathBuf,
        passin: Option<OsString>,
    },
    Publish(publish::Request),
    Help,
}

/// A command's arguments, read with lexopt: the values it is given, and
/// its options, each given at most once.
#[derive(Default)]
struct Arguments {
    positional: Vec<PathBuf>,
    switches: BTreeSet<&'static str>,
    values: BTreeMap<&'static str, OsString>,
    help: bool,
}

impl Arguments {
    /// The one IMAGE of a command that reads an image.
    fn image(&mut self) -> Result<PathBuf> {
        match self.positional.len() {
            0 => bail!("an IMAGE is needed\n{USAGE}"),
            1 => Ok(self.positional.remove(0)),
            _ => bail!(
                "unexpected argument '{}'\n{USAGE}",
                self.positional[1].display()
            ),
        }
    }

    fn switch(&self, name: &str) -> bool {
        self.switches.contains(name)
    }

    fn value(&mut self, name: &str) -> Option<OsString> {
        self.values.remove(name)
    }

    fn path(&mut self, name: &str) -> Option<PathBuf> {
        self.value(name).map(PathBuf::from)
    }

    fn required(&mut self, name: &str) -> Result<PathBuf> {
        match self.path(name) {
            Some(path) => Ok(path),
            None => bail!("{name} is needed\n{USAGE}"),
        }
    }
}

/// Reads a command's arguments: IMAGE, the `switches` (no value) and the
/// `options` (one value each, `--opt VALUE` or `--opt=VALUE`).
fn arguments(
    parser: &mut lexopt::Parser,
    switches: &[&'static str],
    options: &[&'static str],
) -> Result<Arguments> {
    use lexopt::Arg;
    let mut args = Arguments::default();
    while let Some(arg) = parser.next()? {
        let flag = match arg {
            Arg::Value(value) => {
                args.positional.push(value.into());
                continue;
            }
            Arg::Short('h') | Arg::Long("help") => {
                args.help = true;
                continue;
            }
            Arg::Short(c) => format!("-{c}"),
            Arg::Long(name) => format!("--{name}"),
        };
        if let Some(&switch) = switches.iter().find(|s| **s == flag) {
            if !args.switches.insert(switch) {
                bail!("{switch} is given twice\n{USAGE}");
            }
        } else if let Some(&option) = options.iter().find(|o| **o == flag) {
            let value = parser
                .value()
                .ok()
                .filter(|v| !v.to_string_lossy().starts_with("--"));
            let Some(value) = value else {
                bail!("{option} needs a value\n{USAGE}");
            };
            if args.values.insert(option, value).is_some() {
                bail!("{option} is given twice\n{USAGE}");
            }
        } else {
            bail!("unknown option '{flag}'\n{USAGE}");
        }
    }
    Ok(args)
}

/// `publish`'s arguments: DIR, then releases and files, and its options,
/// each given once.
/// `publish DIR [RELEASE|FILE...]` and its options.
fn publish_request(args: &mut Arguments) -> Result<publish::Request> {
    if args.positional.is_empty() {
        bail!("publish needs the feed's DIR\n{USAGE}");
    }
    let dir = args.positional.remove(0);
    let keep = match args.value("--keep") {
        None => None,
        Some(n) => match n.to_str().and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n > 0 => Some(n),
            _ => bail!(
                "--keep {}: give how many versions of each image to keep, \
                 1 or more",
                n.to_string_lossy()
            ),
        },
    };
    let signing =
        publish::signing(args.value("--gpg-key"), args.path("--gpg-homedir"))?;
    let inputs = std::mem::take(&mut args.positional);
    Ok(publish::Request { dir, inputs, keep, signing })
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command> {
    let mut parser = lexopt::Parser::from_args(args);
    let command = match parser.next()? {
        None => return Ok(Command::Build),
        Some(lexopt::Arg::Value(command)) => command,
        Some(lexopt::Arg::Short('h') | lexopt::Arg::Long("help")) => {
            return Ok(Command::Help)
        }
        Some(other) => bail!("unknown option {other:?}\n{USAGE}"),
    };
    let name = command.to_string_lossy();
    let (switches, options): (&[_], &[_]) = match name.as_ref() {
        "build" | "help" => (&[], &[]),
        "inspect" => (&["--json"], &[]),
        "verify" => (&[], &["--base", "--certificate", "--report"]),
        "sbom" => (&[], &["--output"]),
        "publish" => (&[], &["--keep", "--gpg-key", "--gpg-homedir"]),
        "sign" => (&[], &["--key", "--certificate", "--output", "--passin"]),
        other => bail!("unknown command '{other}'\n{USAGE}"),
    };
    let mut args = arguments(&mut parser, switches, options)?;
    if args.help || name == "help" {
        return Ok(Command::Help);
    }
    let command = match name.as_ref() {
        "inspect" => Command::Inspect {
            json: args.switch("--json"),
            image: args.image()?,
        },
        "verify" => Command::Verify {
            base: args.path("--base"),
            certificate: args.path("--certificate"),
            report: args.path("--report"),
            image: args.image()?,
        },
        "publish" => Command::Publish(publish_request(&mut args)?),
        "sbom" => Command::Sbom {
            output: args.path("--output"),
            image: args.image()?,
        },
        "sign" => Command::Sign {
            key: args.required("--key")?,
            certificate: args.required("--certificate")?,
            output: args.required("--output")?,
            passin: args.value("--passin"),
            image: args.image()?,
        },
        _ if !args.positional.is_empty() => {
            bail!("build takes no arguments\n{USAGE}")
        }
        _ => Command::Build,
    };
    Ok(command)
}

pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<ExitCode> {
    match parse(args)? {
        Command::Build => builder::run()?,
        Command::Inspect { image, json } => inspect::run(&image, json)?,
        Command::Verify { image, base, certificate, report } => {
            let holds = verify::run(
                &image,
                base.as_deref(),
                certificate.as_deref(),
                report.as_deref(),
            )?;
            if !holds {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Sbom { image, output } => {
            sbom::run(&image, output.as_deref())?
        }
        Command::Sign { image, key, certificate, output, passin } => {
            let signer = Signer::read(&key, &certificate, passin)?;
            let signed =
                sign::sign(&image, &Openssl::default(), &signer, &output)?;
            println!(
                "{}: signed root hash {}",
                output.display(),
                signed.root_hash_hex()
            );
        }
        Command::Publish(request) => print!("{}", publish::run(&request)?),
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
                certificate: None,
                report: Some("r".into())
            }
        );
        assert_eq!(
            parse_str(&[
                "sign",
                "--key",
                "k.pem",
                "a.raw",
                "--certificate",
                "c.pem",
                "--output",
                "o.raw"
            ])
            .unwrap(),
            Command::Sign {
                image: "a.raw".into(),
                key: "k.pem".into(),
                certificate: "c.pem".into(),
                output: "o.raw".into(),
                passin: None,
            }
        );
        assert_eq!(
            parse_str(&["sbom", "a.raw", "--output", "a.json"]).unwrap(),
            Command::Sbom {
                image: "a.raw".into(),
                output: Some("a.json".into())
            }
        );
        assert_eq!(
            parse_str(&[
                "publish",
                "feed",
                "r1",
                "--keep",
                "2",
                "a.raw",
                "--gpg-key",
                "K"
            ])
            .unwrap(),
            Command::Publish(publish::Request {
                dir: "feed".into(),
                inputs: vec!["r1".into(), "a.raw".into()],
                keep: Some(2),
                signing: Some(publish::gpg::Signing {
                    key: "K".into(),
                    homedir: None
                }),
            })
        );
        assert_eq!(parse_str(&["inspect", "-h"]).unwrap(), Command::Help);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for (bad, why) in [
            (&["inspect"][..], "an IMAGE is needed"),
            (&["verify", "a", "--base"], "--base needs a value"),
            (
                &["verify", "a", "--base", "--report", "r"],
                "--base needs a value",
            ),
            (&["inspect", "a", "b"], "unexpected argument 'b'"),
            (&["inspect", "a", "--jsn"], "unknown option '--jsn'"),
            (&["inspect", "a", "--json", "--json"], "--json is given twice"),
            (
                &["verify", "a", "--base", "b", "--base", "c"],
                "--base is given twice",
            ),
            (&["sign", "a", "--key", "k"], "--certificate is needed"),
            (&["build", "x"], "build takes no arguments"),
            (&["publish"], "publish needs the feed's DIR"),
            (&["publish", "d", "--keep", "0"], "--keep 0: give how many"),
            (&["publish", "d", "--keep", "x"], "--keep x: give how many"),
            (
                &["publish", "d", "--keep", "1", "--keep", "2"],
                "--keep is given twice",
            ),
            (&["publish", "d", "--gpg-homedir", "h"], "--gpg-homedir names"),
            (&["publish", "d", "--sign"], "unknown option '--sign'"),
            (&["x"], "unknown command 'x'"),
        ] {
            let err = parse_str(bad).unwrap_err().to_string();
            assert!(err.starts_with(why), "{bad:?}: {err}");
        }
    }
}
