/*!
`SHA256SUMS`, the manifest of a feed that systemd-sysupdate follows, as
its parser reads it: `resource_load_from_web()` in systemd 257.13's
`src/sysupdate/sysupdate-resource.c` (systemd 262 reads it the same way,
and takes more besides: names in subdirectories, `BEST-BEFORE-` marker
files).

The file is valid UTF-8 without NUL bytes; each line is

```text
<64 hex digits> <' ' or '*'><file name>\n
```

- the digest is the file's SHA-256 (systemd decodes upper and lower case
  hex);
- one space, then the text (` `) or binary (`*`) marker, as `sha256sum`
  writes them; a line that starts with `\` (how `sha256sum` escapes a name
  holding `\` or a newline) is refused;
- the name ends at the newline, which every line needs, the last one too;
  it must be a valid file name (`filename_is_valid()`: not empty, not `.`
  or `..`, no `/`, at most 255 bytes) without control characters.

systemd does not look at lines whose name matches no `MatchPattern=`, so
one manifest serves every image of a feed. It does not refuse a name
listed twice; this module does, as it would be a feed that says two
things of one file.

The writer puts `<digest>  <name>` (two spaces, as `sha256sum` and
systemd's own test, `test/units/TEST-72-SYSUPDATE.sh`, write it), names in
byte order, so that `sha256sum -c SHA256SUMS` checks a feed too.
*/

use std::collections::BTreeMap;
use std::fmt::Write;

use thiserror::Error;

/// The longest file name Linux accepts (`NAME_MAX`).
const NAME_MAX: usize = 255;

/// A SHA-256 digest.
pub use crate::digest::Digest;

/// The file names and digests a manifest lists.
pub type Entries = BTreeMap<String, Digest>;

/// Why a manifest or a name in it is refused. Each says what systemd
/// would say, by the line's number.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Error {
    #[error("it holds a NUL byte, which systemd-sysupdate refuses")]
    Nul,
    #[error("it is not valid UTF-8, which systemd-sysupdate refuses")]
    NotUtf8,
    #[error(
        "line {0} is not '<64 hex digits> <space or *><file name>' ending \
         in a newline ({1})"
    )]
    Line(usize, &'static str),
    #[error("line {line}: {source}")]
    Name { line: usize, source: NameError },
    #[error("line {line}: '{name}' is listed twice")]
    Twice { line: usize, name: String },
}

/// Why systemd-sysupdate would refuse a file name in a manifest.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("the file name {0:?} is not valid: {1}")]
    Invalid(String, &'static str),
}

/// Fails unless systemd-sysupdate takes `name` for a file in a manifest.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are not file names")
    } else if name.contains('/') {
        Some("it holds a '/', and a feed's files are in one directory")
    } else if name.len() > NAME_MAX {
        Some("it is longer than 255 bytes")
    } else if name.chars().any(|c| c < ' ' || c == '\x7f') {
        Some("it holds a control character")
    } else {
        None
    };
    match why {
        Some(why) => Err(NameError::Invalid(name.to_string(), why)),
        None => Ok(()),
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Reads a manifest as systemd-sysupdate does.
pub fn parse(manifest: &[u8]) -> Result<Entries, Error> {
    if manifest.contains(&0) {
        return Err(Error::Nul);
    }
    let text = std::str::from_utf8(manifest).map_err(|_| Error::NotUtf8)?;
    let mut entries = Entries::new();
    let mut rest = text.as_bytes();
    let mut line = 1;
    while !rest.is_empty() {
        // 64 hex digits, a separator, a marker, a name and a newline.
        if rest.len() < 67 {
            return Err(Error::Line(line, "too short"));
        }
        if rest[0] == b'\\' {
            return Err(Error::Line(line, "escaped names are not supported"));
        }
        let mut digest = [0u8; 32];
        for (k, byte) in digest.iter_mut().enumerate() {
            match (hex_digit(rest[2 * k]), hex_digit(rest[2 * k + 1])) {
                (Some(high), Some(low)) => *byte = high << 4 | low,
                _ => return Err(Error::Line(line, "the digest is not hex")),
            }
        }
        if rest[64] != b' ' {
            return Err(Error::Line(line, "no space after the digest"));
        }
        if rest[65] != b' ' && rest[65] != b'*' {
            return Err(Error::Line(line, "no text or binary marker"));
        }
        let after = &rest[66..];
        let Some(end) = after.iter().position(|&c| c == b'\n') else {
            return Err(Error::Line(line, "it has no newline at its end"));
        };
        // Bytes of a str, cut at ASCII characters: still UTF-8.
        let name = std::str::from_utf8(&after[..end]).unwrap_or_default();
        check_name(name).map_err(|source| Error::Name { line, source })?;
        if entries.insert(name.to_string(), digest).is_some() {
            return Err(Error::Twice { line, name: name.to_string() });
        }
        rest = &after[end + 1..];
        line += 1;
    }
    Ok(entries)
}

/// The manifest of `entries`, whose names must pass `check_name`.
pub fn render(entries: &Entries) -> Result<String, NameError> {
    let mut text = String::new();
    for (name, digest) in entries {
        check_name(name)?;
        let _ = writeln!(text, "{}  {name}", crate::digest::hex(digest));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn digest_of(hex_text: &str) -> Digest {
        let mut digest = [0; 32];
        for (k, byte) in digest.iter_mut().enumerate() {
            *byte =
                u8::from_str_radix(&hex_text[2 * k..2 * k + 2], 16).unwrap();
        }
        digest
    }

    #[test]
    fn reads_what_sha256sum_writes() {
        let text = format!("{A}  demo_1.0.raw\n{A} *demo_2.0.raw\n");
        let entries = parse(text.as_bytes()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries["demo_1.0.raw"], digest_of(A));
        assert_eq!(entries["demo_2.0.raw"], digest_of(A));
        let upper = format!("{}  x\n", A.to_uppercase());
        assert_eq!(parse(upper.as_bytes()).unwrap()["x"], digest_of(A));
        assert!(parse(b"").unwrap().is_empty());
    }

    #[test]
    fn writes_what_it_reads() {
        let mut entries = Entries::new();
        entries.insert("b_2.raw".into(), digest_of(A));
        entries.insert("a_1.raw".into(), [0xab; 32]);
        let text = render(&entries).unwrap();
        assert_eq!(
            text,
            format!("{}  a_1.raw\n{A}  b_2.raw\n", "ab".repeat(32))
        );
        assert_eq!(parse(text.as_bytes()).unwrap(), entries);
    }

    #[test]
    fn refuses_what_systemd_refuses() {
        let long = "x".repeat(256);
        for (text, expected) in [
            (format!("{A}  a\0\n"), Error::Nul),
            (format!("{A}  "), Error::Line(1, "too short")),
            (
                format!("{A}  abc"),
                Error::Line(1, "it has no newline at its end"),
            ),
            (
                format!("\\{}  a\\\\b\n", &A[1..]),
                Error::Line(1, "escaped names are not supported"),
            ),
            (
                format!("{}  abc\n", A.replace('e', "g")),
                Error::Line(1, "the digest is not hex"),
            ),
            (
                format!("{A}\tabc\n"),
                Error::Line(1, "no space after the digest"),
            ),
            (
                format!("{A} _abc\n"),
                Error::Line(1, "no text or binary marker"),
            ),
            (
                format!("{A}  ok\n{A}  a/b\n"),
                Error::Name {
                    line: 2,
                    source: NameError::Invalid(
                        "a/b".into(),
                        "it holds a '/', and a feed's files are in one \
                         directory",
                    ),
                },
            ),
            (
                format!("{A}  ..\n"),
                Error::Name {
                    line: 1,
                    source: NameError::Invalid(
                        "..".into(),
                        "'.' and '..' are not file names",
                    ),
                },
            ),
            (
                format!("{A}  a\x1bb\n"),
                Error::Name {
                    line: 1,
                    source: NameError::Invalid(
                        "a\x1bb".into(),
                        "it holds a control character",
                    ),
                },
            ),
            (
                format!("{A}  {long}\n"),
                Error::Name {
                    line: 1,
                    source: NameError::Invalid(
                        long.clone(),
                        "it is longer than 255 bytes",
                    ),
                },
            ),
            (
                format!("{A}  a\n{A} *a\n"),
                Error::Twice { line: 2, name: "a".into() },
            ),
        ] {
            assert_eq!(parse(text.as_bytes()), Err(expected), "{text:?}");
        }
        assert_eq!(parse(b"\xff\n"), Err(Error::NotUtf8));
        // An empty name.
        assert_eq!(
            parse(format!("{A}  \n").as_bytes()),
            Err(Error::Name {
                line: 1,
                source: NameError::Invalid("".into(), "it is empty"),
            })
        );
        // Names that are not ASCII are UTF-8, and taken.
        assert!(parse(format!("{A}  caf\u{e9}\n").as_bytes()).is_ok());
    }

    #[test]
    fn the_writer_refuses_bad_names() {
        let mut entries = Entries::new();
        entries.insert("a\nb".into(), [0; 32]);
        assert!(render(&entries).is_err());
    }
}
