/*!
Reading a unit file as systemd's `config_parse()` does; the module doc of
`unit_file` lists the rules.
*/

use super::error::{Error, ErrorKind};
use super::words::WHITESPACE;
use crate::systemd::unit_name;

/// A unit file: its name and its assignments, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitFile {
    pub(super) name: String,
    pub(super) assignments: Vec<Assignment>,
}

/// One `Key=Value` line, after continuation lines are joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub section: String,
    pub key: String,
    pub value: String,
    /// The line it starts on, counting from 1.
    pub line: usize,
}

const COMMENTS: &[u8] = b"#;";
const BOM: &[u8] = b"\xef\xbb\xbf";

impl UnitFile {
    /// Reads the unit file called `name` (its file name, such as
    /// `app@.service`) with content `text`.
    pub fn parse(name: &str, text: &[u8]) -> Result<UnitFile, Error> {
        if !unit_name::is_valid(name) {
            return Err(Error {
                unit: name.to_owned(),
                kind: ErrorKind::UnitName,
            });
        }
        let mut reader =
            Reader { unit: name, section: None, assignments: Vec::new() };
        let mut continuation: Option<(Vec<u8>, usize)> = None;
        let mut bom_seen = false;
        for (index, raw) in physical_lines(text).into_iter().enumerate() {
            let number = index + 1;
            let first = raw.iter().position(|b| !WHITESPACE.contains(b));
            if first.is_some_and(|i| COMMENTS.contains(&raw[i])) {
                continue;
            }
            let mut line = raw;
            if !bom_seen {
                if let Some(rest) = line.strip_prefix(BOM) {
                    line = rest;
                    bom_seen = true;
                }
            }
            let (mut logical, start) = match continuation.take() {
                Some((mut joined, start)) => {
                    joined.extend_from_slice(line);
                    (joined, start)
                }
                None => (line.to_vec(), number),
            };
            if ends_escaped(&logical) {
                *logical.last_mut().expect("ends in a backslash") = b' ';
                continuation = Some((logical, start));
                continue;
            }
            reader.line(&logical, start)?;
        }
        if let Some((logical, start)) = continuation {
            reader.line(&logical, start)?;
        }
        Ok(UnitFile { name: name.to_owned(), assignments: reader.assignments })
    }

    pub fn assignments(&self) -> &[Assignment] {
        &self.assignments
    }

    /// The assignments of `key` in `section`, in order.
    pub fn get<'a>(
        &'a self,
        section: &'a str,
        key: &'a str,
    ) -> impl Iterator<Item = &'a Assignment> + 'a {
        self.assignments
            .iter()
            .filter(move |a| a.section == section && a.key == key)
    }
}

struct Reader<'a> {
    unit: &'a str,
    section: Option<String>,
    assignments: Vec<Assignment>,
}

impl Reader<'_> {
    /// `parse_line()`.
    fn line(&mut self, logical: &[u8], number: usize) -> Result<(), Error> {
        let Ok(text) = std::str::from_utf8(logical) else {
            return Ok(());
        };
        let text = trim(text);
        if text.is_empty() {
            return Ok(());
        }
        if text.starts_with('[') {
            let name = text.strip_suffix(']').map(|t| &t[1..]);
            let safe = name.is_some_and(|n| {
                !n.chars()
                    .any(|c| c < ' ' || c == '\x7f' || "\\\"'".contains(c))
            });
            if !safe {
                return Err(Error {
                    unit: self.unit.to_owned(),
                    kind: ErrorKind::SectionHeader {
                        line: number,
                        header: text.to_owned(),
                    },
                });
            }
            self.section = name.map(str::to_owned);
            return Ok(());
        }
        let Some(section) = &self.section else {
            return Ok(());
        };
        match text.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                self.assignments.push(Assignment {
                    section: section.clone(),
                    key: trim(key).to_owned(),
                    value: trim(value).to_owned(),
                    line: number,
                });
            }
            _ => {}
        }
        Ok(())
    }
}

fn trim(text: &str) -> &str {
    text.trim_matches(|c: char| {
        c.is_ascii() && WHITESPACE.contains(&(c as u8))
    })
}

/// Splits at line ends as `read_line()` does: `\n`, `\r` and NUL each end
/// a line, and a run of them is one line end as long as no kind repeats
/// and no NUL is followed by more.
fn physical_lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        let kind = |b: u8| match b {
            b'\n' => 1u8,
            b'\r' => 2,
            0 => 4,
            _ => 0,
        };
        let k = kind(text[i]);
        if k == 0 {
            i += 1;
            continue;
        }
        lines.push(&text[start..i]);
        let mut seen = k;
        i += 1;
        while i < text.len() && seen & 4 == 0 {
            let next = kind(text[i]);
            if next == 0 || seen & next != 0 {
                break;
            }
            seen |= next;
            i += 1;
        }
        start = i;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Whether the text ends in an unescaped backslash.
fn ends_escaped(text: &[u8]) -> bool {
    let mut escaped = false;
    for &b in text {
        escaped = !escaped && b == b'\\';
    }
    escaped
}
