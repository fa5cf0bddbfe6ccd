/*!
The command line. Without arguments the builder does what Nix runs it for:
the job that `.attrs.json` describes. `inspect` and `verify` read an image
back; `sign` signs a disk image, outside Nix, where the key is;
`publish` adds releases to a feed that hosts follow.
*/

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::builder;
use crate::ddi::signature::{Openssl, Signer};
use crate::image::{inspect, survey, verify};
use crate::publish;

const USAGE: &str = "\
usage: portable-service-builder [build]
       portable-service-builder inspect IMAGE [--json]
       portable-service-builder verify IMAGE [--base BASE] [--certificate CERT.pem] [--report FILE]
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
           per finding
  sign     write OUT.raw: the disk image IMAGE with a signature of its root
           hash by KEY.pem (with `openssl`; --passin as openssl takes it,
           for an encrypted key) and CERT.pem, its certificate
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

/// A command's arguments: the one IMAGE and its options.
struct Parsed {
    image: PathBuf,
    switches: Vec<&'static str>,
    values: BTreeMap<&'static str, OsString>,
}

impl Parsed {
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

/// Reads IMAGE and the options of a command that takes the `switches`
/// (no value) and `options` (one value each).
fn arguments(
    args: Vec<OsString>,
    switches: &[&'static str],
    options: &[&'static str],
) -> Result<Parsed> {
    let mut image = None;
    let mut parsed = Parsed {
        image: PathBuf::new(),
        switches: Vec::new(),
        values: BTreeMap::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if let Some(&switch) = switches.iter().find(|s| **s == text) {
            parsed.switches.push(switch);
        } else if let Some(&option) = options.iter().find(|o| **o == text) {
            match args.next() {
                Some(value) if !value.to_string_lossy().starts_with("--") => {
                    parsed.values.insert(option, value);
                }
                _ => bail!("{option} needs a value\n{USAGE}"),
            }
        } else if text.starts_with('-') {
            bail!("unknown option '{text}'\n{USAGE}");
        } else if image.is_none() {
            image = Some(PathBuf::from(arg));
        } else {
            bail!("unexpected argument '{text}'\n{USAGE}");
        }
    }
    match image {
        Some(image) => parsed.image = image,
        None => bail!("an IMAGE is needed\n{USAGE}"),
    }
    Ok(parsed)
}

/// `publish`'s arguments: DIR, then releases and files, and its options,
/// each given once.
fn publish_arguments(args: Vec<OsString>) -> Result<publish::Request> {
    let mut positional = Vec::new();
    let mut values: BTreeMap<&'static str, OsString> = BTreeMap::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        let option = ["--keep", "--gpg-key", "--gpg-homedir"]
            .into_iter()
            .find(|o| *o == text);
        if let Some(option) = option {
            match args.next() {
                Some(value) if !value.to_string_lossy().starts_with("--") => {
                    if values.insert(option, value).is_some() {
                        bail!("{option} is given twice\n{USAGE}");
                    }
                }
                _ => bail!("{option} needs a value\n{USAGE}"),
            }
        } else if text.starts_with('-') {
            bail!("unknown option '{text}'\n{USAGE}");
        } else {
            positional.push(PathBuf::from(arg));
        }
    }
    if positional.is_empty() {
        bail!("publish needs the feed's DIR\n{USAGE}");
    }
    let dir = positional.remove(0);
    let keep = match values.remove("--keep") {
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
    let signing = publish::signing(
        values.remove("--gpg-key"),
        values.remove("--gpg-homedir").map(PathBuf::from),
    )?;
    Ok(publish::Request { dir, inputs: positional, keep, signing })
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command> {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        return Ok(Command::Build);
    };
    let rest: Vec<OsString> = args.collect();
    if rest.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let command = match command.to_string_lossy().as_ref() {
        "build" if rest.is_empty() => Command::Build,
        "build" => bail!("build takes no arguments\n{USAGE}"),
        "inspect" => {
            let parsed = arguments(rest, &["--json"], &[])?;
            Command::Inspect {
                json: parsed.switches.contains(&"--json"),
                image: parsed.image,
            }
        }
        "verify" => {
            let options = ["--base", "--certificate", "--report"];
            let mut parsed = arguments(rest, &[], &options)?;
            Command::Verify {
                base: parsed.path("--base"),
                certificate: parsed.path("--certificate"),
                report: parsed.path("--report"),
                image: parsed.image,
            }
        }
        "sign" => {
            let options = ["--key", "--certificate", "--output", "--passin"];
            let mut parsed = arguments(rest, &[], &options)?;
            Command::Sign {
                key: parsed.required("--key")?,
                certificate: parsed.required("--certificate")?,
                output: parsed.required("--output")?,
                passin: parsed.value("--passin"),
                image: parsed.image,
            }
        }
        "publish" => Command::Publish(publish_arguments(rest)?),
        "-h" | "--help" | "help" => Command::Help,
        other => bail!("unknown command '{other}'\n{USAGE}"),
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
        Command::Sign { image, key, certificate, output, passin } => {
            if survey::is_squashfs(&image)? {
                bail!(
                    "{} is a squashfs image: only a disk image (format = \"ddi\") \
                     carries a signature",
                    image.display()
                );
            }
            let signer = Signer { key, certificate, passin };
            let signed = crate::ddi::sign(
                &image,
                &Openssl::default(),
                &signer,
                &output,
            )
            // The error names the file it is about.
            ?;
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
