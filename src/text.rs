/*!
Names from an image, shown: escaped for a terminal, lossless in JSON.

An image's names, link targets and release values are bytes chosen by
whoever made the image. Printed as they are, an escape sequence in one
would drive the terminal of whoever runs `inspect` (change what it shows,
or worse); so human output escapes every control character (C0, DEL and
C1) and every byte that is not UTF-8 as `\xNN` (`\u{85}` for a C1
character). Backslashes stay as they are: systemd's own escapes (`\x2d`
in unit names) read as they are written, at the price of an escaped
byte and a literal `\xNN` looking the same; `--json` tells them apart.

In JSON, a name that is UTF-8 is a string (serde escapes control
characters there as JSON requires); one that is not is an object
`{"base64": "<its bytes>"}`, so no byte is lost.
*/

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use base64::Engine as _;
use serde::Serializer;

/// `bytes` for a terminal: control characters and bytes that are not
/// UTF-8 escaped.
pub fn escape(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if !text.chars().any(char::is_control) {
            return Cow::Borrowed(text);
        }
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    Cow::Owned(out)
}

fn push_char(out: &mut String, c: char) {
    match c {
        c if (c as u32) < 0x80 && c.is_control() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if c.is_control() => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// One line of text for a terminal: `escape` for a `str`.
pub fn line(text: &str) -> Cow<'_, str> {
    escape(text.as_bytes())
}

/// A path for a terminal.
pub fn path(path: &Path) -> Cow<'_, str> {
    escape(path.as_os_str().as_bytes())
}

/// Text we wrote that embeds names from an image, for a terminal: control
/// characters escaped, except the line breaks and tabs of our own layout.
pub fn escape_message(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c => push_char(&mut out, c),
        }
    }
    Cow::Owned(out)
}

/// Serialises bytes as a JSON string when they are UTF-8, else as
/// `{"base64": ...}`: for `#[serde(serialize_with)]`.
pub fn serialize_bytes<S: Serializer>(
    bytes: &[u8],
    s: S,
) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => s.serialize_str(text),
        Err(_) => {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(1))?;
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(bytes);
            map.serialize_entry("base64", &encoded)?;
            map.end()
        }
    }
}

/// `serialize_bytes` for a path.
pub fn serialize_path<S: Serializer>(
    path: &Path,
    s: S,
) -> Result<S::Ok, S::Error> {
    serialize_bytes(path.as_os_str().as_bytes(), s)
}

/// `serialize_bytes` for an OS string.
pub fn serialize_os_str<S: Serializer>(
    name: &OsStr,
    s: S,
) -> Result<S::Ok, S::Error> {
    serialize_bytes(name.as_bytes(), s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_would_drive_a_terminal() {
        assert_eq!(escape(b"demo.service"), "demo.service");
        assert_eq!(escape(b"a\x1b[2Jb\n"), "a\\x1b[2Jb\\x0a");
        assert_eq!(escape(b"\x7f\xff\xc2\x85x"), "\\x7f\\xff\\u{85}x");
        assert_eq!(escape("fö\\x2d".as_bytes()), "fö\\x2d");
        assert_eq!(escape_message("a\x1b\nb\tc"), "a\\x1b\nb\tc");
    }

    #[test]
    fn json_keeps_every_byte() {
        let json = |bytes: &[u8]| {
            let mut out = Vec::new();
            let mut ser = serde_json::Serializer::new(&mut out);
            serialize_bytes(bytes, &mut ser).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(json(b"a\x1bb"), r#""a\u001bb""#);
        assert_eq!(json(b"a\xffb"), r#"{"base64":"Yf9i"}"#);
    }
}
